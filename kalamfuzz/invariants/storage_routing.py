"""Item 8: a flush writes under the base directory of the table's STORAGE_ID, at the path of the
storage's template, and nowhere else."""

from __future__ import annotations

import posixpath

from kalamfuzz.invariants.violation import Finding, Violation
from kalamfuzz.model.catalog import TableId
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import ScopeKey
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.tiers import MANIFEST
from kalamfuzz.observations import StorageListing


def _artifact(path: str) -> bool:
    name = posixpath.basename(path)
    return name == MANIFEST or (name.startswith("batch-") and ".parquet" in name)


def expected_files(state: ModelState) -> tuple[set[str], set[str]]:
    """The cold artifacts that must exist, and those that may (the SHARED cleanup may have
    removed a scope's files and left a manifest without segments)."""
    required: set[str] = set()
    allowed: set[str] = set()
    for table_id, scope in state.flushed_scopes():
        if _unknown(state, table_id, scope):
            continue
        exp = state.expected_cold(table_id, scope)
        paths = {posixpath.join(exp.directory, p) for p in exp.paths}
        allowed |= paths
        if exp.clearable:
            allowed.add(posixpath.join(exp.directory, MANIFEST))
        else:
            required |= paths
    return required, allowed


def _unknown(state: ModelState, table_id: TableId, key: ScopeKey) -> bool:
    """A scope whose cold files the model no longer predicts (re-learned, or its table lost)."""
    return table_id in state.catalog.lost_tables or state.scope(table_id, key).relearned


def unknown_directories(state: ModelState) -> set[str]:
    """Scope directories that may hold any cold artifact."""
    out = set()
    for table_id, scopes in state.data.items():
        table = state.catalog.tables.get(table_id)
        if table is None:
            continue
        for key in scopes:
            if _unknown(state, table_id, key):
                out.add(posixpath.normpath(state.expected_cold(table_id, key).directory))
        if table_id in state.catalog.lost_tables:
            # scopes the model never saw a write in may have been written too
            storage = state.catalog.storages[table.storage_id]
            out.add(posixpath.normpath(storage.table_directory(table)))
    live = {
        posixpath.normpath(state.catalog.storages[t.storage_id].table_directory(t))
        for t in state.catalog.tables.values()
    }
    # A dropped table's files wait for KalamDB's cleanup job (unless a new table took the name).
    return out | {posixpath.normpath(d) for d in state.catalog.dropped_dirs} - live


def check_listing(
    state: ModelState, listing: StorageListing, busy: frozenset[TableId] = frozenset()
) -> Finding:
    """Compare every cold artifact under the storages with where the model put them.

    Files whose path names none of the model's namespaces belong to other runs and are ignored;
    so are the directories of ``busy`` tables (a flush job of theirs is still writing), but not
    a file one of them put anywhere else.
    """
    namespaces = state.catalog.namespaces
    seen = {
        posixpath.normpath(f)
        for f in listing.files
        if _artifact(f) and namespaces & set(posixpath.normpath(f).split("/"))
    }
    required, allowed = expected_files(state)
    want = {posixpath.normpath(f) for f in required}
    may = {posixpath.normpath(f) for f in allowed}
    free = unknown_directories(state)
    for table_id in busy:
        table = state.catalog.tables.get(table_id)
        if table is not None:
            storage = state.catalog.storages[table.storage_id]
            free.add(posixpath.normpath(storage.table_directory(table)))
    missing = sorted(f for f in want - seen if not any(f.startswith(d + "/") for d in free))
    # A file in a scope directory where the model has one is placed right (whether it should
    # exist is the cold-artifact check's business); a file missing while none is misplaced is
    # missing, not misrouted.
    scope_dirs = {
        posixpath.normpath(state.expected_cold(t, k).directory) for t, k in state.flushed_scopes()
    }
    extra = sorted(
        f
        for f in seen - may
        if not any(f.startswith(d + "/") for d in free) and posixpath.dirname(f) not in scope_dirs
    )
    if not extra:
        return [], {}
    return [
        Violation(
            ContractItem.STORAGE_ROUTING,
            "storages " + ", ".join(sorted(state.catalog.storages)),
            "cold artifacts are not where the table's storage and template put them",
            f"{len(want)} file(s)",
            f"{len(seen)} file(s)",
            tuple(
                [*(f"- missing {m}" for m in missing), *(f"+ misplaced {e}" for e in extra)][:12]
            ),
        )
    ], {}
