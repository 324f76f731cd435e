"""Reads: visible rows of a scope as Arrow tables, and SQL evaluation with Apache DataFusion."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import datafusion
import pyarrow as pa

from .catalog import TableDef
from .store import Scope, Version
from .types import ARROW, to_arrow_value

SYSTEM_FIELDS = [
    pa.field("_seq", pa.int64(), nullable=False),
    pa.field("_deleted", pa.bool_(), nullable=False),
]


def table_schema(table: TableDef) -> pa.Schema:
    fields = [pa.field(c.name, ARROW[c.kind]) for c in table.columns]
    # Every table has both system columns, STREAM tables too (always false there), as
    # KalamDB's table_creation.rs makes them (docs/contract.md)
    return pa.schema(fields + SYSTEM_FIELDS)


def visible_versions(
    scope: Scope,
    *,
    keep_deleted: bool = False,
    prefer_cold: bool = False,
    keys: Iterable[Any] | None = None,
) -> list[Version]:
    """The newest version per primary key (hot and cold), tombstones hidden unless asked for;
    only those of ``keys`` when given."""
    out = []
    for pk in scope.primary_keys() if keys is None else keys:
        v = scope.latest(pk, prefer_cold=prefer_cold)
        if v is None or (v.deleted and not keep_deleted):
            continue
        out.append(v)
    out.sort(key=lambda v: v.seq)
    return out


def stream_events(scope: Scope, alive: Callable[[Version], bool] | None) -> list[Version]:
    """Every event of a STREAM scope that is not expired, oldest first. Events are not versions
    of a key: two events may share a primary key and both are read (docs/contract.md)."""
    out = [v for versions in scope.hot.values() for v in versions if alive is None or alive(v)]
    out.sort(key=lambda v: v.seq)
    return out


def versions_to_arrow(
    table: TableDef, versions: Iterable[Version], extra: dict[str, list[Any]] | None = None
) -> pa.Table:
    versions = list(versions)
    arrays = [
        pa.array([to_arrow_value(v.values.get(c.id), c.kind) for v in versions], type=ARROW[c.kind])
        for c in table.columns
    ]
    arrays.append(pa.array([v.seq for v in versions], type=pa.int64()))
    arrays.append(pa.array([v.deleted for v in versions], type=pa.bool_()))
    schema = table_schema(table)
    if extra:
        for name, values in extra.items():
            arrays.append(pa.array(values))
            schema = schema.append(pa.field(name, arrays[-1].type))
    return pa.Table.from_arrays(arrays, schema=schema)


class ArrowCache:
    """Arrow tables of scopes, keyed by everything that changes their content."""

    def __init__(self, size: int = 128) -> None:
        self._items: OrderedDict[tuple[Any, ...], pa.Table] = OrderedDict()
        self._size = size

    def get(self, key: tuple[Any, ...], build: Callable[[], pa.Table]) -> pa.Table:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        value = build()
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


def run_sql(sql: str, tables: dict[str, pa.Table]) -> pa.Table:
    ctx = datafusion.SessionContext()
    for name, data in tables.items():
        batches = data.to_batches() or [pa.RecordBatch.from_pylist([], schema=data.schema)]
        ctx.register_record_batches(name, [batches])
    result: pa.Table = ctx.sql(sql).to_arrow_table()
    return result
