"""Re-learning from the server after a known finding.

A known KalamDB bug must not end an example (the fuzzer would never test what lies behind it),
but after it the model and the server disagree about some state; every later step on that state
would report the same bug again under other names. The driver then reads the state back and the
model adopts what the server shows: a scope's rows, or a subscription whose snapshot is known to
be wrong. What was adopted is marked, so that nothing later is predicted from a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import evolve

from kalamfuzz.model.catalog import TableId, TableType
from kalamfuzz.model.rows import Scope, ScopeKey, Version, materialize
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.values import SEQ, Value


def _seq(row: Mapping[str, Value]) -> int | None:
    seq = row.get(SEQ)
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def adopt(
    state: ModelState, table_id: TableId, key: ScopeKey, rows: Sequence[Mapping[str, Value]]
) -> ModelState:
    """The state with the scope's visible rows replaced by ``rows``, a full ``SELECT *`` of it.

    A row the model already shows the same way stays as it is (its ``_seq`` is learned). Any
    other key gets a version with the server's values and ``_seq`` (pinned, outside the model's
    commit order), or a tombstone when the server lacks it. STREAM scopes take exactly the
    events the server shows. The scope is marked re-learned.
    """
    table = state.catalog.table(table_id)
    scope = state.scope(table_id, key)
    pk = table.pk.name
    names = [c.name for c in table.columns]
    clock, seqs = state.clock, state.seqs
    hot = list(scope.hot)
    adopted = set(scope.adopted)

    def add(k: Value, values: Mapping[str, Value], deleted: bool, seq: int | None) -> None:
        nonlocal clock, seqs
        clock += 1
        hot.append(Version(clock, k, dict(values), table.schema_version, deleted))
        adopted.add(clock)
        if seq is not None:
            seqs = seqs.pin(clock, seq)

    if table.type is TableType.STREAM:
        hot, adopted = [], set()
        for event in rows:
            add(event.get(pk), {c: event.get(c) for c in names}, False, _seq(event))
    else:
        current = {v.key: v for v in scope.live(table)}
        shown = {r.get(pk): r for r in rows}
        for k in sorted(set(current) | set(shown), key=repr):
            v, r = current.get(k), shown.get(k)
            if r is None:
                assert v is not None
                add(k, materialize(table, v), True, None)
                continue
            values = {c: r.get(c) for c in names}
            seq = _seq(r)
            if v is not None and materialize(table, v) == values:
                if seq is not None and seqs.conflict(v.ordinal, seq) is None:
                    seqs = seqs.bind(v.ordinal, seq)
                    continue
                if seq is None or seqs.get(v.ordinal) == seq:
                    continue
            add(k, values, False, seq)
    relearned = Scope(tuple(hot), scope.cold, relearned=True, adopted=frozenset(adopted))
    data = {**state.data, table_id: {**state.scopes(table_id), key: relearned}}
    return evolve(state, data=data, clock=clock, seqs=seqs)


def distrust_snapshot(state: ModelState, sub_id: str) -> ModelState:
    """The subscription's snapshot is known to be wrong: only its later changes are checked."""
    sub = state.subs.get(sub_id)
    if sub is None:
        return state
    return evolve(state, subs={**state.subs, sub_id: evolve(sub, snapshot_trusted=False)})
