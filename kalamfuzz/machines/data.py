"""Data: INSERT/UPDATE/DELETE/SELECT over USER, SHARED and STREAM tables by several users, a
service writing through EXECUTE AS USER, and duplicate keys (keys come from a small range)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from kalamfuzz.adapters.proxy import Fault
from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.base import KalamMachine, machine
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.world import ACTORS, SEED_KEYS, TENANTS
from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.values import Value
from kalamfuzz.model.where import Pred

#: The kinds of write; shrinking turns the others into the first.
WRITES = ("insert", "update", "delete")


@functools.lru_cache(maxsize=64)
def _targets(tables: tuple[str, ...]) -> st.SearchStrategy[tuple[str, str, str]]:
    # The user acted as is drawn for every actor and used by the service's steps only: the
    # choices stay independent and uniform, as three draws made them.
    return st.tuples(st.sampled_from(tables), st.sampled_from(ACTORS), st.sampled_from(TENANTS))


def _acts_as(actor: str, table: Table) -> bool:
    """Whether ``actor`` writes ``table`` as a tenant: the service on a per-user table."""
    return actor == "svc" and table.type.per_user


@machine("data")
class DataMachine(KalamMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board", "events")

    #: Next fresh key for a STREAM insert. STREAM tables are event logs keyed by ``_seq``
    #: (docs/contract.md): a key may come again, and sometimes does.
    stream_key = 100

    def __init__(self, driver: Driver) -> None:
        super().__init__(driver)
        #: Keys this example drew for inserts, per (table, scope owner). Drawn facts, not
        #: observed ones, so later draws that use them replay the same whatever the timing.
        self.written: dict[tuple[str, str], list[int]] = {}

    def rows(self, data: st.DataObject, table: Table, max_rows: int = 3) -> list[dict[str, Value]]:
        fresh = None
        if table.type is TableType.STREAM:
            fresh = self.stream_key
            if self.stream_key > 100 and data.draw(st.booleans(), label="reuse keys"):
                fresh = data.draw(st.integers(100, self.stream_key - 1), label="from key")
        drawn = data.draw(kst.rows(table, max_rows=max_rows, fresh_from=fresh), label="rows")
        if fresh is not None:
            self.stream_key = max(self.stream_key, fresh + len(drawn))
        return drawn

    def insert_rows(
        self,
        actor: str,
        name: str,
        rows: list[dict[str, Value]],
        as_user: str | None = None,
        fault: Fault | None = None,
        retry: bool = False,
    ) -> None:
        key = (name, self._owner(name, actor, as_user))
        pk = self.table(name).pk.name
        self.written.setdefault(key, []).extend(k for r in rows if isinstance(k := r[pk], int))
        self.d.insert(actor, name, rows, as_user=as_user, fault=fault, retry=retry)

    def _owner(self, name: str, actor: str, as_user: str | None) -> str:
        return (as_user or actor) if self.table(name).type.per_user else ""

    def where(
        self, data: st.DataObject, name: str, actor: str, as_user: str | None = None
    ) -> Pred | None:
        """A predicate for ``actor``'s view of ``name``, often naming keys written there."""
        known = self.written.get((name, self._owner(name, actor, as_user)), [])
        return data.draw(kst.predicates(self.table(name), known), label="where")

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
                    # At least two rows: a snapshot of batch_size 1 then has pages to hold on.
                    seed = kst.rows(
                        table, min_rows=2, max_rows=len(SEED_KEYS), fresh_from=SEED_KEYS[0]
                    )
                    rows = data.draw(seed)
                self.insert_rows(actor, name, rows)

    def actor(self, data: st.DataObject, table: Table) -> tuple[str, str | None]:
        """An actor, and for the service on a per-user table the user it acts as."""
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        as_user = None
        if _acts_as(actor, table):
            as_user = data.draw(st.sampled_from(TENANTS), label="as_user")
        return actor, as_user

    def _target(self, data: st.DataObject) -> tuple[str, Table, str, str | None]:
        """A table, an actor, and for the service on a per-user table the user it acts as:
        one draw (each draw costs as much as a small step's own work)."""
        name, actor, as_user = data.draw(_targets(tuple(self.live_tables())), label="target")
        table = self.table(name)
        return name, table, actor, as_user if _acts_as(actor, table) else None

    def write(
        self,
        data: st.DataObject,
        kind: str,
        name: str,
        actor: str,
        as_user: str | None = None,
        prefer: Sequence[str] = (),
        fault: Fault | None = None,
        retry: bool = False,
    ) -> None:
        """One INSERT, UPDATE or DELETE (``kind``) on ``name`` by ``actor``; an UPDATE sets the
        ``prefer`` columns. ``fault``: the network fault its request meets; ``retry``: sent
        again when the reply was lost."""
        table = self.table(name)
        if kind == "insert":
            rows = self.rows(data, table)
            self.insert_rows(actor, name, rows, as_user, fault=fault, retry=retry)
        elif kind == "update":
            if all(c.primary_key for c in table.columns):
                return  # DDL dropped every other column: there is nothing to set
            sets = data.draw(kst.assignments(table, prefer), label="set")
            where = self.where(data, name, actor, as_user)
            self.d.update(actor, name, sets, where, as_user, fault, retry)
        else:
            where = self.where(data, name, actor, as_user)
            self.d.delete(actor, name, where, as_user, fault, retry)

    def writes(
        self,
        data: st.DataObject,
        name: str,
        actor: str,
        as_user: str | None,
        prefer: Sequence[str] = (),
        kinds: Sequence[str] = WRITES,
    ) -> None:
        """One to three writes of the ``kinds`` on one table by one actor (a burst)."""
        for kind in data.draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3)):
            self.write(data, kind, name, actor, as_user, prefer)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def insert(self, data: st.DataObject) -> None:
        name, _, actor, as_user = self._target(data)
        self.write(data, "insert", name, actor, as_user)

    # Every other rule needs rows to act on: inserts get a second entry in the rule list.
    insert_more = insert

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        name, _, actor, as_user = self._target(data)
        self.write(data, "update", name, actor, as_user)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name, _, actor, as_user = self._target(data)
        self.write(data, "delete", name, actor, as_user)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def select(self, data: st.DataObject) -> None:
        name, table, actor, as_user = self._target(data)
        projection = data.draw(kst.projections(table), label="projection")
        where = self.where(data, name, actor, as_user)
        order = data.draw(kst.order_by(table), label="order_by")
        limit = data.draw(st.one_of(st.none(), st.integers(1, 4)), label="limit")
        self.d.select(actor, name, projection, where, order, limit, as_user=as_user)
