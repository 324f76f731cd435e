"""The campaign engine: rounds of Hypothesis runs against one target, until the budget is spent.

Each round runs the machine with a fresh seed. A failure is shrunk (for a bounded time), saved
as a regression, rerun twice to label it deterministic or flaky, and remembered by signature so
later rounds hunt for different ones. Everything the engine learns goes out as events.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attrs import define, field, frozen
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, HypothesisException
from hypothesis.internal.conjecture import engine as conjecture_engine
from hypothesis.stateful import run_state_machine_as_test

from kalamfuzz.adapters.target import Target
from kalamfuzz.campaign import regressions
from kalamfuzz.campaign.events import (
    CampaignFinished,
    CampaignStarted,
    Event,
    Failure,
    Progress,
    RegressionSaved,
    RuleStats,
)
from kalamfuzz.campaign.minimize import minimize
from kalamfuzz.errors import ConfigError, KalamError
from kalamfuzz.machines.base import KalamMachine, get_machine
from kalamfuzz.machines.driver import Driver, InvariantViolation

Handler = Callable[[Event], None]

#: Examples per Hypothesis run; each round gets a new seed.
ROUND_EXAMPLES = 25


@frozen
class Budget:
    """``10m``, ``90s``, ``1h`` (time) or ``200`` (examples)."""

    seconds: float | None = None
    examples: int | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
        if not m:
            raise ConfigError(
                f"bad budget {text!r}", hint="use a duration like 90s, 10m, 1h or an example count"
            )
        value, unit = float(m.group(1)), m.group(2)
        if not unit:
            if value < 1 or value != int(value):
                raise ConfigError(
                    f"bad budget {text!r}", hint="an example count is a whole number >= 1"
                )
            return cls(examples=int(value))
        return cls(seconds=value * {"s": 1, "m": 60, "h": 3600}[unit])

    def __str__(self) -> str:
        return f"{self.examples} examples" if self.examples is not None else f"{self.seconds:g}s"


@define
class CampaignConfig:
    target: str = "sim"
    machine: str = "combined"
    budget: Budget = field(factory=lambda: Budget(examples=100))
    seed: int = 0
    bugs: tuple[str, ...] = ()
    steps: int = 25
    #: Bound on shrinking one failure (Hypothesis' own bound is five minutes).
    shrink_seconds: float = 60.0
    regressions_dir: Path | None = regressions.DEFAULT_DIR
    #: Stop at the first failure (the detection self-test wants only that one).
    stop_on_failure: bool = False
    #: Sim config overrides (``{"sim": {"flush_delay_ms": 20}}`` makes flushes overlap writes).
    sim_config: dict[str, dict[str, object]] = field(
        factory=lambda: {"sim": {"flush_delay_ms": 10}}
    )
    command: str = ""


def _masked(text: str) -> str:
    # Ids, counts and _seq values change whenever a step is added or removed; a shrunk
    # program must still count as the same failure.
    return re.sub(r"[0-9a-f]{6,}|\d+", "#", text)


def signature(exc: BaseException) -> str:
    """What makes two failures the same: the contract items and summaries (numbers and ids
    masked), or the error type and first line."""
    if isinstance(exc, InvariantViolation):
        return " | ".join(sorted({f"{v.item.value}: {_masked(v.summary)}" for v in exc.violations}))
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: " + _masked(first)[:120]


@define
class _Round:
    started: float
    first_failure: float | None = None
    #: The campaign's example count when the round first failed.
    failing_example: int = 0


class Campaign:
    def __init__(self, config: CampaignConfig, handlers: Sequence[Handler] = ()) -> None:
        self.config = config
        self.handlers = list(handlers)
        self.seen: set[str] = set()
        self.failures: list[Failure] = []
        self.duplicates = 0
        self.examples = 0
        self.steps = 0

    def emit(self, event: Event) -> None:
        for h in self.handlers:
            h(event)

    def run(self) -> CampaignFinished:
        cfg = self.config
        cls = get_machine(cfg.machine)  # a bad name fails before anything starts
        bugs = cfg.bugs
        target = Target.parse(
            cfg.target,
            bugs=bugs,
            config=cfg.sim_config if cfg.target == "sim" or cfg.target is None else None,
        )
        started = time.monotonic()
        self.emit(CampaignStarted(cfg.machine, cfg.target, cfg.seed, str(cfg.budget), bugs))
        with target:
            driver = Driver(target)
            driver.on_exchange.append(self.emit)
            try:
                driver.begin(cls.TABLES)  # pre-flight: the target answers and takes the world
            except KalamError as exc:
                raise ConfigError(
                    f"target {cfg.target} could not set up a test world: {exc.message}",
                    hint="check the target (kalamfuzz sim --list-bugs, KALAMFUZZ_TARGET, credentials)",
                ) from None
            driver.program.clear()
            try:
                self._rounds(cls, driver, started)
            finally:
                driver.close()
        elapsed = time.monotonic() - started
        finished = CampaignFinished(
            elapsed_s=elapsed,
            examples=self.examples,
            steps=self.steps,
            failures=tuple(self.failures),
            duplicates=self.duplicates,
            rules={
                k: RuleStats(v.count, v.seconds, v.io_seconds)
                for k, v in sorted(driver.stats.items())
            },
            exit_code=1 if self.failures else 0,
        )
        self.emit(finished)
        return finished

    def _out_of_budget(self, started: float) -> bool:
        b = self.config.budget
        if b.seconds is not None:
            return time.monotonic() - started >= b.seconds
        assert b.examples is not None
        return self.examples >= b.examples

    def _rounds(self, cls: type[KalamMachine], driver: Driver, started: float) -> None:
        cfg = self.config
        round_no = 0
        last_progress = 0.0
        while not self._out_of_budget(started):
            if cfg.stop_on_failure and self.failures:
                return
            round_seed = cfg.seed + round_no
            round_no += 1
            state = _Round(time.monotonic())
            driver.last_failure = None
            examples = self._round_size(started)

            def factory(state: _Round = state) -> object:
                nonlocal last_progress
                self.examples += 1
                now = time.monotonic()
                if now - last_progress >= 1.0:
                    last_progress = now
                    self.emit(
                        Progress(now - started, self.examples, self.steps, len(self.failures))
                    )
                return _counted(cls, driver, self, state)

            test: Any = hypothesis_seed(round_seed)(factory)
            try:
                run_state_machine_as_test(test, settings=self._settings(examples))
            except Flaky as exc:
                # The failure did not replay the same way (timing of a background flush, say):
                # keep the smallest program that did fail, and let the reruns label it.
                self._record(exc, driver, round_seed, started, state)
            except HypothesisException:
                raise
            except Exception as exc:
                self._record(exc, driver, round_seed, started, state)
            self._heal(driver)

    def _round_size(self, started: float) -> int:
        """Examples for the next round: what is left of an example budget, or about what fits
        in what is left of a time budget (a round is never cut short: that would make Hypothesis
        see a different run on replay)."""
        b = self.config.budget
        if b.examples is not None:
            return max(1, min(ROUND_EXAMPLES, b.examples - self.examples))
        assert b.seconds is not None
        elapsed = time.monotonic() - started
        if self.examples == 0 or elapsed <= 0:
            return 5
        rate = self.examples / elapsed
        return max(1, min(ROUND_EXAMPLES, int(rate * (b.seconds - elapsed))))

    def _settings(self, examples: int) -> settings:
        # Hypothesis bounds shrinking by a module constant only; this is the one private knob
        # kalamfuzz touches, so a long shrink cannot eat a campaign's budget.
        # Half the bound goes to Hypothesis, half to the direct pass over the program.
        conjecture_engine.MAX_SHRINKING_SECONDS = max(1, int(self.config.shrink_seconds / 2))
        return settings(
            max_examples=max(1, examples),
            stateful_step_count=self.config.steps,
            deadline=None,
            database=None,
            derandomize=False,
            phases=(Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )

    def _heal(self, driver: Driver) -> None:
        """After a failure that took the server down, start it again for the next round."""
        process = driver.target.process
        if process is not None and not process.alive:
            driver.target.start()

    def _record(
        self, raised: Exception, driver: Driver, seed: int, started: float, state: _Round
    ) -> None:
        if driver.last_failure is not None:
            program, imports, transcript, exc = driver.last_failure
        else:  # failed outside a step (setting up the example)
            program, imports, transcript = (), (), tuple(driver.transcript)
            exc = raised
        sig = signature(exc)
        if sig in self.seen:
            self.duplicates += 1
            return
        self.seen.add(sig)
        cfg = self.config
        tables = get_machine(cfg.machine).TABLES
        smaller = minimize(
            driver,
            tables,
            program,
            imports,
            lambda e: signature(e) == sig,
            time.monotonic() + cfg.shrink_seconds / 2,
        )
        if smaller is not None and smaller.error is not None:
            program, transcript, exc = smaller.program, smaller.transcript, smaller.error
        found_at = state.first_failure or time.monotonic()
        failure = Failure(
            machine=cfg.machine,
            kind="violation" if isinstance(exc, InvariantViolation) else "error",
            signature=sig,
            message=str(exc)
            if isinstance(exc, InvariantViolation)
            else f"{type(exc).__name__}: {exc}",
            items=exc.items if isinstance(exc, InvariantViolation) else (),
            program=program,
            imports=imports,
            tables=tuple(tables),
            transcript=transcript,
            seed=seed,
            seconds_to_failure=found_at - started,
            bugs=cfg.bugs,
            examples_to_failure=state.failing_example or self.examples,
        )
        self.failures.append(failure)
        self.emit(failure)
        if cfg.regressions_dir is None:
            return
        path = regressions.write(failure, cfg.regressions_dir, "not rerun yet", cfg.command)
        label = self._rerun(path, driver, failure)
        regressions.write(failure, cfg.regressions_dir, label, cfg.command)
        self.emit(RegressionSaved(failure, str(path), label))

    def _rerun(self, path: Path, driver: Driver, failure: Failure) -> str:
        module = regressions.load(path)
        again = 0
        for _ in range(2):
            self._heal(driver)
            if regressions.run_program(module, driver, failure.kind):
                again += 1
        return "deterministic" if again == 2 else f"flaky ({again}/2 reruns failed)"


def _counted(
    machine_cls: type[KalamMachine], driver: Driver, campaign: Campaign, state: _Round
) -> KalamMachine:
    """The machine for one example; its teardown notes the steps and when it first failed."""
    machine = machine_cls(driver)
    original = machine.teardown

    def teardown() -> None:
        campaign.steps += driver.steps
        try:
            original()  # the sweep: it may be what fails
        finally:
            if driver.failed and state.first_failure is None:
                state.first_failure = time.monotonic()
                state.failing_example = campaign.examples

    machine.teardown = teardown  # type: ignore[method-assign]
    return machine
