"""Item 7: after ADD COLUMN old rows read the new column as NULL (KalamDB applies a DEFAULT to
new rows only), hot and cold; after DROP COLUMN the rest stays readable and the dropped column
is gone; a column added again under a dropped one's name starts empty.

Statement failures naming a dropped column are checked in :mod:`.statements`; here the rows.
"""

from __future__ import annotations

from kalamfuzz.invariants.reads import SelectDiff
from kalamfuzz.invariants.violation import Violation
from kalamfuzz.model.catalog import Table
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.values import SEQ, Row


def _evolved(table: Table, column: str) -> bool:
    col = table.column(column)
    return column in table.dropped or (col is not None and col.added_in > 1)


def evolution_pairs(diff: SelectDiff) -> list[tuple[Row, Row, list[str]]]:
    """(expected, observed, columns) for rows that differ only in added or dropped columns."""
    key = diff.result.key_column
    if key is None or diff.table.schema_version == 1:
        return []
    out = []
    taken: set[int] = set()
    for m in diff.missing:
        for i, u in enumerate(diff.unexpected):
            if i in taken or u.get(key) != m.get(key):
                continue
            cols = sorted(
                c
                for c in set(m) | set(u)
                if m.get(c, ...) != u.get(c, ...)
                # an unknown _seq (a version the model has not read yet) matches any
                and not (c == SEQ and m.get(c) is None)
            )
            if cols and all(_evolved(diff.table, c) for c in cols):
                out.append((m, u, cols))
                taken.add(i)
            break
    return out


def _resurrected(table: Table, pairs: list[tuple[Row, Row, list[str]]]) -> bool:
    """Every difference is a re-added column showing a value where the model has NULL."""
    return all(
        table.column(c) is not None
        and table.former_type(c) is not None
        and m.get(c) is None
        and u.get(c) is not None
        for m, u, cols in pairs
        for c in cols
    )


def check_select(diff: SelectDiff) -> list[Violation]:
    pairs = evolution_pairs(diff)
    if not pairs:
        return []
    summary = (
        "a column added again shows the dropped column's old values"
        if _resurrected(diff.table, pairs)
        else "rows read wrong after ADD/DROP COLUMN"
    )
    key = diff.result.key_column or ""
    lines = tuple(
        f"~ {key}={m.get(key)!r}: "
        + ", ".join(f"{c}: {m.get(c, '<absent>')!r} -> {u.get(c, '<absent>')!r}" for c in cols)
        for m, u, cols in pairs
    )
    return [
        Violation(
            ContractItem.SCHEMA_EVOLUTION,
            diff.subject,
            summary,
            f"schema version {diff.table.schema_version}: columns added later read NULL",
            f"{len(pairs)} row(s) differ",
            lines[:10],
        )
    ]
