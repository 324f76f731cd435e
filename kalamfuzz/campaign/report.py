"""Upstream-ready reports: a finding as a KalamDB engineer would want it in an issue.

Plain SQL and WebSocket JSON in the order they were sent, what the server answered, what was
expected and which promise it breaks; short, stable names instead of the run's generated ones,
and nothing of kalamfuzz's own API. ``kalamfuzz report ID`` prints the one saved beside a
regression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kalamfuzz.campaign.events import Failure
from kalamfuzz.machines.driver import Exchange

#: What each contract item promises, in words (DESIGN.md, "The promise being tested").
PROMISES = {
    "1 isolation": "A row written in one user's partition of a USER or STREAM table is never "
    "visible to another user, in SELECT, in a subscription snapshot or in a live change.",
    "2 correct before/during/after flush": "SELECT returns the same rows (and, with ORDER BY, "
    "the same order) whether they are in the hot tier, the cold tier or both, and while a "
    "flush runs; DML acts on exactly the rows its WHERE selects.",
    "3 cold artifacts": "After a flush job completes, each flushed scope has a manifest.json "
    "and non-empty batch-N.parquet files that hold exactly the flushed rows and agree with "
    "the manifest.",
    "4 subscriptions": "A subscription's snapshot equals the query's result, paged in "
    "batch_size batches; every later change that matches arrives exactly once and in commit "
    "order, nothing else arrives, and a client applying snapshot and changes holds the "
    "query's current result.",
    "5 RBAC": "Every forbidden action fails with a clear error (403 PERMISSION_DENIED or the "
    "documented code) and changes nothing; every allowed action succeeds.",
    "6 idempotency and safety": "No request duplicates a row; a duplicate primary key is "
    "rejected in the hot and the cold tier; a failed or retried flush leaves no empty file, "
    "corrupt manifest or duplicate, and loses no row.",
    "7 schema evolution": "ALTER TABLE ADD COLUMN keeps old rows readable with the new column "
    "NULL or its default, hot and cold; DROP COLUMN keeps the rest readable and statements "
    "naming the dropped column fail clearly.",
    "8 storage routing": "A flush writes under the base directory of the table's STORAGE_ID "
    "and its path template, and nowhere else.",
    "STREAM TTL": "A STREAM row older than its table's TTL_SECONDS is never returned.",
    "9 concurrency and transactions": "Calls sent at once by different clients are explained "
    "by some order of them that keeps real time: every reply, every later read and every "
    "subscriber agree with the statements run one by one in that order (an autocommit "
    "statement is atomic; two increments of one row add two). An explicit transaction "
    "(BEGIN ... COMMIT in one request) is all or nothing, reads its own writes, is never seen "
    "half done, and under the snapshot isolation KalamDB documents (specs/027-pg-transactions, "
    "research.md) a transaction whose rows another one changed after its snapshot does not "
    "commit over them: a committed write is never silently lost.",
}

_TAGGED = re.compile(r"kf_([0-9a-f]{6})_(\w+)")


class Names:
    """Short stable names for a run's generated ones: ``kf_3f9a1b_12`` (a namespace) becomes
    ``app``, ``kf_3f9a1b_12_chat`` (a scenario's) ``chat``, ``kf_3f9a1b_alice`` becomes
    ``alice``, storage directories ``/data/<name>``."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.tag = ""
        for text in texts:
            found = _TAGGED.search(text)
            if found:
                self.tag = found.group(1)
                break

    def __call__(self, text: str) -> str:
        if not self.tag or self.tag not in text:
            return text
        tag = self.tag
        # An absolute path, component by component: a pattern that could start anywhere in a
        # long token without spaces (a 1,000-row JSON page) backtracked for minutes.
        text = re.sub(rf"(?:/[^\s'\"/]+)*/storage-(\w+)-{tag}", r"/data/storage-\1", text)
        text = re.sub(rf"kf_{tag}_\d+_(\w+)", r"\1", text)  # a scenario's namespace: chat
        text = re.sub(rf"kf_{tag}_\d+\b", "app", text)
        return re.sub(rf"kf_{tag}_(\w+)", r"\1", text)


def _sql_block(lines: Sequence[str]) -> list[str]:
    return ["```sql", *lines, "```"] if lines else []


def _answer(reply: Mapping[str, Any]) -> str:
    """The server's answer to a SQL request, in one line."""
    status = reply.get("status")
    if reply.get("lost"):
        return "no answer (connection lost)"
    if reply.get("code"):
        return f"HTTP {status} `{reply['code']}`: {reply.get('message') or ''}".rstrip(": ")
    parts = [f"HTTP {status}"] if status is not None else []
    if "rows" in reply:
        rows = reply.get("rows") or []
        cols = reply.get("columns") or []
        parts.append(f"{len(rows)} row(s)")
        if rows:
            parts.append(_rows_text(cols, rows))
    elif reply.get("message"):
        parts.append(str(reply["message"]))
    return ", ".join(parts)


def _rows_text(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 12) -> str:
    shown = [
        "{" + ", ".join(f"{c}: {json.dumps(v)}" for c, v in zip(columns, r, strict=False)) + "}"
        for r in rows[:limit]
    ]
    more = f" ... {len(rows) - limit} more" if len(rows) > limit else ""
    return "[" + ", ".join(shown) + "]" + more


def _exchange_lines(e: Exchange, names: Names) -> list[str]:
    who = names(e.actor)
    if e.kind == "sql":
        return [f"- as `{who}`:", *_indent(_sql_block([names(e.request)])), _result(e, names)]
    if e.kind == "ws-send":
        return [f"- `{who}` sends over WebSocket: `{names(e.request)}`"]
    if e.kind == "ws-recv":
        payload = names(json.dumps(e.reply, separators=(",", ":"), default=str))
        return [f"- `{who}` receives: `{payload}`"]
    return [f"- **{names(e.request)}**"]


def _result(e: Exchange, names: Names) -> str:
    return f"  → {names(_answer(e.reply))}"


def _indent(lines: Sequence[str]) -> list[str]:
    return ["  " + line for line in lines]


def violation_lines(message: str, keep: int = 8) -> list[str]:
    """The first ``keep`` violations of a failure's message (each a ``[item]`` line and its
    indented detail), then how many more there are: a burst can lose hundreds of changes."""
    lines = message.strip().splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("[")]
    if len(heads) <= keep:
        return lines
    return [*lines[: heads[keep]], f"... and {len(heads) - keep} more violations like these"]


def _violations(message: str, names: Names) -> list[str]:
    """The violation text without the step line, as a quoted block."""
    lines = [line for line in violation_lines(message) if not line.startswith("after ")]
    return ["```", *(names(line) for line in lines), "```"]


def title(failure: Failure) -> str:
    first = next(
        (line for line in failure.message.splitlines() if line.startswith("[") and "]" in line),
        failure.signature,
    )
    item, _, rest = first.partition("] ")
    summary = rest.split(": ", 1)[-1] if ": " in rest else rest
    return f"{summary} ({item.lstrip('[')})"


def public_command(command: str) -> str:
    """The command that found a failure, without the finder's machine: the binary's path and
    any other absolute path (a regressions or history directory) are no use to a maintainer."""
    command = re.sub(r"binary:\S+", "binary:PATH/TO/kalamdb-server", command)
    return re.sub(r"(?:^|(?<=[\s=]))/\S+", "PATH", command)


def render_report(failure: Failure, label: str = "", command: str = "") -> str:
    """The markdown report of a saved failure."""
    texts = [e.request for e in (*failure.setup, *failure.transcript)]
    names = Names(texts)
    out = [f"# {names(title(failure))}", ""]
    server = failure.server or "an unknown server"
    out.append(f"Found by kalamfuzz (model-based fuzzing) against **{server}**.")
    if label:
        out.append(f"Reproducibility: {label}.")
    out.append("")
    out += ["## What goes wrong", ""]
    out += _violations(failure.message, names)
    out.append("")
    out += ["## What was expected, and why", ""]
    for item in failure.items:
        out.append(f"- **{item}**: {PROMISES.get(item, '')}")
    out.append("")
    out += ["## Steps to reproduce", ""]
    setup = [names(e.request) + ";" for e in failure.setup]
    world = [
        e
        for e in failure.transcript
        if e.step == 0 and e.kind == "sql" and not e.request.lstrip().upper().startswith("SELECT")
    ]
    out.append("On a fresh server, as `root` (any admin):")
    out.append("")
    out += _sql_block([*setup, *(names(e.request) + ";" for e in world)])
    out.append("")
    out.append("Users log in with `POST /v1/api/auth/login`; WebSocket clients connect to `/v1/ws`")
    out.append("with `Authorization: Bearer <their token>`. Then, in this order:")
    out.append("")
    steps = [e for e in failure.transcript if not (e.step == 0 and e in world)]
    # In the order things happened: WebSocket messages are copied to the transcript when a
    # check reads them, after the statements that caused them.
    last_recv: int | None = None
    for e in sorted(steps, key=lambda e: e.sent_ms):
        lines = _exchange_lines(e, names)
        if e.kind == "sql" and last_recv is not None and e.sent_ms < last_recv:
            # calls sent at once: the order of the list is only the order they were sent in
            lines[0] = lines[0].replace(
                "- as", "- at the same time, from its own connection, as", 1
            )
        if e.kind == "sql":
            last_recv = max(last_recv or 0, e.recv_ms)
        out += lines
    out.append("")
    out.append("The last step is where the answer departs from the expected one.")
    if command:
        out += ["", "---", f"Found by: `{public_command(names(command))}`"]
    return "\n".join(out) + "\n"
