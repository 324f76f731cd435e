"""The direct pass over a recorded program: it keeps only what the failure needs, and makes a
background flush wait for its job so the result no longer depends on timing."""

from __future__ import annotations

import time

from kalamfuzz.campaign.engine import signature
from kalamfuzz.campaign.minimize import minimize, races, run
from kalamfuzz.machines import Driver
from kalamfuzz.machines.codegen import Step, source

INSERT_5 = Step("insert", ("dba", "board", [{"id": 5, "n": 1, "s": None, "b": None}]))
PADDING = Step("insert", ("dba", "board", [{"id": 6, "n": 2, "s": None, "b": None}]))
SELECT = Step("select", ("alice", "board"))
FLUSH = Step("flush", ("root", "board"))


def test_drops_padding_and_waits_for_the_flush() -> None:
    program = [INSERT_5, FLUSH, Step("wait_jobs"), PADDING, SELECT, INSERT_5]
    with Driver.open("sim", bugs=("dup_pk_cold",)) as d:
        failed = run(d, ("board",), program)
        assert failed.error is not None
        sig = signature(failed.error)
        smaller = minimize(
            d, ("board",), program, lambda e: signature(e) == sig, time.monotonic() + 60
        )
    assert smaller is not None and smaller.error is not None
    lines, _ = source(smaller.program)
    insert_5 = "d.insert('dba', 'board', [{'id': 5, 'n': 1, 's': None, 'b': None}])"
    assert lines == (insert_5, "d.flush('root', 'board', wait=True)", insert_5)


def test_a_program_that_passes_gives_nothing() -> None:
    with Driver.open("sim") as d:
        assert run(d, ("board",), [INSERT_5, SELECT]).error is None
        assert (
            minimize(d, ("board",), [INSERT_5, SELECT], lambda e: True, time.monotonic() + 5)
            is None
        )


def test_a_step_while_a_background_flush_runs_is_a_race() -> None:
    # A write that meets the job on one run misses it on the next: such a program gets several
    # tries per shrink candidate and many reruns before it is labelled, like calls sent at once.
    assert races([INSERT_5, FLUSH, SELECT])
    assert not races([INSERT_5, FLUSH, Step("wait_jobs"), SELECT])
    assert not races([INSERT_5, FLUSH])
    assert not races([INSERT_5, FLUSH.with_option("wait", True), SELECT])
