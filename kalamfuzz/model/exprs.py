"""Values an UPDATE computes from the row it changes: ``SET n = n + 1``, ``SET s = s || 'x'``,
``SET n = -n``, ``SET n = CASE WHEN n > 0 THEN n - 1 ELSE n + 1 END``.

A read-modify-write is where concurrent clients lose updates, so the model evaluates these the
way DataFusion (KalamDB's engine) does: NULL in, NULL out; a CASE whose condition is not TRUE
takes its ELSE; integers are Int64 and wrap on overflow (DataFusion's default, ``add_wrapping``
and ``neg_wrapping``: ``fail_on_overflow`` is off); a result outside an INT column's range is
refused when it is assigned.
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from kalamfuzz.model.values import ColType, ModelError, Row, Value, sql_literal
from kalamfuzz.model.where import Col, Lit, Pred
from kalamfuzz.model.where import columns as pred_columns


@frozen
class Arith:
    """``left + right`` or ``left - right`` on integers."""

    op: Literal["+", "-"]
    left: Term
    right: Term

    def to_sql(self) -> str:
        return f"({term_sql(self.left)} {self.op} {term_sql(self.right)})"

    def evaluate(self, row: Row) -> Value:
        a, b = evaluate(self.left, row), evaluate(self.right, row)
        if a is None or b is None:
            return None
        if not (_is_int(a) and _is_int(b)):
            raise ModelError(f"{self.to_sql()}: the model adds integers only")
        assert isinstance(a, int) and isinstance(b, int)
        return _wrapped(a + b if self.op == "+" else a - b)


@frozen
class Neg:
    """``-operand``."""

    operand: Term

    def to_sql(self) -> str:
        return f"(-{term_sql(self.operand)})"

    def evaluate(self, row: Row) -> Value:
        a = evaluate(self.operand, row)
        if a is None:
            return None
        if not _is_int(a):
            raise ModelError(f"{self.to_sql()}: the model negates integers only")
        assert isinstance(a, int)
        return _wrapped(-a)


@frozen
class Concat:
    """``left || right`` on text (NULL when either side is NULL, as DataFusion's operator)."""

    left: Term
    right: Term

    def to_sql(self) -> str:
        return f"({term_sql(self.left)} || {term_sql(self.right)})"

    def evaluate(self, row: Row) -> Value:
        a, b = evaluate(self.left, row), evaluate(self.right, row)
        if a is None or b is None:
            return None
        if not (isinstance(a, str) and isinstance(b, str)):
            raise ModelError(f"{self.to_sql()}: the model concatenates text only")
        return a + b


@frozen
class Case:
    """``CASE WHEN when THEN then ELSE otherwise END``."""

    when: Pred
    then: Term
    otherwise: Term

    def to_sql(self) -> str:
        return (
            f"CASE WHEN {self.when.to_sql()} THEN {term_sql(self.then)} "
            f"ELSE {term_sql(self.otherwise)} END"
        )

    def evaluate(self, row: Row) -> Value:
        return evaluate(self.then if self.when.evaluate(row) is True else self.otherwise, row)


@frozen
class Coalesce:
    """``COALESCE(operand, otherwise)``: a read-modify-write that also counts from NULL."""

    operand: Term
    otherwise: Term

    def to_sql(self) -> str:
        return f"COALESCE({term_sql(self.operand)}, {term_sql(self.otherwise)})"

    def evaluate(self, row: Row) -> Value:
        a = evaluate(self.operand, row)
        return evaluate(self.otherwise, row) if a is None else a


Expr = Arith | Neg | Concat | Case | Coalesce
Term = Col | Lit | Expr
#: What a SET clause assigns: a constant, or a value computed from the row.
Assigned = Value | Term


def _wrapped(v: int) -> int:
    """``v`` as Int64 arithmetic leaves it: two's complement, wrapped."""
    return (v + 2**63) % 2**64 - 2**63


def _is_int(v: Value) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def computed(v: Assigned) -> bool:
    """Whether an assignment is computed from the row (not a constant)."""
    return bool(columns(v))


def evaluate(term: Assigned, row: Row) -> Value:
    if isinstance(term, Col):
        return term.value(row)
    if isinstance(term, Lit):
        return term.value
    if isinstance(term, Arith | Neg | Concat | Case | Coalesce):
        return term.evaluate(row)
    return term


def term_sql(term: Assigned, ctype: ColType | None = None) -> str:
    if isinstance(term, Col | Lit | Arith | Neg | Concat | Case | Coalesce):
        return term.to_sql()
    return sql_literal(term, ctype)


def columns(term: Assigned) -> frozenset[str]:
    """Every column the assignment reads."""
    if isinstance(term, Col):
        return frozenset({term.name})
    if isinstance(term, Arith | Concat):
        return columns(term.left) | columns(term.right)
    if isinstance(term, Coalesce):
        return columns(term.operand) | columns(term.otherwise)
    if isinstance(term, Neg):
        return columns(term.operand)
    if isinstance(term, Case):
        return pred_columns(term.when) | columns(term.then) | columns(term.otherwise)
    return frozenset()
