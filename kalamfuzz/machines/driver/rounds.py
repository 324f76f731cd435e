"""Rounds of calls sent at once, each from a client of its own, checked as a history: some order
of the calls that keeps real time must explain every reply and the reads made after them
(contract item 9); subscribers are then checked against the states such orders leave."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from attrs import evolve, frozen

from kalamfuzz import history as hist
from kalamfuzz import invariants as inv
from kalamfuzz.adapters import observe
from kalamfuzz.adapters.sql import SqlClient
from kalamfuzz.history import render
from kalamfuzz.history.check import MAX_FINAL
from kalamfuzz.history.check import Verdict as HistoryVerdict
from kalamfuzz.invariants.coerce import tx_outcome
from kalamfuzz.invariants.violation import Verdict, Violation
from kalamfuzz.machines.driver.transcript import KnownFinding, now_ms, reply_of
from kalamfuzz.machines.driver.workload import WorkloadSteps, Write
from kalamfuzz.model import ContractItem, Delete, Insert, Select, Table, TableId, Update
from kalamfuzz.model.exprs import computed
from kalamfuzz.model.ops import Transaction, TxEnd
from kalamfuzz.model.outcomes import Ok, OneOf, Outcome, Prediction, Rejected, TxReply
from kalamfuzz.model.results import QueryResult
from kalamfuzz.model.rows import Window
from kalamfuzz.model.state import MAX_QUERY_LIMIT, ModelState, execute
from kalamfuzz.model.values import render_rows
from kalamfuzz.model.where import Pred
from kalamfuzz.observations import (
    QueryObservation,
    StatementObservation,
    TransactionObservation,
)

Observation = StatementObservation | QueryObservation | TransactionObservation


@frozen
class Read:
    """A SELECT in a round: ``actor`` reads ``table`` (its partition, or ``as_user``'s)."""

    actor: str
    table: str
    where: Pred | None = None
    as_user: str | None = None


@frozen
class Tx:
    """``BEGIN; ...; end`` in one request by ``actor`` (each statement runs as ``actor``)."""

    actor: str
    statements: tuple[Write | Read, ...]
    end: TxEnd = "COMMIT"


RoundCall = Write | Read | Tx


class RoundSteps(WorkloadSteps):
    def concurrently(self, calls: Sequence[RoundCall]) -> None:
        """Send ``calls`` at once (a transaction alone when there is one call), then read back
        what they wrote and check it all as one history."""
        with self._step("concurrently", list(calls)):
            self._poll_jobs()
            many = len(calls) > 1
            ops = [self._round_op(c, f"t{i + 1}" if many else "") for i, c in enumerate(calls)]
            since = self.model.clock
            if any(self._tombstone_over_cold(tid) for tid in _tables(ops)):
                # what a known bug needs: a deleted key whose old row is cold, inserted again
                self.events.add("tombstone-over-cold")
            # A flush job still running may cut a scope between any two of its writes: such
            # scopes are searched whole, in every order of their writes.
            pending = set(self._pending_jobs())
            whole = {
                j.table_id for s in self.model.states for i, j in s.jobs.items() if i in pending
            }
            sent = self._send_at_once(calls, ops)
            history: list[hist.Call] = []
            for i, (obs, t0, t1, at) in sorted(enumerate(sent), key=lambda x: x[1][1]):
                op = ops[i]
                sql = op.to_sql()
                self._exchange(calls[i].actor, "sql", sql, _reply(obs), at)
                history.append(
                    hist.Call(
                        0,
                        f"{calls[i].actor}#{i + 1}",
                        op,
                        t0,
                        None if obs.lost else t1,
                        self._outcome(op, obs),
                        at,
                        sql,
                        _said(obs),
                    )
                )
            with self.checking():
                history += self._follow_ups(ops, len(history))
            numbered = tuple(evolve(c, index=i) for i, c in enumerate(history))
            self._judge_history(hist.History(numbered), since, whole, ops, many)
            with self.checking():
                for tid in dict.fromkeys(_tables(ops)):
                    self._check_live(tid)
                self._poll_jobs()

    # --- sending ------------------------------------------------------------------------------

    def _round_op(
        self, call: RoundCall, tx_id: str
    ) -> Insert | Update | Delete | Select | Transaction:
        if isinstance(call, Tx):
            inner = tuple(self._round_op(_as(s, call.actor), "") for s in call.statements)
            assert all(not isinstance(s, Transaction) for s in inner)
            return Transaction(self.user_id(call.actor), inner, call.end, tx_id)  # type: ignore[arg-type]
        if isinstance(call, Read):
            return Select(
                self.user_id(call.actor),
                self.table_id(call.table),
                where=call.where,
                order_by=((self._pk(call.table), False),),
                limit=MAX_QUERY_LIMIT,
                as_user=self.user_id(call.as_user) if call.as_user else None,
            )
        op = self._op(call)
        assert isinstance(op, Insert | Update | Delete)
        return op

    def _lane(self, actor: str, i: int) -> SqlClient:
        client = self._lanes.get((actor, i))
        if client is None:
            own = self.client(actor)
            client = self._lanes[(actor, i)] = own.through(own.url)
        return client

    def _known_call(self, call: hist.Call) -> str | None:
        """The known issue that explains this one call's reply alone, if any."""
        if self.triage is None or call.follow_up:
            return None
        violation = Violation(ContractItem.CONCURRENCY, "a call", _unexplained([_kind(call)]))
        label = self.triage(violation, f"calls sent at once: {call.sql}", frozenset(self.events))
        # Only a known issue, which names its cause: a signature merely seen earlier in this
        # campaign says nothing about why this one call failed.
        return None if label == violation.signature else label

    def _pk(self, table: str) -> str:
        t = self.model.table(self.table_id(table))
        return t.pk.name if t is not None else "id"

    def _send_at_once(
        self,
        calls: Sequence[RoundCall],
        ops: Sequence[Insert | Update | Delete | Select | Transaction],
    ) -> list[tuple[Observation, int, int, Window]]:
        """Each call from a thread and connection of its own, released together."""
        start = threading.Barrier(len(ops))

        # a connection of its own per call: calls of one actor must not queue on one socket
        clients = [self._lane(c.actor, i) for i, c in enumerate(calls)]

        def send(i: int) -> tuple[Observation, int, int, Window]:
            client, op = clients[i], ops[i]
            start.wait(timeout=10)
            wall, t0 = now_ms(), time.monotonic_ns()
            obs: Observation
            if isinstance(op, Transaction):
                obs = observe.transaction(client, op.to_sql())
            elif isinstance(op, Select):
                obs = observe.query(client, op.to_sql())
            else:
                obs = observe.statement(client, op.to_sql())
            t1 = time.monotonic_ns()
            return obs, t0, t1, Window(wall, max(wall, now_ms()))

        with ThreadPoolExecutor(max_workers=len(ops)) as pool:
            out: list[tuple[Observation, int, int, Window]] = self._call(
                lambda: list(pool.map(send, range(len(ops))))
            )
        self.ledger.spend(operations=len(ops) - 1)
        return out

    def _outcome(
        self, op: Insert | Update | Delete | Select | Transaction, obs: Observation
    ) -> Outcome:
        if isinstance(op, Transaction):
            assert isinstance(obs, TransactionObservation)
            reads = [self._read_shape(s) for s in op.statements if isinstance(s, Select)]
            return tx_outcome(obs, reads)
        if isinstance(op, Select):
            assert isinstance(obs, QueryObservation)
            shape = self._read_shape(op)
            return inv.outcome(obs, *shape) if shape is not None else inv.outcome(obs)
        assert isinstance(obs, StatementObservation)
        return inv.outcome(obs)

    def _read_shape(self, op: Select) -> tuple[Table, tuple[str, ...]] | None:
        table = self.model.table(op.table_id)
        if table is None:
            return None
        return table, op.projection or table.star_columns

    def _follow_ups(
        self, ops: Sequence[Insert | Update | Delete | Select | Transaction], first: int
    ) -> list[hist.Call]:
        """Read every scope the calls wrote, one read after another once all have answered:
        what the round left must be explained by the same order as its replies."""
        out: list[hist.Call] = []
        read: set[tuple[TableId, str | None]] = set()
        for tid, owner in _written_scopes(ops):
            table = self.model.table(tid)
            key = owner if table is not None and table.type.per_user else None
            if table is None or (tid, key) in read:
                continue
            read.add((tid, key))
            reader = self._logical(owner) if table.type.per_user else "root"
            op = Select(
                self.user_id(reader), tid, order_by=((table.pk.name, False),), limit=MAX_QUERY_LIMIT
            )
            if any(
                len(st.scope(tid, st.scope_key(table, owner)).latest()) > MAX_QUERY_LIMIT
                for st in self.model.states
            ):
                continue  # a scope past one read's rows: the round's own checks must do
            sql = op.to_sql()
            wall, t0 = now_ms(), time.monotonic_ns()
            obs: QueryObservation = self._call(observe.query, self.client(reader), sql)
            t1 = time.monotonic_ns()
            at = Window(wall, max(wall, now_ms()))
            reply = reply_of(obs) | {
                "columns": list(obs.columns),
                "rows": [list(r) for r in obs.rows],
            }
            self._exchange(reader, "sql", sql, reply, at)
            shape = self._read_shape(op)
            assert shape is not None
            out.append(
                hist.Call(
                    first + len(out),
                    f"{reader} (after)",
                    op,
                    t0,
                    t1,
                    inv.outcome(obs, *shape),
                    at,
                    sql,
                    _said(obs),
                    follow_up=True,
                )
            )
        return out

    # --- judging ------------------------------------------------------------------------------

    def _judge_history(
        self,
        history: hist.History,
        since: int,
        whole: set[TableId],
        ops: Sequence[Insert | Update | Delete | Select | Transaction],
        beside: bool,
    ) -> None:
        spec = hist.ModelSpec(self.model.states[0].catalog, since, frozenset(whole), beside)
        initial = self.model.states
        step = hist.memoized(spec.step)

        def recheck(h: hist.History) -> HistoryVerdict:
            return hist.check(initial, h, step, spec.points, spec.touches)

        with self.ledger.spending("invariants"):
            verdict = recheck(history)
        if isinstance(verdict, hist.Explained) and len(verdict.states) <= MAX_FINAL:
            states: list[ModelState] = []
            for s in map(hist.settled, verdict.states):
                if all(s != o for o in states):
                    states.append(s)
            self.model.states = tuple(states)
            return
        if isinstance(verdict, hist.Unexplained):
            with self.ledger.spending("invariants"):
                marked, lines = render.report(
                    history, initial, verdict, recheck, _describe, spec.points
                )
            # A call a known bug explains on its own is set aside (its reply made unknown)
            # before anything is called new: the known explanation comes first.
            known = [(i, label) for i in marked if (label := self._known_call(history.calls[i]))]
            if known:
                weakened = history.weakened([i for i, _ in known])
                with self.ledger.spending("invariants"):
                    verdict = recheck(weakened)
                for i, label in known:
                    self.findings.append(
                        KnownFinding(
                            label, _signature(history, [i]), self._step_no, "calls sent at once"
                        )
                    )
                if isinstance(verdict, hist.Unexplained):
                    history = weakened
                    with self.ledger.spending("invariants"):
                        marked, lines = render.report(
                            history, initial, verdict, recheck, _describe, spec.points
                        )
                    known = []
            if not known:
                violation = Violation(
                    ContractItem.CONCURRENCY,
                    f"{sum(not c.follow_up for c in history.calls)} calls sent at once",
                    _summary(history, marked),
                    diff=tuple(lines),
                )
                # the witness's statements: what a known issue's `where` is searched in
                sent = " | ".join(history.calls[i].sql for i in marked)
                self._judge(Verdict((violation,)), f"calls sent at once: {sent}")
        # A known finding, or a search that ran out of budget: start again from what the
        # server holds now, scope by scope.
        for tid, owner in _written_scopes(ops):
            self._relearn_scope(tid, owner)


def _summary(history: hist.History, marked: Sequence[int]) -> str:
    return _unexplained(_kind(history.calls[i]) for i in marked)


def _unexplained(kinds: Iterable[str]) -> str:
    return "no order of the calls sent at once explains " + ", ".join(sorted(kinds))


def _signature(history: hist.History, marked: Sequence[int]) -> str:
    return Violation(ContractItem.CONCURRENCY, "", _summary(history, marked)).signature


def _as(call: Write | Read, actor: str) -> Write | Read:
    return evolve(call, actor=actor)


def _fields(c: hist.Call) -> tuple[object, ...]:
    return (
        c.lane,
        c.op,
        c.invoked_ns,
        c.completed_ns,
        c.outcome,
        c.at,
        c.sql,
        c.reply,
        c.follow_up,
    )


def _tables(ops: Sequence[Insert | Update | Delete | Select | Transaction]) -> list[TableId]:
    return [tid for tid, _ in _written_scopes(ops)]


def _written_scopes(
    ops: Sequence[Insert | Update | Delete | Select | Transaction],
) -> list[tuple[TableId, str]]:
    """(table, user id) of every scope the calls may write (user id: the writer; the scope key
    itself follows the table's type)."""
    out: dict[tuple[TableId, str], None] = {}
    for op in ops:
        for s in op.statements if isinstance(op, Transaction) else (op,):
            if isinstance(s, Insert | Update | Delete):
                out[(s.table_id, s.as_user or s.actor)] = None
    return list(out)


def _reply(obs: Observation) -> dict[str, object]:
    if isinstance(obs, TransactionObservation):
        out: dict[str, object] = {"status": obs.status}
        if obs.code:
            out |= {"code": obs.code, "message": obs.message}
        if obs.ok:
            out["counts"] = list(obs.counts)
            out["selects"] = [[list(r) for r in s.rows] for s in obs.selects]
        if obs.lost:
            out["lost"] = True
        return out
    if isinstance(obs, QueryObservation):
        return reply_of(obs) | {"columns": list(obs.columns), "rows": [list(r) for r in obs.rows]}
    return reply_of(obs)


def _said(obs: Observation) -> str:
    """The reply in a few words, for the timeline."""
    if obs.lost:
        return "no reply"
    if not obs.ok:
        return f"{obs.code} {obs.message or ''}".strip()[:120]
    if isinstance(obs, TransactionObservation):
        rows = "; ".join(f"{len(s.rows)} rows {list(map(list, s.rows))}" for s in obs.selects)
        ins, upd, dele = obs.counts
        return f"ok, inserted {ins}, updated {upd}, deleted {dele}" + (
            f"; read {rows}" if rows else ""
        )
    if isinstance(obs, QueryObservation):
        return f"{len(obs.rows)} rows {[list(r) for r in obs.rows]}"
    return f"ok, {obs.row_count} rows"


def _kind(call: hist.Call) -> str:
    op = call.op
    if call.follow_up:
        return "the read after them"
    if isinstance(op, Transaction):
        return f"a transaction ({op.end or 'left open'})"
    if isinstance(op, Update) and any(computed(v) for _, v in op.assignments):
        return "UPDATE (read-modify-write)"
    return type(op).__name__.upper()


def _describe(state: ModelState, call: hist.Call) -> str:
    pred, _ = execute(state, call.op, call.at)
    choices = pred.options if isinstance(pred, OneOf) else (pred,)
    return (
        "the model expected "
        + " or ".join(_expected(p) for p in choices)
        + f"; the server said: {call.reply}"
    )


def _expected(p: Prediction) -> str:
    if isinstance(p, Rejected):
        return f"an error ({p.reason})"
    if isinstance(p, Ok):
        return f"ok, {p.row_count} rows" if p.row_count is not None else "ok"
    if isinstance(p, QueryResult):
        return f"{len(p.rows)} rows {render_rows([r.values for r in p.rows])}"
    if isinstance(p, TxReply):
        if p.counts is None:
            return "ok (counts and reads not predicted)"
        rows = "; ".join(
            f"{len(s.rows)} rows {render_rows([r.values for r in s.rows])}"
            for s in p.selects or ()
            if s is not None
        )
        counts = "inserted {}, updated {}, deleted {}".format(*p.counts)
        return "ok, " + counts + (f"; read {rows}" if rows else "")
    return type(p).__name__
