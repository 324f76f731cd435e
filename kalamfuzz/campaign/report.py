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
title, a contrast found by hand) is merged in: see :func:`merge_notes`. ``kalamfuzz report ID``
prints the saved report; ``kalamfuzz report --write`` renders it again from the regression and its
transcript.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import define, field

from kalamfuzz.campaign.events import Failure
from kalamfuzz.campaign.sources import Source, build_commit, sources_for
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
#: Where the report puts the server's data directory (``data_path`` under ``[storage]``).
DATA = "/data"
#: A path outside the data directory (a binary, a virtualenv, a home): no use to a maintainer.
_ANY_PATH = re.compile(r"(?<![\w.:/<>\\])(?:/[^\s'\"\\/:,;()\[\]{}]+){2,}/?")


def scrub_paths(text: str) -> str:
    """``text`` without a path of the machine that found it: the server's data directory becomes
    ``/data`` (``<data>``, as saved transcripts already write it, too), any other absolute path
    of two components or more ``PATH``. URL paths (``/v1/api/sql``) have no data directory in
    them and a scheme or host before them, and are left alone."""
    if "/" not in text and "<data>" not in text:
        return text
    text = text.replace("<data>/", f"{DATA}/")
    # Component by component (each without a slash): no backtracking through long tokens.
    text = re.sub(r"(?<![\w.:/])(?:/[^\s'\"\\/]+)*?/data/(?=tmp\b)", f"{DATA}/", text)
    # a storage directory (``<data>/storage``, ``<data>/storage-second``) wherever the data is
    text = re.sub(
        r"(?<![\w.:/])(?:/[^\s'\"\\/]+)*?/(?=storage(?:-[\w-]+)?(?:[/'\"\s\\]|$))",
        f"{DATA}/",
        text,
    )

    def other(m: re.Match[str]) -> str:
        path = m.group(0)
        if path.startswith((f"{DATA}/", "/v1/", "/health")):
            return path
        return "PATH"

    return _ANY_PATH.sub(other, text)


class Names:
    """Short stable names for a run's generated ones: ``kf_3f9a1b_12`` (a namespace) becomes
    ``app``, ``kf_3f9a1b_12_chat`` (a scenario's) ``chat``, ``kf_3f9a1b_alice`` becomes
    ``alice``, storage directories ``/data/<name>``; no path of the finder's machine."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.tag = ""
        for text in texts:
            found = _TAGGED.search(text)
            if found:
                self.tag = found.group(1)
                break

    def __call__(self, text: str) -> str:
        tag = self.tag
        if tag and tag in text:
            text = text.replace("<data>/", f"{DATA}/")
            # An absolute path, component by component: a pattern that could start anywhere in
            # a long token without spaces (a 1,000-row JSON page) backtracked for minutes.
            text = re.sub(rf"(?:/[^\s'\"/]+)*/storage-(\w+)-{tag}", rf"{DATA}/storage-\1", text)
            text = re.sub(rf"kf_{tag}_\d+_(\w+)", r"\1", text)  # a scenario's namespace: chat
            text = re.sub(rf"kf_{tag}_\d+\b", "app", text)
            text = re.sub(rf"kf_{tag}_(\w+)", r"\1", text)
        return scrub_paths(text)


def public_command(command: str) -> str:
    """The command that found a failure, without the finder's machine: the binary's path and
    any other absolute path (a regressions or history directory) are no use to a maintainer."""
    command = re.sub(r"binary:\S+", "binary:PATH/TO/kalamdb-server", command)
    return re.sub(r"(?:^|(?<=[\s=]))/\S+", "PATH", command)


def violation_lines(message: str, keep: int = 8) -> list[str]:
    """The first ``keep`` violations of a failure's message (each a ``[item]`` line and its
    indented detail), then how many more there are: a burst can lose hundreds of changes."""
    lines = message.strip().splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("[")]
    if len(heads) <= keep:
        return lines
    return [*lines[: heads[keep]], f"... and {len(heads) - keep} more violations like these"]


# --- reading a transcript ---------------------------------------------------------------------

_JOB_POLL = re.compile(r"SELECT job_id, status, message FROM system\.jobs WHERE job_id = '([^']+)'")
_EXEC_AS = re.compile(r"EXECUTE AS USER '([^']+)'")
_TABLE_REF = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")
_VIOLATION = re.compile(r"^\[([^\]]+)\] (.*?): (.*)$")
_MORE = re.compile(r"^\.\.\. and (\d+) more violations")


def is_job_poll(e: Exchange) -> bool:
    return e.kind == "sql" and _JOB_POLL.match(e.request) is not None


def _checking(e: Exchange) -> bool:
    """A read kalamfuzz sent to check what the steps did (read-backs, re-learning reads): not
    one of the steps. Job polls are checks too, but they show how a job ended: kept apart."""
    return e.kind == "sql" and e.check and not is_job_poll(e)


def _verb(sql: str) -> str:
    """The statement's kind: ``INSERT``, ``SELECT``, ``a transaction``; the wrapped one for
    ``EXECUTE AS USER``."""
    inner = re.sub(r"^EXECUTE AS USER '[^']+' \(", "", sql.strip())
    word = inner.split(None, 1)[0].upper() if inner.strip() else ""
    if word in ("BEGIN", "START"):
        return "a transaction"
    if word == "STORAGE":
        return "STORAGE FLUSH"
    return word


@define
class _Table:
    id: str  # renamed: app.notes
    create: str  # renamed CREATE TABLE statement
    type: str  # USER | SHARED | STREAM
    storage: str
    access: str


@define
class _Violation:
    item: str
    subject: str
    summary: str
    detail: list[str] = field(factory=list)

    def line(self, name: str) -> str:
        for d in self.detail:
            if d.strip().startswith(f"{name}:"):
                return d.strip()[len(name) + 1 :].strip()
        return ""


def parse_violations(message: str) -> tuple[list[_Violation], int]:
    """The violations of a failure's message, and how many more its text left out."""
    out: list[_Violation] = []
    more = 0
    for line in message.splitlines():
        head = _VIOLATION.match(line)
        if head:
            out.append(_Violation(head.group(1), head.group(2), head.group(3)))
        elif (m := _MORE.match(line)) is not None:
            more = int(m.group(1))
        elif out and line.startswith(" "):
            out[-1].detail.append(line)
    return out, more


def _where_of(message: str) -> str:
    """What the failing check was about: the ``after ...:`` line of the message."""
    for line in message.splitlines():
        if line.startswith("after "):
            return line[len("after ") :].rstrip().removesuffix(":")
    return ""


def _call(line: str) -> tuple[str, list[Any]]:
    """``d.break_storage('spare')`` -> ``("break_storage", ["spare"])`` (literal args only)."""
    try:
        node = ast.parse(line.strip(), mode="eval").body
    except SyntaxError:
        return "", []
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return "", []
    args: list[Any] = []
    for a in node.args:
        try:
            args.append(ast.literal_eval(a))
        except ValueError:
            args.append(None)
    return node.func.attr, args


#: Summaries of something that never came: the departure is the silence at the end.
_ABSENT = r"never arrived|^no (?:delete|change|update|insert)\b"

#: Steps that send nothing over HTTP or WebSocket: they appear from the program, in shell terms.
_SILENT_STEPS = ("break_storage", "repair_storage", "pause")


@define
class Story:
    """What a report tells of a failure: the exchanges it shows, the departure, the setup."""

    failure: Failure
    names: Names
    tx: list[Exchange]
    where: str = ""
    world: list[int] = field(factory=list)
    #: The exchanges that show the departure.
    departure: list[int] = field(factory=list)
    #: The last checking read before the departure, of its table and scope.
    before: int | None = None
    shown: list[int] = field(factory=list)
    #: The departure is something that never came (a change, a delete): it shows at the end.
    absent: bool = False
    #: The exchanges marked as the departure in the steps.
    marks: list[int] = field(factory=list)
    tables: dict[str, _Table] = field(factory=dict)
    #: Steps of the program that sent nothing: (step number, rule, literal args).
    silent: list[tuple[int, str, list[Any]]] = field(factory=list)
    used_tables: list[str] = field(factory=list)
    users: list[str] = field(factory=list)
    storages: list[str] = field(factory=list)
    namespace: str = "app"

    @classmethod
    def of(cls, failure: Failure) -> Story:
        texts = [e.request for e in (*failure.setup, *failure.transcript)]
        story = cls(failure, Names(texts), list(failure.transcript))
        story._read()
        return story

    def n(self, e: Exchange) -> str:
        return self.names(e.request)

    def _read(self) -> None:
        tx = self.tx
        self.where = self.names(_where_of(self.failure.message))
        self.world = [
            i
            for i, e in enumerate(tx)
            if e.step == 0 and e.kind == "sql" and _verb(e.request) != "SELECT"
        ]
        for i in self.world:
            sql = self.n(tx[i])
            m = re.match(r"CREATE TABLE (\S+) ", sql)
            if m:
                opts = dict(re.findall(r"(\w+) = '([^']*)'", sql))
                self.tables[m.group(1)] = _Table(
                    m.group(1),
                    sql,
                    opts.get("TYPE", "USER"),
                    opts.get("STORAGE_ID", "local"),
                    opts.get("ACCESS_LEVEL", ""),
                )
            m = re.match(r"CREATE NAMESPACE (\S+)", sql)
            if m and self.namespace == "app":
                self.namespace = m.group(1)
        violations, _ = parse_violations(self.failure.message)
        self.absent = bool(violations) and all(
            re.search(_ABSENT, v.summary) is not None for v in violations
        )
        self.departure = self._departure()
        self.before = self._before()
        self.marks = self._marks()
        keep = set(self.departure) | ({self.before} if self.before is not None else set())
        self.shown = [
            i for i, e in enumerate(tx) if i not in self.world and (not _checking(e) or i in keep)
        ]
        # A silent step's own exchanges are kalamfuzz's checks (the read-back of earlier
        # writes it starts with, the polls after a pause): what it did shows from the program.
        acting = {e.step for e in tx if not (e.check or is_job_poll(e))}
        for s, line in enumerate(self.failure.program, start=1):
            rule, args = _call(line)
            if rule in _SILENT_STEPS and s not in acting:
                self.silent.append((s, rule, args))
        self._used()

    def _departure(self) -> list[int]:
        tx, where = self.tx, self.where
        if not tx:
            return []
        if where.startswith(("subscription ", "subscribe ")):
            sub = where.split()[1].rstrip(":")
            found = [i for i, e in enumerate(tx) if e.kind == "ws-recv" and e.request == sub]
            if found:
                return found
        if where.startswith("job "):
            job = where.split()[1]
            return [i for i, e in enumerate(tx) if is_job_poll(e) and f"'{job}'" in e.request][-1:]
        if where.startswith("calls sent at once"):
            last = tx[-1].step
            return [i for i, e in enumerate(tx) if e.step == last and e.kind == "sql"]
        if where:
            same = [
                i for i, e in enumerate(tx) if e.kind in ("sql", "ws-send") and self.n(e) == where
            ]
            if same:
                return same[-1:]
        return [len(tx) - 1]

    def _marks(self) -> list[int]:
        """The departing exchanges: for calls sent at once, those whose lane the violation
        marks ``*`` (lane k is the k-th call of the round); else the last one shown."""
        if self.absent or not self.departure:
            return []
        if self.where.startswith("calls sent at once"):
            lanes = re.findall(r"^\s*\*\s*#(\d+) ", self.failure.message, re.MULTILINE)
            starred = [self.departure[int(k) - 1] for k in lanes if int(k) <= len(self.departure)]
            if starred:
                return starred
        return self.departure[-1:]

    def _dep_table(self) -> _Table | None:
        texts = [self.where, *(self.n(self.tx[i]) for i in self.departure)]
        for text in texts:
            for ns, name in _TABLE_REF.findall(text):
                table = self.tables.get(f"{ns}.{name}")
                if table is not None:
                    return table
        return None

    def owner(self) -> str:
        """Whose partition the departure is about (the actor, or the EXECUTE AS target)."""
        if not self.departure:
            return ""
        e = self.tx[self.departure[-1]]
        wrapped = _EXEC_AS.search(self.where) or _EXEC_AS.search(self.n(e))
        return wrapped.group(1) if wrapped else self.names(e.actor)

    def _before(self) -> int | None:
        """The last checking read of the departure's table before it (its scope's, for a
        per-user table): the state the departure starts from."""
        table = self._dep_table()
        if table is None or not self.departure:
            return None
        first = min(self.departure)
        by_time = self.absent or self.tx[first].kind == "ws-recv"
        limit = max(
            e.sent_ms for e in (self.tx if self.absent else [self.tx[i] for i in self.departure])
        )
        owner = self.owner()
        best: int | None = None
        for i, e in enumerate(self.tx):
            if i in self.departure or not _checking(e) or _verb(e.request) != "SELECT":
                continue
            if (e.sent_ms > limit) if by_time else (i >= first):
                continue
            if table.id not in {".".join(r) for r in _TABLE_REF.findall(self.n(e))}:
                continue
            if table.type != "SHARED" and owner and self.names(e.actor) != owner:
                continue
            if best is None or (e.sent_ms, i) >= (self.tx[best].sent_ms, best):
                best = i
        return best

    def _used(self) -> None:
        texts = [self.n(self.tx[i]) for i in self.shown]
        texts.append(self.where)
        refs = {".".join(r) for t in texts for r in _TABLE_REF.findall(t)}
        self.used_tables = [t for t in self.tables if t in refs]
        users: list[str] = []
        for i in self.shown:
            e = self.tx[i]
            for who in (self.names(e.actor), *_EXEC_AS.findall(self.n(e))):
                if who != "root" and who not in users:
                    users.append(who)
        self.users = users
        storages = [self.tables[t].storage for t in self.used_tables]
        storages += [str(args[0]) for _, rule, args in self.silent if rule.endswith("_storage")]
        words = {w for t in texts for w in re.findall(r"\w+", t)}
        for e in self.failure.setup:
            m = re.match(r"CREATE STORAGE (\S+)", self.n(e))
            if m and m.group(1) in words:
                storages.append(m.group(1))
        self.storages = [s for s in dict.fromkeys(storages) if s != "local"]

    # --- derived facts ---------------------------------------------------------------------

    def before_departure(self) -> list[Exchange]:
        first = min(self.departure) if self.departure else len(self.tx)
        return [e for i, e in enumerate(self.tx) if i < first and i not in self.world]

    def table(self) -> _Table | None:
        return self._dep_table()

    def role(self, user: str) -> str:
        for e in self.failure.setup:
            m = re.match(r"CREATE USER (\S+) .*ROLE (\w+)", self.n(e))
            if m and m.group(1) == user:
                return m.group(2)
        return ""


# --- rendering ------------------------------------------------------------------------------


def _json_rows(rows: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(json.dumps(r, default=str, ensure_ascii=False) for r in rows[:limit])
    more = f", … {len(rows) - limit} more" if len(rows) > limit else ""
    return shown + more


def _answer(reply: Mapping[str, Any]) -> str:
    """The server's answer to a SQL request, in one line."""
    status = reply.get("status")
    if reply.get("lost"):
        return "no answer (connection lost)"
    if reply.get("code"):
        return f"HTTP {status} `{reply['code']}`: {reply.get('message') or ''}".rstrip(": ")
    parts = [f"HTTP {status}"] if status is not None else []
    if "counts" in reply:
        ins, upd, dele = ([*list(reply.get("counts") or []), 0, 0, 0])[:3]
        parts.append(f"Inserted {ins}, Updated {upd}, Deleted {dele} row(s)")
        for k, rows in enumerate(reply.get("selects") or [], start=1):
            parts.append(
                f"SELECT {k}: {len(rows)} row(s)" + (f" {_json_rows(rows)}" if rows else "")
            )
    elif "rows" in reply:
        rows = reply.get("rows") or []
        cols = reply.get("columns") or []
        text = f"{len(rows)} row(s)"
        if rows:
            text += f" ({', '.join(cols)}): {_json_rows(rows)}"
        parts.append(text)
    elif reply.get("message"):
        parts.append(str(reply["message"]))
    return ", ".join(parts)


def _job_end(reply: Mapping[str, Any]) -> str:
    rows = reply.get("rows") or []
    if not rows:
        return "no such job"
    _, status, message = ([*list(rows[0]), "", "", ""])[:3]
    text = str(message or "")
    try:
        inner = json.loads(text)
        if isinstance(inner, dict) and "message" in inner:
            text = str(inner["message"])
    except ValueError:
        pass
    return f"`{status}`" + (f": {text}" if text else "")


def _ws_text(reply: Mapping[str, Any]) -> str:
    shown = dict(reply)
    if "schema" in shown:
        shown["schema"] = "…"
    return json.dumps(shown, separators=(",", ":"), default=str, ensure_ascii=False)


def _storage_dir(storage: str) -> str:
    return f"{DATA}/storage" if storage == "local" else f"{DATA}/storage-{storage}"


_RESTART = "start the server again on the same data directory and wait for `GET /health`"


def _fault_text(what: str, flushed: bool = True) -> str:
    """A fault of the transcript in shell terms (``flushed``: a flush job may be running)."""
    if what.startswith("network: "):
        kind = what.split(": ", 1)[1]
        how = {
            "reset_request": "passes half of the request to the server, then resets both "
            "connections (the statement never runs; the client sees `connection reset`)",
            "reset_response": "passes the whole request to the server, drops the reply and "
            "resets the client's connection (the statement runs; the client sees "
            "`connection reset`)",
            "stall": "holds the reply back for 100 ms",
        }.get(kind, kind)
        return f"The next statement goes through a TCP proxy that {how}:"
    kill = "`kill -KILL <server pid>`" if what.startswith("SIGKILL") else None
    if what.startswith("SIGINT"):
        return (
            "Stop the server gracefully: `kill -INT <server pid>` (it waits for running jobs); "
            f"once it has exited, {_RESTART}."
        )
    if kill is None:
        return f"{what}."
    m = re.match(r"SIGKILL (\d+) ms into a burst of (\d+) inserts", what)
    if m:
        return (
            f"{m.group(1)} ms after the first of these {m.group(2)} single-row INSERTs was "
            f"sent (one after another, from a client of their own), kill the server: {kill}; "
            f"{_RESTART}."
        )
    m = re.match(r"SIGKILL (\d+) ms into a flush", what)
    if m:
        return (
            f"{m.group(1)} ms after the STORAGE FLUSH reply, kill the server: {kill}; {_RESTART}."
        )
    if what.startswith("SIGKILL once the flush job ran"):
        return (
            "As soon as `system.jobs` shows that job neither `new` nor `queued`, kill the "
            f"server: {kill}; {_RESTART}."
        )
    wait = "Once every flush job has ended, kill" if flushed else "Kill"
    return f"{wait} the server: {kill}; {_RESTART}."


def _silent_text(rule: str, args: Sequence[Any], namespace: str) -> str:
    if rule == "pause":
        return f"Wait {args[0] if args else '?'} s."
    storage = str(args[0]) if args else "local"
    where = f"{_storage_dir(storage)}/{namespace}"
    if rule == "break_storage":
        return (
            f"Make the `{storage}` storage unwritable for namespace `{namespace}`: replace its "
            "directory by a regular file, so that writing below it fails with ENOTDIR even as "
            f"root: `mv {where} {where}.aside 2>/dev/null; echo blocked > {where}`"
        )
    return f"Repair the `{storage}` storage: `rm {where}; mv {where}.aside {where} 2>/dev/null`"


def _keys(rows: Iterable[Any]) -> list[Any]:
    out = []
    for r in rows:
        if isinstance(r, Mapping) and "id" in r:
            out.append(r["id"])
    return out


def ranges(keys: Iterable[Any]) -> str:
    """``1-128, 130, 132-140``: integer keys as runs (others as they are)."""
    ints = sorted({k for k in keys if isinstance(k, int) and not isinstance(k, bool)})
    others = [str(k) for k in keys if not (isinstance(k, int) and not isinstance(k, bool))]
    runs: list[str] = []
    start = prev = None
    for k in ints:
        if prev is not None and k == prev + 1:
            prev = k
            continue
        if start is not None:
            runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = k
    if start is not None:
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(runs + others)


def _changes_line(story: Story, group: Sequence[Exchange]) -> str:
    """A run of change messages of one subscription, counted from the transcript."""
    first = group[0]
    kind = first.reply.get("change_type", "")
    keys = [k for e in group for k in _keys(e.reply.get("rows") or e.reply.get("old_values") or [])]
    return (
        f"`{story.names(first.actor)}` receives {len(group)} `{kind}` change messages for "
        f"`{first.request}` (keys {ranges(keys)}), the first: `{story.names(_ws_text(first.reply))}`"
    )


def _tuples(values: str) -> list[list[str]] | None:
    """``(1, 'a'), (2, NULL)`` -> ``[["1", "'a'"], ["2", "NULL"]]``; None if it is not that."""
    out: list[list[str]] = []
    field_, row = "", []
    depth, quoted = 0, False
    for ch in values:
        if quoted:
            field_ += ch
            quoted = ch != "'"
        elif ch == "'":
            field_ += ch
            quoted = True
        elif ch == "(":
            depth += 1
            if depth > 1:
                field_ += ch
        elif ch == ")":
            depth -= 1
            if depth == 0:
                row.append(field_.strip())
                out.append(row)
                field_, row = "", []
            else:
                field_ += ch
        elif ch == "," and depth == 1:
            row.append(field_.strip())
            field_ = ""
        elif depth >= 1:
            field_ += ch
        elif ch not in " ,":
            return None
    return out if depth == 0 and not quoted else None


_INSERT = re.compile(r"^(INSERT INTO \S+ \([^)]*\) VALUES )(.*)$")


def compact_insert(sql: str, over: int = 20) -> tuple[str, str] | None:
    """A many-row INSERT whose rows follow one pattern in their first column's number ``i``
    (``(i, i, 'row i', NULL)``), shortened to its first two and last rows, and the pattern in
    words; None for any other statement."""
    wrapped = re.match(r"^(EXECUTE AS USER '[^']+' \()(.*)\)$", sql)
    prefix, inner, suffix = (wrapped.group(1), wrapped.group(2), ")") if wrapped else ("", sql, "")
    m = _INSERT.match(inner)
    rows = _tuples(m.group(2)) if m else None
    if m is None or rows is None or len(rows) <= over or len({len(r) for r in rows}) != 1:
        return None
    try:
        keys = [int(r[0]) for r in rows]
    except ValueError:
        return None
    if keys != list(range(keys[0], keys[0] + len(keys))):
        return None
    shape: list[str] = []
    for c in range(len(rows[0])):
        column = [r[c] for r in rows]
        if len(set(column)) == 1:
            shape.append(column[0])
            continue
        template = rows[0][c].replace(str(keys[0]), "{i}")
        if "{i}" not in template or any(
            template.replace("{i}", str(k)) != v for k, v in zip(keys, column, strict=True)
        ):
            return None
        shape.append(template)
    short = ", ".join(f"({', '.join(r)})" for r in rows[:2])
    short += f", …, ({', '.join(rows[-1])})"
    words = (
        f"its {len(rows)} rows are `({', '.join(shape).replace('{i}', 'i')})` for i = "
        f"{keys[0]} to {keys[-1]}"
    )
    return f"{prefix}{m.group(1)}{short}{suffix}", words


def _exchange_text(story: Story, e: Exchange) -> tuple[str, str]:
    """The step's text and, for a long statement, its SQL as a block."""
    who = story.names(e.actor)
    if e.kind == "sql":
        sql = story.n(e)
        if is_job_poll(e):
            return (
                f"`{who}` polls `{sql}` until the job has ended: {story.names(_job_end(e.reply))}",
                "",
            )
        answer = story.names(_answer(e.reply))
        compact = compact_insert(sql)
        if compact is not None:
            return (f"`{who}` ({compact[1]}):", f"{compact[0]}\n→ {answer}")
        if len(sql) > 110:
            return (f"`{who}`:", f"{sql}\n→ {answer}")
        return (f"`{who}`: `{sql}` → {answer}", "")
    if e.kind == "ws-send":
        return (f"`{who}` sends over WebSocket: `{story.n(e)}`", "")
    if e.kind == "ws-recv":
        return (f"`{who}` receives: `{story.names(_ws_text(e.reply))}`", "")
    idx = story.tx.index(e)
    flushed = any(_verb(x.request) == "STORAGE FLUSH" for x in story.tx[:idx] if x.kind == "sql")
    return (story.names(_fault_text(e.request, flushed)), "")


def _at_once(story: Story) -> list[set[int]]:
    """Groups of shown statements sent at once (their request windows overlap)."""
    calls = [i for i in story.shown if story.tx[i].kind == "sql" and not is_job_poll(story.tx[i])]
    groups: list[set[int]] = []
    for i in calls:
        a = story.tx[i]
        near = [
            g
            for g in groups
            if any(a.sent_ms < story.tx[j].recv_ms and story.tx[j].sent_ms < a.recv_ms for j in g)
        ]
        merged = {i}.union(*near)
        groups = [g for g in groups if g not in near] + [merged]
    return [g for g in groups if len(g) > 1]


def _steps(story: Story) -> list[str]:
    tx = story.tx
    items: list[tuple[tuple[float, float], int | None, str]] = []
    for i in story.shown:
        items.append(((tx[i].sent_ms, float(i)), i, ""))
    for s, rule, args in story.silent:
        # break and repair read back earlier writes first; a pause checks after it has waited
        earlier = [i for i, e in enumerate(tx) if e.step < s or (e.step == s and rule != "pause")]
        key = (
            max((tx[i].sent_ms for i in earlier), default=0),
            (earlier[-1] if earlier else -1) + 0.5,
        )
        items.append((key, None, _silent_text(rule, args, story.namespace)))
    items.sort(key=lambda it: it[0])
    # one entry per list item: a run of change messages of one subscription is one, counted
    entries: list[tuple[list[int], str]] = []
    k = 0
    while k < len(items):
        _, at, text = items[k]
        if at is None:
            entries.append(([], text))
            k += 1
            continue
        i = at
        run = [i]
        e = tx[i]
        while (
            e.kind == "ws-recv"
            and e.reply.get("type") == "change"
            and k + len(run) < len(items)
            and (nxt := items[k + len(run)][1]) is not None
            and tx[nxt].kind == "ws-recv"
            and tx[nxt].request == e.request
            and tx[nxt].reply.get("type") == "change"
            and tx[nxt].reply.get("change_type") == e.reply.get("change_type")
        ):
            run.append(nxt)
        if len(run) > 3:
            entries.append((run, _changes_line(story, [tx[j] for j in run])))
            k += len(run)
        else:
            entries.append(([i], ""))
            k += 1
    # a flush and the poll that saw its job end, one after the other: one step
    merged: list[tuple[list[int], str]] = []
    for idx, text in entries:
        if (
            merged
            and len(idx) == 1
            and not text
            and is_job_poll(tx[idx[0]])
            and len(merged[-1][0]) == 1
            and not merged[-1][1]
            and (job := tx[merged[-1][0][0]].reply.get("job_id"))
            and f"'{job}'" in tx[idx[0]].request
        ):
            merged[-1] = ([*merged[-1][0], idx[0]], "")
        else:
            merged.append((idx, text))
    entries = merged
    number = {i: n for n, (idx, _) in enumerate(entries, start=1) for i in idx}
    together = {i: g for g in _at_once(story) for i in g}
    marked = set(story.marks)
    out: list[str] = []
    for n, (idx, text) in enumerate(entries, start=1):
        if not idx or text:
            out.append(f"{n}. {text}")
            continue
        i = idx[0]
        head, block = _exchange_text(story, tx[i])
        if len(idx) == 2:  # the flush and its job's end
            end = story.names(_job_end(tx[idx[1]].reply))
            job = f"; polled in `system.jobs` by its job_id, the job ends {end}"
            head, block = (head, f"{block}{job}") if block else (f"{head}{job}", "")
        if i in together:
            others = ", ".join(
                str(number[j]) for j in sorted(together[i], key=number.__getitem__) if j != i
            )
            head = f"sent at once with {others}, from its own connection, " + head
        mark = ""
        if i in marked:
            mark = "  ← **departs from what KalamDB promises**"
        elif i == story.before:
            mark = "  (the state before)"
        if block:
            sql, _, answer = block.partition("\n")
            out += [f"{n}. {head}", "   ```sql", f"   {sql}", "   ```", f"   {answer}{mark}"]
        else:
            out.append(f"{n}. {head}{mark}")
    if story.absent and story.departure:
        last = tx[story.departure[-1]]
        out.append(
            f"{len(entries) + 1}. `{story.names(last.actor)}` keeps listening on "
            f"`{last.request}`: no further message arrives"
            "  ← **departs from what KalamDB promises**"
        )
    job = re.match(r"job (\S+)", story.where)
    if job and not story.departure:
        violations, _ = parse_violations(story.failure.message)
        seen = next((v.line("observed") for v in violations if v.line("observed")), "")
        out.append(
            f"{len(entries) + 1}. `root` polls `SELECT job_id, status, message FROM system.jobs "
            f"WHERE job_id = '{job.group(1)}'`: {seen or 'it never ends'}"
            "  ← **departs from what KalamDB promises**"
        )
    return out


def placeholder(user: str) -> str:
    """The password a report gives a user: the real one was random and is redacted; this one
    is no secret, and a maintainer can paste it (8+ characters, mixed, not a common one)."""
    return f"{user}-Passw0rd!"


def _setup(story: Story) -> list[str]:
    lines: list[str] = []
    for e in story.failure.setup:
        sql = story.n(e)
        m = re.match(r"CREATE USER (\S+) ", sql)
        if m and m.group(1) in story.users:
            lines.append(
                sql.replace("PASSWORD '***'", f"PASSWORD '{placeholder(m.group(1))}'") + ";"
            )
        m = re.match(r"CREATE STORAGE (\S+) ", sql)
        if m and m.group(1) in story.storages:
            lines.append(sql + ";")
    namespaces = {t.split(".", 1)[0] for t in story.used_tables}
    texts = " ".join(story.n(story.tx[i]) for i in story.shown)
    for i in story.world:
        sql = story.n(story.tx[i])
        m = re.match(r"CREATE NAMESPACE (\S+)", sql)
        if m:
            if m.group(1) in namespaces or re.search(rf"\b{re.escape(m.group(1))}\.", texts):
                lines.append(sql + ";")
            continue
        refs = {".".join(r) for r in _TABLE_REF.findall(sql)}
        if refs & set(story.used_tables):
            lines.append(sql + ";")
    return lines


def _numbers(story: Story, violations: Sequence[_Violation], more: int) -> list[str]:
    """What the transcript counts, for the violations whose size matters (lost changes)."""
    out: list[str] = []
    lost = [v for v in violations if "never arrived" in v.summary]
    if not lost:
        return out
    sub = lost[0].subject.removeprefix("subscription ").strip()
    got = [
        e
        for e in story.tx
        if e.kind == "ws-recv" and e.request == sub and e.reply.get("type") == "change"
    ]
    keys = [k for e in got for k in _keys(e.reply.get("rows") or e.reply.get("old_values") or [])]
    n_lost = len(lost) + more
    written = _written_keys(story, sub)
    missing = [k for k in written if k not in set(keys)]
    if written and len(missing) == n_lost:
        out.append(
            f"The INSERTs after subscribing wrote {len(written)} rows into the subscribed "
            f"partition; the subscriber received {len(got)} change messages (keys "
            f"{ranges(keys) or 'none'}); {n_lost} never arrived (keys {ranges(missing)})."
        )
        return out
    out.append(
        f"The subscriber received {len(got)} change messages for `{sub}` (keys "
        f"{ranges(keys) or 'none'}); {n_lost} change(s) never arrived"
        + (f" (keys {ranges(_lost_keys(lost))}{', …' if more else ''})." if lost else ".")
    )
    return out


def _written_keys(story: Story, sub: str) -> list[Any]:
    """The keys plain INSERTs wrote into the partition a subscription without WHERE watches,
    after it subscribed (empty when that cannot be told from the transcript)."""
    sent, sql, _ = _subscribe(story, sub)
    m = re.match(r"SELECT .* FROM (\S+)$", sql)
    if m is None or sent is None or " WHERE " in sql:
        return []
    table = story.tables.get(m.group(1))
    subscriber = story.names(sent.actor)
    out: list[Any] = []
    for e in story.tx:
        if e.kind != "sql" or e.sent_ms < sent.sent_ms or e.reply.get("code"):
            continue
        text = story.n(e)
        wrapped = _EXEC_AS.search(text)
        owner = wrapped.group(1) if wrapped else story.names(e.actor)
        inner = re.sub(r"^EXECUTE AS USER '[^']+' \((.*)\)$", r"\1", text)
        ins = re.match(rf"INSERT INTO {re.escape(m.group(1))} \(([^)]*)\) VALUES (.*)$", inner)
        if ins is None:
            continue
        if table is not None and table.type != "SHARED" and owner != subscriber:
            continue
        columns = [c.strip() for c in ins.group(1).split(",")]
        rows = _tuples(ins.group(2))
        if "id" not in columns or rows is None:
            return []
        at = columns.index("id")
        for r in rows:
            try:
                out.append(int(r[at]))
            except ValueError:
                return []
    return out


def _lost_keys(lost: Sequence[_Violation]) -> list[Any]:
    out: list[Any] = []
    for v in lost:
        m = re.search(r"for key (\S+) never arrived", v.summary)
        if m:
            try:
                out.append(int(m.group(1)))
            except ValueError:
                out.append(m.group(1))
    return out


#: kalamfuzz's words in violation texts, and what a KalamDB reader calls the same thing.
_PLAIN = (
    ("the model's query result", "the query's result"),
    ("than the model", "than expected"),
    ("the model expected", "expected"),
    ("1 calls sent at once", "1 call sent at once"),
)


def _violation_block(story: Story, message: str) -> list[str]:
    """The violations as a quoted block, without kalamfuzz's contract item (the expectation
    names it); a run of violations alike (a burst's lost changes) shows its first and a count."""
    from kalamfuzz.invariants.violation import masked

    violations, more = parse_violations(message)
    lines: list[str] = []
    k = 0
    while k < len(violations):
        v = violations[k]
        alike = 1
        while k + alike < len(violations) and masked(violations[k + alike].summary) == masked(
            v.summary
        ):
            alike += 1
        lines.append(f"{v.subject}: {v.summary}")
        lines += v.detail
        if k + alike == len(violations) and more:
            alike, more = alike + more, 0  # the message's own "... and N more like these"
        if alike > 1:
            lines.append(f"... and {alike - 1} more like it")
        k += alike
    if more:
        lines.append(f"... and {more} more violations")
    if not violations:
        lines = [line for line in violation_lines(message) if not line.startswith("after ")]
    text = story.names("\n".join(lines))
    for ours, theirs in _PLAIN:
        text = text.replace(ours, theirs)
    return ["```", *text.splitlines(), "```"]


def _expected(story: Story, violations: Sequence[_Violation]) -> list[str]:
    out: list[str] = []
    items = list(story.failure.items) or list(dict.fromkeys(v.item for v in violations))
    for item in items:
        summaries = " | ".join(v.summary for v in violations if v.item == item)
        found: list[Source] = sources_for(item, summaries)
        for s in found:
            out.append(f"- KalamDB's {s.kind}, [`{s.path}` line {s.line}]({s.url}):")
            out.append(f"  > {s.quote}")
        if found:
            out.append(f'- (kalamfuzz\'s contract, item "{item}".)')
        else:
            out.append(f'- kalamfuzz\'s contract, item "{item}": {PROMISES.get(item, "")}')
    return out


# --- titles in KalamDB's words ----------------------------------------------------------------


def _server_says(reply: Mapping[str, Any], limit: int = 90) -> str:
    text = str(reply.get("message") or "")
    text = re.sub(r"^Statement \d+ failed: ", "", text)
    # the innermost error is the one a user recognises
    for marker in ("Already exists: ", "Not found: ", "Permission denied: ", "Invalid operation: "):
        if marker in text:
            text = text[text.rindex(marker) + len(marker) :]
            break
    text = re.sub(r"^(?:[A-Z][a-z]+ error: )+", "", text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _subscribe(story: Story, sub: str) -> tuple[Exchange | None, str, dict[str, Any]]:
    """The ``subscribe`` message of a subscription: the exchange, its SQL and its options."""
    for e in story.tx:
        if e.kind != "ws-send":
            continue
        try:
            msg = json.loads(e.request)
        except ValueError:
            continue
        s = msg.get("subscription") if isinstance(msg, dict) else None
        if isinstance(s, dict) and s.get("id") == sub:
            return e, story.names(str(s.get("sql", ""))), dict(s.get("options") or {})
    return None, "", {}


def _sub_sql(story: Story, sub: str) -> tuple[str, dict[str, Any]]:
    _, sql, options = _subscribe(story, sub)
    return sql, options


def _faults_before(story: Story) -> list[str]:
    out = []
    for e in story.before_departure():
        if e.kind == "fault" and not e.request.startswith("network"):
            out.append("SIGINT" if e.request.startswith("SIGINT") else "SIGKILL")
    return out


def title(failure: Failure) -> str:
    """The finding in KalamDB's words: what a user of the server sees, from the violation and
    the statements (kalamfuzz's contract item stays in the body)."""
    return _title(Story.of(failure))


def _title(story: Story) -> str:
    violations, more = parse_violations(story.failure.message)
    if not violations:
        return story.names(story.failure.signature)
    v = violations[0]
    summary = story.names(v.summary)
    dep = story.tx[story.departure[-1]] if story.departure else None
    about_sql = not story.where.startswith(("subscription ", "subscribe ", "job ", "calls "))
    sql = story.n(dep) if dep is not None and dep.kind == "sql" else story.where
    verb = _verb(sql) if sql and (about_sql or (dep is not None and dep.kind == "sql")) else ""
    table = story.table()
    kind = f"{table.type} table" if table else "table"
    before = [story.n(e) for e in story.before_departure() if e.kind == "sql"]
    restarts = _faults_before(story)
    after_restart = f"after a {restarts[-1]} and restart, " if restarts else ""
    says = story.names(_server_says(dep.reply)) if dep is not None else ""

    def text(t: str) -> str:
        return t[:1].upper() + t[1:]

    if "a deleted row is visible again" in summary:
        flushes = [i for i, s in enumerate(before) if s.startswith("STORAGE FLUSH")]
        deletes = [i for i, s in enumerate(before) if _verb(s) == "DELETE"]
        if flushes and deletes and flushes[0] < deletes[-1] < flushes[-1]:
            return (
                f"DELETE of a row already flushed to Parquet is undone by the next STORAGE FLUSH "
                f"TABLE: the row is back in SELECT ({kind})"
            )
        return text(
            f"{after_restart}a deleted row is returned again by {verb or 'SELECT'} ({kind})"
        )
    if "INSERT of a deleted key refused" in summary:
        return f'INSERT of a key deleted after its row was flushed to Parquet fails: "{says}"'
    if "out of ORDER BY order" in summary:
        m = re.search(r"ORDER BY (.*?)(?: LIMIT (\d+))?$", sql)
        order = (
            f"`ORDER BY {m.group(1)}{' LIMIT ' + m.group(2) if m.group(2) else ''}`"
            if m
            else "ORDER BY"
        )
        return f"SELECT with {order} returns its rows in another order ({kind})"
    if re.search(r"refused an UPDATE or DELETE whose WHERE", summary):
        m = re.search(r" WHERE (.*)$", sql)
        cond = f" (`WHERE {m.group(1)}`)" if m else ""
        return f'{verb} whose WHERE is never true{cond} is refused: "{says}" instead of 0 rows'
    m = re.search(
        r"answered, not refused, when the WHERE is never true: (\w+) may not read (\S+)", summary
    )
    if m:
        access = f"{table.access} " if table and table.access else ""
        return (
            f"A `{m.group(1)}`-role SELECT on {access}SHARED table {m.group(2)} answers 200 with no "
            "rows instead of 403 when its WHERE is never true"
        )
    if "a live change carries a dropped column" in summary:
        drops = [re.search(r"DROP COLUMN (\w+)", s) for s in before]
        col = next((d.group(1) for d in reversed(drops) if d), "")
        return f"After ALTER TABLE ... DROP COLUMN {col}, live changes still carry `{col}`"
    if "a column added again shows the dropped column's old values" in summary:
        drops = [re.search(r"DROP COLUMN (\w+)", s) for s in before]
        col = next((d.group(1) for d in reversed(drops) if d), "")
        return f"A column dropped and added again (`{col}`) shows the dropped column's old values"
    if "never arrived" in summary:
        sub = v.subject.removeprefix("subscription ").strip()
        sub_sql, _ = _sub_sql(story, sub)
        lost = len([x for x in violations if "never arrived" in x.summary]) + more
        got = len(
            [
                e
                for e in story.tx
                if e.kind == "ws-recv" and e.request == sub and e.reply.get("type") == "change"
            ]
        )
        query = f" (`{sub_sql}`)" if sub_sql else ""
        if lost == 1 and got == 0:
            wrapped = any(_EXEC_AS.search(s) for s in before)
            how = " written with EXECUTE AS USER" if wrapped else ""
            return f"A live query{query} never receives the change of a matching row{how}"
        return f"A live query{query} receives {got} changes and silently misses {lost} more, with no error"
    if re.search(
        r"snapshot page \d+ is malformed|snapshot differs|snapshot is not ordered", summary
    ):
        sub = v.subject.removeprefix("subscription ").strip()
        sub_sql, options = _sub_sql(story, sub)
        size = options.get("batch_size")
        paged = f" paged by batch_size {size}" if size else ""
        return f"A subscription snapshot{paged} repeats and loses rows (`{sub_sql}`)"
    if "that does not match the subscription" in summary:
        sub = v.subject.removeprefix("subscription ").strip()
        sub_sql, _ = _sub_sql(story, sub)
        m = re.search(r" WHERE (.*)$", sub_sql)
        cond = f"`WHERE {m.group(1)}`" if m else "its WHERE"
        return f"A live query with {cond} receives a change for a row that does not match it"
    if "when an UPDATE made it leave the filter" in summary:
        sub = v.subject.removeprefix("subscription ").strip()
        sub_sql, _ = _sub_sql(story, sub)
        m = re.search(r" WHERE (.*)$", sub_sql)
        cond = f"`WHERE {m.group(1)}`" if m else "its WHERE"
        return f"No live notification when an UPDATE makes a row leave a live query's {cond}"
    if "flush skipped although rows are pending after a failed flush" in summary:
        return (
            f'After a flush job fails (storage unwritable), STORAGE FLUSH TABLE answers "{says}" '
            "and the rows never reach Parquet"
        )
    if "written while a flush ran" in summary:
        return f'A row written while a flush job runs is never flushed: STORAGE FLUSH TABLE answers "{says}"'
    if "a flush job a restart interrupted never ends" in summary:
        kill = restarts[-1] if restarts else "a restart"
        observed = v.line("observed")
        return f"A flush job interrupted by {kill} stays `running` in system.jobs ({observed})"
    if "refused what must succeed" in summary and says:
        return text(f'{after_restart}{verb} on a {kind} fails: "{says}"')
    m = re.search(r"(UPDATE|DELETE) affected another number of rows", summary)
    if m and dep is not None:
        got_n = dep.reply.get("row_count")
        exp = re.search(r"(\d+) row", v.line("expected"))
        match = f" where {exp.group(1)} match" if exp else ""
        return text(f"{after_restart}{m.group(1)} on a {kind} reports {got_n} row(s){match}")
    if "acknowledged rows lost across a restart" in summary:
        kill = restarts[-1] if restarts else "a restart"
        return f"Rows acknowledged before a {kill} are gone after the restart ({kind})"
    if re.search(r"primary key\(s\) .* returned more than once", summary):
        return text(f"{after_restart}SELECT returns one primary key more than once ({kind})")
    m = re.search(r"rows of other users visible in (.*)", summary)
    if m:
        return f"A user sees another user's rows in {m.group(1)} ({kind})"
    if "returned rows older than TTL_SECONDS" in summary:
        return f"STREAM rows older than the table's TTL_SECONDS are still returned ({kind})"
    if "SELECT result differs from the model" in summary:
        return text(f"{after_restart}SELECT on a {kind} returns other rows than were written")
    m = re.search(r"no order of the calls sent at once explains (.*)", summary)
    if m:
        what = m.group(1).replace("the read after them", "").strip(", ")
        calls = re.match(r"(\d+) calls sent at once", v.subject)
        if calls and calls.group(1) == "1" and what:
            return text(f"{what}, alone, answers what running it alone cannot")
        return (
            f"{calls.group(0) if calls else 'Calls sent at once'}"
            f"{' (' + what + ')' if what else ''}: no order of them explains what the server "
            "answered"
        )
    if v.subject.startswith("subscription "):
        sub_sql, _ = _sub_sql(story, v.subject.removeprefix("subscription ").strip())
        return text(f"a live query{f' (`{sub_sql}`)' if sub_sql else ''} receives a {summary}")
    for ours, theirs in _PLAIN:
        summary = summary.replace(ours, theirs)
    return text(f"{verb + ' on a ' + kind + ': ' if verb else ''}{summary}")


# --- the report -------------------------------------------------------------------------------

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

    out += ["## Steps to reproduce", ""]
    setup = _setup(story)
    data = any(DATA + "/" in line for line in setup) or any(
        rule.endswith("_storage") for _, rule, _ in story.silent
    )
    out.append("On a fresh server, as `root`:")
    out.append("")
    out += ["```sql", *setup, "```", ""] if setup else []
    if data:
        out.append(
            f"`{DATA}` stands for the server's data directory (`data_path` under `[storage]` in "
            f"its config); the `local` storage keeps its files in `{DATA}/storage`."
        )
        out.append("")
    if additions.get("Steps to reproduce"):
        out += [*_trim(additions["Steps to reproduce"]), ""]
    kinds = {story.tx[i].kind for i in story.shown}
    how = (
        'Each statement is `POST /v1/api/sql` with `{"sql": "..."}` and `Authorization: '
        'Bearer <token>`, the token from `POST /v1/api/auth/login` with `{"user": ..., '
        '"password": ...}`'
    )
    if kinds & {"ws-send", "ws-recv"}:
        how += "; WebSocket messages go over `GET /v1/ws` with the same header"
    out.append(how + ". In this order:")
    out.append("")
    out += _steps(story)
    out.append("")

    out += ["## What goes wrong", ""]
    out += _violation_block(story, failure.message)
    numbers = _numbers(story, violations, more)
    if numbers:
        out += ["", *numbers]
    if additions.get("What goes wrong"):
        out += ["", *_trim(additions["What goes wrong"])]
    out.append("")

    out += ["## What was expected", ""]
    out += _expected(story, violations)
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
