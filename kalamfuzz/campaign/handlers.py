"""Outputs of a campaign, each a handler of its events: console, JUnit XML, JSONL history."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from kalamfuzz.campaign.events import (
    CampaignFinished,
    CampaignStarted,
    Event,
    Failure,
    MachineFinished,
    Progress,
    RegressionSaved,
)
from kalamfuzz.campaign.regressions import exchange_json
from kalamfuzz.machines.driver import Exchange


class Console:
    """Live progress on one line (on a terminal), a block per failure, and the final summary."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()

    def _line(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, CampaignStarted):
            bugs = f", planted bugs: {', '.join(event.bugs)}" if event.bugs else ""
            self._line(
                f"kalamfuzz: machine {event.machine} against {event.target}, seed {event.seed}, "
                f"budget {event.budget}{bugs}"
            )
            if event.known:
                self._line(f"  known issues: {event.known}")
            database = f"example database: {event.database}" if event.database else ""
            if event.worker is not None:
                first = event.seed + event.worker
                self._line(
                    f"  worker {event.worker} of {event.workers} (rounds' seeds {first}, "
                    f"{first + event.workers}, ...)" + (f"; {database}" if database else "")
                )
            elif event.workers > 1:
                self._line(
                    f"  workers: {event.workers} at once, each against its own target"
                    + (f"; {database}" if database else "")
                )
            elif database:
                self._line(f"  {database}")
            for what in event.skipped:
                self._line(f"  skipped: {what}")
        elif isinstance(event, Progress):
            rate = event.steps / event.elapsed_s if event.elapsed_s else 0.0
            machine = f"{event.machine}  " if event.machine else ""
            text = (
                f"  {event.elapsed_s:6.1f}s  {machine}examples {event.examples}  steps "
                f"{event.steps} ({rate:.0f}/s)  new {event.failures}  known {event.known}"
            )
            if self.tty:
                self.out.write("\r\033[K" + text)
                self.out.flush()
        elif isinstance(event, MachineFinished):
            self._line(
                f"  {event.machine}: {event.examples} examples, {event.steps} steps "
                f"({event.steps_per_second:.0f}/s), median {event.median_steps:g} steps, "
                f"findings new {event.new} known {event.known}"
            )
        elif isinstance(event, Failure):
            self._line(
                f"FAILURE ({event.kind}) in example {event.examples_to_failure} after "
                f"{event.seconds_to_failure:.1f}s, shrunk to {event.steps} step(s):"
            )
            for line in event.message.splitlines()[:20]:
                self._line("  " + line)
        elif isinstance(event, RegressionSaved):
            self._line(f"  saved {event.path} ({event.label})")
        elif isinstance(event, CampaignFinished):
            self._summary(event)

    def _summary(self, event: CampaignFinished) -> None:
        self._line(
            f"\n{event.examples} examples, {event.steps} steps in {event.elapsed_s:.1f}s "
            f"({event.steps_per_second:.0f} steps/s); {event.outside_share:.0%} of step time "
            "outside server calls"
        )
        if event.rules:
            self._line(f"  {'rule':<16}{'count':>8}{'ms/step':>10}{'server ms':>11}")
            for name, r in event.rules.items():
                per = 1000 * r.seconds / r.count if r.count else 0.0
                io = 1000 * r.io_seconds / r.count if r.count else 0.0
                self._line(f"  {name:<16}{r.count:>8}{per:>10.1f}{io:>11.1f}")
        if len(event.machines) > 1 or any(m.examples for m in event.machines):
            self._line(
                f"\n  {'machine':<10}{'steps/s':>9}{'median steps':>14}{'full':>12}"
                f"{'new':>6}{'known':>7}"
            )
            for m in event.machines:
                full = f"{m.full_examples}/{m.examples}"
                self._line(
                    f"  {m.machine:<10}{m.steps_per_second:>9.1f}{m.median_steps:>14g}"
                    f"{full:>12}{m.new:>6}{m.known:>7}"
                )
        if event.known:
            self._line("\nknown findings (counted, explored past):")
            for k in event.known:
                where = f" [{', '.join(k.machines)}]" if k.machines else ""
                report = f"  -> {k.report}" if k.report else ""
                self._line(f"  {k.count:>5}x  {k.label}: {k.title}{where}{report}")
        if event.failures:
            dup = f" ({event.duplicates} repeat(s) of them set aside)" if event.duplicates else ""
            self._line(f"{len(event.failures)} new finding(s){dup}: exit 1")
        elif event.known:
            self._line("no new findings, only known ones: exit 0")
        else:
            self._line("no violations: exit 0")


class Junit:
    """One test case per distinct failure (or one passing case), written at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started: CampaignStarted | None = None
        self.saved: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, CampaignStarted):
            self.started = event
        elif isinstance(event, RegressionSaved):
            self.saved[event.failure.signature] = event.path
        elif isinstance(event, CampaignFinished):
            self._write(event)

    def _write(self, event: CampaignFinished) -> None:
        machine = self.started.machine if self.started else "kalamfuzz"
        suite = ET.Element(
            "testsuite",
            name=f"kalamfuzz.{machine}",
            tests=str(max(1, len(event.failures))),
            failures=str(sum(f.kind == "violation" for f in event.failures)),
            errors=str(sum(f.kind == "error" for f in event.failures)),
            time=f"{event.elapsed_s:.3f}",
        )
        if not event.failures:
            ET.SubElement(suite, "testcase", classname=f"kalamfuzz.{machine}", name="campaign")
        for f in event.failures:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"kalamfuzz.{f.machine}",
                name=self.saved.get(f.signature, f.signature),
                time=f"{f.seconds_to_failure:.3f}",
            )
            tag = "failure" if f.kind == "violation" else "error"
            node = ET.SubElement(case, tag, message=f.signature[:200])
            node.text = f.message + "\n\n" + "\n".join(f.program)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suite).write(self.path, encoding="utf-8", xml_declaration=True)


class Jsonl:
    """Every request and response, plus each failure and the summary, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        if isinstance(event, Exchange):
            self.file.write('{"event": "exchange", "data": ' + exchange_json(event) + "}\n")
        elif isinstance(event, Failure):
            row = {
                "event": "failure",
                "machine": event.machine,
                "kind": event.kind,
                "signature": event.signature,
                "message": event.message,
                "program": list(event.program),
                "seed": event.seed,
            }
            self.file.write(json.dumps(row) + "\n")
        elif isinstance(event, CampaignFinished):
            row2 = {
                "event": "finished",
                "examples": event.examples,
                "steps": event.steps,
                "elapsed_s": round(event.elapsed_s, 3),
                "failures": len(event.failures),
                "exit_code": event.exit_code,
            }
            self.file.write(json.dumps(row2) + "\n")
            self.file.close()
