"""The sim reads only the primary keys a WHERE pins: sound (never a row the WHERE matches left
out) on every predicate the fuzzer draws, and pinning exactly what the SQL says."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from kalamfuzz.machines.strategies import predicates
from kalamfuzz.machines.world import COLUMNS
from kalamfuzz.model import Table, TableId, TableType
from kalamfuzz.model.where import Pred, to_sql
from kalamfuzz.sim.catalog import Column, TableDef
from kalamfuzz.sim.keys import pinned_keys
from kalamfuzz.sim.query import run_sql

TABLE = TableDef(
    uid=1,
    namespace="ns",
    name="t",
    table_type="user",
    columns=[
        Column(1, "id", "Int", nullable=False, pk=True),
        Column(2, "n", "BigInt"),
        Column(3, "s", "Text"),
        Column(4, "b", "Boolean"),
    ],
)
MODEL_TABLE = Table(TableId("ns", "t"), TableType.USER, COLUMNS)


def keys_of(where_sql: str, table: TableDef = TABLE) -> frozenset[int] | None:
    tree = sqlglot.parse_one(f"SELECT * FROM t WHERE {where_sql}", read="postgres")
    return pinned_keys(table, tree.args.get("where"))


@pytest.mark.parametrize(
    ("where", "keys"),
    [
        ("id = 3", {3}),
        ("3 = id", {3}),
        ("id = -2", {-2}),
        ("id IN (1, 2, 2)", {1, 2}),
        ("(id = 1 OR id = 5)", {1, 5}),
        ("id = 1 AND n > 2", {1}),
        ("n > 2 AND id IN (1, 4)", {1, 4}),
        ("id IN (1, 2) AND id IN (2, 3)", {2}),
        ("id = 1 AND id = 2", set()),
    ],
)
def test_a_where_that_pins_the_key_names_its_keys(where: str, keys: set[int]) -> None:
    assert keys_of(where) == keys


@pytest.mark.parametrize(
    "where",
    [
        "id > 3",
        "id = 1 OR n = 2",
        "NOT id = 1",
        "id NOT IN (1, 2)",
        "id = 2.5",
        "id = '3'",
        "id = NULL",
        "id = n",
        "n = 3",
        "id IN (SELECT id FROM u)",
    ],
)
def test_a_where_that_may_match_other_keys_pins_none(where: str) -> None:
    assert keys_of(where) is None


def test_a_text_key_is_never_pinned() -> None:
    text_pk = TableDef(
        uid=2,
        namespace="ns",
        name="t",
        table_type="user",
        columns=[Column(1, "id", "Text", pk=True)],
    )
    assert keys_of("id = 3", text_pk) is None


ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "n": st.one_of(st.none(), st.integers(-3, 3)),
            "s": st.one_of(st.none(), st.sampled_from(["a", "b_", "%"])),
            "b": st.one_of(st.none(), st.booleans()),
        }
    ),
    max_size=16,
)


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, where=predicates(MODEL_TABLE))
def test_reading_only_the_pinned_keys_finds_every_row_the_where_matches(
    rows: list[dict[str, object]], where: Pred | None
) -> None:
    # Keys from -1 so that rows sit on both sides of every key the strategies draw.
    full = pa.Table.from_pylist(
        [{"id": k - 1, **r} for k, r in enumerate(rows)],
        schema=pa.schema(
            [("id", pa.int32()), ("n", pa.int64()), ("s", pa.string()), ("b", pa.bool_())]
        ),
    )
    sql = f"SELECT id FROM t{to_sql(where)} ORDER BY id"
    keys = pinned_keys(TABLE, sqlglot.parse_one(sql, read="postgres").args.get("where"))
    pinned = full.filter(pc.is_in(full["id"], pa.array(sorted(keys or ()), pa.int32())))
    expected = run_sql(sql, {"t": full})
    assert run_sql(sql, {"t": pinned if keys is not None else full}) == expected
    if keys is not None:
        assert set(expected["id"].to_pylist()) <= keys
