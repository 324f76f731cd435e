"""Invariants: pure functions comparing the model's prediction with what a server did.

One module per contract item (:mod:`.isolation`, :mod:`.tiers`, :mod:`.cold_artifacts`,
:mod:`.subscriptions`, :mod:`.rbac`, :mod:`.idempotency`, :mod:`.schema_evolution`,
:mod:`.storage_routing`, :mod:`.stream_ttl`); :mod:`.check` has the entry points the machines
call, :mod:`.coerce` turns observations (``kalamfuzz.observations``, the data the adapters
produce) into the model's terms.
"""

from kalamfuzz.invariants.check import (
    check_cold,
    check_job,
    check_job_running,
    check_join,
    check_live_registry,
    check_query,
    check_statement_reply,
    check_storage,
    check_subscribe,
    check_subscription,
)
from kalamfuzz.invariants.coerce import model_row, model_rows, outcome
from kalamfuzz.invariants.violation import Verdict, Violation
from kalamfuzz.observations import (
    Batch,
    Change,
    ColdScopeObservation,
    JobObservation,
    Manifest,
    ManifestSegment,
    ParquetFile,
    QueryObservation,
    StatementObservation,
    StorageListing,
    SubscriptionObservation,
)

__all__ = [
    "Batch",
    "Change",
    "ColdScopeObservation",
    "JobObservation",
    "Manifest",
    "ManifestSegment",
    "ParquetFile",
    "QueryObservation",
    "StatementObservation",
    "StorageListing",
    "SubscriptionObservation",
    "Verdict",
    "Violation",
    "check_cold",
    "check_job",
    "check_job_running",
    "check_join",
    "check_live_registry",
    "check_query",
    "check_statement_reply",
    "check_storage",
    "check_subscribe",
    "check_subscription",
    "model_row",
    "model_rows",
    "outcome",
]
