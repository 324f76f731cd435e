"""Concurrency: rounds of two to six calls sent at once by different clients, drawn to collide
(INSERTs of one key, read-modify-writes of one row, UPDATE against DELETE, transactions over the
same rows, reads racing open transactions), while subscriptions watch and flush jobs run; and
transactions on their own. Each round is checked as a history (contract item 9)."""

from __future__ import annotations

from typing import ClassVar

from attrs import evolve
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.base import machine
from kalamfuzz.machines.driver.rounds import Read, RoundCall, Tx
from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.machines.flush import FlushMachine
from kalamfuzz.machines.live import LiveMachine
from kalamfuzz.machines.world import KEYS, TENANTS
from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.ops import TxEnd
from kalamfuzz.model.where import Cmp, Col, InList, Lit, Pred

#: What a call of a round does, by weight (read-modify-writes of one row are where updates
#: get lost); shrinking goes to the first.
KINDS = ("update", "update", "insert", "insert", "delete", "read", "tx", "tx")
#: What a statement inside a transaction does.
STATEMENTS = ("update", "insert", "delete", "read")
#: How a transaction ends: mostly COMMIT, where a lost or half-seen write shows.
ENDS: tuple[TxEnd, ...] = ("COMMIT", "COMMIT", "ROLLBACK", "")
#: Who writes a SHARED table in a round (users may not write the PUBLIC one).
SHARED_WRITERS = ("dba", "svc", "root")


@machine("concurrency")
class ConcurrencyMachine(LiveMachine, FlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")

    def _race_tables(self) -> list[str]:
        return [n for n in self.live_tables() if self.table(n).type is not TableType.STREAM]

    def _scope(self, data: st.DataObject, table: Table) -> str:
        """The user whose partition the round writes (a SHARED table has one scope)."""
        if not table.type.per_user:
            return ""
        return data.draw(st.sampled_from(TENANTS), label="owner")

    def _caller(self, data: st.DataObject, table: Table, owner: str) -> tuple[str, str | None]:
        """Who sends a call into ``owner``'s scope: the owner, or the service acting as it."""
        if not table.type.per_user:
            return data.draw(st.sampled_from(SHARED_WRITERS), label="actor"), None
        if data.draw(st.booleans(), label="as service"):
            return "svc", owner
        return owner, None

    def _keys(self, data: st.DataObject, name: str, owner: str) -> list[int]:
        """One or two keys the round collides on: written ones first."""
        known = sorted(set(self.written.get((name, owner), [])))
        # rows that exist (updates and deletes collide), or keys that may be free (inserts do)
        pool = st.sampled_from(known) if known else st.sampled_from(list(KEYS))
        key = st.one_of(pool, st.sampled_from(list(KEYS)))
        return data.draw(st.lists(key, min_size=1, max_size=2, unique=True), label="keys")

    def _where(self, data: st.DataObject, table: Table, keys: list[int]) -> Pred:
        pk = Col(table.pk.name)
        if len(keys) == 1 or data.draw(st.booleans(), label="one key"):
            return Cmp("=", pk, Lit(data.draw(st.sampled_from(keys), label="key")))
        return InList(pk, tuple(Lit(k) for k in keys))

    def _column(self, data: st.DataObject, table: Table) -> str:
        """The column a round's UPDATEs set: one for all, so that they collide."""
        names = [c.name for c in table.columns if not c.primary_key]
        return data.draw(st.sampled_from(names), label="column") if names else ""

    def _call(
        self,
        data: st.DataObject,
        name: str,
        owner: str,
        keys: list[int],
        column: str,
        kinds: tuple[str, ...],
    ) -> RoundCall:
        table = self.table(name)
        kind = data.draw(st.sampled_from(kinds), label="kind")
        actor, as_user = self._caller(data, table, owner)
        if kind == "tx":
            # A transaction runs as its sender: the service writes its own partition there.
            actor = owner or actor
            n = data.draw(st.integers(1, 3), label="statements")
            inner = tuple(self._call(data, name, owner, keys, column, STATEMENTS) for _ in range(n))
            end = data.draw(st.sampled_from(ENDS), label="end")
            return Tx(actor, tuple(_plain(c, actor) for c in inner), end)
        if kind == "read":
            # by key mostly; by value too, where what a transaction staged must still match
            by_value = kst.predicates(table, keys)
            where = data.draw(st.one_of(st.just(self._where(data, table, keys)), by_value))
            return Read(actor, name, where, as_user)
        if kind == "insert":
            row = dict(data.draw(kst.rows(table, min_rows=1, max_rows=1), label="row")[0])
            row[table.pk.name] = data.draw(st.sampled_from(keys), label="key")
            return Write(actor, name, rows=(row,), as_user=as_user)
        where = self._where(data, table, keys)
        if kind == "delete":
            return Write(actor, name, where=where, as_user=as_user, delete=True)
        col = table.column(column) if column else None
        if col is None:
            return Read(actor, name, where, as_user)
        rmw = kst.read_modify_writes(col)
        # read-modify-writes first: two of them on one row are where an update gets lost
        assigned = kst.assigned(col) if rmw is None else st.one_of(rmw, kst.assigned(col))
        sets = {col.name: data.draw(assigned, label="set")}
        return Write(actor, name, assignments=sets, where=where, as_user=as_user)

    def _remember(self, name: str, owner: str, calls: list[RoundCall]) -> None:
        pk = self.table(name).pk.name
        for c in calls:
            for w in c.statements if isinstance(c, Tx) else (c,):
                if isinstance(w, Write):
                    keys = [k for r in w.rows if isinstance(k := r.get(pk), int)]
                    self.written.setdefault((name, owner), []).extend(keys)

    @precondition(lambda self: bool(self._race_tables()))
    @rule(data=st.data())
    def race(self, data: st.DataObject) -> None:
        """Two to six calls into one scope, on one or two keys, sent at once."""
        name = data.draw(st.sampled_from(self._race_tables()), label="table")
        table = self.table(name)
        owner = self._scope(data, table)
        keys = self._keys(data, name, owner)
        n = data.draw(st.sampled_from([2, 2, 3, 3, 4, 5, 6]), label="calls")
        column = self._column(data, table)
        calls = [self._call(data, name, owner, keys, column, KINDS) for _ in range(n)]
        self._remember(name, owner, calls)
        self.d.concurrently(calls)

    @precondition(lambda self: bool(self._race_tables()))
    @rule(data=st.data())
    def increments(self, data: st.DataObject) -> None:
        """Two to four clients change one row from its own value at once (Jepsen's counter):
        each change must count, whatever order the server picks."""
        name = data.draw(st.sampled_from(self._race_tables()), label="table")
        table = self.table(name)
        changing = [
            c for c in table.columns if not c.primary_key and kst.read_modify_writes(c) is not None
        ]
        if not changing:
            return
        column = data.draw(st.sampled_from(changing), label="column")
        rmw = kst.read_modify_writes(column)
        assert rmw is not None
        owner = self._scope(data, table)
        key = self._keys(data, name, owner)[0]
        where = Cmp("=", Col(table.pk.name), Lit(key))
        calls: list[RoundCall] = []
        for _ in range(data.draw(st.integers(2, 4), label="calls")):
            actor, as_user = self._caller(data, table, owner)
            sets = {column.name: data.draw(rmw, label="set")}
            calls.append(Write(actor, name, assignments=sets, where=where, as_user=as_user))
        self.d.concurrently(calls)

    @precondition(lambda self: bool(self._race_tables()))
    @rule(data=st.data())
    def transaction(self, data: st.DataObject) -> None:
        """One transaction on its own: reads see its writes, the end decides what stays."""
        name = data.draw(st.sampled_from(self._race_tables()), label="table")
        table = self.table(name)
        owner = self._scope(data, table)
        keys = self._keys(data, name, owner)
        call = self._call(data, name, owner, keys, self._column(data, table), ("tx",))
        self._remember(name, owner, [call])
        self.d.concurrently([call])

    @precondition(lambda self: bool(self._open()))
    @rule(data=st.data())
    def transaction_watched(self, data: st.DataObject) -> None:
        """A transaction into the scope a subscription watches: its changes must arrive after
        COMMIT, once each, and none after ROLLBACK or a failed statement."""
        sub = data.draw(st.sampled_from(self._open()), label="sub")
        target = self._watched_scope(sub)
        if target is None or self.table(target[0]).type is TableType.STREAM:
            return
        name, writer = target
        table = self.table(name)
        owner = writer if table.type.per_user else ""
        keys = self._keys(data, name, owner)
        call = self._call(data, name, owner, keys, self._column(data, table), ("tx",))
        if isinstance(call, Tx) and not table.type.per_user:
            call = evolve(
                call, actor=writer, statements=tuple(_plain(c, writer) for c in call.statements)
            )
        self._remember(name, owner, [call])
        self.d.concurrently([call])

    # Rounds are what this machine is for: they get a second entry in the rule list.
    race_again = race


def _plain(call: RoundCall, actor: str) -> Write | Read:
    """A statement of a transaction: sent as the transaction's actor, without EXECUTE AS."""
    assert not isinstance(call, Tx)
    return evolve(call, actor=actor, as_user=None)
