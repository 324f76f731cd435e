"""Predictions (what the model expects) and outcomes (what the machine saw happen)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from attrs import frozen

from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.results import QueryResult
from kalamfuzz.model.values import Value


class ContractItem(enum.Enum):
    """The contract of DESIGN.md: ten items plus the STREAM TTL promise."""

    ISOLATION = "1 isolation"
    TIERS = "2 correct before/during/after flush"
    COLD_ARTIFACTS = "3 cold artifacts"
    SUBSCRIPTIONS = "4 subscriptions"
    RBAC = "5 RBAC"
    IDEMPOTENCY = "6 idempotency and safety"
    SCHEMA_EVOLUTION = "7 schema evolution"
    STORAGE_ROUTING = "8 storage routing"
    STREAM_TTL = "STREAM TTL"
    CONCURRENCY = "9 concurrency and transactions"
    HOSTILE = "10 hostile clients"


# --- predictions ------------------------------------------------------------------------------


@frozen
class Ok:
    """The statement succeeds. ``row_count`` is checked when given (DML)."""

    row_count: int | None = None
    #: For a count the model can only bracket (STREAM rows at their TTL boundary).
    row_count_max: int | None = None

    def count_ok(self, observed: int | None) -> bool:
        if self.row_count is None:
            return True
        if observed is None:
            return False
        hi = self.row_count if self.row_count_max is None else self.row_count_max
        return self.row_count <= observed <= hi


@frozen
class Rejected:
    """The statement fails with one of ``codes`` (and ``status`` when given)."""

    codes: frozenset[str]
    status: int | None
    item: ContractItem
    #: Why, in words, for the report.
    reason: str
    #: Substrings the message must contain (for callers who see it: see ``kept``).
    message_contains: tuple[str, ...] = ()
    #: Whether KalamDB shows the message to user and service callers too. It redacts most
    #: execution errors to "SQL statement failed" for them (execution_paths.rs), keeping
    #: primary-key, constraint, unknown-column and already-exists messages.
    kept: bool = False


def permission_denied(reason: str) -> Rejected:
    return Rejected(frozenset({"PERMISSION_DENIED"}), 403, ContractItem.RBAC, reason, kept=True)


def execution_error(
    reason: str,
    item: ContractItem,
    *contains: str,
    codes: frozenset[str] | None = None,
    kept: bool = False,
) -> Rejected:
    return Rejected(
        codes or frozenset({"SQL_EXECUTION_ERROR"}), 400, item, reason, tuple(contains), kept
    )


@frozen
class FlushStarted:
    """A flush job is created (its id comes from the server)."""


@frozen
class FlushSkipped:
    """Nothing to flush, or a flush of the table is already queued or running."""


@frozen
class JobEnds:
    status: JobStatus
    #: A failed job must say why.
    message_required: bool = False


@frozen
class Subscribed:
    """The subscription is accepted; its stream is checked against the model's Subscription."""

    sub_id: str


@frozen
class TxReply:
    """A transaction succeeds: each SELECT's rows in statement order (a None entry, or None for
    all: not predicted) and the INSERT, UPDATE and DELETE row counts the reply sums (None: not
    predicted)."""

    selects: tuple[QueryResult | None, ...] | None = ()
    counts: tuple[int, int, int] | None = (0, 0, 0)


Prediction = (
    Ok | Rejected | QueryResult | FlushStarted | FlushSkipped | JobEnds | Subscribed | TxReply
)


@frozen
class OneOf:
    """Several outcomes are allowed (non-determinism the model cannot resolve yet)."""

    options: tuple[Prediction, ...]


# --- outcomes ---------------------------------------------------------------------------------


@frozen
class Succeeded:
    """The request succeeded; carry whatever the server assigned or returned."""

    row_count: int | None = None
    #: Flush: a job was created with this id (None: the flush was skipped).
    job_id: str | None = None
    #: SELECT: the rows, already coerced to model values (``QueryObservation.model_rows``).
    rows: tuple[Mapping[str, Value], ...] | None = None
    #: JobFinished: the final status seen.
    job_status: JobStatus | None = None
    #: A transaction: each SELECT's rows in order, and the summed INSERT, UPDATE, DELETE counts.
    selects: tuple[tuple[Mapping[str, Value], ...], ...] | None = None
    counts: tuple[int, int, int] | None = None


@frozen
class Failed:
    code: str
    status: int | None = None


@frozen
class Unknown:
    """The outcome is unknown (crash, dropped connection): both possibilities stay open."""


Outcome = Succeeded | Failed | Unknown
