"""Constant folding of a WHERE clause, the way DataFusion's expression simplifier folds a DML
predicate before KalamDB's table provider sees it (planted bug dml_never_true_refused).

DataFusion turns a comparison or arithmetic with a NULL operand into NULL (``col = NULL`` is
NULL whatever ``col`` holds), evaluates column-free expressions, and then simplifies the boolean
connectives three-valued: ``FALSE AND x`` is FALSE, ``TRUE AND x`` and ``FALSE OR x`` are ``x``,
``NULL AND NULL`` and ``NULL OR NULL`` are NULL, ``NOT NULL`` is NULL. A predicate that still
references a column after those rules is not constant. When the result is NULL or FALSE,
EliminateFilter removes the filter and the provider gets no predicate at all.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen
from sqlglot import exp

from .binding import run
from .errors import SqlError

_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)


@frozen
class Const:
    """A folded value: None is SQL NULL."""

    value: Any


def _references_columns(node: exp.Expression) -> bool:
    return any(True for _ in node.find_all(exp.Column, exp.Star, exp.Subquery, exp.Select))


def _evaluate(node: exp.Expression) -> Const | None:
    """A column-free expression's value, computed by DataFusion itself."""
    try:
        result = run(exp.select(node.copy().as_("v")), {})
    except SqlError:
        return None  # an expression DataFusion cannot evaluate is left alone, as it would be
    return Const(result.column(0).to_pylist()[0])


def fold(node: exp.Expression) -> Const | None:
    """The constant ``node`` simplifies to, or None when it is not constant."""
    if isinstance(node, exp.Paren):
        return fold(node.this)
    if isinstance(node, exp.Null):
        return Const(None)
    if isinstance(node, exp.Boolean):
        return Const(bool(node.this))
    if isinstance(node, _COMPARISONS + _ARITHMETIC):
        left, right = fold(node.this), fold(node.expression)
        if _is(left, None) or _is(right, None):
            return Const(None)
    if isinstance(node, exp.Not):
        inner = fold(node.this)
        if inner is None:
            return None
        return Const(None) if inner.value is None else Const(not inner.value)
    if isinstance(node, exp.And | exp.Or):
        return _connective(node, fold(node.this), fold(node.expression))
    if _references_columns(node):
        return None
    return _evaluate(node)


def _is(c: Const | None, value: bool | None) -> bool:
    # By identity: 0 == False in Python, but an integer is no boolean to SQL.
    return c is not None and c.value is value


def _connective(node: exp.And | exp.Or, left: Const | None, right: Const | None) -> Const | None:
    absorbing, neutral = (False, True) if isinstance(node, exp.And) else (True, False)
    if _is(left, absorbing) or _is(right, absorbing):
        return Const(absorbing)
    if _is(left, neutral):
        return right
    if _is(right, neutral):
        return left
    if _is(left, None) and _is(right, None):
        return Const(None)
    # Absorption, A AND (A OR B) = A and A OR (A AND B) = A, with A the NULL literal (what a
    # real server refuses, e.g. ``(n < 0 OR n = NULL) AND n = NULL``).
    dual = exp.Or if isinstance(node, exp.And) else exp.And
    for folded, other in ((left, node.expression), (right, node.this)):
        while isinstance(other, exp.Paren):
            other = other.this
        if (
            _is(folded, None)
            and isinstance(other, dual)
            and (_is(fold(other.this), None) or _is(fold(other.expression), None))
        ):
            return Const(None)
    return None


def never_true(predicate: exp.Expression) -> bool:
    """Whether the predicate folds to NULL or FALSE, so that DataFusion drops it entirely."""
    folded = fold(predicate)
    return _is(folded, None) or _is(folded, False)
