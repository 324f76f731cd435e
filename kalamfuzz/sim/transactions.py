"""Explicit transactions (BEGIN ... COMMIT inside one /v1/api/sql request) and the write set
that every data statement writes through.

A statement writes for real: its row versions enter the hot tier at once, so the rest of its
transaction reads them (read-your-writes, and UPDATE/DELETE find rows it inserted). What would
let anyone else learn of them waits for the commit: the write-ahead log record, the live
changes and the table's pending-write bookkeeping. Undo removes the versions again, by `_seq`,
so it is right even if another request wrote the same keys meanwhile (planted bugs only).

The plain sim runs a whole request without yielding to the event loop, so no other request can
read staged versions or commit between BEGIN and COMMIT: snapshot isolation without keeping a
snapshot. Only planted bugs pause a request (``Pending``, ``bugs.RACE_WINDOW_S``).

An autocommit statement is a one-statement transaction of its own, as in KalamDB, so one that
fails half-way (a NOT NULL violation on its third row) leaves nothing behind either.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attrs import define, field, frozen

from .bugs import DIRTY_READ, LIVE_BEFORE_COMMIT, PARTIAL_COMMIT, RACE_WINDOW_S
from .catalog import TableDef
from .errors import SqlError, exec_error
from .session import Change, Pending, Plan, Result, Session
from .store import Scope, TableData, Version, remove_version

if TYPE_CHECKING:
    from .engine import Engine

OPEN_AT_END = "Request completed with an open explicit transaction; rolled back automatically"
_DDL = re.compile(
    r"^(CREATE|ALTER|DROP)\s+(NAMESPACE|STORAGE|VIEW|((USER|SHARED|STREAM)\s+)?TABLE)\b",
    re.IGNORECASE,
)
# KalamDB's single node has one user shard and one shared shard: two raft groups.
_GROUP = {"user": "DataUserShard(0)", "shared": "DataSharedShard(0)"}


def uuid7() -> str:
    """A UUIDv7, the form of KalamDB's request and transaction ids."""
    rand = int.from_bytes(os.urandom(10), "big")
    ms = time.time_ns() // 1_000_000 & ((1 << 48) - 1)
    value = ms << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62
    return str(uuid.UUID(int=value | rand & ((1 << 62) - 1)))


def control_of(sql: str) -> str | None:
    """begin, commit or rollback for KalamDB's transaction-control statements: it matches the
    first word (two for START TRANSACTION) and ignores the rest (BEGIN WORK, COMMIT AND CHAIN,
    even ROLLBACK TO SAVEPOINT s is a full rollback)."""
    words = sql.upper().split(None, 2)
    if words[0] in ("BEGIN", "COMMIT", "ROLLBACK"):
        return words[0].lower()
    if words[:2] == ["START", "TRANSACTION"]:
        return "begin"
    return None


@frozen
class Staged:
    table: TableDef
    data: TableData
    scope: Scope
    key: str
    pk: Any
    version: Version


@define
class WriteSet:
    """What one transaction has written and not yet published: an explicit transaction's
    (with its id) or a single autocommit statement's."""

    txid: str | None = None
    versions: list[Staged] = field(factory=list)
    #: Live changes, one list per statement that emitted them (the unit fan-out works on).
    changes: list[list[Change]] = field(factory=list)

    @property
    def explicit(self) -> bool:
        return self.txid is not None

    def mark(self) -> tuple[int, int]:
        return len(self.versions), len(self.changes)

    def stage(self, engine: Engine, staged: Staged) -> None:
        self.versions.append(staged)
        engine.uncommitted.add(staged.version.seq)

    def undo(self, engine: Engine, mark: tuple[int, int] = (0, 0)) -> None:
        """Forget everything written after ``mark`` (all of it by default)."""
        for s in reversed(self.versions[mark[0] :]):
            remove_version(s.scope, s.pk, s.version.seq)
            engine.uncommitted.discard(s.version.seq)
        del self.versions[mark[0] :]
        del self.changes[mark[1] :]

    def check_one_group(self) -> None:
        """KalamDB's applier refuses a commit whose mutations map to two raft groups."""
        if not self.versions:
            return
        first = _GROUP[self.versions[0].table.table_type]
        for s in self.versions:
            group = _GROUP[s.table.table_type]
            if group != first:
                t = s.table
                raise exec_error(
                    f"Invalid operation: failed to commit transaction '{self.txid}': Validation "
                    "error: explicit transactions must remain within one data raft group; "
                    f"'{t.namespace}:{t.name}' mapped to {group} while prior mutations mapped "
                    f"to {first}"
                )

    def publish(self, engine: Engine) -> None:
        """Commit: log every version in one record, then send the live changes in order."""
        for s in self.versions:
            s.data.writes += 1
            s.data.pending_cleared = False
            s.data.dml_horizon = None
            engine.uncommitted.discard(s.version.seq)
        assert engine.wal is not None
        engine.wal.commit([(s.table.uid, s.key, s.pk, s.version) for s in self.versions])
        for changes in self.changes:
            engine.dispatch(changes)
        self.versions.clear()
        self.changes.clear()

    def holds_live(self, engine: Engine) -> bool:
        """Whether live changes wait for the commit (not with planted live_before_commit)."""
        return not (self.explicit and engine.has(LIVE_BEFORE_COMMIT))


def in_transaction(engine: Engine) -> bool:
    return engine.txn is not None and engine.txn.explicit


def refuse_stream(engine: Engine, table: TableDef) -> None:
    """KalamDB's spec: stream tables are rejected before staging (they are never undone)."""
    if table.table_type == "stream" and in_transaction(engine):
        raise exec_error(
            "Invalid operation: stream tables are not supported inside explicit transactions"
        )


@frozen
class Statement:
    sql: str
    control: str | None
    run: Plan | None  # None for the transaction-control statements

    @classmethod
    def planned(cls, engine: Engine, session: Session, sql: str, ns: str) -> Statement:
        control = control_of(sql)
        return cls(sql, control, None if control else engine.plan(session, sql, ns))


async def run_statements(
    engine: Engine, session: Session, statements: list[Statement], request_id: str | None
) -> list[Result]:
    return await _Request(engine, session, request_id).run(statements)


class _Request:
    """One request's statements in order, with at most one open transaction at a time."""

    def __init__(self, engine: Engine, session: Session, request_id: str | None) -> None:
        self.engine = engine
        self.session = session
        self.request_id = request_id or uuid7()
        self.tx: WriteSet | None = None

    async def run(self, statements: list[Statement]) -> list[Result]:
        results = []
        for k, stmt in enumerate(statements, start=1):
            try:
                results.append(await self._statement(stmt))
            except BaseException as exc:
                self._abandon(isinstance(exc, SqlError))
                if isinstance(exc, SqlError) and exc.code == "SQL_EXECUTION_ERROR" and exc.numbered:
                    exc.message = f"Statement {k} failed: {exc.message}"
                raise
        if self.tx is not None:
            self._abandon(False)
            # Answered after the loop (error_for_privilege): no statement number, no details,
            # and every non-admin caller gets the generic text.
            raise SqlError(
                "SQL_EXECUTION_ERROR", OPEN_AT_END, safe=False, numbered=False, details=False
            )
        return results

    def _abandon(self, statement_failed: bool) -> None:
        if self.tx is None:
            return
        if statement_failed and self.engine.has(PARTIAL_COMMIT):
            self.tx.publish(self.engine)
        else:
            self.tx.undo(self.engine)
        self._closed()

    def _closed(self) -> None:
        self.tx = None
        self.engine.open_transactions -= 1

    def _message(self, text: str) -> Result:
        return Result(row_count=0, as_user=self.session.user_id, message=text)

    async def _statement(self, stmt: Statement) -> Result:
        engine, tx = self.engine, self.tx
        if stmt.control == "begin":
            if tx is not None:
                raise exec_error(
                    f"Conflict: request owner 'sql-req-{self.request_id}' already has an active "
                    f"transaction '{tx.txid}'"
                )
            self.tx = WriteSet(txid=uuid7())
            engine.open_transactions += 1
            return self._message(f"Transaction started ({self.tx.txid})")
        if stmt.control is not None:
            if tx is None:
                raise exec_error(
                    f"Invalid operation: {stmt.control.upper()} requires an active explicit "
                    "SQL transaction"
                )
            if stmt.control == "commit":
                tx.check_one_group()
                tx.publish(engine)
                self._closed()
                return self._message(f"Transaction committed ({tx.txid})")
            tx.undo(engine)
            self._closed()
            return self._message(f"Transaction rolled back ({tx.txid})")
        assert stmt.run is not None
        if tx is not None and _DDL.match(stmt.sql):
            raise exec_error(
                f"Invalid operation: DDL is not allowed inside explicit transaction '{tx.txid}'"
            )
        writes = tx or WriteSet()
        result = await _step(engine, writes, stmt.run)
        if tx is None:
            writes.publish(engine)
        elif engine.has(DIRTY_READ):
            await asyncio.sleep(RACE_WINDOW_S)
        return result


async def _step(engine: Engine, writes: WriteSet, run: Plan) -> Result:
    """Run one statement into ``writes``; if it fails, only its own writes are undone."""
    mark = writes.mark()
    try:
        out = _within(engine, writes, run)
        while isinstance(out, Pending):
            await asyncio.sleep(out.delay)
            out = _within(engine, writes, out.then)
    except BaseException:
        writes.undo(engine, mark)
        raise
    return out


def _within(
    engine: Engine, writes: WriteSet, run: Callable[[], Result | Pending]
) -> Result | Pending:
    # Each synchronous part of a statement names its write set; nothing else runs meanwhile.
    engine.txn = writes
    try:
        return run()
    finally:
        engine.txn = None
