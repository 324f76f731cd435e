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

    def more() -> bool:
        return runs < max_runs and time.monotonic() < deadline

    for i, step in enumerate(current):
        waited = _waited(step)
        if waited is None or not more():
            continue
        candidate = [*current[:i], waited, *current[i + 1 :]]
        result = run(driver, tables, candidate)
        runs += 1
        if result.error is not None and same(result.error):
            best, current = result, candidate
    chunk = max(1, len(current) // 2)
    while chunk >= 1 and more():
        progressed = False
        i = len(current) - chunk
        while i >= 0 and more():
            candidate = current[:i] + current[i + chunk :]
            result = run(driver, tables, candidate)
            runs += 1
            if result.error is not None and same(result.error):
                best, current, progressed = result, candidate, True
            i -= chunk
        if not progressed:
            chunk //= 2
    return best


def _waited(step: Step) -> Step | None:
    """``step`` as a flush that waits for its job, or None if it is not a background flush."""
    if step.name == "flush" and not step.option("wait"):
        return step.with_option("wait", True)
    return None
