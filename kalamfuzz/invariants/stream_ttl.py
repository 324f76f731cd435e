"""STREAM TTL: a row older than its table's TTL_SECONDS is never returned.

The read happened somewhere in the client-measured window ``at``; only rows that are expired for
every instant of that window (and every possible ``_seq`` time) count as violations.
"""

from __future__ import annotations

from kalamfuzz.invariants.reads import SelectDiff, same_values
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import ScopeKey, Window
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.streams import Seen, visibility
from kalamfuzz.model.subscriptions import full_row
from kalamfuzz.model.values import Row, render_row


def expired(state: ModelState, table: Table, scope: ScopeKey, row: Row, at: Window | None) -> bool:
    if table.type is not TableType.STREAM or at is None or table.ttl_seconds is None:
        return False
    for ev in state.scope(table.id, scope).hot:
        if same_values(full_row(table, ev), row):
            seen = visibility(ev, state.seqs.get(ev.ordinal), table.ttl_seconds, at)
            if seen is Seen.NO:
                return True
    return False


def check_rows(
    state: ModelState,
    table: Table,
    scope: ScopeKey,
    rows: tuple[Row, ...],
    at: Window | None,
    where: str,
) -> list[Violation]:
    lines = [f"+ expired {render_row(r)}" for r in rows if expired(state, table, scope, r, at)]
    if not lines:
        return []
    ttl = table.ttl_seconds
    return [
        Violation(
            ContractItem.STREAM_TTL,
            f"table {table.id} scope {scope}",
            f"{where} returned rows older than TTL_SECONDS={ttl}",
            "no row past its TTL",
            f"{len(lines)} expired row(s)",
            tuple(lines),
        )
    ]


def check_select(state: ModelState, diff: SelectDiff, at: Window | None) -> list[Violation]:
    return check_rows(state, diff.table, diff.scope, diff.unexpected, at, "SELECT")
