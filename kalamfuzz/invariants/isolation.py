"""Item 1: a USER or STREAM row of user A never reaches user B (SELECT, snapshot, change)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kalamfuzz.invariants.reads import SelectDiff, same_values
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.catalog import Table
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import Scope, ScopeKey, Version
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.subscriptions import full_row
from kalamfuzz.model.values import SEQ, Row, render_row


def owner_elsewhere(
    state: ModelState, table: Table, own: ScopeKey, row: Row, missing: Sequence[Row] = ()
) -> ScopeKey:
    """The other scope whose data ``row`` shows, or None when it is no other user's row.
    ``missing``: the rows of one's own the same answer lacks."""
    if not table.type.per_user or not row:
        return None

    seq = row.get(SEQ)

    def shows(v: Version) -> bool:
        # A _seq names one version on the whole server: when both are known they decide (a
        # row of one's own that reads wrong may look like a neighbour's by its values alone).
        known = state.seqs.get(v.ordinal)
        if isinstance(seq, int) and known is not None and known != seq:
            return False
        return same_values(full_row(table, v), row)

    def proven(v: Version) -> bool:
        return isinstance(seq, int) and state.seqs.get(v.ordinal) == seq and shows(v)

    def shown_in(scope: Scope, test: Callable[[Version], bool] = shows) -> bool:
        return any(test(v) for v in scope.all_versions())

    scopes = state.scopes(table.id)
    # A row that equals a version of one's own (a stale one, say) is a wrong read, not a leak:
    # seeded rows of two users often look alike.
    if own in scopes and shown_in(scopes[own]):
        return None
    # A row of one's own the answer lacks may come back with wrong values that look like a
    # neighbour's row of that key (a column re-added with the dropped values): only its _seq
    # proves whose it is.
    pk = table.pk.name
    test = proven if any(m.get(pk) == row.get(pk) for m in missing) else shows
    return next((k for k, sc in scopes.items() if k != own and shown_in(sc, test)), None)


def leaks(
    state: ModelState,
    table: Table,
    own: ScopeKey,
    rows: Sequence[Row],
    where: str,
    missing: Sequence[Row] = (),
) -> list[Violation]:
    lines = []
    for row in rows:
        owner = owner_elsewhere(state, table, own, row, missing)
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
    return leaks(state, diff.table, diff.scope, diff.unexpected, "SELECT", diff.missing)
