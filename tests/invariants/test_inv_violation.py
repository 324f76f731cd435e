"""Violations render as short, readable reports; verdicts narrow the model."""

from __future__ import annotations

from inv_helpers import T, put, row
from strategies import Echo, world

from kalamfuzz.invariants import Verdict, Violation, check_query
from kalamfuzz.invariants.violation import row_diff_lines, rows_summary, subject
from kalamfuzz.model import ContractItem, Select, Succeeded, Unknown
from kalamfuzz.model.ops import Insert


def test_rendering_has_item_subject_expected_observed_and_diff():
    v = Violation(
        ContractItem.TIERS,
        "table app.t scope u1",
        "SELECT result differs from the model",
        "2 row(s)",
        "1 row(s)",
        ("- missing    {id=2}",),
    )
    assert str(v) == (
        "[2 correct before/during/after flush] table app.t scope u1: SELECT result differs"
        " from the model\n  expected: 2 row(s)\n  observed: 1 row(s)\n  - missing    {id=2}"
    )
    assert str(Violation(ContractItem.RBAC, "x", "y")) == "[5 RBAC] x: y"


def test_row_diff_pairs_by_key_and_truncates():
    lines = row_diff_lines(
        [{"id": 1, "s": "a"}, {"id": 2, "s": "b"}, {"s": "nokey"}],
        [{"id": 1, "s": "z"}, {"id": 3, "s": "c"}],
        "id",
    )
    assert lines == (
        "~ wrong      id=1: s: 'a' -> 'z'",
        "- missing    {id=2, s='b'}",
        "- missing    {s='nokey'}",
        "+ unexpected {id=3, s='c'}",
    )
    assert row_diff_lines([{"id": 1}], [{"id": 1.0}], "id")[0].startswith("~ wrong")
    many = row_diff_lines([{"id": i} for i in range(20)], [], None, limit=3)
    assert many[-1] == "... 17 more" and len(many) == 4
    assert rows_summary([{"a": 1}]) == "[{a=1}]"
    assert subject("app.t") == "table app.t" and subject("app.t", "u1") == "table app.t scope u1"


def test_verdict_settles_an_uncertain_model():
    m = world()
    put(m, "u1", row(1))
    m.apply(Insert("u1", T, (row(2),)), Unknown())
    assert len(m.states) == 2
    op = Select("u1", T)
    with_two = Echo.query(m, op)  # the first state: the insert did not happen
    verdict = check_query(m, op, with_two)
    assert verdict.ok and verdict.consistent == (0,)
    m.narrow(verdict.consistent, verdict.learned)
    assert m.certain and m.state.seqs.get(1) is not None
    assert Verdict().ok and str(Verdict()) == "ok"
    m.apply(op, Succeeded())
