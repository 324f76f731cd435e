"""From what a client saw to the model's terms: wire cells to model values, a reply to the
:class:`~kalamfuzz.model.outcomes.Outcome` the model advances by."""

from __future__ import annotations

from collections.abc import Sequence

from kalamfuzz.model.catalog import Table
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.outcomes import Failed, Outcome, Succeeded, Unknown
from kalamfuzz.model.values import Value, coerce
from kalamfuzz.observations import (
    JobObservation,
    QueryObservation,
    StatementObservation,
    TransactionObservation,
    WireRow,
)


def model_row(table: Table, row: WireRow) -> dict[str, Value]:
    """Coerce a wire row to model values; columns the table does not know are kept as text."""
    out: dict[str, Value] = {}
    for name, raw in row.items():
        if table.knows(name):
            out[name] = coerce(raw, table.type_of(name))
        elif (former := table.former_type(name)) is not None:
            # a row received before the column was dropped (a live snapshot, say)
            out[name] = coerce(raw, former)
        else:
            out[name] = (
                raw if isinstance(raw, int | float | str | bool) or raw is None else repr(raw)
            )
    return out


def model_rows(
    obs: QueryObservation, table: Table, columns: tuple[str, ...] | None = None
) -> tuple[dict[str, Value], ...]:
    """The rows coerced to model values; with ``columns``, only those (the invariants report
    any other column the server sent on its own)."""
    rows = (model_row(table, r) for r in obs.named_rows())
    if columns is None:
        return tuple(rows)
    return tuple({k: v for k, v in r.items() if k in columns} for r in rows)


def job_status(obs: JobObservation) -> JobStatus:
    return JobStatus(obs.status)


def outcome(
    obs: StatementObservation | QueryObservation | JobObservation,
    table: Table | None = None,
    columns: tuple[str, ...] | None = None,
) -> Outcome:
    """What happened, for ``Model.apply``; a query's rows are coerced with ``table`` (without
    one, only its success counts)."""
    if isinstance(obs, JobObservation):
        return Succeeded(job_status=job_status(obs))
    if obs.lost:
        return Unknown()
    if not obs.ok:
        return Failed(obs.code or f"HTTP_{obs.status}", obs.status)
    if isinstance(obs, StatementObservation):
        return Succeeded(row_count=obs.row_count, job_id=obs.job_id)
    return Succeeded(rows=model_rows(obs, table, columns) if table is not None else None)


def tx_outcome(
    obs: TransactionObservation, reads: Sequence[tuple[Table, tuple[str, ...]] | None]
) -> Outcome:
    """A transaction's outcome: each SELECT's rows coerced with its (table, columns) in
    ``reads`` (None: a table no state knows, whose rows are not judged)."""
    if obs.lost:
        return Unknown()
    if not obs.ok:
        return Failed(obs.code or f"HTTP_{obs.status}", obs.status)
    if len(obs.selects) != len(reads):
        # as many empty results as came: the count alone disagrees with the prediction
        return Succeeded(selects=tuple(() for _ in obs.selects), counts=obs.counts)
    selects = []
    for o, r in zip(obs.selects, reads, strict=True):
        if r is None:
            return Succeeded(counts=obs.counts)
        selects.append(model_rows(o, *r))
    return Succeeded(selects=tuple(selects), counts=obs.counts)
