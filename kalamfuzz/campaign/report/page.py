"""The page: a report's sections in order, a hand-written ``.notes.md`` merged in.

A notes file (the cause in KalamDB's source, a better title, a contrast found by hand) is kept
apart from the generated text so that ``kalamfuzz report --write`` can render the rest again.
"""

from __future__ import annotations

from kalamfuzz.campaign.events import Failure
from kalamfuzz.campaign.report.changes import _numbers
from kalamfuzz.campaign.report.names import public_command
from kalamfuzz.campaign.report.setup import _setup_section
from kalamfuzz.campaign.report.steps import _steps_section
from kalamfuzz.campaign.report.story import Story
from kalamfuzz.campaign.report.title import _title
from kalamfuzz.campaign.report.violations import _expected, _violation_block, parse_violations
from kalamfuzz.campaign.sources import build_commit

_GENERATED = ("Steps to reproduce", "What goes wrong", "What was expected")


def split_notes(
    notes: str,
) -> tuple[str, list[str], dict[str, list[str]], list[tuple[str, list[str]]]]:
    """A notes file's parts: its title (``# ...``), header lines (``Reproducibility: ...``,
    ``Found by: ...``), additions to generated sections (under a ``## Steps to reproduce``
    heading: after the setup, before the steps; ``## What goes wrong``, ``## What was
    expected``: at their end), and sections of its own (after those)."""
    heading = ""
    header: list[str] = []
    additions: dict[str, list[str]] = {}
    sections: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in notes.splitlines():
        if line.startswith("# ") and not heading and current is None:
            heading = line[2:].strip()
        elif line.startswith("## "):
            name = line[3:].strip()
            gen = next((g for g in _GENERATED if name.startswith(g)), None)
            current = additions.setdefault(gen, []) if gen else []
            if gen is None:
                sections.append((name, current))
        elif current is None:
            if line.strip():
                header.append(line)
        else:
            current.append(line)
    return heading, header, additions, sections


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def render_report(failure: Failure, label: str = "", command: str = "", notes: str = "") -> str:
    """The markdown report of a saved failure (``notes``: a hand-written ``.notes.md``)."""
    story = Story.of(failure)
    violations, more = parse_violations(failure.message)
    heading, header, additions, sections = split_notes(notes)
    found_by = next((h for h in header if h.startswith("Found by:")), "")
    repro = next((h for h in header if h.startswith("Reproducibility:")), "")
    extra = [h for h in header if h not in (found_by, repro)]

    out = [f"# {heading or _title(story)}", ""]
    server = failure.server or "an unknown server"
    commit = build_commit(server)
    at = f" (jamals86/KalamDB {commit[:8]})" if commit else ""
    out.append(f"KalamDB: {server}{at}.")
    if repro:
        out.append(repro)
    elif label:
        out.append(f"Reproducibility: {label}.")
    out += [*extra, ""] if extra else [""]

    out += ["## Steps to reproduce", "", *_setup_section(story)]
    if additions.get("Steps to reproduce"):
        out += [*_trim(additions["Steps to reproduce"]), ""]
    out += _steps_section(story)

    out += ["## What goes wrong", ""]
    out += _violation_block(story.names, failure.message)
    numbers = _numbers(story, violations, more)
    if numbers:
        out += ["", *numbers]
    if additions.get("What goes wrong"):
        out += ["", *_trim(additions["What goes wrong"])]
    out.append("")

    out += ["## What was expected", ""]
    out += _expected(failure.items, violations)
    if additions.get("What was expected"):
        out += ["", *_trim(additions["What was expected"])]
    out.append("")

    for name, body in sections:
        out += [f"## {name}", "", *_trim(body), ""]

    out.append("---")
    if found_by:
        out.append(found_by)
    elif command:
        out.append(
            f"Found by kalamfuzz (model-based fuzzing): `{public_command(story.names(command))}`"
        )
    else:
        out.append("Found by kalamfuzz (model-based fuzzing).")
    return "\n".join(out) + "\n"
