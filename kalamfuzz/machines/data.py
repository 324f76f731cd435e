"""Data: INSERT/UPDATE/DELETE/SELECT over USER, SHARED and STREAM tables by several users, a
service writing through EXECUTE AS USER, and duplicate keys (keys come from a small range)."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.base import KalamMachine, machine
from kalamfuzz.machines.world import ACTORS, SEED_KEYS, TENANTS
from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.values import Value


@machine("data")
class DataMachine(KalamMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board", "events")

    #: Next key for a STREAM insert (STREAM keys are never reused; see strategies.rows).
    stream_key = 100

    def rows(self, data: st.DataObject, table: Table, max_rows: int = 3) -> list[dict[str, Value]]:
        fresh = self.stream_key if table.type is TableType.STREAM else None
        drawn = data.draw(kst.rows(table, max_rows=max_rows, fresh_from=fresh), label="rows")
        if fresh is not None:
            self.stream_key += len(drawn)
        return drawn

    #: Who writes the starting rows of each table: two tenants (isolation needs a neighbour).
    SEEDERS: ClassVar[dict[str, tuple[str, ...]]] = {
        "notes": ("alice", "bob"),
        "board": ("dba",),
        "vault": ("dba",),
        "events": ("alice",),
        "routed": ("alice", "bob"),
        "fragile": ("dba",),
    }

    @initialize(data=st.data())
    def seed_rows(self, data: st.DataObject) -> None:
        """Start with rows: snapshots page, predicates match, neighbours exist."""
        for name in self.live_tables():
            table = self.table(name)
            for actor in self.SEEDERS.get(name, ()):
                if table.type is TableType.STREAM:
                    rows = self.rows(data, table, max_rows=2)
                else:
                    rows = data.draw(kst.rows(table, max_rows=2, fresh_from=SEED_KEYS[0]))
                self.d.insert(actor, name, rows)

    def _target(self, data: st.DataObject) -> tuple[str, Table, str, str | None]:
        """A table, an actor, and for the service on a per-user table the user it acts as."""
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        table = self.table(name)
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        as_user = None
        if actor == "svc" and table.type.per_user:
            as_user = data.draw(st.sampled_from(TENANTS), label="as_user")
        return name, table, actor, as_user

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def insert(self, data: st.DataObject) -> None:
        name, table, actor, as_user = self._target(data)
        self.d.insert(actor, name, self.rows(data, table), as_user=as_user)

    # Every other rule needs rows to act on: inserts get a second entry in the rule list.
    insert_more = insert

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        name, table, actor, as_user = self._target(data)
        sets = data.draw(kst.assignments(table), label="set")
        where = data.draw(kst.predicates(table), label="where")
        self.d.update(actor, name, sets, where, as_user=as_user)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name, table, actor, as_user = self._target(data)
        self.d.delete(actor, name, data.draw(kst.predicates(table), label="where"), as_user=as_user)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        name, table, actor, as_user = self._target(data)
        projection = data.draw(kst.projections(table), label="projection")
        where = data.draw(kst.predicates(table), label="where")
        order = data.draw(kst.order_by(table), label="order_by")
        limit = data.draw(st.one_of(st.none(), st.integers(1, 4)), label="limit")
        self.d.select(actor, name, projection, where, order, limit, as_user=as_user)
