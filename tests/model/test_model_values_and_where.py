"""SQL three-valued logic, LIKE, coercion, literals, and WHERE evaluation/rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import predicates, row_values

from kalamfuzz.model.values import (
    ColType,
    ModelError,
    and3,
    coerce,
    compare,
    freeze,
    like,
    not3,
    or3,
    order_cmp,
    render_rows,
    sql_literal,
    thaw,
)
from kalamfuzz.model.where import (
    And,
    Between,
    Cmp,
    Col,
    InList,
    IsNull,
    Like,
    Lit,
    Not,
    Or,
    Pred,
    columns,
    constant,
    matches,
    never_true,
    to_sql,
)

TRUTHS = [True, False, None]


class TestThreeValuedLogic:
    @pytest.mark.parametrize("a", TRUTHS)
    @pytest.mark.parametrize("b", TRUTHS)
    def test_and_or_follow_kleene_tables(self, a, b):
        order = {False: 0, None: 1, True: 2}
        back = {0: False, 1: None, 2: True}
        assert and3(a, b) is back[min(order[a], order[b])]
        assert or3(a, b) is back[max(order[a], order[b])]

    def test_not_keeps_unknown(self):
        assert not3(None) is None
        assert not3(True) is False

    @pytest.mark.parametrize("op", ["=", "<>", "<", "<=", ">", ">="])
    def test_null_compares_unknown(self, op):
        assert compare(op, None, 1) is None
        assert compare(op, "a", None) is None

    def test_comparisons(self):
        assert compare("<", 1, 2.5) is True
        assert compare(">=", "b", "a") is True
        assert compare("!=", 1, 1) is False
        assert compare("<=", 2, 2) is True
        assert compare(">", 1, 2) is False

    def test_mixed_kinds_are_refused(self):
        with pytest.raises(ModelError):
            compare("=", "1", 1)
        with pytest.raises(ModelError):
            compare("=", True, 1)
        with pytest.raises(ModelError):
            compare("~", 1, 1)


class TestLike:
    @pytest.mark.parametrize(
        "value,pattern,expected",
        [
            ("abc", "a%", True),
            ("abc", "a_c", True),
            ("abc", "a_", False),
            ("a%c", "a\\%c", True),
            ("abc", "a\\%c", False),
            ("ABC", "abc", False),
            ("a.c", "a.c", True),
            ("abc", "a.c", False),
            ("", "%", True),
            ("x\\", "x\\", True),
        ],
    )
    def test_patterns(self, value, pattern, expected):
        assert like(value, pattern) is expected

    def test_null_is_unknown_and_non_text_refused(self):
        assert like(None, "%") is None
        with pytest.raises(ModelError):
            like(1, "%")


class TestCoerceAndRender:
    @pytest.mark.parametrize(
        "raw,ctype,expected",
        [
            ("12", ColType.BIGINT, 12),
            (12, ColType.INT, 12),
            ("x", ColType.BIGINT, "x"),
            (3, ColType.DOUBLE, 3.0),
            (True, ColType.DOUBLE, True),
            (True, ColType.BOOLEAN, True),
            (1, ColType.BOOLEAN, 1),
            ("s", ColType.TEXT, "s"),
            (5, ColType.TEXT, 5),
            ([1], ColType.TEXT, "[1]"),
            (None, ColType.INT, None),
        ],
    )
    def test_coerce(self, raw, ctype, expected):
        got = coerce(raw, ctype)
        assert got == expected and type(got) is type(expected)

    def test_accepts_checks_type_and_range(self):
        assert ColType.INT.accepts(2**31 - 1) and not ColType.INT.accepts(2**31)
        assert not ColType.INT.accepts(True)
        assert ColType.DOUBLE.accepts(1.0) and not ColType.DOUBLE.accepts(float("nan"))
        assert ColType.TEXT.accepts("x") and not ColType.TEXT.accepts(1)
        assert ColType.BOOLEAN.accepts(None)
        assert not ColType.BOOLEAN.accepts(0)

    def test_literals(self):
        assert sql_literal(None) == "NULL"
        assert sql_literal(True) == "TRUE" and sql_literal(False) == "FALSE"
        assert sql_literal("it's") == "'it''s'"
        assert sql_literal(5, ColType.TIMESTAMP) == "to_timestamp_micros(5)"
        assert sql_literal(2.0) == "2.0" and sql_literal(1e20) == "1e+20"
        assert sql_literal(7) == "7"

    def test_freeze_keeps_types_apart(self):
        assert freeze({"a": 1}) != freeze({"a": True})
        assert freeze({"a": 1}) != freeze({"a": 1.0})
        assert thaw(freeze({"a": 1, "b": None})) == {"a": 1, "b": None}

    def test_order_cmp_puts_nulls_last_asc_first_desc(self):
        assert order_cmp(None, 1) == 1 and order_cmp(1, None) == -1
        assert order_cmp(None, 1, descending=True) == -1
        assert order_cmp(1, 2, descending=True) == 1
        assert order_cmp(None, None) == 0

    def test_render_rows_truncates(self):
        text = render_rows([{"a": i} for i in range(10)], limit=2)
        assert "8 more" in text


ROW = {"id": 1, "n": None, "s": "ab", "f": 1.5, "b": True}


class TestWhere:
    @pytest.mark.parametrize(
        "pred,truth",
        [
            (Cmp("=", Col("id"), Lit(1)), True),
            (Cmp("=", Col("n"), Lit(1)), None),
            (And(Cmp("=", Col("id"), Lit(1)), Cmp("=", Col("n"), Lit(1))), None),
            (Or(Cmp("=", Col("id"), Lit(1)), Cmp("=", Col("n"), Lit(1))), True),
            (Not(Cmp("=", Col("n"), Lit(1))), None),
            (InList(Col("id"), (Lit(2), Lit(None))), None),
            (InList(Col("id"), (Lit(1), Lit(None))), True),
            (InList(Col("id"), (Lit(2), Lit(None)), negated=True), None),
            (InList(Col("id"), (Lit(2),), negated=True), True),
            (Between(Col("f"), Lit(1.0), Lit(2.0)), True),
            (Between(Col("f"), Lit(1.0), Lit(2.0), negated=True), False),
            (Between(Col("n"), Lit(1), Lit(2)), None),
            (IsNull(Col("n")), True),
            (IsNull(Col("s"), negated=True), True),
            (Like(Col("s"), "a%"), True),
            (Like(Col("s"), "a%", negated=True), False),
            (Cmp("=", Col("b"), Lit(True)), True),
        ],
    )
    def test_evaluation(self, pred, truth):
        assert pred.evaluate(ROW) is truth
        assert matches(pred, ROW) is (truth is True)

    def test_missing_where_matches_and_unknown_column_refused(self):
        assert matches(None, ROW)
        with pytest.raises(ModelError):
            Cmp("=", Col("zz"), Lit(1)).evaluate(ROW)

    def test_in_needs_values(self):
        with pytest.raises(ValueError):
            InList(Col("id"), ())

    def test_rendering(self):
        pred = And(
            Or(Cmp(">=", Col("id"), Lit(1)), IsNull(Col("n"), negated=True)),
            Not(
                And(
                    InList(Col("n"), (Lit(1), Lit(None)), negated=True),
                    And(Between(Col("f"), Lit(0.5), Lit(2.0)), Like(Col("s"), "a'%")),
                )
            ),
        )
        assert to_sql(pred) == (
            " WHERE ((id >= 1 OR n IS NOT NULL) AND (NOT (n NOT IN (1, NULL) AND"
            " (f BETWEEN 0.5 AND 2.0 AND s LIKE 'a''%'))))"
        )
        assert to_sql(None) == ""
        assert Cmp("=", Col("Weird Name"), Lit("x")).to_sql() == "\"Weird Name\" = 'x'"
        assert columns(pred) == {"id", "n", "f", "s"}
        assert columns(None) == frozenset()

    @given(predicates(), row_values(), st.integers(-5, 5))
    def test_not_is_the_complement_when_known(self, pred, values, key):
        row = {"id": key, **values}
        truth = pred.evaluate(row)
        assert Not(pred).evaluate(row) is (None if truth is None else not truth)
        assert And(pred, Not(pred)).evaluate(row) is not True
        assert columns(pred) <= set(row)
        assert pred.to_sql()


_N = Col("n")
_NULL = Lit(None)


@pytest.mark.parametrize(
    ("pred", "refused"),
    [
        # what a release build of KalamDB (66dc492b) answered to DELETE ... WHERE <pred>
        (Cmp("=", _N, _NULL), True),
        (Not(Cmp("=", _N, _NULL)), True),
        (Or(Cmp("=", _N, _NULL), Cmp(">", _N, _NULL)), True),
        (And(Cmp("=", Col("id"), Lit(3)), Cmp("=", _N, _NULL)), False),
        (Or(Cmp("=", Col("id"), Lit(3)), Cmp("=", _N, _NULL)), False),
        (And(IsNull(_N), Cmp("=", _N, _NULL)), False),
        (And(Or(Cmp("<", _N, Lit(0)), Cmp("=", _N, _NULL)), Cmp("=", _N, _NULL)), True),
        (Or(And(Cmp("<", _N, Lit(0)), Cmp("=", _N, _NULL)), Cmp("=", _N, _NULL)), True),
        (Not(And(Cmp("<", _N, Lit(0)), Cmp("=", _N, _NULL))), False),
        (And(Or(Cmp("<", _N, Lit(0)), Cmp("=", Col("id"), Lit(1))), Cmp("=", _N, _NULL)), False),
    ],
)
def test_never_true_folds_like_datafusion(pred: Pred, refused: bool) -> None:
    assert never_true(pred) is refused
    assert constant(pred) is refused


def _ids(*keys: int, negated: bool = False) -> InList:
    return InList(Col("id"), tuple(Lit(k) for k in keys), negated)


@pytest.mark.parametrize(
    ("pred", "folded"),
    [
        # DataFusion's IN-list rules: the first was refused by a release build
        (Or(_ids(5, 8, 8, negated=True), _ids(9, negated=True)), True),
        (Or(_ids(5, 9, negated=True), _ids(9, negated=True)), False),
        (And(_ids(1, 2), _ids(3)), True),
        (And(_ids(1, 2), _ids(2, 3)), False),
        (And(_ids(1, 2), _ids(1, 2, 3, negated=True)), True),
        (And(_ids(5, negated=True), _ids(1, 5)), False),
        (Or(_ids(1), _ids(2)), False),
    ],
)
def test_in_lists_of_one_column_fold_like_datafusion(pred: Pred, folded: bool) -> None:
    assert constant(pred) is folded
