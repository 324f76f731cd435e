"""Item 2: SELECT returns the model's multiset (or order, with ORDER BY) whether rows are hot,
cold or both, before, during and after a flush. Also owns ``_seq`` commit order.

Rows another item explains (a foreign user's row, an expired STREAM row, a duplicated key, a
schema-evolution difference) are left to that item so each discrepancy is reported once.
"""

from __future__ import annotations

from kalamfuzz.invariants import isolation, schema_evolution, stream_ttl
from kalamfuzz.invariants.idempotency import duplicate_keys, own_rows
from kalamfuzz.invariants.reads import SelectDiff
from kalamfuzz.invariants.violation import Violation, row_diff_lines, seq_conflicts
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import Window
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.values import Row


def check_select(state: ModelState, diff: SelectDiff, at: Window | None) -> list[Violation]:
    pairs = schema_evolution.evolution_pairs(diff)
    paired_missing = [id(m) for m, _, _ in pairs]
    paired_unexpected = [id(u) for _, u, _ in pairs]
    dups = duplicate_keys(diff.table, own_rows(state, diff))
    pk = diff.table.pk.name

    def explained(row: Row) -> bool:
        return (
            id(row) in paired_unexpected
            or (pk in row and row[pk] in dups)
            or isolation.owner_elsewhere(state, diff.table, diff.scope, row) is not None
            or stream_ttl.expired(state, diff.table, diff.scope, row, at)
        )

    missing = [m for m in diff.missing if id(m) not in paired_missing]
    unexpected = [u for u in diff.unexpected if not explained(u)]
    if dups:
        # A duplicated key's extra copy is the idempotency finding; its expected row is there.
        missing = [m for m in missing if m.get(pk) not in dups]
    out = []
    if missing or unexpected or diff.problems:
        lines = row_diff_lines(missing, unexpected, diff.result.key_column)
        out.append(
            Violation(
                ContractItem.TIERS,
                diff.subject,
                "SELECT result differs from the model",
                f"{len(diff.result.rows)} row(s)",
                f"{len(diff.observed)} row(s)",
                diff.problems + lines,
            )
        )
    return out + seq_conflicts(state.seqs, diff.learned, diff.subject)
