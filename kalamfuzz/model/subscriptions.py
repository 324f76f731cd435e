"""Live subscriptions: the expected snapshot and its pages, the expected change stream for every
later write, resume from a ``_seq``, and the client-side reconstruction of the query result
(docs/contract.md, "Live queries"; WEBSOCKET.md §3)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from attrs import evolve, frozen

from kalamfuzz.model.catalog import Table, TableId
from kalamfuzz.model.results import ExpectedRow
from kalamfuzz.model.rows import ScopeKey, Version, materialize
from kalamfuzz.model.values import DELETED, SEQ, Value
from kalamfuzz.model.where import Pred, matches


class ChangeType(enum.Enum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@frozen
class ExpectedChange:
    change_type: ChangeType
    key: Value
    #: Model commit order of the write that caused it.
    ordinal: int
    rows: ExpectedRow | None = None
    old_values: ExpectedRow | None = None
    #: A STREAM delete of a row at its TTL boundary may or may not be reported.
    optional: bool = False
    #: The commit counter before the statement that caused it: changes of one statement share
    #: it (their order among themselves is the server's), later statements' are larger.
    statement: int = 0
    #: The delete an UPDATE owes a subscriber when it makes the row stop matching the filter.
    leave: bool = False


@frozen
class Subscription:
    sub_id: str
    user_id: str
    table_id: TableId
    #: None means ``SELECT *``.
    projection: tuple[str, ...] | None
    where: Pred | None
    batch_size: int
    from_seq: int | None
    snapshot: tuple[ExpectedRow, ...] = ()
    changes: tuple[ExpectedChange, ...] = ()
    active: bool = True
    #: The model's commit counter at subscribe time: later writes are changes.
    opened_at: int = 0
    #: The table as it was at subscribe time: what the snapshot's rows (and the changes, while
    #: the subscription is followed) are read with, even after a later ALTER TABLE.
    schema: Table | None = None
    #: False after a known finding about its snapshot: the changes are still checked, the
    #: snapshot (and so the client's reconstruction) no longer.
    snapshot_trusted: bool = True

    def with_change(self, change: ExpectedChange) -> Subscription:
        return evolve(self, changes=(*self.changes, change))

    def sql(self) -> str:
        from kalamfuzz.model.where import to_sql

        cols = "*" if self.projection is None else ", ".join(self.projection)
        return f"SELECT {cols} FROM {self.table_id}{to_sql(self.where)}"


def projected_columns(table: Table, projection: tuple[str, ...] | None) -> tuple[str, ...]:
    """Columns of a change or snapshot row other than ``_seq``."""
    if projection is None:
        return tuple(c.name for c in table.columns) + tuple(
            c for c in table.system_columns if c != SEQ
        )
    return projection


def _project(row: Mapping[str, Value], cols: Sequence[str]) -> dict[str, Value]:
    return {c: row[c] for c in cols if c in row}


def full_row(table: Table, version: Version) -> dict[str, Value]:
    row = materialize(table, version)
    if DELETED in table.system_columns:
        row[DELETED] = version.deleted
    return row


def snapshot_row(
    table: Table, sub: Subscription, scope: ScopeKey, version: Version, optional: bool = False
) -> ExpectedRow:
    cols = projected_columns(table, sub.projection)
    return ExpectedRow(
        values=_project(full_row(table, version), cols),
        seq_of=version.ordinal,
        scope=scope,
        key=version.key,
        optional=optional,
    )


def _matches(sub: Subscription, table: Table, version: Version) -> bool:
    return matches(sub.where, full_row(table, version))


def change_for_write(
    table: Table,
    sub: Subscription,
    scope: ScopeKey,
    old: Version | None,
    new: Version,
) -> ExpectedChange | None:
    """The change ``sub`` must receive for a write that turned ``old`` into ``new``.

    ``new`` is the inserted row, the update's new version or the delete's tombstone.
    """
    cols = projected_columns(table, sub.projection)
    pk = table.pk.name
    new_row = full_row(table, new)
    new_match = matches(sub.where, new_row)
    if new.deleted:
        if not new_match:
            return None
        return ExpectedChange(
            ChangeType.DELETE,
            new.key,
            new.ordinal,
            old_values=ExpectedRow(_project(new_row, cols), new.ordinal, scope, new.key),
        )
    if old is None or old.deleted:
        if not new_match:
            return None
        return ExpectedChange(
            ChangeType.INSERT,
            new.key,
            new.ordinal,
            rows=ExpectedRow(_project(new_row, cols), new.ordinal, scope, new.key),
        )
    old_row = full_row(table, old)
    user_cols = [c for c in cols if c != DELETED]
    if new_match:
        # KalamDB's delta shape: the key, the new _seq and every non-null projected column;
        # the old side holds the key, the old _seq and the changed columns' old values.
        delta = {c: new_row[c] for c in user_cols if new_row.get(c) is not None}
        delta[pk] = new.key
        # A column added after the old version was written is not in its stored row: KalamDB
        # counts it as changed but has no old value to send (project_update_delta), so the
        # old side leaves it out. Rows are stored by column name, so a dropped column of the
        # same name is in it (its value reads NULL, as the re-added column's).
        stored = {
            c.name
            for c in table.columns
            if c.added_in <= old.schema_version or table.former_type(c.name) is not None
        }
        changed = {
            c: old_row[c] for c in user_cols if c in stored and old_row.get(c) != new_row.get(c)
        }
        changed[pk] = old.key
        return ExpectedChange(
            ChangeType.UPDATE,
            new.key,
            new.ordinal,
            rows=ExpectedRow(delta, new.ordinal, scope, new.key),
            old_values=ExpectedRow(changed, old.ordinal, scope, old.key),
        )
    if not matches(sub.where, old_row):
        return None
    # The row left the filter: a delete carrying the previous row and the update's _seq, so a
    # client can drop it (docs/contract.md).
    leaving = _project(old_row, cols)
    if DELETED in cols:
        leaving[DELETED] = True
    return ExpectedChange(
        ChangeType.DELETE,
        new.key,
        new.ordinal,
        old_values=ExpectedRow(leaving, new.ordinal, scope, new.key),
        leave=True,
    )


def stream_delete_change(
    table: Table, sub: Subscription, scope: ScopeKey, event: Version, optional: bool
) -> ExpectedChange | None:
    """A STREAM hard delete: ``old_values:[{"row_id": "<user>:<seq>"}]``, ``[{}]`` projected."""
    if not _matches(sub, table, event):
        return None
    if sub.projection is None:
        old = ExpectedRow({}, event.ordinal, scope, event.key, row_id=True)
    else:
        old = ExpectedRow({}, None, scope, event.key)
    return ExpectedChange(
        ChangeType.DELETE, event.key, event.ordinal, old_values=old, optional=optional
    )


def page_sizes(total: int, batch_size: int) -> list[int]:
    """Sizes of the snapshot pages: all full but the last; an empty snapshot is one empty page."""
    if total == 0:
        return [0]
    full, rest = divmod(total, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def apply_change(
    state: dict[Value, dict[str, Value]],
    pk: str,
    change_type: str,
    rows: Sequence[Mapping[str, Value]],
    old_values: Sequence[Mapping[str, Value]],
    *,
    columns: Sequence[str] = (),
) -> None:
    """What a client does with one change (WEBSOCKET.md §13.6), keyed by primary key.

    An update's delta omits columns that are NULL and the old side names every changed column,
    so a changed column absent from the delta is now NULL. A row the client first hears of
    through an update (the update brought it into the filter) gets NULL for the ``columns`` the
    delta omits, and ``_deleted`` false: the delta never carries it, and an updated row is live.
    """
    if change_type == ChangeType.INSERT.value:
        for r in rows:
            state[r.get(pk)] = dict(r)
    elif change_type == ChangeType.UPDATE.value:
        for r, old in zip(rows, old_values or [{}] * len(rows), strict=False):
            merged = dict(state.get(r.get(pk), {}))
            for col in old:
                if col not in (pk, SEQ) and col not in r:
                    merged[col] = None
            merged.update(r)
            for col in columns:
                merged.setdefault(col, False if col == DELETED else None)
            state[r.get(pk)] = merged
    else:
        for old in old_values:
            state.pop(old.get(pk), None)
