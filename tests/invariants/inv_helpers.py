"""Small builders shared by the invariant tests."""

from __future__ import annotations

from strategies import NS

from kalamfuzz.model import Insert, Succeeded, TableId
from kalamfuzz.observations import QueryObservation

T = TableId(NS, "t")


def row(i, n=None, s=None, f=None, b=None):
    return {"id": i, "n": n, "s": s, "f": f, "b": b}


def put(m, actor, *rows, table=T, as_user=None, at=None):
    op = Insert(actor, table, tuple(rows), as_user=as_user)
    m.apply(op, Succeeded(row_count=len(rows)), at=at)


def with_rows(obs: QueryObservation, rows) -> QueryObservation:
    return QueryObservation(obs.status, obs.columns, tuple(rows))


def items(verdict):
    return [v.item for v in verdict.violations]
