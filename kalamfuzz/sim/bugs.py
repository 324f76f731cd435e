"""Planted bugs: small realistic defects, each against one contract item, switched on by name.

The fuzzer is measured by what it catches: with a bug on, the sim deviates from the contract in
exactly one place; with none on, it keeps the whole contract (docs/contract.md). Code asks
``engine.has(BUG)`` with the constants below, never with a bare name, so that a typo is an
import error rather than a bug that silently never fires.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen


@frozen
class PlantedBug:
    name: str
    #: The contract item it breaks, as the findings name it (``ContractItem`` values: the sim
    #: does not import the model).
    item: str
    description: str


EXECUTE_AS_WRONG_SCOPE = PlantedBug(
    "execute_as_wrong_scope",
    "1 isolation",
    "EXECUTE AS USER 'u' (INSERT ...) writes into the caller's partition, not u's",
)
SELECT_SCOPE_LEAK = PlantedBug(
    "select_scope_leak",
    "1 isolation",
    "a SELECT on a USER table whose WHERE uses OR also returns other users' rows",
)
LIVE_CROSS_USER = PlantedBug(
    "live_cross_user",
    "1 isolation",
    "USER-table changes are routed to every subscriber of the table, whoever owns the row",
)
FLUSH_DROPS_CONCURRENT_WRITES = PlantedBug(
    "flush_drops_concurrent_writes",
    "2 correct before/during/after flush",
    "a flush commit removes every hot version of a scope, including ones written while it ran",
)
COLD_SHADOWS_HOT = PlantedBug(
    "cold_shadows_hot",
    "2 correct before/during/after flush",
    "reads prefer a cold version over a newer hot version of the same primary key",
)
FLUSH_DROPS_TOMBSTONES = PlantedBug(
    "flush_drops_tombstones",
    "2 correct before/during/after flush",
    "a flush that writes at least one live row of a scope also deletes that scope's hot "
    "tombstones, so a key deleted after an earlier flush comes back from the cold tier",
)
MANIFEST_ROW_COUNT = PlantedBug(
    "manifest_row_count",
    "3 cold artifacts",
    "manifest.json counts tombstones filtered at flush in a segment's row_count",
)
EMPTY_BATCH_FILE = PlantedBug(
    "empty_batch_file",
    "3 cold artifacts",
    "a flush whose scope has only droppable tombstones writes an empty batch-N.parquet",
)
SNAPSHOT_INCLUDES_DELETED = PlantedBug(
    "snapshot_includes_deleted",
    "4 subscriptions",
    "a subscription's initial snapshot includes soft-deleted rows",
)
BATCH_HAS_MORE_EXACT = PlantedBug(
    "batch_has_more_exact",
    "4 subscriptions",
    "has_more is true when the rows left equal batch_size, sending an extra empty page",
)
LIVE_MULTI_INSERT_FIRST_ONLY = PlantedBug(
    "live_multi_insert_first_only",
    "4 subscriptions",
    "a multi-row INSERT notifies only its first row",
)
LIVE_UPDATE_OLD_VALUES = PlantedBug(
    "live_update_old_values",
    "4 subscriptions",
    "an update notification carries the old values in rows",
)
LIVE_DELETE_COLD_MISSING = PlantedBug(
    "live_delete_cold_missing",
    "4 subscriptions",
    "deleting a row whose visible version is in the cold tier sends no delete notification",
)
HELD_CHANGES_REVERSED = PlantedBug(
    "held_changes_reversed",
    "4 subscriptions",
    "changes held during snapshot paging are sent newest first",
)
RESUME_FROM_INCLUSIVE = PlantedBug(
    "resume_from_inclusive",
    "4 subscriptions",
    "subscribe with from=S includes the row whose _seq is S (a replay)",
)
USER_WRITES_PUBLIC_SHARED = PlantedBug(
    "user_writes_public_shared",
    "5 RBAC",
    "role user may INSERT into a SHARED table with ACCESS_LEVEL PUBLIC",
)
DUP_PK_COLD = PlantedBug(
    "dup_pk_cold",
    "6 idempotency and safety",
    "the primary-key check looks at the hot tier only, so a flushed key can be inserted again",
)
PK_CHECK_IGNORES_TOMBSTONES = PlantedBug(
    "pk_check_ignores_tombstones",
    "6 idempotency and safety",
    "the primary-key check sees a cold row even when a hot tombstone deleted it: the key cannot "
    "be inserted again",
)
FAILED_FLUSH_DROPS_HOT = PlantedBug(
    "failed_flush_drops_hot",
    "6 idempotency and safety",
    "a failed flush job still removes its rows from the hot tier",
)
DROP_COLUMN_RESURRECTS = PlantedBug(
    "drop_column_resurrects",
    "7 schema evolution",
    "re-adding a dropped column by name shows the old values of hot rows",
)
FLUSH_IGNORES_STORAGE_ID = PlantedBug(
    "flush_ignores_storage_id",
    "8 storage routing",
    "flush writes under the default storage's base directory, not the table's STORAGE_ID",
)
STREAM_TTL_UNENFORCED = PlantedBug(
    "stream_ttl_unenforced",
    "STREAM TTL",
    "STREAM reads skip the TTL check, so expired rows live until the eviction job runs",
)
WAL_BATCHED = PlantedBug(
    "wal_batched",
    "6 idempotency and safety",
    "writes are acknowledged before they reach the write-ahead log (lost on kill)",
)
ORDER_LIMIT_RESORTED = PlantedBug(
    "order_limit_resorted",
    "2 correct before/during/after flush",
    "SELECT ... ORDER BY ... LIMIT returns the right rows re-sorted by primary key, and so do "
    "the live snapshot's pages (rows lost and repeated once an UPDATE moved a key's _seq)",
)
FAILED_FLUSH_CLEARS_PENDING = PlantedBug(
    "failed_flush_clears_pending",
    "6 idempotency and safety",
    "after a failed flush job the table has no pending writes: STORAGE FLUSH is skipped "
    "until its next write, although its rows are still hot",
)
FLUSH_RACE_CLEARS_PENDING = PlantedBug(
    "flush_race_clears_pending",
    "3 cold artifacts",
    "a write that lands while a flush job of its table runs is not pending: the next "
    "STORAGE FLUSH is skipped although the row is still hot",
)
DML_NEVER_TRUE_REFUSED = PlantedBug(
    "dml_never_true_refused",
    "2 correct before/during/after flush",
    "UPDATE or DELETE whose WHERE folds to NULL or FALSE (col = NULL, 1 = 0) is refused with "
    "'requires a WHERE clause' instead of affecting 0 rows",
)
RESTART_DML_BLIND = PlantedBug(
    "restart_dml_blind",
    "2 correct before/during/after flush",
    "after a restart, UPDATE and DELETE do not see a table's hot rows written before it "
    "(SELECT does) until a new write to that table",
)
LIVE_FILTER_LEAVE_SILENT = PlantedBug(
    "live_filter_leave_silent",
    "4 subscriptions",
    "an UPDATE that makes a row stop matching a subscription's WHERE sends nothing",
)
LIVE_FILTER_UNSUPPORTED = PlantedBug(
    "live_filter_unsupported",
    "4 subscriptions",
    "a subscription whose WHERE uses IS [NOT] NULL, IN, BETWEEN or a negative number gets its "
    "snapshot but no change",
)

LIVE_CHANGE_DROPPED_COLUMN = PlantedBug(
    "live_change_dropped_column",
    "7 schema evolution",
    "after DROP COLUMN, a SELECT * subscription's UPDATE and DELETE changes still carry the "
    "dropped column's stored value (the snapshot and SELECT leave it out)",
)
PARTIAL_PARQUET_ON_CRASH = PlantedBug(
    "partial_parquet_on_crash",
    "3 cold artifacts",
    "a flush commits manifest.json before its batch file is complete, so a crash mid-flush "
    "leaves a manifest naming a truncated Parquet file",
)
RETRY_REINSERTS = PlantedBug(
    "retry_reinserts",
    "6 idempotency and safety",
    "the plan cache reuses an INSERT's primary-key check when the same statement text comes "
    "again: a retried INSERT whose first attempt ran writes its key again",
)
LOST_UPDATE = PlantedBug(
    "lost_update",
    "9 concurrency and transactions",
    "an autocommit UPDATE evaluates its SET from the rows it read, pauses, then writes those "
    "values over the row's latest version: of two concurrent n = n + 1, one is lost",
)
PK_INSERT_RACE = PlantedBug(
    "pk_insert_race",
    "9 concurrency and transactions",
    "an autocommit INSERT checks the primary key, pauses, then writes without checking again: "
    "two concurrent INSERTs of one key both succeed",
)
DIRTY_READ = PlantedBug(
    "dirty_read",
    "9 concurrency and transactions",
    "an explicit transaction's writes are visible to other clients' reads from the statement "
    "that makes them (the request pauses after each one, and a read waits a little before it "
    "scans), not from COMMIT; ROLLBACK still undoes them",
)
PARTIAL_COMMIT = PlantedBug(
    "partial_commit",
    "9 concurrency and transactions",
    "when a statement inside an explicit transaction fails, the transaction's earlier "
    "statements stay committed (logged and notified) although the request reports the error",
)
LIVE_BEFORE_COMMIT = PlantedBug(
    "live_before_commit",
    "4 subscriptions",
    "an explicit transaction's live changes are sent as each statement runs, not at COMMIT: "
    "subscribers get the changes of a transaction that is then rolled back",
)

WEAK_PASSWORD_ACCEPTED = PlantedBug(
    "weak_password_accepted",
    "10 hostile clients",
    "CREATE USER and ALTER USER ... SET PASSWORD apply the password policy (8 to 72 bytes, not "
    "a common password) only when password complexity is enforced",
)
TOKEN_ISSUER_UNCHECKED = PlantedBug(
    "token_issuer_unchecked",
    "10 hostile clients",
    "a bearer token signed with the server's secret is accepted whatever its issuer",
)
ROLE_CLAIM_TRUSTED = PlantedBug(
    "role_claim_trusted",
    "10 hostile clients",
    "a bearer token's role claim is used for the session instead of the account's role",
)
CRASH_ON_SQL_LIST = PlantedBug(
    "crash_on_sql_list",
    "10 hostile clients",
    "a /v1/api/sql body whose sql is a JSON array takes the server process down",
)

ALTER_IGNORES_OWNER = PlantedBug(
    "alter_ignores_owner",
    "5 RBAC",
    "a plain user may ALTER a USER table another account created (KalamDB's can_alter_table "
    "ignores its owner argument)",
)

#: How long a request stays paused where a planted race (lost_update, pk_insert_race,
#: dirty_read) opens its window: long enough that calls released together meet in it on a
#: loaded machine too. With none of them on, a request never pauses.
RACE_WINDOW_S = 0.1

BUGS: tuple[PlantedBug, ...] = (
    EXECUTE_AS_WRONG_SCOPE,
    SELECT_SCOPE_LEAK,
    LIVE_CROSS_USER,
    FLUSH_DROPS_CONCURRENT_WRITES,
    COLD_SHADOWS_HOT,
    FLUSH_DROPS_TOMBSTONES,
    MANIFEST_ROW_COUNT,
    EMPTY_BATCH_FILE,
    SNAPSHOT_INCLUDES_DELETED,
    BATCH_HAS_MORE_EXACT,
    LIVE_MULTI_INSERT_FIRST_ONLY,
    LIVE_UPDATE_OLD_VALUES,
    LIVE_DELETE_COLD_MISSING,
    HELD_CHANGES_REVERSED,
    RESUME_FROM_INCLUSIVE,
    USER_WRITES_PUBLIC_SHARED,
    DUP_PK_COLD,
    FAILED_FLUSH_DROPS_HOT,
    DROP_COLUMN_RESURRECTS,
    FLUSH_IGNORES_STORAGE_ID,
    STREAM_TTL_UNENFORCED,
    WAL_BATCHED,
    ORDER_LIMIT_RESORTED,
    FAILED_FLUSH_CLEARS_PENDING,
    FLUSH_RACE_CLEARS_PENDING,
    DML_NEVER_TRUE_REFUSED,
    RESTART_DML_BLIND,
    LIVE_FILTER_LEAVE_SILENT,
    LIVE_FILTER_UNSUPPORTED,
    PK_CHECK_IGNORES_TOMBSTONES,
    LIVE_CHANGE_DROPPED_COLUMN,
    PARTIAL_PARQUET_ON_CRASH,
    RETRY_REINSERTS,
    LOST_UPDATE,
    PK_INSERT_RACE,
    DIRTY_READ,
    PARTIAL_COMMIT,
    LIVE_BEFORE_COMMIT,
    WEAK_PASSWORD_ACCEPTED,
    TOKEN_ISSUER_UNCHECKED,
    ROLE_CLAIM_TRUSTED,
    CRASH_ON_SQL_LIST,
    ALTER_IGNORES_OWNER,
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
