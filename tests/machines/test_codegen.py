"""Rendered steps are valid Python that rebuilds the same values (regression files rely on it)."""

from __future__ import annotations

import importlib

from hypothesis import given
from hypothesis import strategies as st

from kalamfuzz.machines import codegen
from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.world import COLUMNS
from kalamfuzz.model.catalog import Table, TableId, TableType
from kalamfuzz.model.where import Pred, matches


def _eval(source: str, imports: set[str]) -> object:
    names: dict[str, object] = {}
    for q in imports:
        module, _, name = q.partition(":")
        names[name] = getattr(importlib.import_module(module), name)
    return eval(source, names)


TABLE = Table(TableId("ns", "t"), TableType.USER, COLUMNS)


@given(kst.predicates(TABLE))
def test_predicates_round_trip(pred: Pred | None) -> None:
    # Evaluated first, as a step's predicate has been when it is saved: what evaluating
    # caches (an IN list's set) is not part of the source.
    matches(pred, {"id": 3, "n": 1, "s": "a", "b": True})
    imports: set[str] = set()
    source = codegen.render(pred, imports)
    assert _eval(source, imports) == pred and "_set" not in source


@given(kst.new_columns(["id"]), kst.rows(TABLE))
def test_columns_and_rows_round_trip(column: object, rows: object) -> None:
    imports: set[str] = set()
    assert _eval(codegen.render(column, imports), imports) == column
    assert _eval(codegen.render(rows, imports), imports) == rows


def test_defaults_are_left_out_and_none_keywords_dropped() -> None:
    imports: set[str] = set()
    line = codegen.call("delete", ["alice", "notes"], {"where": None, "as_user": "bob"}, imports)
    assert line == "d.delete('alice', 'notes', as_user='bob')"
    assert codegen.render(TableType.SHARED, imports) == "TableType.SHARED"
    assert "kalamfuzz.model.catalog:TableType" in imports


@given(st.tuples(st.integers(), st.text()))
def test_one_element_tuples_stay_tuples(t: tuple[int, str]) -> None:
    assert _eval(codegen.render((t[0],), set()), set()) == (t[0],)
