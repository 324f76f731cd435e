"""The ledger credits every second once, to the part and the step it was spent in: a check's
server time is part of the check, and a check enclosing a step's account lands in that step."""

from __future__ import annotations

import pytest

from kalamfuzz.machines.driver import ledger as ledger_module
from kalamfuzz.machines.driver.ledger import Ledger, StepStats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ledger_module.time, "perf_counter", c)
    return c


def test_a_check_around_a_steps_account_is_that_steps(clock: Clock) -> None:
    ledger: Ledger = Ledger()
    stats: dict[str, StepStats] = {}
    with ledger.checking(), ledger.accounted(stats, "sweep"):  # as the sweep nests them
        clock.now += 1.0  # bookkeeping
        with ledger.spending("io"):
            clock.now += 2.0
        with ledger.spending("model"):
            clock.now += 0.5
    sweep = stats["sweep"]
    assert (sweep.seconds, sweep.check_seconds, sweep.check_io_seconds) == (3.5, 3.5, 2.0)
    assert (sweep.io_seconds, sweep.model_seconds) == (2.0, 0.5)


def test_only_the_part_of_a_server_call_inside_a_check_is_the_checks(clock: Clock) -> None:
    ledger: Ledger = Ledger()
    stats: dict[str, StepStats] = {}
    with ledger.accounted(stats, "insert"), ledger.spending("io"):
        clock.now += 1.0  # the operation
        with ledger.checking():
            clock.now += 0.25  # a job poll already under way
    insert = stats["insert"]
    assert (insert.io_seconds, insert.check_seconds, insert.check_io_seconds) == (1.25, 0.25, 0.25)
