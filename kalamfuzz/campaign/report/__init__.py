"""Upstream-ready reports: a finding as a KalamDB engineer would want it in an issue.

A report is the issue itself, minimal and reproducible from its text alone:

- a title in KalamDB's words (what a user sees), the server's version, how reproducible it is;
- the setup: only the users, storages, namespaces and tables the failing steps use;
- the steps in plain SQL, WebSocket JSON and shell terms, in the order they happened, faults
  included (a storage made unwritable and how, a kill and when, a network fault); of kalamfuzz's
  own checking reads only those that show the departure and the last one before it;
- what goes wrong, with the numbers taken from the transcript;
- what was expected, in KalamDB's own words where its docs, tests or comments state it
  (:mod:`kalamfuzz.campaign.sources`), kalamfuzz's contract item otherwise;
- short, stable names instead of the run's generated ones, and no path of the machine that
  found it.

A hand-written ``<name>.notes.md`` beside a regression (the cause in KalamDB's source, a better
title, a contrast found by hand) is merged in: see :func:`.page.split_notes`. ``kalamfuzz report
ID`` prints the saved report; ``kalamfuzz report --write`` renders it again from the regression
and its transcript.

The modules, in the order a report reads: :mod:`.names` (stable names, no paths),
:mod:`.violations` (a failure's message: what goes wrong, what was expected), :mod:`.story` (the
transcript: what is shown, where it departs), :mod:`.setup`, :mod:`.steps` (with
:mod:`.inserts`), :mod:`.changes` (the numbers), :mod:`.title`, and :mod:`.page`, which puts
them together.
"""

from kalamfuzz.campaign.report.inserts import compact_insert
from kalamfuzz.campaign.report.names import Names, public_command, scrub_paths
from kalamfuzz.campaign.report.page import render_report
from kalamfuzz.campaign.report.setup import placeholder
from kalamfuzz.campaign.report.story import _call, _verb, is_job_poll
from kalamfuzz.campaign.report.title import title
from kalamfuzz.campaign.report.violations import parse_violations, violation_lines

__all__ = [
    "Names",
    "_call",
    "_verb",
    "compact_insert",
    "is_job_poll",
    "parse_violations",
    "placeholder",
    "public_command",
    "render_report",
    "scrub_paths",
    "title",
    "violation_lines",
]
