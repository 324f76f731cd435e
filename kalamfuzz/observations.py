"""What a client saw, as plain data: the adapters build these from wire messages and files,
the invariants judge them.

This module sits below both (it imports neither, nor the model), so the I/O layer does not
depend on the checks. Cells stay as decoded from JSON (``_seq`` and BIGINT as strings are fine)
or from pyarrow (``to_pylist()``; Timestamp cells converted to integer microseconds); the
invariants coerce them to the model's types with the table schema (``invariants.coerce``).
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field, frozen

Cell = object
WireRow = Mapping[str, Cell]


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


@frozen
class HostileObservation:
    """The answer to a request a well-behaved client never sends: its status, the error code
    and message of a JSON error body, the whole body (for what it must not carry), or no
    answer at all (``lost``: the connection dropped, or nothing came within the timeout)."""

    status: int
    code: str | None = None
    message: str | None = None
    text: str = ""
    lost: bool = False
    seconds: float = 0.0


@frozen
class TransactionObservation:
    """The reply to ``BEGIN; ...; COMMIT`` in one request: each SELECT's result in statement
    order, and the INSERT, UPDATE and DELETE row counts the reply sums at its end (HTTP_SQL.md
    §1.4), or the error (a failed transaction returns no results)."""

    status: int
    code: str | None = None
    message: str | None = None
    selects: tuple[QueryObservation, ...] = ()
    counts: tuple[int, int, int] = (0, 0, 0)
    lost: bool = False

    @property
    def ok(self) -> bool:
        return not self.lost and self.code is None and 200 <= self.status < 300


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
    #: The file size the manifest records, when it records one.
    size_bytes: int | None = None


@frozen
class Manifest:
    segments: tuple[ManifestSegment, ...]
    last_sequence_number: int | None
    #: The scope the manifest says it belongs to ("" when not read).
    table_id: str = ""
    user_id: str | None = None


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
    #: As in ``system.jobs``: new, queued, running, retrying, completed, failed, cancelled.
    status: str
    message: str | None = None


@frozen
class LiveRegistryObservation:
    """What ``system.live`` lists of a run's own subscriptions, beside what their clients got.

    ``listed``: (subscription_id, changes counter) per row; ``received``: change notifications
    each open subscription's client received, by subscription id.
    """

    listed: tuple[tuple[str, int], ...]
    received: Mapping[str, int]
