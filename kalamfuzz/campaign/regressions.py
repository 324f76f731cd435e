"""Regression files: a shrunk failure as a standalone, readable pytest file, and replaying them.

A file holds ``program(d)``, the step program written against :class:`Driver` (the public
adapters underneath), and ``test_<name>()`` which runs it on the configured target. The planted
bugs that produced it are recorded, not switched on: replay on the plain sim must pass, and
``kalamfuzz replay --with-bugs`` (or ``KALAMFUZZ_REPLAY_BUGS=1``) reproduces the failure.
The raw SQL/WebSocket transcript is saved beside it as ``<name>.transcript.jsonl``.
"""

from __future__ import annotations

import enum
import hashlib
import importlib.util
import json
import os
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
from attrs import frozen

from kalamfuzz.campaign.events import Failure
from kalamfuzz.errors import ConfigError
from kalamfuzz.machines.driver import Driver, Exchange, InvariantViolation

ENV_REPLAY_BUGS = "KALAMFUZZ_REPLAY_BUGS"
DEFAULT_DIR = Path("regressions")
#: Where the regressions found on a real KalamDB server are saved, below the regressions dir.
REAL_SERVER_DIR = "kalamdb"
_NEEDS_SERVER_HINT = (
    "needs a real server: KALAMFUZZ_TARGET=binary:/path/to/kalamdb-server (or url:...) "
    "kalamfuzz replay"
)


def replay_bugs(recorded: Sequence[str]) -> tuple[str, ...]:
    """The planted bugs to switch on when a regression runs: none unless asked for."""
    return tuple(recorded) if os.environ.get(ENV_REPLAY_BUGS) == "1" else ()


def target_kind(spec: str | None = None) -> str:
    """``sim``, ``binary`` or ``url``: what a regression would run against."""
    raw = (spec if spec is not None else os.environ.get("KALAMFUZZ_TARGET", "")) or "sim"
    return raw.strip().partition(":")[0] if ":" in raw else raw.strip()


def skip_on_sim(needs_real_server: bool) -> None:
    """In a regression file: a bug found on a real server says so on the sim instead of failing
    (the sim has a planted bug of its shape, which the detection self-test hunts)."""
    if needs_real_server and target_kind() == "sim":
        import pytest

        pytest.skip(_NEEDS_SERVER_HINT)


def short_id(failure: Failure) -> str:
    digest = hashlib.sha256(
        "\n".join([failure.machine, failure.signature, *failure.program]).encode()
    )
    return digest.hexdigest()[:8]


def file_name(failure: Failure) -> str:
    return f"test_{failure.machine}_{short_id(failure)}"


def _imports(qualified: Iterable[str]) -> list[str]:
    by_module: dict[str, set[str]] = defaultdict(set)
    for q in qualified:
        module, _, name = q.partition(":")
        by_module[module].add(name)
    return [
        f"from {module} import {', '.join(sorted(names))}"
        for module, names in sorted(by_module.items())
    ]


def _sql_comments(transcript: Sequence[Exchange], step: int) -> list[str]:
    requests = [e for e in transcript if e.step == step and e.kind in ("sql", "ws-send", "fault")]
    lines = []
    for e in requests[:3]:
        code = e.reply.get("code")
        verdict = f"  -> {code}" if code else ""
        what = f"ws {e.request}" if e.kind == "ws-send" else e.request
        lines.append(f"# {e.actor}: {what}{verdict}".replace("\n", " ")[:160])
    if len(requests) > 3:
        lines.append(f"# ... {len(requests) - 3} more request(s)")
    return lines


def render(failure: Failure, label: str, command: str) -> str:
    """The regression file's source."""
    name = file_name(failure)
    body: list[str] = ["d.begin(TABLES)"]
    for i, line in enumerate(failure.program, start=1):
        body += _sql_comments(failure.transcript, i)
        body.append(line)
    body.append("d.sweep()")
    from kalamfuzz.campaign.report import public_command, violation_lines

    violation = textwrap.indent("\n".join(violation_lines(failure.message)), "#   ")
    imports = "\n".join(
        [
            "from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim",
            *_imports(["kalamfuzz.machines.driver:Driver", *failure.imports]),
        ]
    )
    tolerated = "".join(f"\n    {s!r}," for s in failure.tolerated)
    return f'''"""kalamfuzz regression {name[5:]}: {failure.kind} in machine {failure.machine!r}.

Found by: {public_command(command)}
On: {failure.server or "unknown server"}
Reproduced on rerun: {label}. Transcript: {name}.transcript.jsonl. Report: {name}.md
Run it: pytest {name}.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

{imports}

MACHINE = {failure.machine!r}
TABLES = {tuple(failure.tables)!r}
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = {tuple(failure.bugs)!r}
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = {found_on_real_server(failure)!r}
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ({tolerated}{chr(10) if tolerated else ""})
#: Runs of the program: it sends calls at once, so it counts as fixed only when no run fails.
REPEAT = {RACE_RERUNS if failure.race else 1}

# Violated:
{violation}


def program(d: Driver) -> None:
{textwrap.indent(chr(10).join(body), "    ")}


def {name}() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
'''


#: Runs of a regression whose program sends calls at once: a race is flaky by nature.
RACE_RERUNS = 20


def found_on_real_server(failure: Failure) -> bool:
    return bool(failure.server) and not failure.server.startswith("kalamfuzz sim")


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return {k: _jsonable(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def exchange_json(ex: Exchange) -> str:
    return json.dumps(_jsonable(ex), default=str, sort_keys=True)


def write(failure: Failure, directory: Path, label: str, command: str) -> Path:
    """Save the regression file, its transcript and its upstream-ready report; a finding on a
    real server goes to the ``kalamdb/`` folder below ``directory``."""
    from kalamfuzz.campaign.report import render_report

    if found_on_real_server(failure):
        directory = directory / REAL_SERVER_DIR
    directory.mkdir(parents=True, exist_ok=True)
    name = file_name(failure)
    path = directory / f"{name}.py"
    path.write_text(render(failure, label, command))
    (directory / f"{name}.transcript.jsonl").write_text(
        "".join(exchange_json(e) + "\n" for e in failure.transcript)
    )
    (directory / f"{name}.md").write_text(render_report(failure, label, command))
    return path


# --- loading and replaying -------------------------------------------------------------------


class Status(enum.Enum):
    FIXED = "FIXED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    #: Found on a real KalamDB server; the sim cannot replay it.
    NEEDS_SERVER = "NEEDS SERVER"


@frozen
class ReplayResult:
    path: Path
    status: Status
    detail: str


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"kalamfuzz_regression_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} is not a Python file", hint="pass a regressions/test_*.py file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "program", None)):
        raise ConfigError(
            f"{path} has no program(d) function", hint="is it a kalamfuzz regression file?"
        )
    return module


def resolve(selectors: Sequence[str], directory: Path) -> list[Path]:
    """Paths for the given ids, names or paths (all saved regressions if none)."""
    if not selectors:
        return sorted(directory.rglob("test_*.py"))
    out: list[Path] = []
    for sel in selectors:
        p = Path(sel)
        if p.is_file():
            out.append(p)
            continue
        matches = sorted(directory.rglob(f"test_*{sel}*.py"))
        if not matches:
            raise ConfigError(
                f"no regression matches {sel!r} in {directory}",
                hint="give a short id, a file name or a path (kalamfuzz replay lists them all)",
            )
        out.extend(matches)
    return out


def replay_one(path: Path, open_driver: Callable[..., Any], target: str = "sim") -> ReplayResult:
    """Run one regression: FIXED if it passes, FAILED on a violation, ERROR otherwise, and
    NEEDS_SERVER for a real server's finding on the sim.

    ``open_driver(planted_bugs, tolerate)`` opens the driver; ``target`` is its kind."""
    try:
        module = load(path)
        if getattr(module, "NEEDS_REAL_SERVER", False) and target == "sim":
            return ReplayResult(path, Status.NEEDS_SERVER, _NEEDS_SERVER_HINT)
        bugs = tuple(getattr(module, "PLANTED_BUGS", ()))
        runs = int(getattr(module, "REPEAT", 1))
        failed: list[InvariantViolation] = []
        with open_driver(bugs, tuple(getattr(module, "TOLERATED", ()))) as driver:
            for _ in range(runs):
                try:
                    module.program(driver)
                except InvariantViolation as exc:
                    failed.append(exc)
    except Exception as exc:
        return ReplayResult(path, Status.ERROR, f"{type(exc).__name__}: {exc}")
    if failed:
        often = f"fails {len(failed)} of {runs} runs\n" if runs > 1 else ""
        return ReplayResult(path, Status.FAILED, often + str(failed[0]))
    return ReplayResult(path, Status.FIXED, f"passed {runs} runs" if runs > 1 else "")


def run_program(module: ModuleType, driver: Driver, kind: str) -> bool:
    """Rerun a loaded regression on an open driver; True if it failed the same way again."""
    try:
        module.program(driver)
    except InvariantViolation:
        return kind == "violation"
    except Exception:
        return kind == "error"
    return False
