"""The model as the checker's sequential spec: how a call is placed, how many points it takes,
and which rows it touches (so that calls on different rows are checked apart)."""

from __future__ import annotations

from collections.abc import Collection, Hashable

from attrs import evolve, frozen

from kalamfuzz.history.check import Whole
from kalamfuzz.history.record import Call
from kalamfuzz.model.catalog import Catalog, TableId
from kalamfuzz.model.concurrency import concurrent
from kalamfuzz.model.ops import Delete, Insert, Select, Transaction, TxBegin, Update
from kalamfuzz.model.outcomes import Outcome, Succeeded
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.uncertain import step as model_step
from kalamfuzz.model.where import pinned_keys


@frozen
class ModelSpec:
    """``since``: the model's clock before the calls were sent; what they write after it may
    carry ``_seq`` values in any order among themselves (the server commits calls on different
    rows in an order the clients cannot see). ``whole``: tables whose scopes are searched
    whole (a flush job may cut any of them between any two writes)."""

    catalog: Catalog
    since: int
    whole: Collection[TableId] = ()
    #: The calls were sent beside others (not one transaction on its own).
    beside: bool = True

    def points(self, call: Call) -> int:
        """A transaction, or a write sent beside others, takes its snapshot and commits at two
        points (both may fall together: the serial case)."""
        return 2 if self._snapshot_id(call) else 1

    def _snapshot_id(self, call: Call) -> str:
        op = call.op
        if isinstance(op, Transaction):
            return op.tx_id
        # KalamDB runs an autocommit UPDATE or DELETE as a one-statement transaction (its
        # sql_executor.rs): under snapshot isolation it may also fail when a write to its rows
        # committed after its snapshot. An INSERT reads nothing but its key, checked at commit.
        if self.beside and isinstance(op, Update | Delete):
            return f"w{call.index}"
        return ""

    def step(self, state: ModelState, call: Call, point: int) -> list[ModelState]:
        tx_id = self._snapshot_id(call)
        if point == 0 and tx_id:
            placed = model_step(state, TxBegin(tx_id), Succeeded(), call.at)
        elif tx_id and isinstance(call.op, Update | Delete):
            tx = Transaction(call.op.actor, (call.op,), "COMMIT", tx_id)
            placed = model_step(state, tx, _as_reply(call.op, call.outcome), call.at)
        else:
            placed = model_step(state, call.op, call.outcome, call.at)
        return [concurrent(s, self.since) for s in placed]

    def touches(self, call: Call) -> frozenset[Hashable]:
        op = call.op
        stmts = op.statements if isinstance(op, Transaction) else (op,)
        out: set[Hashable] = set()
        for s in stmts:
            if not isinstance(s, Insert | Update | Delete | Select):
                raise TypeError(f"{type(s).__name__} is not checked as a history call")
            table = self.catalog.tables.get(s.table_id)
            if table is None:
                continue
            name = str(table.id)
            scope = (s.as_user or s.actor) if table.type.per_user else None
            keys = (
                [r.get(table.pk.name) for r in s.rows]
                if isinstance(s, Insert)
                else pinned_keys(s.where, table.pk.name, table.pk.type)
            )
            if keys is None or table.id in self.whole:
                out.add(Whole(name, scope))
            else:
                out.update((name, scope, k) for k in keys)
        return frozenset(out)


def _as_reply(op: Update | Delete, outcome: Outcome) -> Outcome:
    """A statement's reply as its one-statement transaction's."""
    if not isinstance(outcome, Succeeded) or outcome.row_count is None:
        return outcome
    n = outcome.row_count
    return Succeeded(counts=(0, n, 0) if isinstance(op, Update) else (0, 0, n))


def settled(state: ModelState) -> ModelState:
    """A state after the calls: snapshots of transactions that never committed are dropped."""
    return evolve(state, snapshots={}) if state.snapshots else state
