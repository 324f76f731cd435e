"""Regression files: a shrunk failure as a standalone, readable pytest file, and replaying them.

A file holds ``program(d)``, the step program written against :class:`Driver` (the public
adapters underneath), and ``test_<name>()`` which runs it on the configured target. The planted
bugs that produced it are recorded, not switched on: replay on the plain sim must pass, and
``kalamfuzz replay --with-bugs`` (or ``KALAMFUZZ_REPLAY_BUGS=1``) reproduces the failure.
The raw SQL/WebSocket transcript is saved beside it as ``<name>.transcript.jsonl`` (the setup
that made the users and storages first, marked ``"setup": true``), with the report ``<name>.md``;
:func:`load_saved` reads the three back, so ``kalamfuzz report --write`` renders a report again
offline (merging a hand-written ``<name>.notes.md``).
"""

from __future__ import annotations

import ast
import contextlib
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
    from kalamfuzz.campaign.report import scrub_paths

    requests = [e for e in transcript if e.step == step and e.kind in ("sql", "ws-send", "fault")]
    lines = []
    for e in requests[:3]:
        code = e.reply.get("code")
        verdict = f"  -> {code}" if code else ""
        what = f"ws {e.request}" if e.kind == "ws-send" else e.request
        lines.append(scrub_paths(f"# {e.actor}: {what}{verdict}".replace("\n", " ")[:160]))
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
    from kalamfuzz.campaign.report import public_command, scrub_paths, violation_lines

    violation = textwrap.indent(scrub_paths("\n".join(violation_lines(failure.message))), "#   ")
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
#: Runs of the program: it races, so it counts as fixed only when no run fails.
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


#: Runs of a regression whose program races (minimize.races): a race is flaky by nature.
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


def transcript_text(failure: Failure) -> str:
    """The transcript file: the setup that made the users and storages (marked ``"setup":
    true``), then every exchange of the example; no path of the machine that found it."""
    from kalamfuzz.campaign.report import scrub_paths

    lines = [
        json.dumps({"setup": True} | json.loads(exchange_json(e)), sort_keys=True)
        for e in failure.setup
    ]
    lines += [exchange_json(e) for e in failure.transcript]
    return "".join(scrub_paths(line) + "\n" for line in lines)


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
    (directory / f"{name}{TRANSCRIPT_SUFFIX}").write_text(transcript_text(failure))
    (directory / f"{name}.md").write_text(render_report(failure, label, command))
    return path


# --- reading a saved finding back (``kalamfuzz report --write``) ------------------------------

TRANSCRIPT_SUFFIX = ".transcript.jsonl"
#: Hand-written additions to a report (the cause in KalamDB's source, a title, a contrast
#: found by hand), merged in whenever the report is rendered again.
NOTES_SUFFIX = ".notes.md"


@frozen
class Saved:
    """A regression read back from its files: enough to render its report again."""

    failure: Failure
    label: str
    command: str
    notes: str


def _exchange(data: dict[str, Any]) -> Exchange:
    return Exchange(
        int(data["step"]),
        str(data["actor"]),
        str(data["kind"]),
        str(data["request"]),
        dict(data.get("reply") or {}),
        int(data.get("sent_ms", 0)),
        int(data.get("recv_ms", 0)),
        check=bool(data.get("check", False)),
    )


def _infer_checks(transcript: list[Exchange], program: Sequence[str]) -> list[Exchange]:
    """Transcripts saved before exchanges said which were checks: every SELECT of a step is
    kalamfuzz's read-back except a SELECT step's own query (its last SELECT), and every job
    poll is a check."""
    from kalamfuzz.campaign.report import _call, _verb, is_job_poll

    rules = [_call(line)[0] for line in program]
    out = list(transcript)
    for step in sorted({e.step for e in transcript if e.step > 0}):
        rule = rules[step - 1] if step <= len(rules) else ""
        picks = [
            i
            for i, e in enumerate(out)
            if e.step == step and e.kind == "sql" and _verb(e.request) == "SELECT"
        ]
        own: set[int] = set()
        if rule == "select" and picks:
            own = {next(i for i in reversed(picks) if not is_job_poll(out[i]))}
        elif rule in ("read_all", "join"):
            own = {i for i in picks if not is_job_poll(out[i])}
        for i in picks:
            if i not in own:
                out[i] = attrs.evolve(out[i], check=True)
    return out


def _world_setup(transcript: Sequence[Exchange]) -> tuple[Exchange, ...]:
    """The users and storages a regression saved without its setup ran with: the driver's
    default world (``kalamfuzz.machines.world``), passwords redacted like the driver's."""
    from kalamfuzz.campaign.report import Names
    from kalamfuzz.machines.world import STORAGES, USERS
    from kalamfuzz.model import CreateStorage, CreateUser

    tag = Names(e.request for e in transcript).tag
    if not tag:
        return ()
    sqls = [CreateUser("root", f"kf_{tag}_{n}", r, "***").to_sql() for n, r in USERS.items()]
    sqls += [
        CreateStorage("root", f"kf_{tag}_{n}", f"<data>/storage-{n}-{tag}").to_sql()
        for n in STORAGES
    ]
    return tuple(Exchange(0, "root", "sql", s, {"status": 200}, 0, 0) for s in sqls)


def _constants(tree: ast.Module) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in tree.body:
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id.isupper():
            with contextlib.suppress(ValueError):
                out[target.id] = ast.literal_eval(value)
    return out


def _program(tree: ast.Module, source: str) -> tuple[str, ...]:
    """The step lines of ``program(d)``: its top-level ``d.rule(...)`` calls (``begin`` and
    ``sweep`` are not steps; hand-written loops are not in the transcript either)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "program":
            lines = []
            for stmt in node.body:
                call = stmt.value if isinstance(stmt, ast.Expr) else None
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr not in ("begin", "sweep")
                ):
                    lines.append(ast.get_source_segment(source, stmt) or "")
            return tuple(lines)
    return ()


def load_saved(path: Path) -> Saved:
    """A regression file, its transcript and its notes read back (no server needed)."""
    from kalamfuzz.campaign.report import parse_violations
    from kalamfuzz.invariants.violation import masked

    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    fields = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(": ") for line in doc.splitlines())
        if k in ("Found by", "On", "Reproduced on rerun")
    )
    label = fields.get("Reproduced on rerun", "").split(". Transcript:", 1)[0].rstrip(".")
    consts = _constants(tree)
    lines = source.splitlines()
    message: list[str] = []
    if "# Violated:" in lines:
        for line in lines[lines.index("# Violated:") + 1 :]:
            if not line.startswith("#"):
                break
            message.append(line[4:] if line.startswith("#   ") else line[1:].strip())
    text = "\n".join(message)
    program = _program(tree, source)
    transcript_path = path.with_name(path.stem + TRANSCRIPT_SUFFIX)
    rows = [
        json.loads(line)
        for line in (
            transcript_path.read_text(encoding="utf-8").splitlines()
            if transcript_path.is_file()
            else []
        )
        if line.strip()
    ]
    setup = tuple(_exchange(r) for r in rows if r.get("setup"))
    transcript = [_exchange(r) for r in rows if not r.get("setup")]
    if transcript and not any("check" in r for r in rows):
        transcript = _infer_checks(transcript, program)
    violations, _ = parse_violations(text)
    failure = Failure(
        machine=str(consts.get("MACHINE", "")),
        kind="error" if ": error in machine" in (doc.splitlines() or [""])[0] else "violation",
        signature=" | ".join(sorted({f"{v.item}: {masked(v.summary)}" for v in violations})),
        message=text,
        items=tuple(dict.fromkeys(v.item for v in violations)),
        program=program,
        imports=(),
        tables=tuple(consts.get("TABLES", ())),
        transcript=tuple(transcript),
        seed=0,
        seconds_to_failure=0.0,
        bugs=tuple(consts.get("PLANTED_BUGS", ())),
        tolerated=tuple(consts.get("TOLERATED", ())),
        server=fields.get("On", ""),
        setup=setup or _world_setup(transcript),
        race=int(consts.get("REPEAT", 1)) > 1,
    )
    notes_path = path.with_name(path.stem + NOTES_SUFFIX)
    notes = notes_path.read_text(encoding="utf-8") if notes_path.is_file() else ""
    return Saved(failure, label, fields.get("Found by", ""), notes)


def rewrite_report(path: Path) -> Path:
    """Render the report of a saved regression again, offline, and write it beside it."""
    from kalamfuzz.campaign.report import render_report

    saved = load_saved(path)
    md = path.with_suffix(".md")
    md.write_text(
        render_report(saved.failure, saved.label, saved.command, saved.notes), encoding="utf-8"
    )
    return md


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
