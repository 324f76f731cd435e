"""Explicit transactions: ``BEGIN; ...; COMMIT`` in one request, under snapshot isolation.

What KalamDB promises (docs/contract.md, "Transactions", with its sources): the statements see
the data as it was at BEGIN plus the transaction's own writes; nobody else sees any of them
before COMMIT; COMMIT makes them visible at once and sends their live changes then (none after
ROLLBACK); a failing statement, or a request that ends with the transaction open, rolls it all
back. Snapshot isolation (KalamDB's spec 027, research.md, decision 1) includes its
first-committer-wins rule: a transaction whose rows another transaction changed after its
snapshot must not commit over them, or that other transaction's committed write is lost.

The model runs the statements on the snapshot (the state at ``TxBegin``, or the state at commit
when the transaction ran alone), then replays the versions they wrote onto the state at commit.
"""

from __future__ import annotations

from attrs import evolve

from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.ops import Delete, Insert, Select, Transaction, TxBegin, Update
from kalamfuzz.model.outcomes import (
    ContractItem,
    Ok,
    OneOf,
    Prediction,
    Rejected,
    TxReply,
    execution_error,
)
from kalamfuzz.model.results import QueryResult
from kalamfuzz.model.rows import ScopeKey, Version, Window
from kalamfuzz.model.state import ModelState, _commit, _select, _Write, execute
from kalamfuzz.model.values import ModelError

#: The row counts a reply sums, in its order.
_COUNTED = (Insert, Update, Delete)


def begin(state: ModelState, op: TxBegin) -> ModelState:
    """Take the transaction's snapshot."""
    return evolve(state, snapshots={**state.snapshots, op.tx_id: evolve(state, snapshots={})})


def _refused(reason: str, *contains: str) -> Rejected:
    return execution_error(reason, ContractItem.CONCURRENCY, *contains)


def run(
    state: ModelState, op: Transaction, at: Window | None
) -> tuple[Prediction | OneOf, ModelState]:
    """The reply and the state after the transaction's commit point (unchanged unless it
    commits)."""
    snapshot = state.snapshots.get(op.tx_id) if op.tx_id else None
    now = evolve(state, snapshots={k: v for k, v in state.snapshots.items() if k != op.tx_id})
    # Subscribers get changes at commit, from the state then: none are computed on the way.
    work = evolve(snapshot if snapshot is not None else now, snapshots={}, subs={})
    start = work
    selects: list[QueryResult | None] = []
    counts = [0, 0, 0]
    staged: list[tuple[Table, ScopeKey, list[Version]]] = []
    for stmt in op.statements:
        table = work.catalog.tables.get(stmt.table_id)
        if table is not None and table.type is TableType.STREAM:
            # KalamDB's spec 027 FR-002A: rejected with a clear error before staging.
            return _refused("a STREAM table inside a transaction", "stream tables"), now
        if isinstance(stmt, Select):
            read = _select(work, stmt, at)
            if isinstance(read, Rejected):
                return read, now
            selects.append(read if isinstance(read, QueryResult) else None)
            continue
        pred, after = execute(work, stmt, at)
        choices = pred.options if isinstance(pred, OneOf) else (pred,)
        refusal = next((p for p in choices if isinstance(p, Rejected)), None)
        if refusal is not None:
            if len(choices) > 1:
                raise ModelError(f"{stmt.to_sql()}: a statement in a transaction that may fail")
            if op.end != "COMMIT" and "Primary key violation" in refusal.message_contains:
                # KalamDB checks keys at COMMIT: a transaction that never commits may never
                # meet the duplicate (refusing it at once is right too); what it reads and
                # counts after it is then not predicted.
                return OneOf((refusal, TxReply(None, None))), now
            return refusal, now
        ok = choices[0]
        assert isinstance(ok, Ok) and ok.row_count is not None and table is not None
        counts[_COUNTED.index(type(stmt))] += ok.row_count
        key = work.scope_key(table, stmt.as_user or op.actor)
        written = sorted(after.scope(table.id, key).since(work.clock), key=lambda v: v.ordinal)
        staged.append((table, key, written))
        work = after
    reply = TxReply(tuple(selects), (counts[0], counts[1], counts[2]))
    if op.end == "":
        return _refused("the request ended with the transaction open", "open explicit"), now
    if op.end == "ROLLBACK":
        return reply, now
    if len({t.type.per_user for t, _, vs in staged if vs}) > 1:
        # USER and SHARED tables are separate data groups (KalamDB's transactions.md).
        return _refused("a transaction over USER and SHARED tables", "one data raft group"), now
    for table, key, versions in staged:
        before = start.scope(table.id, key).latest()
        latest = now.scope(table.id, key).latest()
        for v in versions:
            if _ordinal(latest.get(v.key)) != _ordinal(before.get(v.key)):
                return (
                    _refused(f"row {v.key!r} was changed by a commit after the snapshot"),
                    now,
                )
    return reply, _apply(now, staged)


def _ordinal(v: Version | None) -> int | None:
    return None if v is None else v.ordinal


def _apply(state: ModelState, staged: list[tuple[Table, ScopeKey, list[Version]]]) -> ModelState:
    """The staged versions committed in statement order, each as the next in commit order."""
    out = state
    for table, key, versions in staged:
        if not versions:
            continue
        latest = out.scope(table.id, key).latest()
        writes = [
            _Write(key, latest.get(v.key), evolve(v, ordinal=out.clock + 1 + i))
            for i, v in enumerate(versions)
        ]
        out = _commit(out, table, writes)
    return out
