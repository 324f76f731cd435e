"""The campaign engine: rounds of Hypothesis runs against one target, until the budget is spent.

Each round runs the machine with a fresh seed. A failure is shrunk (for a bounded time), saved
as a regression, rerun twice to label it deterministic or flaky, and remembered by signature so
later rounds hunt for different ones. Everything the engine learns goes out as events.

With an example database (``CampaignConfig.database``) each machine's first round replays the
failing examples saved there first; a campaign that is one of several workers
(``kalamfuzz.campaign.workers``) takes every n-th round seed and claims a finding in that
database before shrinking it, so the workers shrink each one once.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attrs import define, field, frozen
from hypothesis import HealthCheck, Phase, Verbosity, assume, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, HypothesisException
from hypothesis.internal.conjecture import engine as conjecture_engine
from hypothesis.stateful import run_state_machine_as_test

from kalamfuzz.adapters.target import Target
from kalamfuzz.campaign import regressions
from kalamfuzz.campaign.database import Claims, DatabaseError, Keyed, example_key, open_database
from kalamfuzz.campaign.events import (
    CampaignFinished,
    CampaignStarted,
    Event,
    Failure,
    KnownCount,
    MachineFinished,
    Progress,
    RegressionSaved,
    RuleStats,
)
from kalamfuzz.campaign.known import KnownIssues, Triage
from kalamfuzz.campaign.minimize import minimize, races
from kalamfuzz.errors import ConfigError, KalamError
from kalamfuzz.invariants.violation import masked
from kalamfuzz.machines import codegen
from kalamfuzz.machines.base import ALL_MACHINES, KalamMachine, get_machine
from kalamfuzz.machines.codegen import Step
from kalamfuzz.machines.driver import Driver, FailedExample, InvariantViolation

Handler = Callable[[Event], None]

#: Examples per Hypothesis run; each round gets a new seed.
ROUND_EXAMPLES = 25
#: How often a worker reads the findings the other workers claimed, between two examples.
CLAIMS_SECONDS = 5.0


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
    #: A machine's name, or ``all``: every machine in turn, each with an equal share.
    machine: str = "combined"
    budget: Budget = field(factory=lambda: Budget(examples=100))
    seed: int = 0
    bugs: tuple[str, ...] = ()
    steps: int = 25
    #: Bound on the work of shrinking one failure: examples run, half by Hypothesis' shrinker,
    #: half by the direct pass over the program. Work, not time, so a loaded machine shrinks
    #: as far as an idle one.
    shrink_runs: int = 100
    #: A wall-clock bound on top, for servers slow enough to make ``shrink_runs`` too long.
    shrink_seconds: float = 300.0
    regressions_dir: Path | None = regressions.DEFAULT_DIR
    #: Stop at the first failure (the detection self-test wants only that one).
    stop_on_failure: bool = False
    #: Sim config overrides (``{"sim": {"flush_delay_ms": 20}}`` makes flushes overlap writes).
    sim_config: dict[str, dict[str, object]] = field(
        factory=lambda: {"sim": {"flush_delay_ms": 10}}
    )
    command: str = ""
    #: Findings that are counted and explored past instead of ending an example.
    known_issues: KnownIssues = field(factory=KnownIssues)
    #: Rows each example's tables start with (``Driver.background_rows``; kalamfuzz bench).
    background_rows: int = 0
    #: Hypothesis example database: a directory or ``redis://HOST:PORT/N`` (None: none). Each
    #: machine's first round replays the failing examples saved there before generating.
    database: str | None = None
    #: This campaign is worker ``worker`` of ``workers`` (``kalamfuzz run --workers N``): its
    #: rounds take the seeds ``seed + worker``, ``seed + worker + workers``, ... and it shares
    #: its findings with the other workers through ``database`` under the run's ``run_id``.
    workers: int = 1
    worker: int = 0
    run_id: str = ""

    @property
    def target_config(self) -> dict[str, dict[str, object]] | None:
        """The sim overrides, when the target is the sim (None for any other target)."""
        return self.sim_config if self.target in ("sim", None) else None

    def open_target(self) -> Target:
        """The campaign's target, not started (a fresh one at each call)."""
        return Target.parse(self.target, bugs=self.bugs, config=self.target_config)


def signature(exc: BaseException) -> str:
    """What makes two failures the same: the contract items and summaries of the new violations
    (numbers and ids masked), or the error type and first line."""
    if isinstance(exc, InvariantViolation):
        return exc.signature
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: " + masked(first)[:120]


def started_event(
    cfg: CampaignConfig, target: Target, workers: int | None = None, database: str = ""
) -> CampaignStarted:
    """What a campaign says when it starts: the rules its target cannot run, the known issues
    it counts, its workers and database (``workers``: the whole run's, when a parent speaks for
    them all)."""
    skipped = tuple(
        f"{rules}: {why}"
        for rules, why in (
            ("crash and restart rules", target.skip_reason("kill")),
            ("network fault rules", target.skip_reason("proxy")),
        )
        if why
    )
    ki = cfg.known_issues
    known = f"{len(ki.issues)} from {ki.source}" if ki.issues else f"none ({ki.source})"
    alone = workers is None and cfg.workers > 1
    return CampaignStarted(
        cfg.machine,
        cfg.target,
        cfg.seed,
        str(cfg.budget),
        cfg.bugs,
        skipped,
        known,
        workers=workers or cfg.workers,
        worker=cfg.worker if alone else None,
        database=database or cfg.database or "",
    )


def machine_names(name: str) -> tuple[str, ...]:
    """The machines a campaign runs: one, or every machine of the package for ``all``."""
    if name == "all":
        return ALL_MACHINES
    get_machine(name)  # a bad name fails before anything starts
    return (name,)


@define
class _Round:
    started: float
    first_failure: float | None = None
    #: The campaign's example count when the round first failed.
    failing_example: int = 0
    #: The example that failed first, and the smallest one since that failed the same way.
    first: FailedExample | None = None
    best: FailedExample | None = None
    #: Examples Hypothesis' shrinker has run for this round's failure.
    shrink_runs: int = 0
    #: Another worker of the run claimed this round's failure: it shrinks it, not this one.
    elsewhere: bool = False
    #: The example database failed while Hypothesis ran (raised once Hypothesis is done).
    database_error: DatabaseError | None = None

    def failed(self, example: FailedExample) -> None:
        if self.first is None:
            self.first = self.best = example
            return
        assert self.best is not None
        same = signature(example.error) == signature(self.first.error)
        if same and len(example.program) <= len(self.best.program):
            self.best = example


@define
class _Share:
    """One machine's part of the campaign: its budget and what its examples did."""

    cls: type[KalamMachine]
    started: float
    seconds: float | None = None
    examples: int | None = None
    ran: int = 0
    #: Hypothesis steps of every generated example (shrinking's replays not counted).
    lengths: list[int] = field(factory=list)
    steps: int = 0
    failures: int = 0
    known: int = 0

    def spent(self) -> bool:
        if self.seconds is not None:
            return time.monotonic() - self.started >= self.seconds
        assert self.examples is not None
        return self.ran >= self.examples


class Campaign:
    def __init__(self, config: CampaignConfig, handlers: Sequence[Handler] = ()) -> None:
        self.config = config
        self.handlers = list(handlers)
        self.triage = Triage(config.known_issues)
        self.errors_seen: set[str] = set()
        self.failures: list[Failure] = []
        self.duplicates = 0
        self.examples = 0
        self.steps = 0
        self.known: Counter[str] = Counter()
        self.known_where: dict[str, set[str]] = {}
        self.server = ""
        self.database = open_database(config.database) if config.database else None
        #: Findings shared with the other workers of the run (None: this campaign is alone).
        self.claims = (
            Claims(self.database, config.run_id, config.worker)
            if self.database is not None and config.workers > 1 and config.run_id
            else None
        )
        self._claims_read = 0.0

    def emit(self, event: Event) -> None:
        for h in self.handlers:
            h(event)

    def run(self) -> CampaignFinished:
        cfg = self.config
        classes = [get_machine(n) for n in machine_names(cfg.machine)]
        started = time.monotonic()
        target = self.config.open_target()
        self.emit(started_event(cfg, target))
        done: list[MachineFinished] = []
        rules: dict[str, RuleStats] = {}
        # A server kalamfuzz launches is started afresh for each machine of ``all``: thousands
        # of namespaces and tables from one machine would slow the next one down (a release
        # build's flush jobs took 2.7 s instead of 20 ms after 900 examples).
        fresh = len(classes) > 1 and target.kind != "url"
        try:
            for i, cls in enumerate(classes):
                if fresh and i > 0:
                    target = self.config.open_target()
                with target:
                    driver = self._driver(target, cls)
                    share = self._share(cls, i, len(classes), started)
                    try:
                        self._rounds(share, driver, started)
                        # Measured when the machine's share ends: at the campaign's end its
                        # elapsed time would include every machine after it (the summary
                        # table showed the data machine at 9.7 steps/s instead of 88 on a
                        # 45-minute run); after the target's stop, the stop itself, which
                        # grows with the data the target holds (kalamfuzz bench's growth
                        # counted it as generation: 8.9 ms a step at 5,000 rows, 3.0 without).
                        ended = self._machine_finished(share)
                    finally:
                        driver.close()
                        _add_rules(rules, driver)
                done.append(ended)
                self.emit(done[-1])
                if cfg.stop_on_failure and self.failures:
                    break
        finally:
            target.stop()
        elapsed = time.monotonic() - started
        finished = CampaignFinished(
            elapsed_s=elapsed,
            examples=self.examples,
            steps=self.steps,
            failures=tuple(self.failures),
            duplicates=self.duplicates,
            rules=dict(sorted(rules.items())),
            exit_code=1 if self.failures else 0,
            known=self._known_counts(),
            machines=tuple(done),
            server=self.server,
        )
        self.emit(finished)
        return finished

    def _driver(self, target: Target, cls: type[KalamMachine]) -> Driver:
        """A driver on a started target, its world set up (a pre-flight: the target answers)."""
        driver = Driver(target, triage=self.triage, background_rows=self.config.background_rows)
        driver.on_exchange.append(self.emit)
        try:
            self.server = target.server_version()
            driver.begin(cls.TABLES)
        except KalamError as exc:
            raise ConfigError(
                f"target {self.config.target} could not set up a test world: {exc.message}",
                hint="check the target (kalamfuzz sim --list-bugs, KALAMFUZZ_TARGET, credentials)",
            ) from None
        driver.program.clear()
        driver.stats.clear()  # the pre-flight is not the machine's: its time is not in its share
        return driver

    def _share(self, cls: type[KalamMachine], i: int, n: int, started: float) -> _Share:
        """Machine ``i`` of ``n``: an equal part of what is left of the budget."""
        b = self.config.budget
        now = time.monotonic()
        if b.seconds is not None:
            left = b.seconds - (now - started)
            return _Share(cls, now, seconds=max(0.0, left / (n - i)))
        assert b.examples is not None
        left_examples = b.examples - self.examples
        return _Share(cls, now, examples=max(1, -(-left_examples // (n - i))))

    def _machine_finished(self, share: _Share) -> MachineFinished:
        elapsed = time.monotonic() - share.started
        return MachineFinished(
            machine=share.cls.name,
            elapsed_s=elapsed,
            examples=len(share.lengths),
            steps=share.steps,
            median_steps=statistics.median(share.lengths) if share.lengths else 0.0,
            full_examples=sum(n >= self.config.steps for n in share.lengths),
            new=share.failures,
            known=share.known,
        )

    def _known_counts(self) -> tuple[KnownCount, ...]:
        out = []
        for label, count in self.known.most_common():
            issue = self.config.known_issues.by_id(label)
            out.append(
                KnownCount(
                    label=label,
                    title=issue.title if issue is not None else "found earlier in this campaign",
                    report=issue.report if issue is not None else "",
                    count=count,
                    machines=tuple(sorted(self.known_where.get(label, ()))),
                )
            )
        return tuple(out)

    def _example_done(self, share: _Share, driver: Driver, state: _Round, ran: int) -> None:
        """An example ended after ``ran`` Hypothesis steps: count them and its known findings
        (not for shrinking's replays, which come after the round's first failure)."""
        self.steps += driver.steps
        share.steps += driver.steps
        if state.first_failure is not None:
            return
        share.lengths.append(ran)
        for f in driver.findings:
            self._count_known(f.label, share)

    def _count_known(self, label: str, share: _Share) -> None:
        self.known[label] += 1
        self.known_where.setdefault(label, set()).add(share.cls.name)
        share.known += 1

    def _rounds(self, share: _Share, driver: Driver, started: float) -> None:
        cfg = self.config
        round_no = 0
        last_progress = 0.0
        key = example_key(
            share.cls.name, cfg.steps, cfg.bugs, driver.target.kind, cfg.background_rows
        )
        while not share.spent():
            if cfg.stop_on_failure and self.failures:
                return
            # Not before a machine's first round: that round replays the examples saved in the
            # database, and one that no longer failed (its finding already known) would be
            # deleted from it, lost to the next campaign.
            if round_no > 0:
                self._take_claims()
            # Worker w of n takes every n-th seed from seed + w: no two workers share a round.
            round_seed = cfg.seed + cfg.worker + round_no * cfg.workers
            reuse = round_no == 0
            round_no += 1
            state = _Round(time.monotonic())
            driver.last_failure = None
            examples = self._round_size(share)

            def factory(state: _Round = state, reuse: bool = reuse) -> object:
                nonlocal last_progress
                if state.first_failure is not None:
                    state.shrink_runs += 1
                    if state.shrink_runs == 1 and state.first is not None:
                        # Claimed before shrinking: one worker shrinks a finding.
                        try:
                            state.elsewhere = not self._owns(state.first.error)
                        except DatabaseError as exc:
                            state.database_error = exc
                    if state.elsewhere or state.database_error is not None:
                        assume(False)
                    if state.shrink_runs > cfg.shrink_runs // 2:
                        # Out of shrinking work: Hypothesis drops every further candidate
                        # unrun and the round ends with the smallest failure found so far.
                        assume(False)
                self.examples += 1
                share.ran += 1
                now = time.monotonic()
                if (
                    self.claims is not None
                    and not reuse
                    and state.first_failure is None
                    and now - self._claims_read >= CLAIMS_SECONDS
                ):
                    # Within a long round too (a slow machine's 25 examples take minutes).
                    try:
                        self._take_claims()
                    except DatabaseError as exc:
                        state.database_error = exc
                if now - last_progress >= 1.0:
                    last_progress = now
                    self.emit(
                        Progress(
                            now - started,
                            self.examples,
                            self.steps,
                            len(self.failures),
                            sum(self.known.values()),
                            share.cls.name,
                        )
                    )
                return _counted(share, driver, self, state)

            test: Any = hypothesis_seed(round_seed)(factory)
            try:
                run_state_machine_as_test(test, settings=self._settings(examples, key, reuse))
            except Flaky as exc:
                # The failure did not replay the same way (timing of a background flush, say):
                # keep the smallest program that did fail, and let the reruns label it.
                self._record(exc, share, driver, round_seed, started, state)
            except (HypothesisException, DatabaseError):
                raise
            except Exception as exc:
                self._record(exc, share, driver, round_seed, started, state)
            if state.database_error is not None:
                raise state.database_error

    def _owns(self, exc: BaseException) -> bool:
        """Whether this campaign shrinks and saves the finding ``exc``: always when it runs
        alone; with other workers, when its claim of the signature wins."""
        if self.claims is None:
            return True
        parts = [v.signature for v in exc.new] if isinstance(exc, InvariantViolation) else []
        return self.claims.claim(signature(exc), parts)

    def _take_claims(self) -> None:
        """The findings other workers claimed since: known from now on (counted, explored
        past; an error that is not a violation is set aside as a repeat)."""
        if self.claims is None:
            return
        self._claims_read = time.monotonic()
        for entry in self.claims.others():
            parts = [p for p in entry.get("parts", ()) if isinstance(p, str)]
            if parts:
                self.triage.seen.update(parts)
            else:
                self.errors_seen.add(entry["sig"])

    def _known_elsewhere(self, exc: BaseException, share: _Share) -> None:
        """A finding another worker claimed: counted as known here, not shrunk again."""
        if not isinstance(exc, InvariantViolation):
            self.errors_seen.add(signature(exc))
            self.duplicates += 1
            return
        for v in exc.new:
            self._count_known(v.signature, share)
        self.triage.seen.update(v.signature for v in exc.new)

    def _round_size(self, share: _Share) -> int:
        """Examples for the next round: what is left of an example budget, or about what fits
        in what is left of a time budget (a round is never cut short: that would make Hypothesis
        see a different run on replay)."""
        if share.examples is not None:
            return max(1, min(ROUND_EXAMPLES, share.examples - share.ran))
        assert share.seconds is not None
        elapsed = time.monotonic() - share.started
        if share.ran == 0 or elapsed <= 0:
            return 5
        rate = share.ran / elapsed
        return max(1, min(ROUND_EXAMPLES, int(rate * (share.seconds - elapsed))))

    def _settings(self, examples: int, key: bytes = b"", reuse: bool = False) -> settings:
        # Hypothesis bounds shrinking by a module constant only; this is the one private knob
        # kalamfuzz touches, so a long shrink cannot eat a campaign's budget.
        # Half the bound goes to Hypothesis, half to the direct pass over the program.
        conjecture_engine.MAX_SHRINKING_SECONDS = max(1, int(self.config.shrink_seconds / 2))
        database = Keyed(self.database, key) if self.database is not None and key else None
        # The saved failing examples replay first, in a machine's first round only (see
        # _rounds); every round saves the failures it finds.
        phases = (Phase.reuse,) if reuse and database is not None else ()
        return settings(
            max_examples=max(1, examples),
            stateful_step_count=self.config.steps,
            deadline=None,
            database=database,
            derandomize=False,
            phases=(*phases, Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )

    def _record(
        self,
        raised: Exception,
        share: _Share,
        driver: Driver,
        seed: int,
        started: float,
        state: _Round,
    ) -> None:
        if state.database_error is not None:
            raise state.database_error
        tolerated: tuple[str, ...] = ()
        failed = state.best or driver.last_failure
        steps: tuple[Step, ...] = ()
        if failed is not None:
            steps, transcript = failed.program, failed.transcript
            exc: BaseException = failed.error
            tolerated = failed.tolerated
        else:  # failed outside a step (setting up the example)
            transcript = tuple(driver.transcript)
            exc = raised
        sig = signature(exc)
        if isinstance(exc, InvariantViolation):
            # A known finding of another cause may share the new one's signature: tolerated on
            # replay, it would hide the very violation the regression is about.
            own = {v.signature for v in exc.new}
            tolerated = tuple(t for t in tolerated if t not in own)
        # Another worker of the run found it first: it shrinks it, here it is known.
        if state.elsewhere or not self._owns(exc):
            self._known_elsewhere(exc, share)
            return
        # A violation seen before is known and never raises; an error (a crash, a protocol
        # fault) still does, so repeats of it are set aside here.
        if not isinstance(exc, InvariantViolation):
            if sig in self.errors_seen:
                self.duplicates += 1
                return
            self.errors_seen.add(sig)
        cfg = self.config
        tables = share.cls.TABLES
        smaller = minimize(
            driver,
            tables,
            steps,
            lambda e: signature(e) == sig,
            time.monotonic() + cfg.shrink_seconds / 2,
            max_runs=cfg.shrink_runs - cfg.shrink_runs // 2,
        )
        if smaller is not None and smaller.error is not None:
            steps, transcript, exc = smaller.program, smaller.transcript, smaller.error
        program, imports = codegen.source(steps)
        found_at = state.first_failure or time.monotonic()
        share.failures += 1
        failure = Failure(
            machine=share.cls.name,
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
            tolerated=tolerated,
            server=self.server,
            setup=tuple(driver.setup),
            race=races(steps),
        )
        self.failures.append(failure)
        self.emit(failure)
        if cfg.regressions_dir is not None:
            path = regressions.write(failure, cfg.regressions_dir, "not rerun yet", cfg.command)
            label = self._rerun(path, driver, failure)
            regressions.write(failure, cfg.regressions_dir, label, cfg.command)
            self.emit(RegressionSaved(failure, str(path), label))
        # From now on the finding is known: counted, and explored past.
        if isinstance(exc, InvariantViolation):
            self.triage.seen.update(v.signature for v in exc.new)

    def _rerun(self, path: Path, driver: Driver, failure: Failure) -> str:
        """Label a new finding by rerunning its saved program as ``kalamfuzz replay`` would: on
        a fresh server of the campaign's target, twice, or RACE_RERUNS times when it races (calls
        at once, or a step while a flush job runs: a race is flaky by nature, and how often it
        fails is what a maintainer needs). One that never fails there is rerun on the
        campaign's server: failing only there, it needs that server's history (a url target has
        only that server)."""
        module = regressions.load(path)
        runs = regressions.RACE_RERUNS if failure.race else 2
        if driver.target.kind == "url":
            again = self._rerun_on(driver, module, failure, runs)
            where = "the campaign's server (a url target cannot be started afresh)"
        else:
            cfg = self.config
            with Driver.open(
                cfg.target, bugs=cfg.bugs, config=cfg.target_config, tolerate=failure.tolerated
            ) as fresh:
                again = self._rerun_on(fresh, module, failure, runs)
            where = "a fresh server"
            if again == 0:
                old = self._rerun_on(driver, module, failure, 2)
                if old:
                    return (
                        f"needs the server's history: 0 of {runs} reruns failed on a fresh "
                        f"server, {old} of 2 on the campaign's"
                    )
        if again == runs:
            return f"deterministic ({runs} of {runs} reruns on {where})"
        return f"fails {again} of {runs} reruns on {where}"

    def _rerun_on(self, driver: Driver, module: Any, failure: Failure, runs: int) -> int:
        """How many of ``runs`` reruns of the program on ``driver`` failed the same way."""
        again = 0
        for _ in range(runs):
            # a server the last run took down is started again by the program's d.begin()
            if regressions.run_program(module, driver, failure.kind):
                again += 1
        return again


def _add_rules(rules: dict[str, RuleStats], driver: Driver) -> None:
    for name, v in driver.stats.items():
        rules[name] = rules.get(name, RuleStats()).plus(v)


def _counted(share: _Share, driver: Driver, campaign: Campaign, state: _Round) -> KalamMachine:
    """The machine for one example; its teardown notes the steps and when it first failed."""
    machine = share.cls(driver)
    original = machine.teardown
    check = machine.check_invariants
    # Hypothesis checks invariants once before the first step and after every step (the
    # initialize rules included): that counts the steps the example ran.
    checks = 0

    def check_invariants(*args: Any, **kwargs: Any) -> None:
        nonlocal checks
        checks += 1
        check(*args, **kwargs)

    def teardown() -> None:
        try:
            original()  # the sweep: it may be what fails
        finally:
            campaign._example_done(share, driver, state, max(0, checks - 1))
            if driver.failed and driver.last_failure is not None:
                state.failed(driver.last_failure)
            if driver.failed and state.first_failure is None:
                state.first_failure = time.monotonic()
                state.failing_example = campaign.examples

    machine.teardown = teardown  # type: ignore[method-assign]
    machine.check_invariants = check_invariants  # type: ignore[method-assign]
    return machine
