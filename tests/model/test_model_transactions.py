"""Transactions (snapshot isolation, first committer wins) and values computed from the row."""

from __future__ import annotations

from strategies import NS, table, world

from kalamfuzz.model import (
    ContractItem,
    Insert,
    OneOf,
    QueryResult,
    Rejected,
    Select,
    Succeeded,
    TableId,
    TableType,
    Update,
)
from kalamfuzz.model.exprs import Arith, Case, Concat, Neg
from kalamfuzz.model.ops import Delete, Transaction, TxBegin
from kalamfuzz.model.outcomes import TxReply
from kalamfuzz.model.uncertain import step
from kalamfuzz.model.where import Cmp, Col, Lit

T = TableId(NS, "t")
SHARED = TableId(NS, "s")
EVENTS = TableId(NS, "e")
BY_ID = Select("u1", T, order_by=(("id", False),))


def row(i: int, n: int | None = 0, s: str | None = "a") -> dict[str, object]:
    return {"id": i, "n": n, "s": s, "f": None, "b": None}


def seeded():
    m = world(table(), table(TableType.SHARED, "s"), table(TableType.STREAM, "e"))
    m.apply(Insert("u1", T, (row(1), row(2, None, None))), Succeeded(row_count=2))
    return m


def values(m, op=BY_ID):
    pred = m.predict(op)
    assert isinstance(pred, QueryResult), pred
    return [(r.values["id"], r.values["n"], r.values["s"]) for r in pred.rows]


def inc(where: int = 1) -> Update:
    return Update("u1", T, (("n", Arith("+", Col("n"), Lit(1))),), Cmp("=", Col("id"), Lit(where)))


def test_computed_assignments_read_the_row_before_the_statement() -> None:
    m = seeded()
    swap = Update(
        "u1",
        T,
        (
            ("n", Case(Cmp(">", Col("n"), Lit(0)), Neg(Col("n")), Arith("+", Col("n"), Lit(5)))),
            ("s", Concat(Col("s"), Lit("b"))),
        ),
        Cmp(">", Col("id"), Lit(0)),
    )
    assert swap.to_sql().endswith(
        "SET n = CASE WHEN n > 0 THEN (-n) ELSE (n + 5) END, s = (s || 'b') WHERE id > 0"
    )
    # row 2 is all NULL: NULL + 5 and NULL || 'b' stay NULL, so it is not written (a no-op)
    assert m.predict(swap).row_count == 1
    m.apply(swap, Succeeded(row_count=1))
    assert values(m) == [(1, 5, "ab"), (2, None, None)]
    m.apply(swap, Succeeded(row_count=1))
    assert values(m) == [(1, -5, "abb"), (2, None, None)]


def test_a_transaction_reads_its_own_writes_and_commits_all_at_once() -> None:
    m = seeded()
    tx = Transaction(
        "u1",
        (
            Insert("u1", T, (row(3, 7),)),
            inc(3),
            BY_ID,
            Delete("u1", T, Cmp("=", Col("id"), Lit(1))),
        ),
    )
    pred = m.predict(tx)
    assert isinstance(pred, TxReply) and pred.counts == (1, 1, 1)
    sel = pred.selects[0]
    assert sel is not None and [r.values["n"] for r in sel.rows] == [0, None, 8]
    m.apply(tx, Succeeded(counts=(1, 1, 1)))
    assert values(m) == [(2, None, None), (3, 8, "a")]


def test_rollback_open_and_failing_transactions_change_nothing() -> None:
    m = seeded()
    before = m.states
    for end in ("ROLLBACK", ""):
        tx = Transaction("u1", (inc(1), BY_ID), end=end)  # type: ignore[arg-type]
        pred = m.predict(tx)
        assert isinstance(pred, TxReply if end else Rejected), pred
        m.apply(tx, Succeeded(counts=(0, 1, 0)) if end else m_failed())
        assert m.states == before
    dup = Transaction("u1", (inc(1), Insert("u1", T, (row(2),))))
    pred = m.predict(dup)
    assert isinstance(pred, Rejected) and pred.item is ContractItem.IDEMPOTENCY
    # rolled back: KalamDB may only meet the duplicate at a COMMIT that never comes
    rolled = Transaction("u1", (Insert("u1", T, (row(2),)),), end="ROLLBACK")
    assert isinstance(m.predict(rolled), OneOf)


def m_failed():
    from kalamfuzz.model import Failed

    return Failed("SQL_EXECUTION_ERROR", 400)


def test_stream_tables_and_mixed_groups_are_refused() -> None:
    m = seeded()
    stream = Transaction("u1", (Insert("u1", EVENTS, (row(9),)),))
    mixed = Transaction("root", (Insert("root", T, (row(5),)), Insert("root", SHARED, (row(9),))))
    for tx in (stream, mixed):
        pred = m.predict(tx)
        assert isinstance(pred, Rejected) and pred.item is ContractItem.CONCURRENCY, pred


def test_two_increments_side_by_side_never_lose_one() -> None:
    """Snapshot isolation with first committer wins: both commit only one after the other."""
    m = seeded()
    s0 = m.state
    a = Transaction("u1", (inc(1),), tx_id="a")
    b = Transaction("u1", (inc(1),), tx_id="b")
    ok = Succeeded(counts=(0, 1, 0))
    both = step(s0, TxBegin("a"), Succeeded(), None)[0]
    both = step(both, TxBegin("b"), Succeeded(), None)[0]
    first = step(both, a, ok, None)
    assert len(first) == 1
    # b's snapshot predates a's commit of the same row: b may not commit over it
    assert step(first[0], b, ok, None) == []
    assert step(first[0], b, m_failed(), None) != []
    # one after the other, both commit and n is 2
    serial = step(step(s0, a, ok, None)[0], b, ok, None)
    assert len(serial) == 1
    m.states = tuple(serial)
    assert values(m)[0] == (1, 2, "a")
