"""Calls sent at once and transactions: the plain sim is explained by some order; a lost update,
a raced key check and a half-kept transaction are not, and are reported as item 9 with a
timeline; a rolled-back transaction's changes never reach a subscriber."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kalamfuzz.campaign.minimize import races
from kalamfuzz.machines import Driver, InvariantViolation, codegen
from kalamfuzz.machines.driver.rounds import Read, Tx
from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.exprs import Arith, Coalesce
from kalamfuzz.model.where import Cmp, Col, Lit

ROW = {"id": 1, "n": 5, "s": "a", "b": None}
ONE = Cmp("=", Col("id"), Lit(1))
INC = {"n": Arith("+", Coalesce(Col("n"), Lit(0)), Lit(1))}


@pytest.fixture(scope="module")
def raced() -> Iterator[Driver]:
    with Driver.open("sim", bugs=("lost_update", "pk_insert_race", "partial_commit")) as d:
        yield d


def increments() -> list[Write | Read | Tx]:
    return [
        Write("alice", "notes", assignments=INC, where=ONE),
        Write("svc", "notes", assignments=INC, where=ONE, as_user="alice"),
        Read("alice", "notes", ONE),
    ]


def test_rounds_and_transactions_on_the_plain_sim_are_explained(driver: Driver) -> None:
    driver.begin(("notes", "board"))
    driver.insert("alice", "notes", [ROW])
    driver.subscribe("alice", "s1", "notes")
    for _ in range(3):
        driver.concurrently(increments())
    driver.concurrently(
        [
            Write("alice", "notes", rows=({**ROW, "id": 2},)),
            Write("svc", "notes", rows=({**ROW, "id": 2, "n": 9},), as_user="alice"),
            Tx("alice", (Write("alice", "notes", where=ONE, delete=True), Read("alice", "notes"))),
            Tx("alice", (Write("alice", "notes", assignments=INC, where=ONE),), "ROLLBACK"),
        ]
    )
    driver.concurrently([Tx("dba", (Write("dba", "board", rows=(ROW,)),), "")])  # left open
    driver.sweep()
    lines, _ = codegen.source(driver.program)
    assert lines[2].startswith("d.concurrently([Write('alice', 'notes', assignments={'n': Arith(")
    assert races(driver.program)


def test_a_lost_update_is_an_item_9_violation_with_a_timeline(raced: Driver) -> None:
    raced.begin(("notes",))
    raced.insert("alice", "notes", [ROW])
    with pytest.raises(InvariantViolation) as err:
        for _ in range(5):  # the planted race opens for 100 ms: calls released together meet
            raced.concurrently(increments()[:2])
    text = str(err.value)
    assert "[9 concurrency and transactions]" in text
    assert "no order of the calls sent at once explains" in text
    assert "* #" in text and "the longest order that explains a prefix" in text


def test_a_half_kept_transaction_is_unexplained_even_alone(raced: Driver) -> None:
    raced.begin(("notes",))
    raced.insert("alice", "notes", [ROW])
    dup = Tx(
        "alice",
        (Write("alice", "notes", rows=({**ROW, "id": 2},)), Write("alice", "notes", rows=(ROW,))),
    )
    with pytest.raises(InvariantViolation) as err:
        raced.concurrently([dup])
    assert "explains the read after them" in str(err.value)
    assert not races(raced.last_failure.program)  # type: ignore[union-attr]
