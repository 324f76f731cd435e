"""The driver's core: the example's world and names, recording every step, and the one way a
statement flows (adapter call, then the invariants against the model, then the model update),
with re-learning after a known finding."""

from __future__ import annotations

import abc
import contextlib
import functools
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from attrs import define, evolve, field

from kalamfuzz import invariants as inv
from kalamfuzz.adapters import observe
from kalamfuzz.adapters.faults import BlockedDirectory
from kalamfuzz.adapters.proxy import Fault, FaultProxy
from kalamfuzz.adapters.sql import SqlClient
from kalamfuzz.adapters.target import Target
from kalamfuzz.adapters.values import redact_sql
from kalamfuzz.adapters.websocket import LiveClient, Subscription
from kalamfuzz.invariants.violation import Verdict
from kalamfuzz.machines.codegen import Step
from kalamfuzz.machines.driver.ledger import Ledger, StepStats
from kalamfuzz.machines.driver.transcript import (
    Exchange,
    FailedExample,
    InvariantViolation,
    KnownFinding,
    Triage,
    now_ms,
    reply_of,
)
from kalamfuzz.machines.world import STORAGES, USERS
from kalamfuzz.model import (
    Delete,
    Insert,
    Model,
    Role,
    Select,
    Table,
    TableId,
    Update,
)
from kalamfuzz.model.catalog import Column
from kalamfuzz.model.ops import Statement
from kalamfuzz.model.rows import Window
from kalamfuzz.model.state import MAX_QUERY_LIMIT
from kalamfuzz.model.values import Value
from kalamfuzz.model.where import Between, Col, InList, Lit, Pred
from kalamfuzz.observations import (
    JobObservation,
    QueryObservation,
    StatementObservation,
)

#: How long a step waits for the live changes the model expects before calling them lost.
CHANGE_WAIT_S = 1.0


def change_wait(changes: int) -> float:
    """How long to wait for ``changes`` live changes: CHANGE_WAIT_S, and more for a burst
    (a scenario's thousand inserts take the server longer to fan out than one step's few)."""
    return max(CHANGE_WAIT_S, changes / 500)


#: How long ``wait_jobs`` waits for a flush job before the example fails.
JOB_TIMEOUT_S = 30.0
#: Quiet period that makes a subscription quiescent in the final sweep.
QUIET_S = 0.1
#: How long KalamDB's asynchronous SHARED cold cleanup may take to delete a scope's files.
CLEANUP_S = 0.5


D = TypeVar("D", bound="DriverCore")
P = ParamSpec("P")
R = TypeVar("R")


def checks(method: Callable[Concatenate[D, P], R]) -> Callable[Concatenate[D, P], R]:
    """The server calls the method makes check what the steps did (read-backs, job polls, the
    sweep): ``kalamfuzz bench`` counts them apart from the steps' own operations."""

    def checking(self: D, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.checking():
            return method(self, *args, **kwargs)

    functools.update_wrapper(checking, method)
    return checking


def _key_read(pk: Column, keys: Sequence[Value]) -> Pred:
    """The WHERE that reads rows back by key: a range when the keys run without a gap."""
    ints = [k for k in keys if isinstance(k, int) and not isinstance(k, bool)]
    if len(ints) == len(keys) and max(ints) - min(ints) == len(ints) - 1:
        return Between(Col(pk.name), Lit(min(ints), pk.type), Lit(max(ints), pk.type))
    return InList(Col(pk.name), tuple(Lit(k, pk.type) for k in keys))


@define
class _Sub:
    """A live subscription the driver holds, under its logical name."""

    actor: str
    model_id: str
    sub: Subscription
    paged: bool
    #: Messages already copied to the transcript.
    logged: int = 0


#: Steps that leave the read-back of earlier writes for later: plain writes (reading a scope
#: once after several writes checks them all), and a SELECT, which reads back its own table's
#: writes first.
_WRITES_READ_LAZILY = frozenset({"insert", "update", "delete", "select"})


def _tag() -> str:
    return secrets.token_hex(3)


@define
class DriverCore(abc.ABC):
    """Runs steps against ``target`` in lock-step with the model; the concerns build on it
    (``subscriptions``, ``jobs``, ``data``, ``schema``; ``Driver`` holds the lifecycle)."""

    target: Target
    #: Called with every request/response pair (the JSONL history, the regression transcript).
    on_exchange: list[Callable[[Exchange], None]] = field(factory=list)
    stats: dict[str, StepStats] = field(factory=dict)
    #: The current example's program: its steps as data (``codegen.source`` renders them).
    program: list[Step] = field(factory=list)
    transcript: list[Exchange] = field(factory=list)
    model: Model = field(init=False)
    namespace: str = field(init=False, default="")
    _users: dict[str, str] = field(init=False, factory=dict)
    _clients: dict[str, SqlClient] = field(init=False, factory=dict)
    _lives: dict[str, LiveClient] = field(init=False, factory=dict)
    _subs: dict[str, _Sub] = field(init=False, factory=dict)
    #: Messages of each actor's socket already copied to the transcript.
    _ws_sent: dict[str, int] = field(init=False, factory=dict)
    _storages: dict[str, str] = field(init=False, factory=dict)
    _blocked: dict[str, BlockedDirectory] = field(init=False, factory=dict)
    #: The network-fault proxy (made on first use) and each actor's client through it.
    _proxy: FaultProxy | None = field(init=False, default=None)
    _proxied: dict[str, SqlClient] = field(init=False, factory=dict)
    #: Extra connections of each actor, for calls sent at once (made once: a client costs
    #: 50-90 ms to build, more than a round's calls).
    _lanes: dict[tuple[str, int], SqlClient] = field(init=False, factory=dict)
    _flushed: set[str] = field(init=False, factory=set)
    #: Scopes written since they were last read back: (table, logical owner) -> the model's
    #: clock before the first such write. A write whose reply was unambiguous is read back
    #: lazily, with the next step that reads its table or is not a plain write (issue 25).
    _unread: dict[tuple[TableId, str], int] = field(init=False, factory=dict)
    _examples: int = field(init=False, default=0)
    _step_no: int = field(init=False, default=0)
    #: Where the time went, and what the server calls were for.
    ledger: Ledger = field(init=False, factory=Ledger)
    #: The model's clock when the example's setup ended: what came after, its steps wrote.
    _baseline: int = field(init=False, default=0)
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
    #: ``column-readded`` (an ADD COLUMN of a name dropped before), ``flush-over-tombstone``,
    #: ``stream-key-repeated`` (known.EVENTS).
    events: set[str] = field(init=False, factory=set)
    #: Text each tenant's marker row carries in its own scope this example (hostile steps): no
    #: answer to another user may carry it.
    _markers: dict[str, str] = field(init=False, factory=dict)
    #: The requests that made the users and storages every example shares (for reports).
    setup: list[Exchange] = field(init=False, factory=list)
    #: Every job end the example saw, in order (a scenario reads a failed job's message).
    ended_jobs: list[JobObservation] = field(init=False, factory=list)
    #: The cast: logical user -> role, and the extra storages (the machines' fixed world by
    #: default; a scenario brings its own).
    cast: Mapping[str, Role] = field(factory=lambda: dict(USERS))
    storages: tuple[str, ...] = STORAGES
    #: Rows every example's tables start with in each scope, outside the keys rules draw
    #: (``kalamfuzz bench`` measures how a step's cost grows with them).
    background_rows: int = 0
    #: What makes this driver's server names its own (``kf_TAG_alice``, ``kf_TAG_3``): random,
    #: so runs can share a server; given, to make the same names again (the bench's ceiling).
    tag: str = field(factory=_tag)

    # --- names and recording ------------------------------------------------------------------

    @abc.abstractmethod
    def _resubscribe(self, name: str) -> None:
        """Drop a subscription and open it again with the same query (``subscriptions``)."""

    @abc.abstractmethod
    def _decide(self) -> None:
        """Read what tells the model's possible states apart (``Driver``)."""

    def _admin(self) -> SqlClient:
        if "root" not in self._clients:
            self._clients["root"] = self.target.client()
        return self._clients["root"]

    def client(self, actor: str) -> SqlClient:
        """``actor``'s logged-in client (root: the admin)."""
        if actor == "root":
            return self._admin()
        return self._clients[actor]

    def table_id(self, name: str) -> TableId:
        """``name`` in the example's namespace; ``ns.name`` in its extra namespace ``ns``."""
        ns, dot, table = name.rpartition(".")
        return TableId(self.namespace_id(ns) if dot else self.namespace, table)

    def namespace_id(self, name: str) -> str:
        """The server's name of the example's extra namespace ``name``."""
        return f"{self.namespace}_{name}"

    def _ours(self, namespace: str) -> bool:
        return namespace == self.namespace or namespace.startswith(self.namespace + "_")

    def user_id(self, name: str) -> str:
        return "root" if name == "root" else self._users[name]

    def _storage_id(self, name: str) -> str:
        return "local" if name == "local" else self._storages[name]

    def _scope_owner(self, table: Table, actor: str, as_user: str | None) -> str:
        """The logical user whose partition a statement touches (root for SHARED tables)."""
        if not table.type.per_user:
            return "root"
        return as_user or actor

    @property
    def steps(self) -> int:
        """Steps taken in this example."""
        return self._step_no

    @contextlib.contextmanager
    def _step(self, name: str, *args: object, **kwargs: object) -> Iterator[None]:
        # The sweep is timed like a step but not part of the program: regression files end
        # with their own ``d.sweep()``.
        if self._recording and name != "sweep":
            self._step_no += 1
            self.program.append(Step.of(name, args, kwargs))
        try:
            with self.ledger.accounted(self.stats, name):
                # the sweep reads every scope, those the example wrote first
                if name != "sweep" and name not in _WRITES_READ_LAZILY:
                    self._read_unread()
                yield
                if self.model.undecided:
                    self._decide()
        except BaseException as exc:
            self.failed = True
            self.last_failure = FailedExample(
                tuple(self.program),
                tuple(self.transcript),
                exc,
                tuple(dict.fromkeys(f.signature for f in self.findings)),
            )
            raise

    def checking(self) -> contextlib.AbstractContextManager[None]:
        """Server calls inside check what the steps did (read-backs, job polls, the sweep)."""
        return self.ledger.checking()

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one adapter call, counting its time as the server's."""
        self.ledger.call()
        with self.ledger.spending("io"):
            return fn(*args, **kwargs)

    def _judging(self, check: Callable[..., Verdict], *args: Any) -> Verdict:
        """Run an invariant check, counting its time as the invariants'."""
        with self.ledger.spending("invariants"):
            return check(*args)

    def _wait(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Wait for live events or sit out a pause, counting the time as waiting."""
        with self.ledger.spending("waiting"):
            return fn(*args, **kwargs)

    def _exchange(
        self,
        actor: str,
        kind: str,
        request: str,
        reply: Mapping[str, Any],
        window: Window,
        *,
        redact: bool = True,
    ) -> None:
        """Record one request and its reply (``redact``: hide passwords, unless the password
        is what the finding is about, on an account made for it and dropped again)."""
        ex = Exchange(
            self._step_no,
            actor,
            kind,
            redact_sql(request) if redact else request,
            reply,
            window.sent_ms,
            window.recv_ms,
            check=self.ledger.checking_now,
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

    def _statement(
        self, actor: str, op: Statement, fault: Fault | None = None
    ) -> StatementObservation:
        """Send ``op`` as ``actor`` (through the proxy, meeting ``fault``, if given), then judge
        and apply the reply."""
        client = self.client(actor) if fault is None else self._faulty(actor, fault)
        sent = now_ms()
        try:
            obs: StatementObservation = self._call(observe.statement, client, op.to_sql())
        finally:
            if fault is not None and self._proxy is not None:
                self._proxy.disarm()  # a request that never reached the proxy leaves it armed
        if fault is not None:
            self._exchange(actor, "fault", f"network: {fault}", {}, Window(sent, sent))
        return self._settle(actor, op, obs, Window(sent, max(sent, now_ms())))

    def _faulty(self, actor: str, fault: Fault) -> SqlClient:
        """``actor``'s client through the fault proxy, with ``fault`` armed for its next request."""
        if self._proxy is None:
            self._proxy = FaultProxy(self.target.url)
        client = self._proxied.get(actor)
        if client is None:
            client = self._proxied[actor] = self.client(actor).through(self._proxy.url)
        self._proxy.arm(fault)
        return client

    def _settle(
        self, actor: str, op: Statement, obs: StatementObservation, at: Window
    ) -> StatementObservation:
        """Record, judge and apply a statement's reply that came at ``at``."""
        sql = op.to_sql()
        self._exchange(actor, "sql", sql, reply_of(obs), at)
        # One execution per possible state: the checks judge these forks, apply advances them.
        with self.ledger.spending("model"):
            forks = self.model.run(op, at)
        passed = self._judge(self._judging(inv.check_statement_reply, forks, op, obs, at), sql)
        # A known finding: the model keeps what the server answered (a state that agrees, or
        # the one the model cannot describe), and a write re-learns its scope from a read.
        with self.ledger.spending("model"):
            self.model.apply(op, inv.outcome(obs), at, forks)
        if not passed and isinstance(op, Insert | Update | Delete):
            self._relearn_scope(op.table_id, op.as_user or op.actor)
        return obs

    def _read(self, actor: str, sql: str) -> tuple[QueryObservation, Window]:
        """Send a query as ``actor`` and record it with its rows; nothing is judged here."""
        sent = now_ms()
        obs: QueryObservation = self._call(observe.query, self.client(actor), sql)
        at = Window(sent, max(sent, now_ms()))
        self._record_read(actor, sql, obs, at)
        return obs, at

    def _record_read(self, actor: str, sql: str, obs: QueryObservation, at: Window) -> None:
        reply = reply_of(obs) | {"columns": list(obs.columns), "rows": [list(r) for r in obs.rows]}
        self._exchange(actor, "sql", sql, reply, at)

    def _query(self, actor: str, op: Select) -> QueryObservation:
        sql = op.to_sql()
        obs, at = self._read(actor, sql)
        self._judge_read(op, sql, obs, at)
        return obs

    def _queries(self, actor: str, ops: Sequence[Select]) -> None:
        """Send reads of ``actor`` as one multi-statement request and judge each result as if
        it had come alone: the transcript holds one exchange per statement, sharing the
        request's window. A request that fails as a whole (recorded as it was sent) is sent
        again one statement at a time, so each failure is judged for what it is."""
        if len(ops) < 2:
            for op in ops:
                self._query(actor, op)
            return
        sqls = [op.to_sql() for op in ops]
        sent = now_ms()
        observed = self._call(observe.queries, self.client(actor), sqls)
        at = Window(sent, max(sent, now_ms()))
        if isinstance(observed, QueryObservation):
            self._exchange(actor, "sql", "; ".join(sqls), reply_of(observed), at)
            for op in ops:
                self._query(actor, op)
            return
        for op, sql, obs in zip(ops, sqls, observed, strict=True):
            self._record_read(actor, sql, obs, at)
            self._judge_read(op, sql, obs, at)

    def _judge_read(self, op: Select, sql: str, obs: QueryObservation, at: Window) -> None:
        with self.ledger.spending("model"):
            forks = self.model.run(op, at)
        verdict = self._judging(inv.check_query, forks, op, obs, at)
        table = self.model.table(op.table_id)
        diverged = any(v.diverged for v in verdict.violations)
        if diverged and op.projection is not None and table and table.type.per_user:
            # Columns left out may hide whose row a wrong one is (two users' rows alike in the
            # columns read): the whole rows, read again at once, speak first; judged and
            # applied, they teach the model all the narrow read could.
            self._query(self._logical(op.actor), evolve(op, projection=None))
            self._judge(verdict, sql)
            return
        named = (op.projection or table.star_columns) if table is not None else None
        if self._judge(verdict, sql) or not diverged:
            with self.ledger.spending("model"):
                self.model.apply(op, inv.outcome(obs, table, named), at, forks)
        elif obs.ok:
            # A read known to show other data teaches no _seq; a full read re-learns the scope.
            self._relearn_scope(op.table_id, op.as_user or op.actor)

    def _logical(self, user_id: str) -> str:
        return next((n for n, u in self._users.items() if u == user_id), "root")

    @checks
    def _relearn_scope(self, table_id: TableId, user_id: str) -> None:
        """Read the whole scope the known finding was about and let the model adopt it; the
        subscriptions watching it start again from a fresh snapshot."""
        table = self.model.table(table_id)
        if table is None:
            return
        owner = self._logical(user_id) if table.type.per_user else "root"
        obs, _ = self._read(owner, f"SELECT * FROM {table_id} LIMIT {MAX_QUERY_LIMIT}")
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

    def _readers(self, table: Table) -> list[str]:
        """One reader per scope: every user of a per-user table, root for a SHARED one."""
        return list(self.cast) if table.type.per_user else ["root"]

    def _read_every_scope(self) -> None:
        self._read_tables(
            [t for t in self.model.states[0].catalog.tables if self._ours(t.namespace)]
        )

    @checks
    def _read_tables(self, table_ids: Sequence[TableId]) -> None:
        """Read every scope of the tables, each reader's reads in one request (each read
        checked as usual): what the example wrote in them (all of it while one read returns
        all). Readers whose scopes wait to be read back go first, in the order they were
        written."""
        reads: dict[str, list[Select]] = {o: [] for t, o in self._unread if t in table_ids}
        for tid in table_ids:
            for key in [k for k in self._unread if k[0] == tid]:
                del self._unread[key]
            table = self.model.table(tid)
            if table is None:
                continue
            for owner in self._readers(table):
                op = self._read_back_op(table, owner, owner, self._baseline)
                if op is not None:
                    reads.setdefault(owner, []).append(op)
        for reader, ops in reads.items():
            self._queries(reader, ops)

    def _defer_read_back(self, table_id: TableId, owner: str, since: int) -> None:
        self._unread[table_id, owner] = min(since, self._unread.get((table_id, owner), since))

    @checks
    def _read_unread(self, table_id: TableId | None = None) -> None:
        """Read back the scopes written since their last read (only ``table_id``'s, if given)."""
        for tid, owner in [k for k in self._unread if table_id in (None, k[0])]:
            since = self._unread.pop((tid, owner))
            table = self.model.table(tid)
            if table is not None:
                self._read_back(table, owner, owner, since)

    @checks
    def _read_back(self, table: Table, reader: str, owner: str, since: int) -> None:
        """Read, as ``reader``, the scope of ``owner`` a write wrote after model time ``since``
        (see ``_read_back_op``)."""
        op = self._read_back_op(table, reader, owner, since)
        if op is not None:
            self._query(reader, op)

    def _read_back_op(self, table: Table, reader: str, owner: str, since: int) -> Select | None:
        """The read, as ``reader``, of the scope of ``owner`` a write wrote after model time
        ``since``: all of it while one read returns all of it. Past that, the keys the write
        touched in any possible state, the first 1,000 of them: one read, like the whole-scope
        read it replaces, but of rows the write touched instead of any 1,000 of the scope, and
        at a cost that does not grow with the table (the reply's row count covers the rest).
        None when there is nothing to read."""
        state = self.model.states[0]
        written, read = (state.scope_key(table, self.user_id(u)) for u in (owner, reader))
        scopes = [st.scope(table.id, written) for st in self.model.states]
        seen = [st.scope(table.id, read) for st in self.model.states]
        if all(len(s.latest()) <= MAX_QUERY_LIMIT for s in scopes + seen):
            return Select(self.user_id(reader), table.id)
        keys = {v.key for s in scopes for v in s.since(since)}
        if not keys:
            return None  # it touched nothing, as its reply said (checked)
        # a primary key's values are of one type and never NULL, so they sort; the key only
        # tells the type checker that ``Value``'s None sorts too
        first = sorted(keys, key=lambda k: (k is None, k))[:MAX_QUERY_LIMIT]
        return Select(self.user_id(reader), table.id, where=_key_read(table.pk, first))

    def _model_sub(self, model_id: str) -> Any:
        return self.model.states[0].subs[model_id]
