"""Item 2: SELECT returns the model's multiset (or order, with ORDER BY) whether rows are hot,
cold or both, before, during and after a flush. Also owns ``_seq`` commit order.

Rows another item explains (a foreign user's row, an expired STREAM row, a duplicated key, a
schema-evolution difference) are left to that item so each discrepancy is reported once.
"""

from __future__ import annotations

from kalamfuzz.invariants import isolation, schema_evolution, stream_ttl
from kalamfuzz.invariants.idempotency import duplicate_keys, own_rows
from kalamfuzz.invariants.reads import SelectDiff, same_values
from kalamfuzz.invariants.violation import Violation, row_diff_lines, seq_conflicts
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.rows import Version, Window
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.subscriptions import full_row
from kalamfuzz.model.values import Row, render_row


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
            or isolation.owner_elsewhere(state, diff.table, diff.scope, row, diff.missing)
            is not None
            or stream_ttl.expired(state, diff.table, diff.scope, row, at)
        )

    missing = [m for m in diff.missing if id(m) not in paired_missing]
    unexpected = [u for u in diff.unexpected if not explained(u)]
    if dups:
        # A duplicated key's extra copy is the idempotency finding; its expected row is there.
        missing = [m for m in missing if m.get(pk) not in dups]
    out = []
    risen = [u for u in unexpected if _deleted_before(state, diff, u)]
    if risen:
        out.append(
            Violation(
                ContractItem.TIERS,
                diff.subject,
                "a deleted row is visible again",
                "the rows deleted stay deleted",
                f"{len(risen)} deleted row(s) returned",
                tuple(f"+ deleted earlier {render_row(u)}" for u in risen[:10]),
            )
        )
        unexpected = [u for u in unexpected if u not in risen]
        if pk in diff.result.columns:
            back = {u.get(pk) for u in risen}
            missing = [m for m in missing if m.get(pk) not in back]
        if diff.result.count is not None:
            # Under a LIMIT the rows that came back took the places of the last expected ones.
            missing = missing[: max(0, len(missing) - len(risen))]
    for summary, lost in _lost(state, diff, missing).items():
        # Rows a failure took: a crash or a failed flush must keep every acknowledged write.
        out.append(
            Violation(
                ContractItem.IDEMPOTENCY,
                diff.subject,
                summary,
                f"{len(diff.result.rows)} row(s)",
                f"{len(diff.observed)} row(s)",
                row_diff_lines(lost, [], diff.result.key_column),
            )
        )
        missing = [m for m in missing if all(m is not x for x in lost)]
    if missing or unexpected:
        lines = row_diff_lines(missing, unexpected, diff.result.key_column)
        out.append(
            Violation(
                ContractItem.TIERS,
                diff.subject,
                "SELECT result differs from the model",
                f"{len(diff.result.rows)} row(s)",
                f"{len(diff.observed)} row(s)",
                lines,
            )
        )
    return out + _form(diff) + seq_conflicts(state.seqs, diff.learned, diff.subject)


def _lost(state: ModelState, diff: SelectDiff, missing: list[Row]) -> dict[str, list[Row]]:
    """The missing rows whose newest version a failure could have taken: written before the
    last restart, or taken by a flush job that failed."""
    pk = diff.table.pk.name
    latest = state.scope(diff.table.id, diff.scope).latest()
    failed = [j.requested_at for j in state.failed_flushes(diff.table.id)]
    out: dict[str, list[Row]] = {}
    for row in missing:
        v = latest.get(row.get(pk))
        if v is None:
            continue
        if state.restarted_at is not None and v.ordinal <= state.restarted_at:
            out.setdefault("acknowledged rows lost across a restart", []).append(row)
        elif any(v.ordinal <= at for at in failed):
            out.setdefault("rows lost after a failed flush", []).append(row)
    return out


def _deleted_before(state: ModelState, diff: SelectDiff, row: Row) -> bool:
    """``row`` shows a version of a key whose newest version is a tombstone."""
    pk = diff.table.pk.name
    if pk not in row:
        return False
    versions = [
        v for v in state.scope(diff.table.id, diff.scope).all_versions() if v.key == row[pk]
    ]
    if not versions or not max(versions, key=lambda v: v.ordinal).deleted:
        return False

    def shows(v: Version) -> bool:
        # A column added after the version (a dropped one added again, say) is left out: a
        # known KalamDB bug shows the dropped values there, and the row is back either way.
        later = {c.name for c in diff.table.columns if c.added_in > v.schema_version}
        return same_values(
            full_row(diff.table, v), {k: x for k, x in row.items() if k not in later}
        )

    return any(shows(v) for v in versions if not v.deleted)


def _form(diff: SelectDiff) -> list[Violation]:
    """What is wrong with the answer's form (its columns, count or order), each on its own: a
    known bug in one (KalamDB re-sorts an ORDER BY ... LIMIT by key) must not hide another."""
    out = []
    if diff.extra_columns or diff.absent_columns:
        # The names go into the summary: a server adding `_deleted` to STREAM rows is one
        # finding, one dropping a column another.
        what = ", ".join(
            [*(f"+{c}" for c in diff.extra_columns)] + [f"-{c}" for c in diff.absent_columns]
        )
        out.append(
            Violation(
                ContractItem.TIERS,
                diff.subject,
                f"SELECT returns other columns than the query names ({what})",
                ", ".join(diff.result.columns),
                ", ".join(diff.observed[0]) if diff.observed else "",
                (
                    *(f"+ extra column {c}" for c in diff.extra_columns),
                    *(f"- missing column {c}" for c in diff.absent_columns),
                ),
                diverged=False,
            )
        )
    if diff.count_problem:
        out.append(
            Violation(
                ContractItem.TIERS,
                diff.subject,
                "LIMIT returned another number of rows",
                diff=(diff.count_problem,),
                diverged=False,
            )
        )
    if diff.order_problem:
        by = ", ".join(f"{c} {'DESC' if desc else 'ASC'}" for c, desc in diff.result.order_by)
        out.append(
            Violation(
                ContractItem.TIERS,
                diff.subject,
                "SELECT rows out of ORDER BY order",
                f"ORDER BY {by}",
                diff=(diff.order_problem,),
                diverged=False,
            )
        )
    return out
