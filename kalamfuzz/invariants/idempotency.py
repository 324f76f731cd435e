"""Item 6: no duplicated rows (retries, duplicate keys, re-flushed data), hot or cold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from kalamfuzz.invariants.isolation import owner_elsewhere
from kalamfuzz.invariants.reads import SelectDiff
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.values import DELETED, Row, Value, render_row


def duplicate_keys(table: Table, rows: Sequence[Row]) -> set[Value]:
    """Primary keys shown more than once where each key has one current row."""
    pk = table.pk.name
    if table.type is TableType.STREAM:
        return set()
    counts = Counter(r[pk] for r in rows if pk in r and not r.get(DELETED))
    return {k for k, n in counts.items() if n > 1}


def own_rows(state: ModelState, diff: SelectDiff) -> list[Row]:
    """Observed rows minus other users' rows (those are isolation findings, not duplicates)."""
    foreign = [
        id(u)
        for u in diff.unexpected
        if owner_elsewhere(state, diff.table, diff.scope, u, diff.missing) is not None
    ]
    return [r for r in diff.observed if id(r) not in foreign]


def check_select(state: ModelState, diff: SelectDiff) -> list[Violation]:
    dups = duplicate_keys(diff.table, own_rows(state, diff))
    if not dups:
        return []
    pk = diff.table.pk.name
    lines = tuple(f"= {render_row(r)}" for r in diff.observed if r.get(pk) in dups)
    return [
        Violation(
            ContractItem.IDEMPOTENCY,
            diff.subject,
            f"primary key(s) {sorted(dups, key=repr)} returned more than once",
            "one row per primary key",
            f"{len(lines)} rows for {len(dups)} key(s)",
            lines[:10],
        )
    ]
