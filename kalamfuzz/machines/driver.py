"""The driver: one object that runs a step on the target, predicts it, and checks it.

Every step goes the one way the design allows: adapter call (observation) -> invariants against
the model -> model update. Machines call the driver with logical names and drawn values only, and
regression files call the very same methods, so a saved program replays what the machine did.

A driver lives for a whole campaign (users, storages and logins are made once); ``begin()``
starts a fresh example in its own namespace with a fresh model. After every step the driver checks
what the step touched (the written scope, the subscriptions on that table, the flush jobs still
running); ``sweep()`` checks everything at the end of an example.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import define, field, frozen

from kalamfuzz import invariants as inv
from kalamfuzz.adapters import observe
from kalamfuzz.adapters.faults import BlockedDirectory
from kalamfuzz.adapters.live import LiveClient, Subscription
from kalamfuzz.adapters.sql import SqlClient
from kalamfuzz.adapters.target import Target
from kalamfuzz.adapters.values import redact_sql
from kalamfuzz.errors import ConfigError, LiveError
from kalamfuzz.invariants.violation import Verdict, Violation
from kalamfuzz.machines import codegen
from kalamfuzz.machines.world import COLUMNS, STORAGES, TABLES, USERS
from kalamfuzz.model import (
    AlterAddColumn,
    AlterDropColumn,
    Column,
    CreateNamespace,
    CreateStorage,
    CreateTable,
    Delete,
    DropTable,
    Failed,
    Flush,
    Insert,
    JobFinished,
    Model,
    Select,
    SetStorageWritable,
    Subscribe,
    Succeeded,
    Table,
    TableId,
    TableType,
    Unsubscribe,
    Update,
)
from kalamfuzz.model.catalog import User
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.ops import Statement
from kalamfuzz.model.rows import Window
from kalamfuzz.model.state import MAX_QUERY_LIMIT
from kalamfuzz.model.values import Value
from kalamfuzz.model.where import Pred
from kalamfuzz.model.where import columns as where_columns
from kalamfuzz.observations import (
    QueryObservation,
    StatementObservation,
)

#: How long a step waits for the live changes the model expects before calling them lost.
CHANGE_WAIT_S = 1.0
#: How long ``wait_jobs`` waits for a flush job before the example fails.
JOB_TIMEOUT_S = 30.0
#: Quiet period that makes a subscription quiescent in the final sweep.
QUIET_S = 0.1
#: How long KalamDB's asynchronous SHARED cold cleanup may take to delete a scope's files.
CLEANUP_S = 0.5


class InvariantViolation(AssertionError):
    """The target broke the contract. ``violations`` say which item, what and where; ``new``
    are those that are not known findings (all of them when the driver has no triage)."""

    def __init__(
        self, violations: Sequence[Violation], step: str, new: Sequence[Violation] | None = None
    ) -> None:
        self.violations = tuple(violations)
        self.new = tuple(new) if new is not None else self.violations
        self.step = step
        text = "\n".join(str(v) for v in self.violations)
        super().__init__(f"after {step}:\n{text}")

    @property
    def items(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.item.value for v in self.new))

    @property
    def signature(self) -> str:
        """What makes two failures the same: the signatures of the new violations."""
        return " | ".join(sorted({v.signature for v in self.new}))


#: Decides whether a violation is a known finding: called with the violation, the statement the
#: check was about and the events of the example so far; returns the label it is counted under,
#: or None when it is new (see :mod:`kalamfuzz.campaign.known`).
Triage = Callable[[Violation, str, frozenset[str]], "str | None"]


@frozen
class KnownFinding:
    """A violation the triage knew: counted, and the model re-learned what it got wrong."""

    label: str
    signature: str
    step: int
    where: str


@frozen
class Exchange:
    """One request and what came back, secrets redacted: the transcript's unit."""

    step: int
    actor: str
    kind: str  # sql | ws | fault
    request: str
    reply: Mapping[str, Any]
    sent_ms: int
    recv_ms: int


@frozen
class FailedExample:
    """What an example that failed leaves for shrinking and saving."""

    program: tuple[str, ...]
    imports: tuple[str, ...]
    transcript: tuple[Exchange, ...]
    error: BaseException
    #: Signatures of the known findings the example went past before it failed.
    tolerated: tuple[str, ...] = ()


@define
class StepStats:
    count: int = 0
    seconds: float = 0.0
    #: Time inside adapter calls (the server's round trips and waits).
    io_seconds: float = 0.0


@define
class _Sub:
    """A live subscription the driver holds, under its logical name."""

    actor: str
    model_id: str
    sub: Subscription
    paged: bool
    #: Messages already copied to the transcript.
    logged: int = 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _tag() -> str:
    return secrets.token_hex(3)


@define
class Driver:
    """Runs steps against ``target`` in lock-step with the model. See the module docstring."""

    target: Target
    #: Called with every request/response pair (the JSONL history, the regression transcript).
    on_exchange: list[Callable[[Exchange], None]] = field(factory=list)
    stats: dict[str, StepStats] = field(factory=dict)
    #: The current example's program: one line of Python per step, with comments.
    program: list[str] = field(factory=list)
    imports: set[str] = field(factory=set)
    transcript: list[Exchange] = field(factory=list)
    model: Model = field(init=False)
    namespace: str = field(init=False, default="")
    _campaign_tag: str = field(init=False, factory=_tag)
    _users: dict[str, str] = field(init=False, factory=dict)
    _clients: dict[str, SqlClient] = field(init=False, factory=dict)
    _lives: dict[str, LiveClient] = field(init=False, factory=dict)
    _subs: dict[str, _Sub] = field(init=False, factory=dict)
    #: Messages of each actor's socket already copied to the transcript.
    _ws_sent: dict[str, int] = field(init=False, factory=dict)
    _storages: dict[str, str] = field(init=False, factory=dict)
    _blocked: dict[str, BlockedDirectory] = field(init=False, factory=dict)
    _flushed: set[str] = field(init=False, factory=set)
    _examples: int = field(init=False, default=0)
    _step_no: int = field(init=False, default=0)
    _io: float = field(init=False, default=0.0)
    _recording: bool = field(init=False, default=True)
    #: A step of this example raised: the sweep is skipped, the failure stands as it is.
    failed: bool = field(init=False, default=False)
    #: The latest example that failed.
    last_failure: FailedExample | None = field(init=False, default=None)
    #: Known findings are counted and explored past; None: every violation ends the example.
    triage: Triage | None = None
    #: The known findings of the current example, in order.
    findings: list[KnownFinding] = field(init=False, factory=list)
    #: What happened in the current example that some known bugs need first: ``crash``,
    #: ``column-readded`` (an ADD COLUMN of a name dropped before), ``flush-over-tombstone``.
    events: set[str] = field(init=False, factory=set)
    #: The requests that made the users and storages every example shares (for reports).
    setup: list[Exchange] = field(init=False, factory=list)

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        target: str | None = None,
        *,
        bugs: Sequence[str] = (),
        config: Any = None,
        tolerate: Sequence[str] = (),
    ) -> Iterator[Driver]:
        """Start ``target`` (default ``$KALAMFUZZ_TARGET`` or the sim) and drive it.

        Regression files use this; planted ``bugs`` apply to the sim only. ``tolerate``: the
        signatures of known findings to count and go past (those the saved example went past).
        """
        with Target.parse(target, bugs=bugs, config=config) as t:
            driver = cls(t, triage=_tolerating(frozenset(tolerate)) if tolerate else None)
            try:
                yield driver
            finally:
                driver.close()

    def close(self) -> None:
        self._end_example()
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def _admin(self) -> SqlClient:
        if "root" not in self._clients:
            self._clients["root"] = self.target.client()
        return self._clients["root"]

    def _setup_world(self) -> None:
        """Users and storages, once per driver (they are global on the server)."""
        admin = self._admin()
        for name, role in USERS.items():
            user_id = f"kf_{self._campaign_tag}_{name}"
            password = secrets.token_urlsafe(12)
            admin.create_user(user_id, password, role=role.value)
            self._users[name] = user_id
            self._clients[name] = admin.login_as(user_id, password)
            self._setup_exchange(
                f"CREATE USER {user_id} WITH PASSWORD '{password}' ROLE {role.value}"
            )
        for name in STORAGES:
            base = self.target.data_dir / f"storage-{name}-{self._campaign_tag}"
            base.mkdir(parents=True, exist_ok=True)
            storage_id = f"kf_{self._campaign_tag}_{name}"
            sql = CreateStorage("root", storage_id, str(base)).to_sql()
            admin.sql(sql)
            self._storages[name] = storage_id
            self._setup_exchange(sql)

    def _setup_exchange(self, sql: str) -> None:
        now = _now_ms()
        self.setup.append(Exchange(0, "root", "sql", redact_sql(sql), {"status": 200}, now, now))

    def begin(self, tables: Sequence[str] = tuple(TABLES)) -> None:
        """Start an example: a fresh namespace with ``tables`` and a fresh model."""
        self._end_example()
        if not self._users:
            self._setup_world()
        self._examples += 1
        self._step_no = 0
        self.failed = False
        self.findings = []
        self.events = set()
        self._flushed = set()
        self.program = []
        self.imports = set()
        self.transcript = []
        self.namespace = f"kf_{self._campaign_tag}_{self._examples}"
        model = Model.initial(
            str(self.target.storage_dir),
            users=[User(self._users[n], role) for n, role in USERS.items()],
        )
        for name, storage_id in self._storages.items():
            base = self.target.data_dir / f"storage-{name}-{self._campaign_tag}"
            model.apply(CreateStorage("root", storage_id, str(base)), Succeeded())
        self.model = model
        self._recording = False
        try:
            self._statement("root", CreateNamespace("root", self.namespace))
            for name in tables:
                spec = TABLES[name]
                self._statement(
                    "root",
                    CreateTable(
                        "root",
                        Table(
                            self.table_id(name),
                            spec.type,
                            COLUMNS,
                            storage_id=self._storage_id(spec.storage),
                            access_level=spec.access,
                            ttl_seconds=spec.ttl_seconds,
                        ),
                    ),
                )
        finally:
            self._recording = True

    def _end_example(self) -> None:
        for blocked in self._blocked.values():
            blocked.restore()
        self._blocked.clear()
        for live in self._lives.values():
            live.close()
        self._lives.clear()
        self._ws_sent.clear()
        self._subs.clear()

    # --- names ------------------------------------------------------------------------------

    def table_id(self, name: str) -> TableId:
        return TableId(self.namespace, name)

    def user_id(self, name: str) -> str:
        return "root" if name == "root" else self._users[name]

    def _storage_id(self, name: str) -> str:
        return "local" if name == "local" else self._storages[name]

    def _client(self, actor: str) -> SqlClient:
        if actor == "root":
            return self._admin()
        return self._clients[actor]

    def _scope_owner(self, table: Table, actor: str, as_user: str | None) -> str:
        """The logical user whose partition a statement touches (root for SHARED tables)."""
        if not table.type.per_user:
            return "root"
        return as_user or actor

    # --- what the machines may ask (for preconditions) ---------------------------------------

    def open_subscriptions(self) -> set[str]:
        return set(self._subs)

    def watched(self, sub: str) -> tuple[str, str]:
        """The subscriber and the (logical) table of an open subscription."""
        s = self._subs[sub]
        return s.actor, self._model_sub(s.model_id).table_id.name

    def paging_subscriptions(self) -> set[str]:
        return {k for k, s in self._subs.items() if s.paged}

    def resumable_actors(self) -> set[str]:
        return {s.actor for s in self._subs.values() if not s.paged}

    @property
    def steps(self) -> int:
        """Steps taken in this example."""
        return self._step_no

    def has_rows(self, table: str) -> bool:
        """Whether any possible state holds a version in the table (hot or cold)."""
        tid = self.table_id(table)
        return any(
            any(True for _ in scope.all_versions())
            for st in self.model.states
            for scope in st.scopes(tid).values()
        )

    def flush_requested(self, table: str) -> bool:
        """Whether this example asked to flush ``table`` (whatever became of it)."""
        return table in self._flushed

    def broken_storages(self) -> set[str]:
        return set(self._blocked)

    def can_crash(self) -> bool:
        return self.target.skip_reason("kill") is None

    # --- recording --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self, name: str, *args: object, **kwargs: object) -> Iterator[None]:
        # The sweep is timed like a step but not part of the program: regression files end
        # with their own ``d.sweep()``.
        if self._recording and name != "sweep":
            self._step_no += 1
            self.program.append(codegen.call(name, args, kwargs, self.imports))
        io_before = self._io
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.failed = True
            self.last_failure = FailedExample(
                tuple(self.program),
                tuple(sorted(self.imports)),
                tuple(self.transcript),
                exc,
                tuple(dict.fromkeys(f.signature for f in self.findings)),
            )
            raise
        finally:
            stats = self.stats.setdefault(name, StepStats())
            stats.count += 1
            stats.seconds += time.perf_counter() - started
            stats.io_seconds += self._io - io_before

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one adapter call, counting its time as the server's."""
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._io += time.perf_counter() - started

    def _exchange(
        self, actor: str, kind: str, request: str, reply: Mapping[str, Any], window: Window
    ) -> None:
        ex = Exchange(
            self._step_no, actor, kind, redact_sql(request), reply, window.sent_ms, window.recv_ms
        )
        self.transcript.append(ex)
        for handler in self.on_exchange:
            handler(ex)

    def _judge(self, verdict: Verdict, what: str) -> bool:
        """True when the check passed; False when every violation is a known finding (counted;
        the caller then re-learns from the server). A new finding raises."""
        if verdict.ok:
            return True
        events = frozenset(self.events)
        labels = [
            self.triage(v, what, events) if self.triage is not None else None
            for v in verdict.violations
        ]
        new = [v for v, label in zip(verdict.violations, labels, strict=True) if label is None]
        if new:
            raise InvariantViolation(verdict.violations, what, new)
        for v, label in zip(verdict.violations, labels, strict=True):
            assert label is not None
            self.findings.append(KnownFinding(label, v.signature, self._step_no, what))
        return False

    # --- the one way a statement flows ------------------------------------------------------

    def _statement(self, actor: str, op: Statement) -> StatementObservation:
        sql = op.to_sql()
        sent = _now_ms()
        obs: StatementObservation = self._call(observe.statement, self._client(actor), sql)
        at = Window(sent, max(sent, _now_ms()))
        self._exchange(actor, "sql", sql, _reply(obs), at)
        passed = self._judge(inv.check_statement_reply(self.model, op, obs, at), sql)
        # A known finding: the model keeps what the server answered (a state that agrees, or
        # the one the model cannot describe), and a write re-learns its scope from a read.
        self.model.apply(op, inv.outcome(obs), at)
        if not passed and isinstance(op, Insert | Update | Delete):
            self._relearn_scope(op.table_id, op.as_user or op.actor)
        return obs

    def _query(self, actor: str, op: Select) -> QueryObservation:
        sql = op.to_sql()
        sent = _now_ms()
        obs: QueryObservation = self._call(observe.query, self._client(actor), sql)
        at = Window(sent, max(sent, _now_ms()))
        reply = _reply(obs) | {"columns": list(obs.columns), "rows": [list(r) for r in obs.rows]}
        self._exchange(actor, "sql", sql, reply, at)
        verdict = inv.check_query(self.model, op, obs, at)
        table = self.model.table(op.table_id)
        named = (op.projection or table.star_columns) if table is not None else None
        if self._judge(verdict, sql) or not any(v.diverged for v in verdict.violations):
            self.model.apply(op, inv.outcome(obs, table, named), at)
        elif obs.ok:
            # A read known to show other data teaches no _seq; a full read re-learns the scope.
            self._relearn_scope(op.table_id, op.as_user or op.actor)
        return obs

    # --- re-learning after a known finding ----------------------------------------------------

    def _logical(self, user_id: str) -> str:
        return next((n for n, u in self._users.items() if u == user_id), "root")

    def _relearn_scope(self, table_id: TableId, user_id: str) -> None:
        """Read the whole scope the known finding was about and let the model adopt it; the
        subscriptions watching it start again from a fresh snapshot."""
        table = self.model.table(table_id)
        if table is None:
            return
        owner = self._logical(user_id) if table.type.per_user else "root"
        sql = f"SELECT * FROM {table_id} LIMIT {MAX_QUERY_LIMIT}"
        sent = _now_ms()
        obs: QueryObservation = self._call(observe.query, self._client(owner), sql)
        at = Window(sent, max(sent, _now_ms()))
        reply = _reply(obs) | {"columns": list(obs.columns), "rows": [list(r) for r in obs.rows]}
        self._exchange(owner, "sql", sql, reply, at)
        if not obs.ok:
            # Not even a plain read works: nothing can be re-learned; give the table up.
            self.model.abandon(table_id)
            return
        key = self.user_id(owner) if table.type.per_user else None
        self.model.adopt(table_id, key, inv.model_rows(obs, table, table.star_columns))
        for name, s in list(self._subs.items()):
            sub = self._model_sub(s.model_id)
            if not sub.active or sub.table_id != table_id:
                continue  # after an ALTER the model no longer follows it (docs/contract.md)
            if not table.type.per_user or sub.user_id == key:
                self._resubscribe(name)

    def _relearn_table(self, table_id: TableId) -> None:
        table = self.model.table(table_id)
        if table is None:
            return
        for owner in self._readers(table):
            if self.model.lost(table_id):
                return
            self._relearn_scope(table_id, self.user_id(owner))

    def _resubscribe(self, name: str) -> None:
        """Drop a subscription and open it again with the same query (a fresh snapshot)."""
        s = self._subs.pop(name)
        old = self._model_sub(s.model_id)
        self._call(s.sub.unsubscribe)
        self._log_ws(s.actor, s)
        self.model.apply(Unsubscribe(s.model_id), Succeeded())
        if not self._fits(old):
            return
        op = Subscribe(
            old.user_id,
            f"{name}-{self._step_no}r{len(self.findings)}",
            old.table_id,
            old.projection,
            old.where,
            old.batch_size,
        )
        self._open(s.actor, name, op, paged=False)

    def _after_write(self, table_name: str, owner: str) -> None:
        """The incremental check: read back the written scope, then the table's subscribers."""
        table = self.model.table(self.table_id(table_name))
        if table is None:
            return
        self._query(owner, Select(self.user_id(owner), table.id))
        self._check_live(table.id)
        self._poll_jobs()

    # --- data -------------------------------------------------------------------------------

    def insert(
        self,
        actor: str,
        table: str,
        rows: Sequence[Mapping[str, Value]],
        as_user: str | None = None,
    ) -> None:
        with self._step("insert", actor, table, list(rows), as_user=as_user):
            op = Insert(
                self.user_id(actor),
                self.table_id(table),
                tuple(rows),
                as_user=self.user_id(as_user) if as_user else None,
            )
            self._write(actor, table, op, as_user)

    def update(
        self,
        actor: str,
        table: str,
        assignments: Mapping[str, Value],
        where: Pred | None = None,
        as_user: str | None = None,
    ) -> None:
        with self._step("update", actor, table, dict(assignments), where=where, as_user=as_user):
            op = Update(
                self.user_id(actor),
                self.table_id(table),
                tuple(assignments.items()),
                where,
                as_user=self.user_id(as_user) if as_user else None,
            )
            self._write(actor, table, op, as_user)

    def delete(
        self, actor: str, table: str, where: Pred | None = None, as_user: str | None = None
    ) -> None:
        with self._step("delete", actor, table, where=where, as_user=as_user):
            op = Delete(
                self.user_id(actor),
                self.table_id(table),
                where,
                as_user=self.user_id(as_user) if as_user else None,
            )
            self._write(actor, table, op, as_user)

    def _write(self, actor: str, table: str, op: Statement, as_user: str | None) -> None:
        obs = self._statement(actor, op)
        t = self.model.table(self.table_id(table))
        if obs.ok and t is not None:
            self._after_write(table, self._scope_owner(t, actor, as_user))
        else:
            self._poll_jobs()

    def select(
        self,
        actor: str,
        table: str,
        projection: Sequence[str] | None = None,
        where: Pred | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        as_user: str | None = None,
    ) -> None:
        with self._step(
            "select",
            actor,
            table,
            projection=list(projection) if projection is not None else None,
            where=where,
            order_by=list(order_by) or None,
            limit=limit,
            as_user=as_user,
        ):
            self._query(
                actor,
                Select(
                    self.user_id(actor),
                    self.table_id(table),
                    tuple(projection) if projection is not None else None,
                    where,
                    tuple(order_by),
                    limit,
                    as_user=self.user_id(as_user) if as_user else None,
                ),
            )
            self._poll_jobs()

    # --- flush and jobs ---------------------------------------------------------------------

    def flush(self, actor: str, table: str, wait: bool = False) -> None:
        """Start a flush job; with ``wait`` block until it ends, else it is checked when it
        ends (at ``wait_jobs`` or a later step)."""
        with self._step("flush", actor, table, wait=wait or None):
            self._flushed.add(table)
            if self._tombstone_over_cold(self.table_id(table)):
                self.events.add("flush-over-tombstone")
            self._statement(actor, Flush(self.user_id(actor), self.table_id(table)))
            self._poll_jobs(wait=wait)

    def _tombstone_over_cold(self, table_id: TableId) -> bool:
        """Whether a tombstone in the hot tier hides a cold row of the table (what a flush must
        keep, and KalamDB drops when the flush also writes live rows)."""
        for state in self.model.states:
            for scope in state.scopes(table_id).values():
                cold = scope.cold_keys()
                if any(v.deleted and v.key in cold for v in scope.hot):
                    return True
        return False

    def _pending_jobs(self) -> list[str]:
        ids: list[str] = []
        for state in self.model.states:
            ids += [j for j, job in state.jobs.items() if not job.status.finished]
        return list(dict.fromkeys(ids))

    def _poll_jobs(self, wait: bool = False) -> None:
        """Look up every job the model has running (one query), and settle the ended ones: the
        job's verdict, then its table's cold files."""
        pending = self._pending_jobs()
        if not pending:
            return
        admin = self._admin()
        if wait:
            rows = self._call(admin.wait_jobs, pending, timeout=JOB_TIMEOUT_S, poll=0.005)
        else:
            rows = self._call(admin.jobs_by_id, pending)
        ended = [j for j in pending if j in rows and JobStatus(rows[j].status or "new").finished]
        for job_id in ended:
            obs = observe.job(rows[job_id])
            now = _now_ms()
            self._exchange(
                "root",
                "sql",
                f"SELECT job_id, status, message FROM system.jobs WHERE job_id = '{job_id}'",
                {
                    "status": 200,
                    "columns": ["job_id", "status", "message"],
                    "rows": [[job_id, obs.status, obs.message]],
                },
                Window(now, now),
            )
            op = JobFinished(job_id)
            table_id = self.model.states[0].jobs[job_id].table_id
            passed = self._judge(inv.check_job(self.model, op, obs), f"job {job_id} of {table_id}")
            # Known or not, the model follows the status the server reports.
            self.model.apply(op, inv.outcome(obs))
            if not passed:
                # A job that ended otherwise than predicted may have flushed some scopes.
                self._relearn_table(table_id)
            self._check_cold(table_id)
            self._read_kept(table_id)

    def _read_kept(self, table_id: TableId) -> None:
        """Read the scopes where a tombstone hides a cold row: a flush must keep it there (KalamDB
        drops it when the flush also writes live rows, and the row comes back)."""
        table = self.model.table(table_id)
        if table is None:
            return
        for key, scope in self.model.states[0].scopes(table_id).items():
            if scope.kept and scope.cold:
                reader = self._logical(key) if key is not None else "root"
                self._query(reader, Select(self.user_id(reader), table_id))

    def wait_jobs(self) -> None:
        """Wait until every flush job started so far has ended, and check what it left."""
        with self._step("wait_jobs"):
            self._poll_jobs(wait=True)

    def _check_cold(self, table_id: TableId | None = None) -> None:
        """Every flushed scope's files, and that nothing landed anywhere else."""
        if self.target.skip_reason("data_dir"):
            return
        # A job still running may be writing files right now: its table's scopes (and the
        # listing) are checked once the model has seen it end.
        busy = {
            job.table_id
            for state in self.model.states
            for job in state.jobs.values()
            if not job.status.finished
        }
        scopes: list[tuple[TableId, str | None]] = []
        for state in self.model.states:
            scopes += [s for s in state.flushed_scopes() if s not in scopes]
        for tid, key in scopes:
            if (table_id is not None and tid != table_id) or tid in busy:
                continue
            # A scope re-learned after a known finding has no prediction of its files left.
            if any(st.scope(tid, key).relearned for st in self.model.states):
                continue
            state = self.model.states[0]
            directory = state.expected_cold(tid, key).directory
            obs = self._call(observe.cold_scope, directory)
            verdict = inv.check_cold(self.model, tid, key, obs)
            if not verdict.ok and any(st.scope(tid, key).clearable for st in self.model.states):
                # KalamDB's SHARED cleanup may be deleting the files right now: look again
                # once it has had the time to finish.
                self._call(time.sleep, CLEANUP_S)
                obs = self._call(observe.cold_scope, directory)
                verdict = inv.check_cold(self.model, tid, key, obs)
            if self._judge(verdict, f"cold files of {tid} scope {key or 'shared'}"):
                verdict.settle(self.model)
            else:
                self._relearn_scope(tid, key or "root")
        if busy:
            return
        bases = {s.base_directory for s in self.model.states[0].catalog.storages.values()}
        listing = self._call(
            observe.storage_listing, [Path(b) / self.namespace for b in sorted(bases)]
        )
        verdict = inv.check_storage(self.model, listing)
        if self._judge(verdict, "storage listing"):
            verdict.settle(self.model)

    # --- faults -----------------------------------------------------------------------------

    def break_storage(self, storage: str) -> None:
        """Make the storage's directory for this namespace unwritable (flushes to it fail)."""
        with self._step("break_storage", storage):
            if storage in self._blocked:
                return
            base = self._storage_base(storage)
            blocked = BlockedDirectory(base / self.namespace)
            self._call(blocked.block)
            self._blocked[storage] = blocked
            self.model.apply(SetStorageWritable(self._storage_id(storage), False), Succeeded())

    def repair_storage(self, storage: str) -> None:
        with self._step("repair_storage", storage):
            blocked = self._blocked.pop(storage, None)
            if blocked is None:
                return
            self._call(blocked.restore)
            self.model.apply(SetStorageWritable(self._storage_id(storage), True), Succeeded())

    def _storage_base(self, storage: str) -> Path:
        sid = self._storage_id(storage)
        return Path(self.model.states[0].catalog.storages[sid].base_directory)

    def crash(self) -> None:
        """SIGKILL the server and start it again on the same data: acknowledged writes stay."""
        with self._step("crash"):
            reason = self.target.skip_reason("kill")
            if reason is not None:
                raise ConfigError(f"crash needs process control: {reason}")
            self._poll_jobs(wait=True)
            for actor in list(self._lives):
                self._log_ws(actor)
            for live in self._lives.values():
                live.close()
            for s in self._subs.values():
                self.model.apply(Unsubscribe(s.model_id), Succeeded())
            self._lives.clear()
            self._ws_sent.clear()
            self._subs.clear()
            self.events.add("crash")
            self._call(self.target.kill)
            self._call(self.target.start)
            now = _now_ms()
            self._exchange("root", "fault", "SIGKILL; restart", {}, Window(now, now))
            self._read_every_scope()

    def pause(self, seconds: float) -> None:
        """Let time pass (STREAM rows expire)."""
        with self._step("pause", seconds):
            self._call(time.sleep, seconds)
            self._check_live(None)
            self._poll_jobs()

    # --- schema -----------------------------------------------------------------------------

    def create_table(
        self,
        actor: str,
        name: str,
        kind: TableType,
        storage: str = "local",
        access: Any = None,
        ttl_seconds: int | None = None,
    ) -> None:
        with self._step(
            "create_table",
            actor,
            name,
            kind,
            storage=storage if storage != "local" else None,
            access=access,
            ttl_seconds=ttl_seconds,
        ):
            table = Table(
                self.table_id(name),
                kind,
                COLUMNS,
                storage_id=self._storage_id(storage),
                access_level=access,
                ttl_seconds=ttl_seconds,
            )
            self._statement(actor, CreateTable(self.user_id(actor), table))
            self._poll_jobs()

    def drop_table(self, actor: str, table: str) -> None:
        with self._step("drop_table", actor, table):
            self._poll_jobs(wait=True)
            self._statement(actor, DropTable(self.user_id(actor), self.table_id(table)))
            self._check_live(self.table_id(table))

    def add_column(self, actor: str, table: str, column: Column) -> None:
        with self._step("add_column", actor, table, column):
            t = self.model.table(self.table_id(table))
            if t is not None and t.former_type(column.name) is not None:
                self.events.add("column-readded")
            self._statement(
                actor, AlterAddColumn(self.user_id(actor), self.table_id(table), column)
            )
            self._after_ddl(table)

    def drop_column(self, actor: str, table: str, column: str) -> None:
        with self._step("drop_column", actor, table, column):
            self._statement(
                actor, AlterDropColumn(self.user_id(actor), self.table_id(table), column)
            )
            self._after_ddl(table)

    def _after_ddl(self, table: str) -> None:
        t = self.model.table(self.table_id(table))
        if t is not None:
            owner = self._readers(t)[0]
            self._query(owner, Select(self.user_id(owner), t.id))
        self._check_live(self.table_id(table))
        self._poll_jobs()

    # --- live -------------------------------------------------------------------------------

    def _live(self, actor: str) -> LiveClient:
        live = self._lives.get(actor)
        if live is None:
            live = self._call(self.target.live, self._client(actor))
            self._lives[actor] = live
            self._ws_sent[actor] = 0
        return live

    def _log_ws(self, actor: str, *extra: _Sub) -> None:
        """Copy what the actor's socket sent, and what its subscriptions received, since the
        last call into the transcript, in time order."""
        new: list[tuple[float, str, str, Mapping[str, Any]]] = []
        live = self._lives.get(actor)
        if live is not None:
            sent = live.sent
            start = self._ws_sent.get(actor, 0)
            new += [(at, "ws-send", _json(m), {}) for at, m in sent[start:]]
            self._ws_sent[actor] = len(sent)
        handles = [s for s in self._subs.values() if s.actor == actor]
        for s in [*handles, *(x for x in extra if x not in handles)]:
            messages = s.sub.messages
            new += [(m.at, "ws-recv", s.sub.id, dict(m.payload)) for m in messages[s.logged :]]
            s.logged = len(messages)
        for at, kind, request, reply in sorted(new, key=lambda e: e[0]):
            ms = int(at * 1000)
            self._exchange(actor, kind, request, reply, Window(ms, ms))

    def subscribe(
        self,
        actor: str,
        sub: str,
        table: str,
        projection: Sequence[str] | None = None,
        where: Pred | None = None,
        batch_size: int = 1000,
        paged: bool = False,
    ) -> None:
        """Subscribe; with ``paged`` only the first snapshot page is fetched (see ``next_pages``)."""
        with self._step(
            "subscribe",
            actor,
            sub,
            table,
            projection=list(projection) if projection is not None else None,
            where=where,
            batch_size=batch_size,
            paged=paged or None,
        ):
            if sub in self._subs:
                raise ConfigError(f"subscription {sub!r} is already open")
            op = Subscribe(
                self.user_id(actor),
                f"{sub}-{self._step_no}",
                self.table_id(table),
                tuple(projection) if projection is not None else None,
                where,
                batch_size,
            )
            self._open(actor, sub, op, paged)

    def _open(self, actor: str, sub: str, op: Subscribe, paged: bool) -> None:
        live = self._live(actor)
        sent = _now_ms()
        handle = self._call(
            live.subscribe,
            op.to_sql(),
            batch_size=op.batch_size,
            from_seq=op.from_seq,
            sub_id=op.sub_id,
            wait=False,
            auto_page=not paged,
        )
        predicate: Callable[[Subscription], bool] = (
            (lambda s: bool(s.batches) or s.ready) if paged else (lambda s: s.ready)
        )
        with contextlib.suppress(LiveError):
            self._call(handle.wait_for, predicate, timeout=10.0)
        at = Window(sent, max(sent, _now_ms()))
        obs = observe.subscription(handle, quiescent=False)
        entry = _Sub(actor, op.sub_id, handle, paged)
        self._log_ws(actor, entry)
        outcome = Succeeded() if obs.error_code is None else Failed(obs.error_code)
        self.model.apply(op, outcome, at)
        passed = self._judge(
            inv.check_subscribe(self.model, op, obs, at), f"subscribe {op.sub_id}: {op.to_sql()}"
        )
        if op.sub_id not in self.model.states[0].subs:
            # The server took a subscription the model refuses (a known finding), or one on a
            # table the model gave up on: nothing to follow.
            if obs.error_code is None:
                self._call(handle.unsubscribe)
            return
        if not passed:
            self.model.distrust_snapshot(op.sub_id)
        if obs.error_code is None:
            # ``paged`` stays as drawn even if one page held everything: preconditions read
            # it, and they must not depend on timing.
            self._subs[sub] = entry

    def next_pages(self, sub: str) -> None:
        """Fetch the rest of a paged snapshot, one ``next_batch`` at a time."""
        with self._step("next_pages", sub):
            s = self._subs.get(sub)
            if s is not None and s.paged:
                self._page_rest(sub, s)

    def _page_rest(self, name: str, s: _Sub) -> None:
        while not s.sub.ready:
            count = len(s.sub.batches)
            self._call(s.sub.request_next_batch)
            with contextlib.suppress(LiveError):
                self._call(
                    s.sub.wait_for,
                    lambda x, c=count: len(x.batches) > c or x.ready,
                    timeout=5.0,
                )
            if len(s.sub.batches) == count and not s.sub.ready:
                break
        s.paged = False
        self._check_sub(name, quiescent=False)

    def unsubscribe(self, sub: str) -> None:
        with self._step("unsubscribe", sub):
            s = self._subs.pop(sub, None)
            if s is None:
                return
            self._check_sub_handle(s, quiescent=False)
            self._call(s.sub.unsubscribe)
            self._log_ws(s.actor, s)
            self.model.apply(Unsubscribe(s.model_id), Succeeded())

    def resume(self, actor: str) -> None:
        """Drop the actor's socket, reconnect, and resume each subscription from its last _seq."""
        with self._step("resume", actor):
            live = self._lives.get(actor)
            if live is None or not any(s.actor == actor for s in self._subs.values()):
                return
            # The socket carries every subscription of the actor: one still paging its
            # snapshot finishes first, or dropping the socket would take it down unmodelled.
            for name, s in list(self._subs.items()):
                if s.actor == actor and s.paged:
                    self._page_rest(name, s)
            for s in [s for s in self._subs.values() if s.actor == actor]:
                self._check_sub_handle(s, quiescent=False)
            # (a check may have re-subscribed one after a known finding)
            mine = {k: s for k, s in self._subs.items() if s.actor == actor}
            self._call(live.drop)
            self._call(live.reconnect)
            now = _now_ms()
            self._exchange(
                actor, "fault", "WebSocket reset under the client; reconnect", {}, Window(now, now)
            )
            for name, s in mine.items():
                self.model.apply(Unsubscribe(s.model_id), Succeeded())
                del self._subs[name]
                if not self._fits(self._model_sub(s.model_id)):
                    continue  # an ALTER changed what its query names: it cannot resume
                # The resume point must be ordered against every row: read the scope first.
                table_id = self._model_sub(s.model_id).table_id
                self._query(actor, Select(self.user_id(actor), table_id))
                old = self._model_sub(s.model_id)
                op = Subscribe(
                    old.user_id,
                    f"{name}-{self._step_no}",
                    old.table_id,
                    old.projection,
                    old.where,
                    old.batch_size,
                    from_seq=s.sub.max_seq if s.sub.max_seq is not None else old.from_seq,
                )
                self._open(actor, name, op, paged=False)

    def _fits(self, sub: Any) -> bool:
        """Whether a subscription's query still names columns of the types it was opened with."""
        table = self.model.table(sub.table_id)
        if table is None or sub.schema is None:
            return table is not None
        names = set(sub.projection or ()) | where_columns(sub.where)
        return all(
            table.column(n) is not None and table.type_of(n) is sub.schema.type_of(n) for n in names
        )

    def _model_sub(self, model_id: str) -> Any:
        return self.model.states[0].subs[model_id]

    def _expected_changes(self, model_id: str) -> int:
        counts = [
            sum(1 for c in s.subs[model_id].changes if not c.optional)
            for s in self.model.states
            if model_id in s.subs
        ]
        return min(counts, default=0)

    def _check_live(self, table_id: TableId | None) -> None:
        for name, s in list(self._subs.items()):
            if s.paged:
                continue
            if table_id is not None and self._model_sub(s.model_id).table_id != table_id:
                continue
            want = self._expected_changes(s.model_id)
            try:
                self._call(
                    s.sub.wait_for, lambda x, n=want: _change_rows(x) >= n, timeout=CHANGE_WAIT_S
                )
                quiescent = False
            except LiveError:
                quiescent = True  # waited long enough: what has not come is lost
            self._check_sub(name, quiescent=quiescent)

    def _readers(self, table: Table) -> list[str]:
        """One reader per scope: every user of a per-user table, root for a SHARED one."""
        return list(USERS) if table.type.per_user else ["root"]

    def _read_every_scope(self) -> None:
        for tid in list(self.model.states[0].catalog.tables):
            table = self.model.table(tid)
            if tid.namespace != self.namespace or table is None:
                continue
            for owner in self._readers(table):
                self._query(owner, Select(self.user_id(owner), tid))

    def _check_sub(self, name: str, *, quiescent: bool) -> None:
        self._check_sub_handle(self._subs[name], quiescent=quiescent)

    def _check_sub_handle(self, s: _Sub, *, quiescent: bool) -> None:
        self._log_ws(s.actor, s)
        obs = observe.subscription(s.sub, quiescent=quiescent)
        verdict = inv.check_subscription(self.model, s.model_id, obs)
        sub = self._model_sub(s.model_id)
        if self._judge(verdict, f"subscription {s.model_id}: {sub.sql()}"):
            verdict.settle(self.model)
            return
        # A known finding about a subscription: about the snapshot's form only, stop judging
        # the snapshot; else start again from a fresh one.
        if not any(v.diverged for v in verdict.violations):
            self.model.distrust_snapshot(s.model_id)
            return
        name = next((n for n, x in self._subs.items() if x is s), None)
        if name is not None:
            self._resubscribe(name)

    # --- the final sweep --------------------------------------------------------------------

    def sweep(self) -> None:
        """Check everything at the end of an example: jobs, every scope, cold files, streams."""
        with self._step("sweep"):
            self._poll_jobs(wait=True)
            for name, s in list(self._subs.items()):
                if s.paged:
                    self._page_rest(name, s)
            self._read_every_scope()
            self._check_cold()
            for s in self._subs.values():
                with contextlib.suppress(LiveError):
                    self._call(s.sub.wait_quiet, QUIET_S, timeout=5.0)
            for name in list(self._subs):
                self._check_sub(name, quiescent=True)


def _tolerating(signatures: frozenset[str]) -> Triage:
    def triage(violation: Violation, where: str, events: frozenset[str]) -> str | None:
        return violation.signature if violation.signature in signatures else None

    return triage


def _change_rows(sub: Subscription) -> int:
    return sum(max(len(c.rows), len(c.old_values), 1) for c in sub.changes)


def _reply(obs: StatementObservation | QueryObservation) -> dict[str, Any]:
    out: dict[str, Any] = {"status": obs.status}
    for key in ("code", "message", "row_count", "job_id"):
        value = getattr(obs, key, None)
        if value is not None:
            out[key] = value
    if obs.lost:
        out["lost"] = True
    return out


def _json(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=False)


__all__ = [
    "Driver",
    "Exchange",
    "FailedExample",
    "InvariantViolation",
    "KnownFinding",
    "StepStats",
    "Triage",
]
