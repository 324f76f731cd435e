"""A failure as a report tells it: which exchanges it shows, where it departs, what it set up.

:class:`Story` reads the failure's transcript once; the sections of the page (setup, steps,
numbers, title) render from it.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from attrs import define, field

from kalamfuzz.campaign.events import Failure
from kalamfuzz.campaign.report.names import Names
from kalamfuzz.campaign.report.violations import _where_of, parse_violations
from kalamfuzz.machines.driver import Exchange

_JOB_POLL = re.compile(r"SELECT job_id, status, message FROM system\.jobs WHERE job_id = '([^']+)'")
_EXEC_AS = re.compile(r"EXECUTE AS USER '([^']+)'")
_TABLE_REF = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")


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
    type: str  # USER | SHARED | STREAM
    storage: str
    access: str


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

    def _before(self) -> int | None:
        """The last checking read of the departure's table before it (its scope's, for a
        per-user table): the state the departure starts from."""
        table = self.table()
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

    # --- derived facts ---------------------------------------------------------------------

    def table(self) -> _Table | None:
        """The table the departure is about: the first the failing check or its exchanges
        name."""
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
        wrapped = _EXEC_AS.search(self.where)
        return wrapped.group(1) if wrapped else self.user_of(self.tx[self.departure[-1]])

    def user_of(self, e: Exchange) -> str:
        """Whose partition an exchange acts on: the EXECUTE AS target, else its actor."""
        wrapped = _EXEC_AS.search(self.n(e))
        return wrapped.group(1) if wrapped else self.names(e.actor)

    def before_departure(self) -> list[Exchange]:
        first = min(self.departure) if self.departure else len(self.tx)
        return [e for i, e in enumerate(self.tx) if i < first and i not in self.world]
