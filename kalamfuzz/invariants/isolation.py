"""Item 1: a USER or STREAM row of user A never reaches user B (SELECT, snapshot, change)."""

from __future__ import annotations

from collections.abc import Sequence

from kalamfuzz.invariants.reads import SelectDiff, same_values
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.catalog import Table
from kalamfuzz.model.live import full_row
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import ScopeKey
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.values import Row, render_row


def owner_elsewhere(state: ModelState, table: Table, own: ScopeKey, row: Row) -> ScopeKey:
    """The other scope whose data ``row`` shows, or None when it is no other user's row."""
    if not table.type.per_user or not row:
        return None
    for key, scope in state.scopes(table.id).items():
        if key == own:
            continue
        if any(same_values(full_row(table, v), row) for v in scope.all_versions()):
            return key
    return None


def leaks(
    state: ModelState, table: Table, own: ScopeKey, rows: Sequence[Row], where: str
) -> list[Violation]:
    lines = []
    for row in rows:
        owner = owner_elsewhere(state, table, own, row)
        if owner is not None:
            lines.append(f"+ {owner}'s row {render_row(row)}")
    if not lines:
        return []
    return [
        Violation(
            ContractItem.ISOLATION,
            f"table {table.id} scope {own}",
            f"rows of other users visible in {where}",
            f"only {own}'s rows",
            f"{len(lines)} foreign row(s)",
            tuple(lines),
        )
    ]


def check_select(state: ModelState, diff: SelectDiff) -> list[Violation]:
    return leaks(state, diff.table, diff.scope, diff.unexpected, "SELECT")
