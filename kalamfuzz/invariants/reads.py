"""Comparing a SELECT reply with the model: the shared diff the per-item modules classify."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from kalamfuzz.invariants.violation import Violation, row_diff_lines
from kalamfuzz.model.catalog import Table
from kalamfuzz.model.ops import Join, Select
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.results import QueryResult, match_rows
from kalamfuzz.model.rows import ScopeKey
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.values import SEQ, ColType, ModelError, Row, Value, coerce, order_cmp
from kalamfuzz.observations import QueryObservation


@frozen
class SelectDiff:
    table: Table
    scope: ScopeKey
    result: QueryResult
    observed: tuple[Row, ...]
    missing: tuple[Row, ...]
    unexpected: tuple[Row, ...]
    learned: dict[int, int]
    #: Columns the answer has that the query does not name, and named ones it lacks. Rows are
    #: compared without the extra ones, so they are reported once, as a column finding.
    extra_columns: tuple[str, ...] = ()
    absent_columns: tuple[str, ...] = ()
    #: LIMIT cut the result: the exact count it requires, when the answer has another.
    count_problem: str | None = None
    order_problem: str | None = None

    @property
    def subject(self) -> str:
        scope = "shared" if self.scope is None else self.scope
        return f"table {self.table.id} scope {scope}"


def select_diff(
    state: ModelState, op: Select, result: QueryResult, rows: Sequence[Row]
) -> SelectDiff:
    table = state.catalog.table(op.table_id)
    scope = state.scope_key(table, op.as_user or op.actor)
    names = list(rows[0]) if rows else []
    extra = tuple(c for c in names if c not in result.columns)
    absent = tuple(c for c in result.columns if rows and c not in rows[0])
    compared = [{k: v for k, v in r.items() if k not in extra} for r in rows] if extra else rows
    diff = result.compare(compared, state.seqs)
    count = None
    if result.count is not None and len(rows) != result.count:
        count = f"{len(rows)} row(s), LIMIT requires exactly {result.count}"
    orders = _order_problems(result, rows)
    return SelectDiff(
        table,
        scope,
        result,
        tuple(rows),
        diff.missing,
        diff.unexpected,
        dict(diff.learned),
        extra,
        absent,
        count,
        orders[0] if orders else None,
    )


def _order_problems(result: QueryResult, rows: Sequence[Row]) -> list[str]:
    keys = result.order_by
    if not keys or any(c not in result.columns for c, _ in keys):
        return []
    for i in range(1, len(rows)):
        a, b = rows[i - 1], rows[i]
        for col, desc in keys:
            c = order_cmp(a.get(col), b.get(col), desc)
            if c < 0:
                break
            if c > 0:
                return [f"row {i} is out of ORDER BY order: {a.get(col)!r} before {b.get(col)!r}"]
    return []


def without_seq(row: Row) -> dict[str, Value]:
    return {k: v for k, v in row.items() if k != SEQ}


def same_values(candidate: Row, row: Row) -> bool:
    """``row`` (an observed, possibly projected row) shows the values of ``candidate``."""
    return all(candidate.get(k, object()) == v for k, v in without_seq(row).items())


def join_diff(
    state: ModelState, op: Join, result: QueryResult, obs: QueryObservation
) -> list[Violation]:
    """A JOIN's rows against the pairs of the model's two sides, as a multiset."""
    sides = {"l": state.catalog.table(op.left), "r": state.catalog.table(op.right)}
    types = {f"{side}_{c}": _type(sides[side], c) for side, c in op.columns}
    # a column the JOIN did not ask for is kept as text, and fails the match
    rows: list[Row] = [
        {name: coerce(raw, types[name]) if name in types else repr(raw) for name, raw in r.items()}
        for r in obs.named_rows()
    ]
    diff = match_rows(result.rows, rows, state.seqs)
    if diff.ok:
        return []
    return [
        Violation(
            ContractItem.TIERS,
            f"join of {op.left} and {op.right}",
            "JOIN result differs from the model",
            f"{len(result.rows)} row(s)",
            f"{len(rows)} row(s)",
            row_diff_lines(diff.missing, diff.unexpected, None),
        )
    ]


def _type(table: Table, name: str) -> ColType:
    column = table.column(name)
    if column is None:
        raise ModelError(f"{table.id} has no column {name!r} to join")
    return column.type
