"""DDL: ALTER TABLE ADD/DROP COLUMN on tables that hold hot and flushed rows and have live
subscribers; statements naming a dropped column must fail clearly."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.base import machine
from kalamfuzz.machines.live import SUBS, LiveMachine
from kalamfuzz.machines.world import ACTORS

#: Admins alter tables; a user's attempt on a table it did not create must be refused.
ALTERERS = ("root", "dba", "dba", "alice")


@machine("ddl")
class DdlMachine(LiveMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")

    # A schema change in the middle of a paged snapshot is not modelled (which schema the
    # later pages use is unspecified): DDL waits until every snapshot is complete.
    @precondition(lambda self: bool(self.live_tables()) and not self.d.paging_subscriptions())
    @rule(data=st.data())
    def add_column(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        existing = [c.name for c in self.table(name).columns]
        if not kst.addable(existing):
            return  # every name is taken: DROP COLUMN comes first
        column = data.draw(kst.new_columns(existing), label="column")
        self.d.add_column(data.draw(st.sampled_from(ALTERERS), label="actor"), name, column)

    def _droppable(self, data: st.DataObject) -> tuple[str, str] | None:
        """A table and one of its columns other than the key (None when it has none left)."""
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        droppable = [c.name for c in self.table(name).columns if not c.primary_key]
        if not droppable:
            return None
        return name, data.draw(st.sampled_from(droppable), label="column")

    @precondition(lambda self: bool(self.live_tables()) and not self.d.paging_subscriptions())
    @rule(data=st.data())
    def drop_column(self, data: st.DataObject) -> None:
        drawn = self._droppable(data)
        if drawn is None:
            return
        name, column = drawn
        self.d.drop_column(data.draw(st.sampled_from(ALTERERS), label="actor"), name, column)

    @precondition(
        lambda self: (
            bool(self.live_tables())
            and not self.d.paging_subscriptions()
            and len(self._open()) < len(SUBS)
        )
    )
    @rule(data=st.data())
    def drop_column_then_subscribe(self, data: st.DataObject) -> None:
        """DROP a column, then a client subscribes to the whole table (the model follows only
        subscriptions opened after the last ALTER): its snapshot and changes carry the table's
        columns, and never the dropped one."""
        drawn = self._droppable(data)
        if drawn is None:
            return
        name, column = drawn
        self.d.drop_column(data.draw(st.sampled_from(ALTERERS[:3]), label="actor"), name, column)
        sub = data.draw(st.sampled_from([s for s in SUBS if s not in self._open()]), label="sub")
        actor = data.draw(st.sampled_from(ACTORS), label="subscriber")
        self.d.subscribe(actor, sub, name)
        self.filters[sub] = None

    @precondition(lambda self: bool(self.live_tables()) and not self.d.paging_subscriptions())
    @rule(data=st.data())
    def recreate_column(self, data: st.DataObject) -> None:
        """DROP a column and ADD one of the same name, maybe of another type: it starts empty
        (or at its default) for every old row, never with the dropped column's values."""
        drawn = self._droppable(data)
        if drawn is None:
            return
        name, column = drawn
        actor = data.draw(st.sampled_from(ALTERERS), label="actor")
        self.d.drop_column(actor, name, column)
        self.d.add_column(actor, name, data.draw(kst.new_column(column), label="new column"))
