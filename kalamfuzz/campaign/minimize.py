"""A last shrinking pass over the recorded step program itself.

Hypothesis shrinks through its choice sequence; with server round trips each attempt is slow,
and a bounded shrink can stop with steps left that do not matter. The recorded program is driver
calls as data (:class:`~kalamfuzz.machines.codegen.Step`), so dropping steps directly (chunks
first, then single steps, greedily) is cheap and keeps only programs that still fail the same
way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from attrs import frozen

from kalamfuzz.machines.codegen import Step
from kalamfuzz.machines.driver import Driver, Exchange


@frozen
class Run:
    program: tuple[Step, ...]
    transcript: tuple[Exchange, ...]
    error: BaseException | None


def run(driver: Driver, tables: Sequence[str], program: Sequence[Step]) -> Run:
    """Run a recorded program as a regression file would (begin, steps, sweep)."""
    error: BaseException | None = None
    try:
        driver.begin(tables)
        for step in program:
            step.replay(driver)
        driver.sweep()
    except Exception as exc:
        error = exc
    return Run(tuple(driver.program), tuple(driver.transcript), error)


def minimize(
    driver: Driver,
    tables: Sequence[str],
    program: Sequence[Step],
    same: Callable[[BaseException], bool],
    deadline: float,
    max_runs: int = 1_000_000,
) -> Run | None:
    """The smallest sub-program found within ``max_runs`` runs (and before ``deadline``) that
    fails as ``same`` says, or None if no smaller one was found.

    Background flushes are first made to wait for their jobs where the failure stays: the
    program then no longer depends on timing, and the steps that only gave a job time to
    finish can go.
    """
    best: Run | None = None
    current = list(program)
    runs = 0
    # A race fails only some of the time: a candidate that still races gets a few tries before
    # it counts as passing, and the budget grows to match.
    if races(program):
        max_runs *= RACE_TRIES

    def more() -> bool:
        return runs < max_runs and time.monotonic() < deadline

    def fails(candidate: list[Step]) -> Run | None:
        nonlocal runs
        for _ in range(RACE_TRIES if races(candidate) else 1):
            if not more():
                break
            result = run(driver, tables, candidate)
            runs += 1
            if result.error is not None and same(result.error):
                return result
        return None

    for i, step in enumerate(current):
        waited = _waited(step)
        if waited is None or not more():
            continue
        candidate = [*current[:i], waited, *current[i + 1 :]]
        if (result := fails(candidate)) is not None:
            best, current = result, candidate
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and more():
        progressed = False
        i = len(current) - chunk
        while i >= 0 and more():
            candidate = current[:i] + current[i + chunk :]
            if (result := fails(candidate)) is not None:
                best, current, progressed = result, candidate, True
            i -= chunk
        if not progressed:
            chunk //= 2
    # Then the calls of each round sent at once, one at a time: the smallest set that races.
    i = 0
    while i < len(current) and more():
        step, j = current[i], 0
        while j < _calls(step) and _calls(step) > 1 and more():
            calls = step.args[0]
            assert isinstance(calls, list | tuple)
            fewer = step.with_first_arg([c for k, c in enumerate(calls) if k != j])
            candidate = [*current[:i], fewer, *current[i + 1 :]]
            if (result := fails(candidate)) is not None:
                best, current, step = result, candidate, fewer
            else:
                j += 1
        i += 1
    return best


#: Tries of a shrunk candidate of a program with a race before it counts as passing.
RACE_TRIES = 3


def races(program: Sequence[Step]) -> bool:
    """Whether the program's outcome may depend on timing: it sends two or more calls at once
    somewhere, or a step goes while a flush job started in the background may still run (a
    write that meets the job on one run misses it on the next, more often on a loaded machine)."""
    flushing = False
    for step in program:
        if _calls(step) > 1 or (flushing and step.name != "wait_jobs"):
            return True
        if step.name == "wait_jobs":
            flushing = False
        elif _waited(step) is not None:
            flushing = True
    return False


def _calls(step: Step) -> int:
    """How many calls a ``concurrently`` step sends at once (0 for other steps)."""
    if step.name != "concurrently" or not step.args:
        return 0
    calls = step.args[0]
    return len(calls) if isinstance(calls, list | tuple) else 0


def _waited(step: Step) -> Step | None:
    """``step`` as a flush that waits for its job, or None if it is not a background flush."""
    if step.name == "flush" and not step.option("wait"):
        return step.with_option("wait", True)
    return None
