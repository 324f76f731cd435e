"""Statement outcomes: did the server accept what the model accepts, and refuse what it refuses,
with the documented error? Each violation names the item the model's reason belongs to."""

from __future__ import annotations

from kalamfuzz.invariants.coerce import outcome
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.catalog import TableType
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.ops import (
    AlterAddColumn,
    AlterDropColumn,
    CreateStorage,
    CreateTable,
    Delete,
    Flush,
    Insert,
    JobFinished,
    Join,
    Operation,
    Select,
    Subscribe,
    Update,
)
from kalamfuzz.model.outcomes import (
    ContractItem,
    FlushSkipped,
    FlushStarted,
    Ok,
    OneOf,
    Prediction,
    Rejected,
)
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.subscriptions import full_row
from kalamfuzz.model.uncertain import agrees, options
from kalamfuzz.model.where import constant, matches, never_true
from kalamfuzz.observations import StatementObservation


def item_for(state: ModelState, op: Operation, observed_code: str | None) -> ContractItem:
    """The item a surprise about ``op`` belongs to, when the model predicted success."""
    if observed_code == "PERMISSION_DENIED":
        return ContractItem.RBAC
    table_id = getattr(op, "table_id", None)
    table = state.catalog.tables.get(table_id) if table_id is not None else None
    if isinstance(op, AlterAddColumn | AlterDropColumn) or (
        table is not None and table.schema_version > 1
    ):
        return ContractItem.SCHEMA_EVOLUTION
    if table is not None and table.type is TableType.STREAM and isinstance(op, Delete):
        return ContractItem.STREAM_TTL
    if isinstance(op, Insert):
        return ContractItem.IDEMPOTENCY
    if isinstance(op, Flush | JobFinished):
        return ContractItem.COLD_ARTIFACTS
    if isinstance(op, CreateStorage):
        return ContractItem.STORAGE_ROUTING
    if isinstance(op, Subscribe):
        return ContractItem.SUBSCRIPTIONS
    if isinstance(op, Select | Join | Update | Delete | CreateTable):
        return ContractItem.TIERS
    return ContractItem.RBAC


def _describe(pred: Prediction) -> str:
    if isinstance(pred, Rejected):
        status = f"HTTP {pred.status} " if pred.status else ""
        return f"{status}{' or '.join(sorted(pred.codes))} ({pred.reason})"
    if isinstance(pred, Ok):
        if pred.row_count is None:
            return "success"
        if pred.row_count_max is not None:
            return f"success, {pred.row_count}..{pred.row_count_max} row(s)"
        return f"success, {pred.row_count} row(s)"
    if isinstance(pred, FlushStarted):
        return "a flush job is started"
    if isinstance(pred, FlushSkipped):
        return "the flush is skipped"
    return type(pred).__name__


def _seen(obs: StatementObservation) -> str:
    if obs.ok:
        extra = f", {obs.row_count} row(s)" if obs.row_count is not None else ""
        job = f", job {obs.job_id}" if obs.job_id else ""
        return f"HTTP {obs.status} success{extra}{job}"
    return f"HTTP {obs.status} {obs.code}: {obs.message or ''}".rstrip(": ")


def check_statement(
    state: ModelState, op: Operation, pred: Prediction | OneOf, obs: StatementObservation
) -> list[Violation]:
    """Compare one statement's reply with the prediction of one model state."""
    if obs.lost:
        return []
    seen = outcome(obs)
    opts = options(pred)
    subj = f"{type(op).__name__} by {getattr(op, 'actor', '?')}"
    if hasattr(op, "table_id"):
        subj += f" on {op.table_id}"
    matching = [p for p in opts if agrees(p, seen, state.seqs)]
    # Only dba and system callers see every message; the others see the kept ones.
    admin = state.catalog.role_of(getattr(op, "actor", "")).is_admin
    if matching:
        for p in matching:
            if not isinstance(p, Rejected):
                return []
            problems = []
            if p.status is not None and obs.status != p.status:
                problems.append(f"HTTP status {obs.status}, documented {p.status}")
            message = obs.message or ""
            if admin or p.kept:
                problems += [f"message lacks {s!r}" for s in p.message_contains if s not in message]
            if not problems:
                return []
        rejected = next(p for p in matching if isinstance(p, Rejected))
        return [
            Violation(
                rejected.item,
                subj,
                "refused with an unclear error",
                _describe(rejected),
                _seen(obs),
                tuple(problems),
            )
        ]
    expected = " | ".join(_describe(p) for p in opts)
    rejected_preds = [p for p in opts if isinstance(p, Rejected)]
    if obs.ok and rejected_preds and len(rejected_preds) == len(opts):
        item = rejected_preds[0].item
        summary = f"accepted what must fail: {rejected_preds[0].reason}"
        if isinstance(op, Select | Update | Delete) and never_true(op.where):
            # DataFusion drops a never-true WHERE with the scan, and with it KalamDB's check
            summary = (
                f"answered, not refused, when the WHERE is never true: {rejected_preds[0].reason}"
            )
    elif not obs.ok and not rejected_preds:
        summary, known_item = _refused(state, op)
        item = known_item or item_for(state, op, obs.code)
    elif not obs.ok:
        item = rejected_preds[0].item
        summary = "refused with the wrong error"
    elif _reached_other_partitions(state, op, opts, obs):
        item = ContractItem.ISOLATION
        summary = f"{type(op).__name__.upper()} affected rows of other users' partitions"
    else:
        item = item_for(state, op, None)
        summary = _wrong_result(state, op, opts, obs)
        if summary.endswith(_AFTER_FAILED_FLUSH):
            # A failure must leave the rows as they were, pending included (item 6); the
            # cold tier they never reach is the consequence.
            item = ContractItem.IDEMPOTENCY
    return [Violation(item, subj, summary, expected, _seen(obs))]


def _reached_other_partitions(
    state: ModelState, op: Operation, opts: tuple[Prediction, ...], obs: StatementObservation
) -> bool:
    """An UPDATE or DELETE on a USER table that counted more rows than its WHERE matches in
    the caller's partition, and no more than it matches in all of them: it reached other
    users' rows (item 1)."""
    if not isinstance(op, Update | Delete) or obs.row_count is None:
        return False
    table = state.catalog.tables.get(op.table_id)
    if table is None or table.type is not TableType.USER:
        return False
    everywhere = sum(
        1
        for scope in state.scopes(table.id).values()
        for v in scope.live(table)
        if matches(op.where, full_row(table, v))
    )
    predicted = [p.row_count for p in opts if isinstance(p, Ok) and p.row_count is not None]
    if not predicted or not max(predicted) < obs.row_count <= everywhere:
        return False
    # Rows the caller itself deleted that match the WHERE explain the excess as well (a
    # deleted row a buggy flush brought back): that comes before accusing a leak across users.
    scope = state.scope(table.id, state.scope_key(table, op.as_user or op.actor))
    comeback = sum(
        1 for v in scope.with_tombstones() if v.deleted and matches(op.where, full_row(table, v))
    )
    return obs.row_count > max(predicted) + comeback


def _refused(state: ModelState, op: Operation) -> tuple[str, ContractItem | None]:
    """Why a statement the model accepts may have been refused, when the model can tell (and
    then the item it breaks, whatever the table has been through)."""
    if isinstance(op, Update | Delete) and constant(op.where):
        return "refused an UPDATE or DELETE whose WHERE folds to a constant", ContractItem.TIERS
    if isinstance(op, Insert):
        table = state.catalog.tables.get(op.table_id)
        if table is not None:
            scope = state.scope(table.id, state.scope_key(table, op.as_user or op.actor))
            latest = scope.latest()
            keys = {r.get(table.pk.name) for r in op.rows}
            # In a scope whose files are no longer predicted (a crash interrupted a flush) the
            # deleted row's old version may be cold too.
            cold = scope.cold_keys()
            if any(
                k in latest and latest[k].deleted and (k in cold or scope.relearned) for k in keys
            ):
                return (
                    "INSERT of a deleted key refused while its old row is in the cold tier",
                    ContractItem.IDEMPOTENCY,
                )
    return "refused what must succeed", None


def _wrong_result(
    state: ModelState,
    op: Operation,
    opts: tuple[Prediction, ...],
    obs: StatementObservation,
) -> str:
    """What went wrong with a statement that succeeded, in words specific enough to tell one
    known bug from another (the summary is what a finding's signature is made of)."""
    if isinstance(op, Flush):
        if obs.job_id is None:
            return "flush skipped although rows are pending" + _pending_context(state, op)
        return "flush started although no row is pending"
    if isinstance(op, Insert | Update | Delete):
        verb = type(op).__name__.upper()
        seen = obs.row_count
        fewer = seen is not None and all(
            isinstance(p, Ok) and p.row_count is not None and seen < p.row_count for p in opts
        )
        if fewer and state.failed_flushes(op.table_id):
            # The rows it missed are those the failed job took (item 6, as for a read).
            return f"{verb} affected fewer rows than the model" + _AFTER_FAILED_FLUSH
        return f"{verb} affected another number of rows than the model"
    return "wrong result"


_AFTER_FAILED_FLUSH = " after a failed flush"


def _pending_context(state: ModelState, op: Flush) -> str:
    """Why rows may look flushed to the server: a failed flush, or a flush they came during."""
    jobs = sorted(
        (j for j in state.jobs.values() if j.table_id == op.table_id and j.status.finished),
        key=lambda j: j.requested_at,
    )
    if not jobs:
        return ""
    last = jobs[-1]
    if last.status is JobStatus.FAILED:
        return _AFTER_FAILED_FLUSH
    pending = [
        v.ordinal
        for scope in state.scopes(op.table_id).values()
        for v in scope.hot
        if v.ordinal not in scope.adopted | scope.kept
    ]
    if last.finished_at is not None and any(
        last.requested_at < o <= last.finished_at for o in pending
    ):
        return " (written while a flush ran)"
    return ""
