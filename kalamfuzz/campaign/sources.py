"""KalamDB's own word for what a report expects: a doc page, a test or a code comment of its
repository that states the promise a finding breaks.

Every entry was read at :data:`KALAMDB_COMMIT` (the build the regressions under
``regressions/kalamdb/`` were found on, ``docs/contract.md``); none is paraphrased: ``quote`` is
the line as it stands at ``path:line``. A report cites the entries of its contract item whose
``about`` matches the violation, and falls back to kalamfuzz's contract item when none does.
"""

from __future__ import annotations

import re

from attrs import frozen

KALAMDB_REPO = "jamals86/KalamDB"
#: The revision every source below was read at.
KALAMDB_COMMIT = "66dc492b35956afe857571ba08cb6709537523e8"
#: Release builds whose source revision is known (docs/contract.md, "Calibration").
KNOWN_BUILDS = {"0.4.3-rc.4": KALAMDB_COMMIT}


@frozen
class Source:
    #: The contract item (``ContractItem.value``) whose promise it states.
    item: str
    path: str
    line: int
    #: ``doc``, ``spec``, ``test`` or ``code comment`` (``code`` for a line of code).
    kind: str
    quote: str
    #: A regex searched in the violation's summary: the source speaks to that symptom. Empty:
    #: it states the item's promise in general.
    about: str = ""

    @property
    def url(self) -> str:
        return f"https://github.com/{KALAMDB_REPO}/blob/{KALAMDB_COMMIT}/{self.path}#L{self.line}"

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]


_FLUSH_TEST = "backend/tests/testserver/flush/test_flush_unregistered_suite_http.rs"
_ADR_006 = "docs/architecture/decisions/adr-006-flush-execution.md"
_TX_RESEARCH = "specs/027-pg-transactions/research.md"

SOURCES: tuple[Source, ...] = (
    Source(
        "1 isolation",
        "docs/architecture/decisions/adr-001-table-per-user-architecture.md",
        29,
        "doc",
        "1. **User Tables**: Each user gets their own isolated table instance",
    ),
    Source(
        "2 correct before/during/after flush",
        _FLUSH_TEST,
        474,
        "test",
        'anyhow::ensure!(cnt == 4, "delete should persist after flush, got {}", cnt);',
        about="deleted row is visible again",
    ),
    Source(
        "2 correct before/during/after flush",
        _ADR_006,
        38,
        "doc",
        "└─> Skip soft-deleted rows (_deleted = true)",
        about="deleted row is visible again",
    ),
    Source(
        "3 cold artifacts",
        _ADR_006,
        59,
        "doc",
        "└─> On Parquet failure, keep rows in buffer (retry next flush)",
        about="after a failed flush|flush job failed|did not fail",
    ),
    Source(
        "3 cold artifacts",
        _ADR_006,
        33,
        "doc",
        "└─> Prevents missing rows from concurrent inserts",
        about="written while a flush ran",
    ),
    Source(
        "4 subscriptions",
        "specs/014-live-queries-websocket/spec.md",
        110,
        "spec",
        "- **FR-013**: The SDK MUST remember, per subscription, the last received sequence "
        "identifier (SeqId) from the server and, on reconnect, pass this identifier so that the "
        "server can resume the stream from that point in time and avoid duplicate or missing "
        "updates.",
        about="never arrived|more than once|resum",
    ),
    Source(
        "5 RBAC",
        "backend/crates/kalamdb-session/src/permissions.rs",
        249,
        "code",
        "TableAccess::Private => matches!(role, Role::System | Role::Dba | Role::Service),",
        about=r"may not read",
    ),
    Source(
        "5 RBAC",
        "docs/reference/sql.md",
        224,
        "doc",
        "7. The wrapper is valid for USER and STREAM tables; shared tables use their table "
        "policy directly.",
        about="EXECUTE AS",
    ),
    Source(
        "6 idempotency and safety",
        "backend/crates/kalamdb-jobs/src/jobs_manager/utils.rs",
        89,
        "code comment",
        '/// Marks all Running jobs as Failed with "Server restarted" error.',
        about="restart interrupted never ends",
    ),
    Source(
        "6 idempotency and safety",
        _ADR_006,
        59,
        "doc",
        "└─> On Parquet failure, keep rows in buffer (retry next flush)",
        about="after a failed flush",
    ),
    Source(
        "7 schema evolution",
        "backend/tests/misc/schema/test_column_id_stability.rs",
        117,
        "test",
        'assert_ne!(category_col_id, stock_col_id, "New column should NOT reuse dropped '
        "column's ID\");",
        about="added again|dropped column",
    ),
    Source(
        "7 schema evolution",
        "cli/tests/smoke/ddl/smoke_test_alter_with_data.rs",
        9,
        "test",
        "//! Note: Default values for new columns are only applied to newly inserted rows,",
        about="added later|default",
    ),
    Source(
        "8 storage routing",
        _ADR_006,
        53,
        "doc",
        "├─> Path: {base_directory}/{namespace}/{tableName}/{userId}/",
    ),
    Source(
        "9 concurrency and transactions",
        _TX_RESEARCH,
        7,
        "spec",
        "- Decision: Explicit `BEGIN` transactions capture a snapshot boundary at transaction "
        "start using a global monotonic `commit_seq` counter (not the per-row `_seq` Snowflake "
        "ID). The transaction reads from committed data with `commit_seq <= "
        "snapshot_commit_seq` plus the transaction's own staged writes.",
    ),
    Source(
        "9 concurrency and transactions",
        "docs/architecture/transactions.md",
        104,
        "doc",
        "That means a transaction can see its own staged inserts, updates, and deletes before "
        "commit, while other callers still see only committed data.",
        about="transaction",
    ),
    Source(
        "9 concurrency and transactions",
        "backend/crates/kalamdb-core/tests/transaction_commit_live_fanout.rs",
        94,
        "test",
        '"staged transaction should not fan out before commit"',
        about="fan out|subscriber|change",
    ),
    Source(
        "10 hostile clients",
        "backend/crates/kalamdb-auth/src/security/password.rs",
        35,
        "code",
        "pub const MAX_PASSWORD_LENGTH: usize = 72;",
        about="weak password|password",
    ),
    Source(
        "10 hostile clients",
        "backend/crates/kalamdb-auth/src/security/password.rs",
        30,
        "code",
        "pub const MIN_PASSWORD_LENGTH: usize = 8;",
        about="weak password",
    ),
    Source(
        "10 hostile clients",
        "backend/crates/kalamdb-auth/src/services/unified/bearer.rs",
        101,
        "code",
        '"Token role does not match user role".to_string(),',
        about="role claim",
    ),
    Source(
        "10 hostile clients",
        "backend/crates/kalamdb-auth/src/services/unified/bearer.rs",
        47,
        "code",
        '"Refresh tokens cannot be used for API authentication".to_string(),',
        about="refresh",
    ),
)


def sources_for(item: str, summary: str) -> list[Source]:
    """The sources of ``item`` that speak to ``summary``, else its general ones."""
    mine = [s for s in SOURCES if s.item == item]
    specific = [s for s in mine if s.about and re.search(s.about, summary, re.IGNORECASE)]
    return specific or [s for s in mine if not s.about]


def build_commit(server: str) -> str:
    """The KalamDB revision of a known release build named in ``server`` ("" if unknown)."""
    for version, commit in KNOWN_BUILDS.items():
        if re.search(rf"\b{re.escape(version)}\b", server):
            return commit
    return ""
