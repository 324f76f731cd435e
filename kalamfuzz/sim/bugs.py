"""Planted bugs: small realistic defects, each against one contract item, switched on by name.

The fuzzer is measured by what it catches: with a bug on, the sim deviates from the contract in
exactly one place; with none on, it keeps the whole contract (docs/contract.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen


@frozen
class PlantedBug:
    name: str
    item: str  # contract item in DESIGN.md it breaks
    description: str


BUGS: tuple[PlantedBug, ...] = (
    PlantedBug(
        "execute_as_wrong_scope",
        "isolation",
        "EXECUTE AS USER 'u' (INSERT ...) writes into the caller's partition, not u's",
    ),
    PlantedBug(
        "select_scope_leak",
        "isolation",
        "a SELECT on a USER table whose WHERE uses OR also returns other users' rows",
    ),
    PlantedBug(
        "live_cross_user",
        "subscriptions/isolation",
        "USER-table changes are routed to every subscriber of the table, whoever owns the row",
    ),
    PlantedBug(
        "flush_drops_concurrent_writes",
        "tier equivalence",
        "a flush commit removes every hot version of a scope, including ones written while it ran",
    ),
    PlantedBug(
        "cold_shadows_hot",
        "tier equivalence",
        "reads prefer a cold version over a newer hot version of the same primary key",
    ),
    PlantedBug(
        "flush_drops_tombstones",
        "tier equivalence",
        "flush drops tombstones, so a key deleted after an earlier flush comes back (as KalamDB does)",
    ),
    PlantedBug(
        "manifest_row_count",
        "cold artifacts",
        "manifest.json counts tombstones filtered at flush in a segment's row_count",
    ),
    PlantedBug(
        "empty_batch_file",
        "cold artifacts",
        "a flush whose scope has only droppable tombstones writes an empty batch-N.parquet",
    ),
    PlantedBug(
        "snapshot_includes_deleted",
        "subscriptions/snapshot",
        "a subscription's initial snapshot includes soft-deleted rows",
    ),
    PlantedBug(
        "batch_has_more_exact",
        "subscriptions/batching",
        "has_more is true when the rows left equal batch_size, sending an extra empty page",
    ),
    PlantedBug(
        "live_multi_insert_first_only",
        "subscriptions/insert",
        "a multi-row INSERT notifies only its first row",
    ),
    PlantedBug(
        "live_update_old_values",
        "subscriptions/update",
        "an update notification carries the old values in rows",
    ),
    PlantedBug(
        "live_delete_cold_missing",
        "subscriptions/delete",
        "deleting a row whose visible version is in the cold tier sends no delete notification",
    ),
    PlantedBug(
        "held_changes_reversed",
        "subscriptions/ordering",
        "changes held during snapshot paging are sent newest first",
    ),
    PlantedBug(
        "resume_from_inclusive",
        "subscriptions/resume",
        "subscribe with from=S includes the row whose _seq is S (a replay)",
    ),
    PlantedBug(
        "user_writes_public_shared",
        "rbac",
        "role user may INSERT into a SHARED table with ACCESS_LEVEL PUBLIC",
    ),
    PlantedBug(
        "dup_pk_cold",
        "idempotency",
        "the primary-key check looks at the hot tier only, so a flushed key can be inserted again",
    ),
    PlantedBug(
        "failed_flush_drops_hot",
        "idempotency/safety",
        "a failed flush job still removes its rows from the hot tier",
    ),
    PlantedBug(
        "drop_column_resurrects",
        "schema evolution",
        "re-adding a dropped column by name shows the old values of hot rows",
    ),
    PlantedBug(
        "flush_ignores_storage_id",
        "storage routing",
        "flush writes under the default storage's base directory, not the table's STORAGE_ID",
    ),
    PlantedBug(
        "stream_ttl_unenforced",
        "stream ttl",
        "STREAM reads skip the TTL check, so expired rows live until the eviction job runs",
    ),
    PlantedBug(
        "wal_batched",
        "idempotency/safety",
        "writes are acknowledged before they reach the write-ahead log (lost on kill)",
    ),
)

BY_NAME: dict[str, PlantedBug] = {bug.name: bug for bug in BUGS}


def parse_bug_names(names: Iterable[str]) -> frozenset[str]:
    cleaned = {n.strip() for n in names if n.strip()}
    unknown = sorted(cleaned - BY_NAME.keys())
    if unknown:
        from .config import ConfigError

        raise ConfigError(
            f"unknown planted bug(s) {', '.join(unknown)}: see `kalamfuzz sim --list-bugs` for the names"
        )
    return frozenset(cleaned)


def describe_bugs() -> str:
    width = max(len(b.name) for b in BUGS)
    return "\n".join(f"{b.name:<{width}}  [{b.item}] {b.description}" for b in BUGS)
