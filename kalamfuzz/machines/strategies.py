"""Strategies for what the machines draw: rows, predicates, assignments, projections.

Everything is drawn from a table's current schema before any I/O, and only in forms the model
predicts (see docs/contract.md): small key ranges so rules collide, NULLs, the three-valued
operators the model evaluates, projections that keep the primary key.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TypeVar

from hypothesis import strategies as st

from kalamfuzz.machines.world import KEYS, SEED_KEYS
from kalamfuzz.model.catalog import Column, Table
from kalamfuzz.model.exprs import Arith, Assigned, Case, Coalesce, Concat, Neg
from kalamfuzz.model.values import ColType, Value
from kalamfuzz.model.where import And, Between, Cmp, Col, InList, IsNull, Like, Lit, Not, Or, Pred

_SMALL_INTS = st.integers(-3, 3)

#: Texts that exercise quoting, encoding and size: a value is SQL text on the way in and JSON on
#: the way out, and each of these has broken one of the two somewhere.
EDGE_TEXTS = (
    "'",
    "''",
    "\\",
    "\\'",
    "a'b\\",
    '"',
    "é",
    "e\u0301",  # the same letter, decomposed: stored as sent, not normalised
    "中文",
    "😀",
    "\U0010ffff",
    "\u202eab",  # right-to-left override
    "\ufeff",
    " ",
    "\t\n\r",
    "a\x00b",
    "NULL",
    "'); DROP TABLE x; --",
    "x" * 1_000,
    "y" * 10_000,
)
#: Integers at the bounds of each type, and BIGINTs just outside INT's.
EDGE_INTS = {
    ColType.INT: (2**31 - 1, -(2**31)),
    ColType.BIGINT: (2**63 - 1, -(2**63), 2**31, -(2**31) - 1),
}
EDGE_DOUBLES = (1e308, -1e308, 5e-324, -0.0)
#: One value in EDGE_WEIGHT + 1 is an edge value: rare enough that the small domains still
#: collide as often (what most planted bugs need), and shrinking goes to the small ones.
EDGE_WEIGHT = 15


def values_of(ctype: ColType, *, nullable: bool = True) -> st.SearchStrategy[Value]:
    return _values_of(ctype, nullable)


@functools.lru_cache(maxsize=64)
def _values_of(ctype: ColType, nullable: bool) -> st.SearchStrategy[Value]:
    base: st.SearchStrategy[Value]
    edge: tuple[Value, ...] = ()
    if ctype is ColType.TEXT:
        base, edge = st.text(alphabet="ab_%", max_size=2), EDGE_TEXTS
    elif ctype is ColType.BOOLEAN:
        base = st.booleans()
    elif ctype is ColType.DOUBLE:
        base, edge = st.sampled_from([-1.5, 0.0, 2.25]), EDGE_DOUBLES
    else:
        base, edge = _SMALL_INTS, EDGE_INTS.get(ctype, ())
    if edge:
        base = _weighted((base, EDGE_WEIGHT), (st.sampled_from(edge), 1))
    return st.one_of(st.none(), base) if nullable else base


keys = st.sampled_from(list(KEYS))
#: Keys as predicates name them: the seeded rows' too.
key_literals = st.sampled_from([*KEYS, *SEED_KEYS])


# Strategies depend only on a table's columns, and Hypothesis validates a strategy the first
# time it draws from it: built once per column list, they are reused across steps and examples.
Columns = tuple[Column, ...]


def _value_columns(columns: Columns) -> list[Column]:
    return [c for c in columns if not c.primary_key]


def _pk(columns: Columns) -> str:
    return next(c.name for c in columns if c.primary_key)


def rows(
    table: Table, *, min_rows: int = 1, max_rows: int = 3, fresh_from: int | None = None
) -> st.SearchStrategy[list[dict[str, Value]]]:
    """Rows with distinct keys; every column is given (the first row fixes the column list).

    ``fresh_from`` numbers the keys from there instead of drawing them (STREAM tables: the
    machine picks fresh keys, or runs again over keys it used).
    """
    return _rows(table.columns, min_rows, max_rows, fresh_from)


@functools.lru_cache(maxsize=1024)
def _rows(
    columns: Columns, min_rows: int, max_rows: int, fresh_from: int | None
) -> st.SearchStrategy[list[dict[str, Value]]]:
    if fresh_from is not None:
        return st.integers(min_rows, max_rows).flatmap(
            lambda n: _keyed_rows(columns, tuple(range(fresh_from, fresh_from + n)))
        )
    return st.lists(keys, min_size=min_rows, max_size=max_rows, unique=True).flatmap(
        lambda ks: _keyed_rows(columns, tuple(ks))
    )


@functools.lru_cache(maxsize=4096)
def _keyed_rows(
    columns: Columns, keys: tuple[int, ...]
) -> st.SearchStrategy[list[dict[str, Value]]]:
    # What a flatmap draws from is a new strategy each time unless it is cached, and Hypothesis
    # validates every new strategy: a tenth of a data step went to that.
    return st.tuples(*(_row(columns, k) for k in keys)).map(list)


@functools.lru_cache(maxsize=4096)
def _row(columns: Columns, key: int) -> st.SearchStrategy[dict[str, Value]]:
    """One row with key ``key``: built (and validated by Hypothesis) once, not per draw (a
    third of a data step's time went to validating the same row strategies again)."""
    values = {c.name: values_of(c.type) for c in _value_columns(columns)}
    return st.fixed_dictionaries({_pk(columns): st.just(key), **values})


def assignments(table: Table, prefer: Sequence[str] = ()) -> st.SearchStrategy[dict[str, Assigned]]:
    """SET clauses: one or two columns, always the ``prefer`` ones (those a subscription's
    filter reads, so that an UPDATE moves rows in and out of it)."""
    return _assignments(table.columns, tuple(sorted(set(prefer))))


@functools.lru_cache(maxsize=256)
def _assignments(
    columns: Columns, prefer: tuple[str, ...]
) -> st.SearchStrategy[dict[str, Assigned]]:
    cols = _value_columns(columns)
    must = [c for c in cols if c.name in prefer]
    # Constants only: the domain machines' draws stay what their planted bugs are tuned to
    # (values computed from the row come from the concurrency machine, via assigned()).
    if must:
        return _constants(tuple(must))
    return st.lists(
        st.sampled_from(cols), min_size=1, max_size=2, unique_by=lambda c: c.name
    ).flatmap(lambda cs: _constants(tuple(cs)))


@functools.lru_cache(maxsize=1024)
def _constants(columns: Columns) -> st.SearchStrategy[dict[str, Assigned]]:
    return st.fixed_dictionaries({c.name: values_of(c.type) for c in columns})


def assigned(column: Column) -> st.SearchStrategy[Assigned]:
    """What a SET gives ``column``: a constant (shrinking goes there) or, as often, a value
    computed from the row, where two clients' read-modify-writes can lose one another (at one
    in four, the planted lost update took more than 100 examples to meet at one seed in three)."""
    return _assigned(column)


@functools.lru_cache(maxsize=256)
def _assigned(column: Column) -> st.SearchStrategy[Assigned]:
    constant = values_of(column.type)
    rmw = read_modify_writes(column)
    return constant if rmw is None else st.one_of(constant, rmw)


@functools.lru_cache(maxsize=256)
def read_modify_writes(column: Column) -> st.SearchStrategy[Assigned] | None:
    """Values computed from ``column``'s own value (None for types the model does not compute)."""
    col = Col(column.name)
    if column.type in (ColType.INT, ColType.BIGINT):
        one = Lit(1)
        return st.sampled_from(
            [
                # from NULL too: most rows start with one somewhere
                Arith("+", Coalesce(col, Lit(0)), one),
                Arith("+", col, one),
                Arith("-", col, one),
                Neg(col),
                Case(Cmp(">", col, Lit(0)), Arith("-", col, one), Arith("+", col, one)),
            ]
        )
    if column.type is ColType.TEXT:
        return st.sampled_from([Concat(Coalesce(col, Lit("")), Lit("a")), Concat(col, Lit("b"))])
    if column.type is ColType.BOOLEAN:
        return st.just(Case(Cmp("=", col, Lit(True)), Lit(False), Lit(True)))
    return None


def _key_leaf(columns: Columns, known: Sequence[int]) -> st.SearchStrategy[Pred]:
    pk = Col(_pk(columns))
    ops = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
    # Keys the rules wrote come first: a predicate that names a row makes the step count.
    key = st.builds(Lit, st.one_of(st.sampled_from(known), key_literals) if known else key_literals)
    return st.one_of(
        st.builds(Cmp, ops, st.just(pk), key),
        st.builds(
            InList, st.just(pk), st.lists(key, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
        st.builds(Between, st.just(pk), key, key, st.booleans()),
    )


def _value_leaf(columns: Columns) -> st.SearchStrategy[Pred]:
    ops = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
    out: list[st.SearchStrategy[Pred]] = []
    for c in _value_columns(columns):
        col = Col(c.name)
        out.append(st.builds(IsNull, st.just(col), st.booleans()))
        if c.type is ColType.TEXT:
            out.append(
                st.builds(Like, st.just(col), st.text(alphabet="ab%_", max_size=2), st.booleans())
            )
        elif c.type is ColType.BOOLEAN:
            out.append(st.builds(Cmp, st.just("="), st.just(col), st.builds(Lit, st.booleans())))
        else:
            # A NULL literal makes a comparison unknown for every row: mostly wasted steps.
            value = st.one_of(values_of(c.type, nullable=False), st.none())
            out.append(st.builds(Cmp, ops, st.just(col), st.builds(Lit, value)))
    return st.one_of(out) if out else _key_leaf(columns, ())


T = TypeVar("T")


def _weighted(*choices: tuple[st.SearchStrategy[T], int]) -> st.SearchStrategy[T]:
    # one_of picks a branch uniformly, so a branch listed k times is drawn k times as often;
    # but it drops a strategy object it already holds, so every copy must be an object of its
    # own (listed as is, weights were ignored: an edge value of weight 1 against 15 came 32%
    # of the time instead of 6%).
    return st.one_of(
        [s if i == 0 else s.map(_same) for s, weight in choices for i in range(weight)]
    )


def _same(value: T) -> T:
    return value


def predicates(table: Table, known: Sequence[int] = ()) -> st.SearchStrategy[Pred | None]:
    """A WHERE clause: mostly on the primary key, often naming one of the ``known`` keys (those
    written to the scope); sometimes on other columns or nested; now and then none at all.

    Steps are only worth their round trip when a predicate matches a row, and an UPDATE or
    DELETE without WHERE is refused by KalamDB: key predicates come first (Hypothesis shrinks
    towards the first branch) and missing ones are rare.
    """
    return _predicates(table.columns, tuple(sorted(set(known))))


@functools.lru_cache(maxsize=1024)
def _predicates(columns: Columns, known: tuple[int, ...]) -> st.SearchStrategy[Pred | None]:
    key = _key_leaf(columns, known)
    value = _value_leaf(columns)
    leaf = st.one_of(key, value)
    # At least one connective: OR, AND and NOT are where three-valued logic and scope
    # filters go wrong; a bare leaf is drawn by the other branches already.
    compound = st.one_of(
        st.builds(Or, leaf, leaf),
        st.builds(And, leaf, leaf),
        st.builds(Not, leaf),
        st.builds(Or, st.builds(And, leaf, leaf), leaf),
        st.builds(And, st.builds(Or, leaf, leaf), st.builds(Not, leaf)),
    )
    return _weighted((key, 4), (value, 2), (compound, 3), (st.none(), 1))


def filters(table: Table, known: Sequence[int] = ()) -> st.SearchStrategy[Pred]:
    """A subscription's WHERE: mostly on values the writes change, so rows enter and leave the
    filter (a key never changes, so a key filter only ever sees its rows come and go by
    INSERT and DELETE); sometimes on keys, sometimes compound."""
    return _filters(table.columns, tuple(sorted(set(known))))


@functools.lru_cache(maxsize=1024)
def _filters(columns: Columns, known: tuple[int, ...]) -> st.SearchStrategy[Pred]:
    value = _value_leaf(columns)
    key = _key_leaf(columns, known)
    compound = st.one_of(st.builds(Or, value, key), st.builds(And, value, st.builds(Not, value)))
    return _weighted((value, 4), (key, 1), (compound, 2))


def projections(table: Table) -> st.SearchStrategy[list[str] | None]:
    """``None`` for ``*``, else the primary key and some other columns, in table order."""
    return _projections(table.columns)


@functools.lru_cache(maxsize=256)
def _projections(columns: Columns) -> st.SearchStrategy[list[str] | None]:
    others = [c.name for c in _value_columns(columns)]
    pk = _pk(columns)
    return st.one_of(
        st.none(),
        st.lists(st.sampled_from(others), unique=True, max_size=len(others)).map(
            lambda cs: [pk, *sorted(cs, key=others.index)]
        )
        if others
        else st.just([pk]),
    )


def order_by(table: Table) -> st.SearchStrategy[list[tuple[str, bool]]]:
    """ORDER BY that ends with the primary key, so LIMIT picks a determined set of rows."""
    return _order_by(table.columns)


@functools.lru_cache(maxsize=256)
def _order_by(columns: Columns) -> st.SearchStrategy[list[tuple[str, bool]]]:
    pk = _pk(columns)
    others = [c.name for c in _value_columns(columns)]
    lead = (
        st.lists(st.tuples(st.sampled_from(others), st.booleans()), max_size=1)
        if others
        else st.just([])
    )
    return st.tuples(lead, st.booleans()).map(lambda t: [*t[0], (pk, t[1])])


#: Names ADD COLUMN draws from: two new ones, and two the world's tables start with (so that a
#: dropped column comes back).
ADDABLE = ("x", "y", "n", "s")


def new_columns(existing: Sequence[str]) -> st.SearchStrategy[Column]:
    """A nullable column for ADD COLUMN, maybe with a default, maybe re-using a dropped name.

    Call only when ``addable(existing)``: with every name taken there is nothing to draw (a
    filter that never passes would make Hypothesis give the whole example up)."""
    return st.sampled_from([n for n in ADDABLE if n not in existing]).flatmap(new_column)


def addable(existing: Sequence[str]) -> bool:
    return any(n not in existing for n in ADDABLE)


def new_column(name: str) -> st.SearchStrategy[Column]:
    """A nullable column named ``name`` of any type, maybe with a default."""
    return st.sampled_from([ColType.INT, ColType.TEXT, ColType.BOOLEAN]).flatmap(
        lambda t: st.builds(
            Column,
            st.just(name),
            st.just(t),
            st.just(True),
            st.one_of(st.none(), values_of(t, nullable=False)),
        )
    )
