"""Flush jobs and their statuses (system.jobs)."""

from __future__ import annotations

import enum

from attrs import frozen

from kalamfuzz.model.catalog import TableId


class JobStatus(enum.Enum):
    """The statuses of ``system.jobs``; the model only distinguishes running from finished."""

    NEW = "new"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self in (
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.SKIPPED,
        )


@frozen
class Job:
    job_id: str
    table_id: TableId
    #: The model's commit counter when the flush was requested: the job takes at least the
    #: hot versions up to here, and at most those present when it is seen finished.
    requested_at: int
    status: JobStatus = JobStatus.RUNNING
    message: str | None = None
    #: The table's storage was unwritable at some time since the request (a fault injected
    #: then, or still on): the job may have met it. ``storage_was_writable`` is the converse.
    storage_was_broken: bool = False
    storage_was_writable: bool = True
    #: The table's columns when the flush was requested: a column added or dropped after that
    #: may be missing from, or still in, the files the job writes (it may have taken its rows
    #: first).
    columns: tuple[str, ...] = ()
    #: The model's commit counter when the job was seen finished: writes after its request
    #: and up to here may have landed while it ran.
    finished_at: int | None = None
    #: The server restarted while the job ran: it may have flushed each scope, part of it, or
    #: nothing, and may report any end (KalamDB marks a job running at start-up failed).
    interrupted: bool = False
