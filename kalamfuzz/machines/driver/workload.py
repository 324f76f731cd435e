"""Steps a scenario needs beyond the machines' rules: writes sent at once from many clients,
whole-scope reads past the server's row cap, and the ``system.live`` registry. Each is checked
against the model like any other step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from attrs import frozen

from kalamfuzz import invariants as inv
from kalamfuzz.adapters import observe
from kalamfuzz.errors import ConfigError
from kalamfuzz.machines.driver.schema import SchemaSteps
from kalamfuzz.machines.driver.transcript import now_ms
from kalamfuzz.model import Delete, Insert, Join, Select, TableId, Update
from kalamfuzz.model.exprs import Assigned
from kalamfuzz.model.ops import Statement
from kalamfuzz.model.rows import Window
from kalamfuzz.model.state import MAX_QUERY_LIMIT
from kalamfuzz.model.values import Value
from kalamfuzz.model.where import And, Cmp, Col, Lit, Pred
from kalamfuzz.observations import LiveRegistryObservation, StatementObservation

#: Scopes a round may write while a flush job may still run (each doubles the model's states).
RACING_SCOPES = 3


class ExpectationFailed(AssertionError):
    """A scenario's own number (from its seed text) differs from what the server showed, while
    every read agreed with the model: the model and the seed disagree, which is a finding too.
    ``explained``: the data the number is about is what the model re-learned from the server
    after a known finding (or a snapshot it stopped trusting after one): the known bug changed
    it, and the seed's arithmetic cannot hold."""

    def __init__(self, what: str, explained: bool = False) -> None:
        super().__init__(what)
        self.explained = explained


@frozen
class Write:
    """One write of a ``parallel`` round: an INSERT of ``rows``, an UPDATE of ``assignments``,
    or (``delete``) a DELETE, each with an optional ``where`` and ``as_user``."""

    actor: str
    table: str
    rows: Sequence[Mapping[str, Value]] = ()
    assignments: Mapping[str, Assigned] | None = None
    where: Pred | None = None
    as_user: str | None = None
    delete: bool = False


class WorkloadSteps(SchemaSteps):
    def _op(self, w: Write) -> Statement:
        user = self.user_id(w.actor)
        tid = self.table_id(w.table)
        as_user = self.user_id(w.as_user) if w.as_user else None
        if w.rows:
            return Insert(user, tid, tuple(w.rows), as_user=as_user)
        if w.assignments:
            return Update(user, tid, tuple(w.assignments.items()), w.where, as_user=as_user)
        if w.delete:
            return Delete(user, tid, w.where, as_user=as_user)
        raise ConfigError(f"{w!r} writes nothing: give rows, assignments or delete=True")

    def _scope(self, w: Write) -> tuple[TableId, str]:
        tid = self.table_id(w.table)
        table = self.model.table(tid)
        return tid, (self._scope_owner(table, w.actor, w.as_user) if table else "root")

    def _by_scope(self, writes: Sequence[Write]) -> dict[tuple[TableId, str], list[Write]]:
        """The round's writes by the scope each touches, checked to commute: the model applies
        them in any order, so in one scope each must name its rows by primary key (INSERT rows,
        or ``WHERE pk = v``), and no key twice."""
        by_scope: dict[tuple[TableId, str], list[Write]] = {}
        for w in writes:
            by_scope.setdefault(self._scope(w), []).append(w)
        for (tid, owner), ws in by_scope.items():
            if len(ws) == 1:
                continue
            table = self.model.table(tid)
            pk = table.pk.name if table is not None else "id"
            keys = [_keys(w, pk) for w in ws]
            flat = [k for ks in keys if ks is not None for k in ks]
            if any(ks is None for ks in keys) or len(flat) != len(set(flat)):
                raise ConfigError(
                    f"parallel writes to {tid} as {owner} may not commute: in one round, "
                    "write a scope's rows by distinct primary keys only, or use separate rounds"
                )
        return by_scope

    def parallel(self, writes: Sequence[Write]) -> None:
        """Send every write at once, each from its actor's client in a thread of its own, then
        judge each reply, read back each written scope and check the subscriptions."""
        with self._step("parallel", list(writes)):
            by_scope = self._by_scope(writes)
            self._poll_jobs()  # a job seen ended before the round is sent has no cut in it
            crowded = any(len(ws) > 1 for ws in by_scope.values())
            if self._pending_jobs() and (crowded or len(by_scope) > RACING_SCOPES):
                # A job still running may take each scope's write or not: the model keeps
                # both, per scope, so k scopes make 2^k states. And statements into one scope
                # commit in an order the client cannot know, where the model cuts between
                # statements in its own order. Past that, the round waits for the job.
                self._poll_jobs(wait=True)
            ops = [self._op(w) for w in writes]

            def send(i: int) -> tuple[StatementObservation, Window]:
                sent = now_ms()
                obs = observe.statement(self.client(writes[i].actor), ops[i].to_sql())
                return obs, Window(sent, max(sent, now_ms()))

            with ThreadPoolExecutor(max_workers=max(1, len(ops))) as pool:
                replies = self._call(lambda: list(pool.map(send, range(len(ops)))))
            self.ledger.spend(operations=len(ops) - 1)  # one call above, a statement per write
            since = self.model.clock
            for i in sorted(range(len(ops)), key=lambda i: replies[i][1].recv_ms):
                obs, at = replies[i]
                self._settle(writes[i].actor, ops[i], obs, at)
            with self.ledger.spending("model"):
                self.model.concurrent(since)
            with self.checking():
                for tid, owner in by_scope:
                    table = self.model.table(tid)
                    if table is not None:
                        self._read_back(table, owner, owner, since)
                for tid in dict.fromkeys(tid for tid, _ in by_scope):
                    self._check_live(tid)
                self._poll_jobs()

    def read_all(
        self,
        actor: str,
        table: str,
        where: Pred | None = None,
        as_user: str | None = None,
        expect: int | None = None,
    ) -> int:
        """Read every row ``actor`` sees (past the server's cap of MAX_QUERY_LIMIT rows: pages in
        primary-key order), each page checked against the model; ``expect``: the count the
        scenario's seed gives, which must be met exactly. Returns the count.

        Not ``SqlClient.query_all``: its OFFSET pages are not statements the model predicts;
        each page here is a Select of the keys after the last one seen."""
        with self._step("read_all", actor, table, where=where, as_user=as_user, expect=expect):
            tid = self.table_id(table)
            t = self.model.table(tid)
            if t is None:
                raise ConfigError(f"read_all: no table {table!r} in this example")
            pk = t.pk.name
            total, last = 0, None
            while True:
                after = Cmp(">", Col(pk), Lit(last, t.pk.type)) if last is not None else None
                pred = (
                    And(where, after) if where is not None and after is not None else where or after
                )
                op = Select(
                    self.user_id(actor),
                    tid,
                    where=pred,
                    order_by=((pk, False),),
                    limit=MAX_QUERY_LIMIT,
                    as_user=self.user_id(as_user) if as_user else None,
                )
                obs = self._query(actor, op)
                if not obs.ok:
                    break
                total += len(obs.rows)
                if len(obs.rows) < MAX_QUERY_LIMIT:
                    break
                last = inv.model_rows(obs, t, t.star_columns)[-1][pk]
            if expect is not None and total != expect:
                key = self.model.states[0].scope_key(t, self.user_id(as_user or actor))
                raise ExpectationFailed(
                    f"{actor} reads {total} rows of {table}"
                    + (f" where {where.to_sql()}" if where is not None else "")
                    + f"; the scenario expects exactly {expect}",
                    explained=any(st.scope(tid, key).relearned for st in self.model.states),
                )
            return total

    def join(
        self,
        actor: str,
        left: str,
        right: str,
        on: tuple[str, str],
        columns: Sequence[tuple[str, str]],
    ) -> None:
        """``SELECT l.c AS l_c, ... FROM left l JOIN right r ON l.a = r.b``, checked against the
        pairs of what ``actor`` reads of each side."""
        with self._step("join", actor, left, right, tuple(on), [tuple(c) for c in columns]):
            op = Join(
                self.user_id(actor),
                self.table_id(left),
                self.table_id(right),
                (on[0], on[1]),
                tuple((side, c) for side, c in columns),
            )
            obs, at = self._read(actor, op.to_sql())
            with self.ledger.spending("model"):
                forks = self.model.run(op, at)
            self._judge(self._judging(inv.check_join, forks, op, obs), op.to_sql())

    def live_registry(self) -> None:
        """``system.live`` (as root) lists exactly the open subscriptions, each with a
        ``changes`` counter equal to the notifications its client received."""
        with self._step("live_registry"):
            self._check_live(None, settle=True)
            rows = self._call(self._admin().live_queries)
            users = set(self._users.values())
            ours = LiveRegistryObservation(
                tuple(
                    (r.subscription_id or "", r.changes or 0) for r in rows if r.user_id in users
                ),
                {s.model_id: len(s.sub.changes) for s in self._subs.values()},
            )
            now = now_ms()
            self._exchange(
                "root",
                "sql",
                "SELECT subscription_id, user_id, changes FROM system.live",
                {
                    "status": 200,
                    "columns": ["subscription_id", "user_id", "changes"],
                    "rows": [[r.subscription_id, r.user_id, r.changes] for r in rows],
                },
                Window(now, now),
            )
            self._judge(inv.check_live_registry(self.model, ours), "system.live")

    def check_live(self) -> None:
        """Wait for every change the open subscriptions are owed (those still paging too, once
        their snapshot is complete) and check each as quiescent."""
        with self._step("check_live"):
            self._check_live(None, settle=True)

    def live_state(self, sub: str) -> LiveState:
        """What the client of an open subscription holds (not a step: nothing is checked)."""
        entry = self._subs[sub]
        s = entry.sub
        return LiveState(
            tuple(len(b.rows) for b in s.batches),
            len(s.changes),
            s.active and not s.dropped,
            str(s.error) if s.error is not None else None,
            self._model_sub(entry.model_id).snapshot_trusted,
        )


@frozen
class LiveState:
    batches: tuple[int, ...]
    changes: int
    active: bool
    error: str | None
    #: The model still checks the snapshot (no known finding about it made it stop).
    trusted: bool = True


def _keys(w: Write, pk: str) -> list[Value] | None:
    """The primary keys a write touches, when it names them; None when its WHERE selects rows
    some other way."""
    if w.rows:
        return [r.get(pk) for r in w.rows]
    where = w.where
    if (
        isinstance(where, Cmp)
        and where.op == "="
        and where.left == Col(pk)
        and isinstance(where.right, Lit)
    ):
        return [where.right.value]
    return None
