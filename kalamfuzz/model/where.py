"""The WHERE predicates the machines generate: an AST that renders to SQL and evaluates in the model.

Evaluation follows SQL three-valued logic; a row is selected only when the predicate is TRUE.
"""

from __future__ import annotations

from typing import Literal

from attrs import Factory, field, frozen

from kalamfuzz.model.values import (
    ColType,
    ModelError,
    Row,
    Truth,
    Value,
    and3,
    compare,
    like,
    not3,
    or3,
    sql_literal,
)

CmpOp = Literal["=", "<>", "<", "<=", ">", ">="]


def _quote_ident(name: str) -> str:
    # Plain lower-case identifiers need no quoting; anything else is quoted so a generated
    # column name can never change the statement's meaning.
    if name.replace("_", "a").isalnum() and name == name.lower() and not name[0].isdigit():
        return name
    return '"' + name.replace('"', '""') + '"'


@frozen
class Col:
    name: str

    def to_sql(self) -> str:
        return _quote_ident(self.name)

    def value(self, row: Row) -> Value:
        if self.name not in row:
            raise ModelError(f"column {self.name!r} not in row")
        return row[self.name]


@frozen
class Lit:
    value: Value
    #: Needed only to render Timestamp literals; other types render from the value itself.
    type: ColType | None = None

    def to_sql(self) -> str:
        return sql_literal(self.value, self.type)


Operand = Col | Lit


def _operand_value(op: Operand, row: Row) -> Value:
    return op.value(row) if isinstance(op, Col) else op.value


@frozen
class Cmp:
    op: CmpOp
    left: Operand
    right: Operand

    def to_sql(self) -> str:
        return f"{self.left.to_sql()} {self.op} {self.right.to_sql()}"

    def evaluate(self, row: Row) -> Truth:
        return compare(self.op, _operand_value(self.left, row), _operand_value(self.right, row))


@frozen
class And:
    left: Pred
    right: Pred

    def to_sql(self) -> str:
        return f"({self.left.to_sql()} AND {self.right.to_sql()})"

    def evaluate(self, row: Row) -> Truth:
        return and3(self.left.evaluate(row), self.right.evaluate(row))


@frozen
class Or:
    left: Pred
    right: Pred

    def to_sql(self) -> str:
        return f"({self.left.to_sql()} OR {self.right.to_sql()})"

    def evaluate(self, row: Row) -> Truth:
        return or3(self.left.evaluate(row), self.right.evaluate(row))


@frozen
class Not:
    inner: Pred

    def to_sql(self) -> str:
        return f"(NOT {self.inner.to_sql()})"

    def evaluate(self, row: Row) -> Truth:
        return not3(self.inner.evaluate(row))


@frozen
class InList:
    operand: Col
    values: tuple[Lit, ...] = field(validator=lambda _i, _a, v: _non_empty(v))
    negated: bool = False
    #: The literals' one type and their set, when they share int or str (SQL equality is then
    #: Python's): a 1,000-key read-back would compare each row with every literal.
    _lookup: tuple[type, frozenset[Value]] | None = field(
        init=False,
        eq=False,
        repr=False,
        default=Factory(lambda self: _literal_set(self.values), takes_self=True),
    )

    def to_sql(self) -> str:
        items = ", ".join(v.to_sql() for v in self.values)
        return f"{self.operand.to_sql()} {'NOT IN' if self.negated else 'IN'} ({items})"

    def evaluate(self, row: Row) -> Truth:
        x = self.operand.value(row)
        if self._lookup is not None and type(x) is self._lookup[0]:
            found = x in self._lookup[1]
            return not found if self.negated else found
        result: Truth = False
        for lit in self.values:
            result = or3(result, compare("=", x, lit.value))
        return not3(result) if self.negated else result


def _literal_set(values: tuple[Lit, ...]) -> tuple[type, frozenset[Value]] | None:
    kinds = {type(v.value) for v in values}
    kind = kinds.pop() if len(kinds) == 1 else None
    return (kind, frozenset(v.value for v in values)) if kind in (int, str) else None


def _non_empty(values: tuple[Lit, ...]) -> None:
    if not values:
        raise ValueError("IN needs at least one value")


@frozen
class Between:
    operand: Col
    low: Lit
    high: Lit
    negated: bool = False

    def to_sql(self) -> str:
        kw = "NOT BETWEEN" if self.negated else "BETWEEN"
        return f"{self.operand.to_sql()} {kw} {self.low.to_sql()} AND {self.high.to_sql()}"

    def evaluate(self, row: Row) -> Truth:
        x = self.operand.value(row)
        inside = and3(compare(">=", x, self.low.value), compare("<=", x, self.high.value))
        return not3(inside) if self.negated else inside


@frozen
class IsNull:
    operand: Col
    negated: bool = False

    def to_sql(self) -> str:
        return f"{self.operand.to_sql()} IS {'NOT NULL' if self.negated else 'NULL'}"

    def evaluate(self, row: Row) -> Truth:
        return (self.operand.value(row) is None) != self.negated


@frozen
class Like:
    operand: Col
    pattern: str
    negated: bool = False

    def to_sql(self) -> str:
        kw = "NOT LIKE" if self.negated else "LIKE"
        return f"{self.operand.to_sql()} {kw} {sql_literal(self.pattern)}"

    def evaluate(self, row: Row) -> Truth:
        result = like(self.operand.value(row), self.pattern)
        return not3(result) if self.negated else result


Pred = Cmp | And | Or | Not | InList | Between | IsNull | Like


#: Most keys ``pinned_keys`` expands a BETWEEN into.
PINNED_RANGE = 1000


def pinned_keys(pred: Pred | None, pk: str, pk_type: ColType) -> list[Value] | None:
    """The primary keys the rows ``pred`` matches must have, when it names them by literals of
    the key's own Python type (where SQL and Python equality agree); None: any row may match."""
    kind: type = {ColType.INT: int, ColType.BIGINT: int, ColType.TEXT: str}.get(pk_type, type(None))
    match pred:
        case Cmp(op="=", left=Col(name=n), right=Lit(value=v)) if n == pk and type(v) is kind:
            return [v]
        case Cmp(op="=", left=Lit(value=v), right=Col(name=n)) if n == pk and type(v) is kind:
            return [v]
        case InList(operand=Col(name=n), values=values, negated=False) if n == pk and all(
            type(v.value) is kind for v in values
        ):
            return [v.value for v in values]
        case Between(Col(name=n), Lit(value=int(lo)), Lit(value=int(hi)), False) if (
            n == pk and kind is int and type(lo) is int and type(hi) is int
        ):
            return list(range(lo, hi + 1)) if hi - lo < PINNED_RANGE else None
        case And(left=left, right=right):
            keys = pinned_keys(left, pk, pk_type)
            return keys if keys is not None else pinned_keys(right, pk, pk_type)
    return None


def matches(pred: Pred | None, row: Row) -> bool:
    """WHERE semantics: a missing predicate selects everything, UNKNOWN selects nothing."""
    return pred is None or pred.evaluate(row) is True


def columns(pred: Pred | None) -> frozenset[str]:
    """Every column the predicate names."""
    if pred is None:
        return frozenset()
    if isinstance(pred, Cmp):
        return frozenset(o.name for o in (pred.left, pred.right) if isinstance(o, Col))
    if isinstance(pred, And | Or):
        return columns(pred.left) | columns(pred.right)
    if isinstance(pred, Not):
        return columns(pred.inner)
    return frozenset({pred.operand.name})


def never_true(pred: Pred | None) -> bool:
    """Whether the predicate folds to a constant FALSE or NULL (see :func:`constant`): then
    DataFusion drops the scan too, and with it KalamDB's access check."""
    return pred is not None and _fold(pred) in (False, None)


def constant(pred: Pred | None) -> bool:
    """Whether the predicate folds to a constant before any row is read, the way DataFusion's
    simplifier folds it: ``col = NULL`` is NULL, ``NULL AND NULL`` is NULL, ``FALSE AND x`` is
    FALSE; absorption, ``NULL AND (x OR NULL)`` is NULL; IN lists of one column, ``c NOT IN
    (5, 8) OR c NOT IN (9)`` is TRUE, ``c IN (1) AND c IN (2)`` is FALSE (as a real server
    showed). The filter is then dropped and KalamDB sees no WHERE at all."""
    return pred is not None and _fold(pred) != _VARIES


#: What constant folding makes of a predicate: a constant truth value, or ``_VARIES`` when the
#: result still depends on the row.
_VARIES = "varies"


def _fold(pred: Pred) -> Truth | str:
    if isinstance(pred, Cmp):
        operands = (pred.left, pred.right)
        if any(isinstance(o, Lit) and o.value is None for o in operands):
            return None
        if all(isinstance(o, Lit) for o in operands):
            return pred.evaluate({})
        return _VARIES
    if isinstance(pred, Not):
        inner = _fold(pred.inner)
        return inner if inner == _VARIES else not3(inner)  # type: ignore[arg-type]
    if isinstance(pred, And | Or):
        lists = _in_lists(pred)
        if lists is not None:
            return lists
        a, b = _fold(pred.left), _fold(pred.right)
        absorbing, neutral = (False, True) if isinstance(pred, And) else (True, False)
        if a is absorbing or b is absorbing:
            return absorbing
        if a is neutral:
            return b
        if b is neutral:
            return a
        if a is None and b is None:
            return None
        # Absorption, A AND (A OR B) = A and A OR (A AND B) = A, with A the NULL literal.
        dual = Or if isinstance(pred, And) else And
        for x, y in ((a, pred.right), (b, pred.left)):
            if x is None and isinstance(y, dual) and None in (_fold(y.left), _fold(y.right)):
                return None
        return _VARIES
    return _VARIES


def _in_lists(pred: And | Or) -> Truth | str | None:
    """DataFusion's rules for two IN lists on one column: an empty intersection, or an empty
    difference, is a constant (``expr_simplifier.rs`` inlist_intersection/except); None when
    the rule does not apply."""
    a, b = pred.left, pred.right
    if not (isinstance(a, InList) and isinstance(b, InList) and a.operand == b.operand):
        return None
    left, right = {v.value for v in a.values}, {v.value for v in b.values}
    if isinstance(pred, Or):
        # NOT IN (A) OR NOT IN (B) = NOT IN (A & B): TRUE when nothing is in both
        return True if a.negated and b.negated and not left & right else _VARIES
    if not a.negated and not b.negated:
        return False if not left & right else _VARIES  # IN (A & B)
    if a.negated != b.negated:
        inside, outside = (left, right) if not a.negated else (right, left)
        return False if not inside - outside else _VARIES  # IN (A - B)
    return _VARIES


def to_sql(pred: Pred | None) -> str:
    """The ``WHERE ...`` clause, or an empty string."""
    return "" if pred is None else f" WHERE {pred.to_sql()}"
