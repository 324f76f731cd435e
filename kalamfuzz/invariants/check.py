"""Entry points for the machines: one function per kind of observation.

Each returns a :class:`Verdict` over every possible model state. Statements and queries are
then applied to the model with ``model.apply(op, outcome(obs, ...), at)``; the other
observations narrow the model through ``model.narrow(verdict.consistent, verdict.learned)``;
nothing here changes the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from kalamfuzz.invariants import (
    cold_artifacts,
    idempotency,
    isolation,
    schema_evolution,
    storage_routing,
    stream_ttl,
    subscriptions,
    tiers,
)
from kalamfuzz.invariants.coerce import job_status, model_rows
from kalamfuzz.invariants.reads import join_diff, select_diff
from kalamfuzz.invariants.statements import check_statement
from kalamfuzz.invariants.violation import Finding, Verdict, Violation, over, over_states
from kalamfuzz.model.catalog import TableId
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.ops import JobFinished, Join, Operation, Select, Subscribe
from kalamfuzz.model.outcomes import ContractItem, JobEnds, Rejected, Subscribed
from kalamfuzz.model.results import QueryResult
from kalamfuzz.model.rows import ScopeKey, Window
from kalamfuzz.model.state import ModelState, execute
from kalamfuzz.model.uncertain import Fork, Model, options
from kalamfuzz.observations import (
    ColdScopeObservation,
    JobObservation,
    LiveRegistryObservation,
    QueryObservation,
    StatementObservation,
    StorageListing,
    SubscriptionObservation,
)


def _lost(state: ModelState, table_id: TableId | None) -> bool:
    """A table the model gave up on after a known bug: nothing about it is judged."""
    return table_id is not None and table_id in state.catalog.lost_tables


def _forks(model: Model | Sequence[Fork], op: Operation, at: Window | None) -> Sequence[Fork]:
    """The forks of ``op``: given (the driver computes them once, for the checks and for
    ``Model.apply``), or computed here from a model."""
    return model.run(op, at) if isinstance(model, Model) else model


def check_statement_reply(
    model: Model | Sequence[Fork],
    op: Operation,
    obs: StatementObservation,
    at: Window | None = None,
) -> Verdict:
    """DDL, DML and FLUSH replies: success or the documented error, row counts, job ids."""

    def one(fork: Fork) -> Finding:
        if _lost(fork.state, getattr(op, "table_id", None)):
            return [], {}
        return check_statement(fork.state, op, fork.prediction, obs), {}

    return over(_forks(model, op, at), one)


def check_query(
    model: Model | Sequence[Fork], op: Select, obs: QueryObservation, at: Window | None = None
) -> Verdict:
    """A SELECT reply, classified into isolation, TTL, duplicates, schema evolution and tiers."""

    def one(fork: Fork) -> Finding:
        state, pred = fork.state, fork.prediction
        if _lost(state, op.table_id):
            return [], {}
        results = [p for p in options(pred) if isinstance(p, QueryResult)]
        if not obs.ok or not results:
            reply = StatementObservation(obs.status, obs.code, obs.message, None, lost=obs.lost)
            return check_statement(state, op, pred, reply), {}
        rows = model_rows(obs, state.catalog.table(op.table_id))
        best: list[Violation] | None = None
        for result in results:
            diff = select_diff(state, op, result, rows)
            found = (
                isolation.check_select(state, diff)
                + stream_ttl.check_select(state, diff, at)
                + idempotency.check_select(state, diff)
                + schema_evolution.check_select(diff)
                + tiers.check_select(state, diff, at)
            )
            if not found:
                return [], diff.learned
            best = found if best is None else best
        assert best is not None
        return best, {}

    return over(_forks(model, op, at), one)


def check_subscribe(
    model: Model, op: Subscribe, obs: SubscriptionObservation, at: Window | None = None
) -> Verdict:
    """The reply to a subscribe: accepted (then its stream is checked) or the documented error.

    Call after ``model.apply(op, ...)`` so the model holds the subscription, or use
    :func:`check_subscription` for later checks of the same stream.
    """

    def one(state: ModelState) -> Finding:
        if _lost(state, op.table_id):
            return [], {}
        if op.sub_id in state.subs and state.subs[op.sub_id].table_id == op.table_id:
            if obs.error_code is not None:
                return [
                    Violation(
                        ContractItem.SUBSCRIPTIONS
                        if obs.error_code != "UNAUTHORIZED"
                        else ContractItem.RBAC,
                        f"subscription {op.sub_id}",
                        "subscribe refused",
                        "ACK and snapshot",
                        obs.error_code,
                    )
                ], {}
            return subscriptions.check_subscription(state, op.sub_id, obs, at)
        pred, _ = execute(state, op, at)
        for p in options(pred):
            if isinstance(p, Rejected) and obs.error_code in p.codes:
                return [], {}
            if isinstance(p, Subscribed) and obs.error_code is None:
                return [], {}
        rejected = [p for p in options(pred) if isinstance(p, Rejected)]
        item = rejected[0].item if rejected else ContractItem.SUBSCRIPTIONS
        want = " | ".join(sorted(c for p in rejected for c in p.codes)) or "ACK"
        return [
            Violation(
                item,
                f"subscription {op.sub_id}",
                "subscribe outcome differs",
                want,
                obs.error_code or "ACK",
            )
        ], {}

    return over_states(model, one)


def check_subscription(
    model: Model, sub_id: str, obs: SubscriptionObservation, at: Window | None = None
) -> Verdict:
    def one(state: ModelState) -> Finding:
        sub = state.subs.get(sub_id)
        if sub is not None and _lost(state, sub.table_id):
            return [], {}
        return subscriptions.check_subscription(state, sub_id, obs, at)

    return over_states(model, one)


def check_join(model: Model | Sequence[Fork], op: Join, obs: QueryObservation) -> Verdict:
    """A JOIN reply: exactly the pairs of the model's two sides (item 2); a refusal is judged
    like a statement's (a side the caller may not read: item 5)."""

    def one(fork: Fork) -> Finding:
        state, pred = fork.state, fork.prediction
        if _lost(state, op.left) or _lost(state, op.right):
            return [], {}
        results = [p for p in options(pred) if isinstance(p, QueryResult)]
        if not obs.ok or not results:
            reply = StatementObservation(obs.status, obs.code, obs.message, None, lost=obs.lost)
            return check_statement(state, op, pred, reply), {}
        found = [join_diff(state, op, result, obs) for result in results]
        return next((f for f in found if not f), found[0]), {}

    return over(_forks(model, op, None), one)


def check_live_registry(model: Model, obs: LiveRegistryObservation) -> Verdict:
    return over_states(model, lambda state: subscriptions.check_live_registry(state, obs))


def check_cold(
    model: Model, table_id: TableId, scope: ScopeKey, obs: ColdScopeObservation
) -> Verdict:
    return over_states(
        model,
        lambda s: (
            ([], {})
            if _lost(s, table_id)
            else cold_artifacts.check_cold_scope(s, table_id, scope, obs)
        ),
    )


def check_storage(
    model: Model, listing: StorageListing, busy: frozenset[TableId] = frozenset()
) -> Verdict:
    """Every cold artifact where its table's storage puts it; ``busy``: tables with a flush
    job still running, whose own directories may be changing."""
    return over_states(model, lambda s: storage_routing.check_listing(s, listing, busy))


def check_job(model: Model | Sequence[Fork], op: JobFinished, obs: JobObservation) -> Verdict:
    """A job's final status: completed (or skipped with nothing to flush), failed with a message
    when its storage cannot be written."""

    def one(fork: Fork) -> Finding:
        state, pred = fork.state, fork.prediction
        job = state.jobs.get(op.job_id)
        if job is not None and _lost(state, job.table_id):
            return [], {}
        ends = [p for p in options(pred) if isinstance(p, JobEnds)]
        status = job_status(obs)
        for p in ends:
            if p.status is status and (not p.message_required or obs.message):
                return [], {}
        failed = status is JobStatus.FAILED
        if failed and not any(p.status is JobStatus.FAILED for p in ends):
            summary = "flush job failed although its storage was writable"
        elif not failed and all(p.status is JobStatus.FAILED for p in ends):
            summary = "flush job did not fail although its storage was unwritable"
        else:
            summary = "flush job ended wrongly"
        return [
            Violation(
                ContractItem.IDEMPOTENCY if failed else ContractItem.COLD_ARTIFACTS,
                f"job {op.job_id}",
                summary,
                " | ".join(
                    p.status.value + (" with a message" if p.message_required else "") for p in ends
                ),
                f"{obs.status}: {obs.message or ''}".rstrip(": "),
            )
        ], {}

    return over(_forks(model, op, None), one)


def check_job_running(model: Model, obs: JobObservation, waited_s: float) -> Verdict:
    """A job still not ended after ``waited_s``: a finding when a restart interrupted it (KalamDB
    fails such jobs at start-up; one that stays running blocks every later flush of its table),
    else the caller's timeout stands."""
    job = model.states[0].jobs.get(obs.job_id)
    if job is None or not job.interrupted:
        return Verdict()
    return Verdict(
        (
            Violation(
                ContractItem.IDEMPOTENCY,
                f"job {obs.job_id} of {job.table_id}",
                "a flush job a restart interrupted never ends",
                "failed (KalamDB's crash recovery) or completed",
                f"{obs.status} {waited_s:.0f} s after the restart",
            ),
        )
    )
