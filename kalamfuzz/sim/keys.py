"""Which primary keys a WHERE clause can match, so that a read by key costs the keys it names
and not the scope's size (the fuzzer reads back every write by its keys; a scope of 50,000 rows
turned each of those reads into a rebuild of the whole scope)."""

from __future__ import annotations

from sqlglot import exp

from .catalog import TableDef

#: Column kinds whose stored values are Python ints, as integer literals are.
_INTEGER_KINDS = frozenset({"SmallInt", "Int", "BigInt"})


def pinned_keys(table: TableDef, where: exp.Expr | None) -> frozenset[int] | None:
    """The primary keys ``where`` can match, or None when it may match any row (it does not
    pin the key, or the key is not an integer column)."""
    pk = table.pk
    if where is None or pk.kind not in _INTEGER_KINDS:
        return None
    return _keys(where.this if isinstance(where, exp.Where) else where, pk.name)


def _keys(node: exp.Expr, pk: str) -> frozenset[int] | None:
    if isinstance(node, exp.Paren):
        return _keys(node.this, pk)
    if isinstance(node, exp.And | exp.Or):
        left, right = _keys(node.left, pk), _keys(node.right, pk)
        if isinstance(node, exp.Or):
            return None if left is None or right is None else left | right
        if left is None or right is None:
            return right if left is None else left
        return left & right
    if isinstance(node, exp.EQ):
        for col, lit in ((node.this, node.expression), (node.expression, node.this)):
            if _is_column(col, pk) and (value := _integer(lit)) is not None:
                return frozenset({value})
        return None
    if isinstance(node, exp.In) and _is_column(node.this, pk) and not node.args.get("query"):
        values = [_integer(e) for e in node.expressions]
        return (
            None if not values or None in values else frozenset(v for v in values if v is not None)
        )
    return None


def _is_column(node: exp.Expr, pk: str) -> bool:
    return isinstance(node, exp.Column) and node.name.lower() == pk.lower()


def _integer(node: exp.Expr) -> int | None:
    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    if not isinstance(node, exp.Literal) or node.is_string:
        return None
    try:
        value = int(node.this)
    except ValueError:
        return None  # 2.5 or 1e3: leave the comparison to DataFusion
    return -value if negative else value
