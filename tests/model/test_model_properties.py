"""Property-based self-tests: random operation sequences against the model alone.

A correct server is simulated by following the model's own predictions (``Echo``). Whatever the
sequence: keys stay unique per scope, commit order is increasing, a flush preserves every
read, and every invariant accepts the model's own observations, including the reconstruction
of every subscription from its predicted change stream.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from strategies import NS, SERVICE, USERS, Echo, predicates, row_values, table, world

from kalamfuzz import invariants as inv
from kalamfuzz.invariants.coerce import outcome
from kalamfuzz.model import (
    Delete,
    Failed,
    Flush,
    FlushStarted,
    Insert,
    JobFinished,
    JobStatus,
    Ok,
    OneOf,
    QueryResult,
    Rejected,
    Select,
    Subscribe,
    Succeeded,
    TableId,
    TableType,
    Update,
)
from kalamfuzz.model.values import freeze

T = TableId(NS, "t")
SH = TableId(NS, "sh")
TABLES = st.sampled_from([T, SH])
ACTORS = st.sampled_from([*USERS, SERVICE])


def reads(model):
    """Every scope's SELECT * result, as multisets, in the first state."""
    out = {}
    for tid in (T, SH):
        for actor in (*USERS, SERVICE):
            pred = model.predict(Select(actor if tid == T else SERVICE, tid, limit=1000))
            assert isinstance(pred, QueryResult)
            out[(tid, actor)] = Counter(freeze(r.values) for r in pred.rows)
    return out


class ModelOnly(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = world(table(), table(TableType.SHARED, name="sh"))
        self.jobs: list[str] = []
        self.subs: list[str] = []

    def run(self, op):
        pred = self.m.predict(op)
        if isinstance(pred, OneOf):
            pred = pred.options[0]
        if isinstance(pred, Rejected):
            outcome = Failed(sorted(pred.codes)[0], pred.status)
            reply = inv.StatementObservation(
                pred.status or 400, sorted(pred.codes)[0], " ".join(pred.message_contains)
            )
        else:
            assert isinstance(pred, Ok)
            outcome = Succeeded(row_count=pred.row_count)
            reply = inv.StatementObservation(200, row_count=pred.row_count)
        assert inv.check_statement_reply(self.m, op, reply).ok
        self.m.apply(op, outcome)

    @rule(
        tid=TABLES,
        actor=ACTORS,
        keys=st.lists(st.integers(0, 6), min_size=1, max_size=3),
        values=row_values(),
    )
    def insert(self, tid, actor, keys, values):
        self.run(Insert(actor, tid, tuple({"id": k, **values} for k in keys)))

    @rule(tid=TABLES, actor=ACTORS, where=predicates(), values=row_values())
    def update(self, tid, actor, where, values):
        self.run(Update(actor, tid, tuple(values.items())[:2], where))

    @rule(tid=TABLES, actor=ACTORS, where=predicates())
    def delete(self, tid, actor, where):
        self.run(Delete(actor, tid, where))

    @rule(tid=TABLES)
    def flush(self, tid):
        pred = self.m.predict(Flush(SERVICE, tid))
        started = pred == FlushStarted() or (isinstance(pred, OneOf) and not self.jobs)
        job = f"FL-{len(self.jobs)}" if started else None
        self.m.apply(Flush(SERVICE, tid), Succeeded(job_id=job))
        if job:
            self.jobs.append(job)

    @precondition(lambda self: self.jobs)
    @rule()
    def finish_job(self):
        job = self.jobs.pop(0)
        before = reads(self.m)
        self.m.apply(JobFinished(job), Succeeded(job_status=JobStatus.COMPLETED))
        for state_model in self._each_state():
            assert reads(state_model) == before
        # A cold read decides the job's start point: take the first state's artifacts.
        first = self.m.states[0]
        for tid, scope in first.flushed_scopes():
            verdict = inv.check_cold(self.m, tid, scope, Echo.cold(first, tid, scope))
            assert verdict.ok, verdict
            self.m.narrow(verdict.consistent, verdict.learned)
        assert inv.check_storage(self.m, Echo.listing(self.m.states[0])).ok

    def _each_state(self):
        from kalamfuzz.model import Model

        return [Model((s,)) for s in self.m.states]

    @rule(
        actor=ACTORS,
        tid=TABLES,
        where=st.one_of(st.none(), predicates()),
        size=st.integers(1, 3),
        projected=st.booleans(),
    )
    def subscribe(self, actor, tid, where, size, projected):
        sid = f"s{len(self.subs)}"
        op = Subscribe(actor, sid, tid, ("id", "s") if projected else None, where, size)
        pred = self.m.predict(op)
        self.m.apply(op, Succeeded() if not isinstance(pred, Rejected) else Failed("UNAUTHORIZED"))
        if not isinstance(pred, Rejected):
            self.subs.append(sid)

    @rule(
        actor=ACTORS,
        tid=TABLES,
        where=st.one_of(st.none(), predicates()),
        limit=st.integers(1, 4),
        order=st.booleans(),
    )
    def select(self, actor, tid, where, limit, order):
        op = Select(actor, tid, None, where, (("n", True), ("id", False)) if order else (), limit)
        pred = self.m.predict(op)
        if isinstance(pred, Rejected):
            obs = inv.QueryObservation(403, code="PERMISSION_DENIED")
        else:
            obs = Echo.query(self.m, op)
        verdict = inv.check_query(self.m, op, obs)
        assert verdict.ok, verdict
        self.m.apply(op, outcome(obs, self.m.table(tid)))

    @invariant()
    def keys_unique_and_commit_order(self):
        for state in self.m.states:
            for tid in (T, SH):
                table_ = state.catalog.table(tid)
                for scope in state.scopes(tid).values():
                    live = scope.live(table_)
                    assert len({v.key for v in live}) == len(live)
                    ords = [v.ordinal for v in scope.hot]
                    assert ords == sorted(set(ords))
                    assert all(o <= state.clock for o in ords)
            assert list(state.seqs.seqs) == sorted(set(state.seqs.seqs))

    @invariant()
    def subscriptions_reconstruct(self):
        state = self.m.states[0]
        for sid in self.subs:
            obs = Echo.subscription(state, sid)
            verdict = inv.check_subscription(self.m, sid, obs)
            assert verdict.ok, verdict


TestModelOnly = ModelOnly.TestCase
TestModelOnly.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
