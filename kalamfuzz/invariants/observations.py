"""What a client saw, as plain data: the adapters build these from wire messages and files.

Cells stay as decoded from JSON (``_seq`` and BIGINT as strings are fine) or from pyarrow
(``to_pylist()``; Timestamp cells converted to integer microseconds); the invariants coerce
them to the model's types with the table schema. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field, frozen

from kalamfuzz.model.catalog import Table
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.outcomes import Failed, Outcome, Succeeded, Unknown
from kalamfuzz.model.values import Value, coerce

Cell = object
WireRow = Mapping[str, Cell]


def model_row(table: Table, row: WireRow) -> dict[str, Value]:
    """Coerce a wire row to model values; columns the table does not know are kept as text."""
    out: dict[str, Value] = {}
    for name, raw in row.items():
        former = None if table.knows(name) else table.former_type(name)
        if table.knows(name):
            out[name] = coerce(raw, table.type_of(name))
        elif former is not None:
            # a row received before the column was dropped (a live snapshot, say)
            out[name] = coerce(raw, former)
        else:
            out[name] = (
                raw if isinstance(raw, int | float | str | bool) or raw is None else repr(raw)
            )
    return out


@frozen
class StatementObservation:
    """The reply to one SQL statement (``POST /v1/api/sql``).

    ``lost`` means no reply was seen (timeout, dropped connection, crash): the outcome is unknown.
    For a flush, ``job_id`` is the id after ``Job ID:``; a "skipped" reply (or the
    pre-validation 400 "nothing to do") has ``job_id=None`` and ``status=200``.
    """

    status: int
    code: str | None = None
    message: str | None = None
    row_count: int | None = None
    job_id: str | None = None
    lost: bool = False

    @property
    def ok(self) -> bool:
        return not self.lost and self.code is None and 200 <= self.status < 300

    def outcome(self) -> Outcome:
        if self.lost:
            return Unknown()
        if self.ok:
            return Succeeded(row_count=self.row_count, job_id=self.job_id)
        return Failed(self.code or f"HTTP_{self.status}", self.status)


@frozen
class QueryObservation:
    """The reply to a SELECT: column names in order and positional rows, or an error."""

    status: int
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Cell, ...], ...] = ()
    code: str | None = None
    message: str | None = None
    lost: bool = False

    @property
    def ok(self) -> bool:
        return not self.lost and self.code is None and 200 <= self.status < 300

    def named_rows(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, r, strict=False)) for r in self.rows]

    def model_rows(
        self, table: Table, columns: tuple[str, ...] | None = None
    ) -> tuple[dict[str, Value], ...]:
        """The rows coerced to model values; with ``columns``, only those (the invariants
        report any other column the server sent on its own)."""
        rows = (model_row(table, r) for r in self.named_rows())
        if columns is None:
            return tuple(rows)
        return tuple({k: v for k, v in r.items() if k in columns} for r in rows)

    def outcome(self, table: Table | None, columns: tuple[str, ...] | None = None) -> Outcome:
        if self.lost:
            return Unknown()
        if not self.ok:
            return Failed(self.code or f"HTTP_{self.status}", self.status)
        return Succeeded(rows=self.model_rows(table, columns) if table is not None else None)


@frozen
class Batch:
    """One ``initial_data_batch`` (or the ack's copy of batch 0 is *not* included here)."""

    batch_num: int
    has_more: bool
    status: str
    last_seq_id: int | None
    rows: tuple[WireRow, ...]
    #: Position of the message in the subscription's receive order.
    index: int


@frozen
class Change:
    """One ``change`` message; ``rows``/``old_values`` are empty when the key was absent."""

    change_type: str
    rows: tuple[WireRow, ...] = ()
    old_values: tuple[WireRow, ...] = ()
    index: int = 0


@frozen
class SubscriptionObservation:
    """Everything one subscription delivered since it was opened, in receive order.

    ``quiescent`` means the adapter drained the socket after the last write the model knows
    of, so a change or page that has not arrived is lost rather than late.
    """

    sub_id: str
    acked: bool
    batches: tuple[Batch, ...] = ()
    changes: tuple[Change, ...] = ()
    #: ``error`` message code when the subscribe failed (e.g. ``UNAUTHORIZED``).
    error_code: str | None = None
    quiescent: bool = True


@frozen
class ManifestSegment:
    path: str
    row_count: int
    min_seq: int
    max_seq: int
    status: str


@frozen
class Manifest:
    segments: tuple[ManifestSegment, ...]
    last_sequence_number: int | None


@frozen
class ParquetFile:
    name: str
    size_bytes: int
    #: ``pyarrow.parquet.read_table(...).to_pylist()``; None when the file did not read.
    rows: tuple[WireRow, ...] | None
    error: str | None = None


@frozen
class ColdScopeObservation:
    """One scope directory under a storage: the parsed manifest and every file in it."""

    directory: str
    manifest: Manifest | None
    #: Why ``manifest.json`` could not be parsed, when it exists but is corrupt.
    manifest_error: str | None = None
    parquet: tuple[ParquetFile, ...] = ()
    #: Any other file name in the directory (``*.tmp``, partial writes, ...).
    other_files: tuple[str, ...] = ()


@frozen
class StorageListing:
    """Absolute paths of every file under the base directories of the model's storages."""

    files: tuple[str, ...] = field(converter=tuple)


@frozen
class JobObservation:
    job_id: str
    status: JobStatus
    message: str | None = None

    def outcome(self) -> Outcome:
        return Succeeded(job_status=self.status)
