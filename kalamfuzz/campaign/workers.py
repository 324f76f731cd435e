"""Many workers: ``kalamfuzz run --workers N`` runs N campaigns at once, each in a process of
its own against a target of its own, sharing one example database and the run's findings.

Worker ``w`` of ``n`` is an ordinary :class:`Campaign` whose config :func:`worker_config` made:
its rounds take the seeds ``seed + w``, ``seed + w + n``, ... (no two workers share a round),
and its part of an example budget (a time budget is every worker's). The workers save their
failing examples in the shared database and claim each new finding there before shrinking it
(:class:`kalamfuzz.campaign.database.Claims`), so a finding is shrunk and saved once and the
other workers count it as known. The parent process prints one start line, the workers'
findings as they come, and one summary: the workers' :class:`CampaignFinished` merged.

Across machines nothing here runs: each machine runs ``kalamfuzz run --workers N
--worker-index I`` (the same command, its own index) against a shared ``--database`` with the
same ``--run-id`` (``docs/workers.md``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from kalamfuzz.campaign.database import Claims, is_redis, open_database
from kalamfuzz.campaign.engine import Budget, Campaign, CampaignConfig, Handler, started_event
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
from kalamfuzz.errors import ConfigError, KalamError
from kalamfuzz.machines.driver import Exchange

#: How long the workers get to stop their targets after an interrupt, before they are killed.
STOP_SECONDS = 30.0


def check(config: CampaignConfig, worker: int | None = None) -> None:
    """Refuse what cannot work, with a one-line error naming the fix."""
    n = config.workers
    if n < 1:
        raise ConfigError(f"bad --workers {n}", hint="give a number of workers >= 1")
    if worker is not None:
        if not 0 <= worker < n:
            raise ConfigError(
                f"bad --worker-index {worker} for --workers {n}",
                hint=f"worker indexes run from 0 to {n - 1}",
            )
        if n > 1 and config.database and not config.run_id:
            raise ConfigError(
                "--worker-index with --database needs --run-id",
                hint="give every worker of the campaign the same --run-id "
                "(e.g. --run-id $GITHUB_RUN_ID), so they share their findings",
            )
    elif n > 1 and config.target.startswith("url:"):
        raise ConfigError(
            f"a url: target is one server, and {n} workers would share it",
            hint="use --target sim or binary:PATH (each worker starts its own server), "
            "or --workers 1",
        )


def worker_config(config: CampaignConfig, worker: int) -> CampaignConfig:
    """The config of worker ``worker`` of ``config.workers``: its index, its part of an example
    budget (the first ``examples % n`` workers run one more), the command that repeats it."""
    n = config.workers
    budget = config.budget
    if budget.examples is not None:
        part = budget.examples // n + (1 if worker < budget.examples % n else 0)
        budget = Budget(examples=max(1, part))
    command = config.command
    if command and n > 1:
        command += f" --workers {n} --worker-index {worker}"
    return attrs.evolve(config, worker=worker, budget=budget, command=command)


def run(
    config: CampaignConfig, handlers: Sequence[Handler] = (), exchanges: bool = False
) -> CampaignFinished:
    """Run ``config.workers`` campaigns at once and report them as one (``exchanges``: relay
    every request and response too, for a handler that writes them)."""
    check(config)
    if config.workers == 1:
        return Campaign(config, handlers).run()
    temporary = None
    spec = config.database
    if spec is None:
        temporary = tempfile.mkdtemp(prefix="kalamfuzz-examples-")
        spec = temporary
    described = spec if is_redis(spec) or temporary is None else f"{spec} (temporary)"
    config = attrs.evolve(config, database=spec, run_id=config.run_id or secrets.token_hex(8))
    try:
        db = open_database(spec)  # checked here, once: a bad one fails before any worker starts
        target = config.open_target()
        parent = _Parent(config, handlers, exchanges)
        parent.emit(started_event(config, target, workers=config.workers, database=described))
        try:
            return parent.run()
        finally:
            with contextlib.suppress(KalamError):
                Claims(db, config.run_id, 0).clear()
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _worker(config: CampaignConfig, out: Any, exchanges: bool) -> None:
    """A worker process: its campaign, its events sent to the parent as they come (not the
    exchanges unless a history is written), then its result or its error."""
    w = config.worker

    def forward(event: Event) -> None:
        # The parent says the start once, and merges the ends from the results.
        if isinstance(event, CampaignStarted | MachineFinished | CampaignFinished):
            return
        if isinstance(event, Exchange) and not exchanges:
            return
        out.put(("event", w, event))

    try:
        finished = Campaign(config, [forward]).run()
    except KeyboardInterrupt:
        out.put(("interrupted", w, None))
    except KalamError as exc:
        out.put(("error", w, exc))
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        out.put(("error", w, f"{type(exc).__name__}: {exc}\n{text}"))
    else:
        out.put(("done", w, finished))


class _Parent:
    """Starts the workers, relays their events, merges their results."""

    def __init__(
        self, config: CampaignConfig, handlers: Sequence[Handler], exchanges: bool
    ) -> None:
        self.config = config
        self.handlers = list(handlers)
        self.exchanges = exchanges
        #: When the workers were told to stop (they are killed STOP_SECONDS later).
        self.stopping: float | None = None
        self.results: dict[int, CampaignFinished] = {}
        self.errors: dict[int, KalamError | str] = {}
        self.ended: set[int] = set()
        self.progress: dict[int, Progress] = {}
        #: Each finding once, and which worker reported it first.
        self.failures: dict[str, tuple[int, Failure]] = {}
        self.repeats = 0
        self.started = time.monotonic()

    def emit(self, event: Event) -> None:
        for h in self.handlers:
            h(event)

    def run(self) -> CampaignFinished:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        n = self.config.workers
        procs = [
            ctx.Process(
                target=_worker,
                args=(worker_config(self.config, w), out, self.exchanges),
                name=f"kalamfuzz-worker-{w}",
            )
            for w in range(n)
        ]
        try:
            for p in procs:
                p.start()
            self._relay(out, procs)
        except KeyboardInterrupt:
            self._stop(procs)
            raise
        finally:
            for p in procs:
                p.join(STOP_SECONDS)
                if p.is_alive():
                    p.kill()
                    p.join()
        if self.errors:
            w, error = min(self.errors.items())
            if isinstance(error, KalamError):
                raise error
            print(f"kalamfuzz worker {w}: {error}", file=sys.stderr)
            raise KalamError(f"worker {w} stopped: {error.splitlines()[0]}")
        finished = merge(
            [self.results[w] for w in sorted(self.results)],
            time.monotonic() - self.started,
            [f for _, f in self.failures.values()],
            self.repeats,
        )
        for machine in finished.machines:
            self.emit(machine)
        self.emit(finished)
        return finished

    def _relay(self, out: Any, procs: list[Any]) -> None:
        silent: dict[int, float] = {}
        while len(self.ended) < len(procs):
            try:
                kind, w, payload = out.get(timeout=0.5)
            except queue.Empty:
                if self.stopping is not None and time.monotonic() - self.stopping > STOP_SECONDS:
                    for p in procs:
                        if p.is_alive():
                            p.kill()
                for w, p in enumerate(procs):
                    if w in self.ended or p.is_alive():
                        continue
                    # Its last words may still be in the pipe: a moment before calling it dead.
                    if time.monotonic() - silent.setdefault(w, time.monotonic()) > 5:
                        self._ended(w, procs, f"exited with status {p.exitcode} and no result")
                continue
            if kind == "event":
                self._event(w, payload)
            elif kind == "done":
                self.results[w] = payload
                self.ended.add(w)
            elif kind == "interrupted":
                self._ended(w, procs, "interrupted")
            else:
                self._ended(w, procs, payload)

    def _ended(self, w: int, procs: list[Any], error: KalamError | str) -> None:
        """Worker ``w`` stopped without a result: the others are stopped too (a campaign
        stops at an error of its own)."""
        self.ended.add(w)
        first = not self.errors
        self.errors[w] = error
        if first:
            self._stop(procs)

    def _stop(self, procs: list[Any]) -> None:
        """Interrupt the workers still running: each stops its target and says so."""
        self.stopping = self.stopping or time.monotonic()
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGINT)

    def _event(self, w: int, event: Event) -> None:
        if isinstance(event, Progress):
            self.progress[w] = event
            p = self.progress.values()
            self.emit(
                Progress(
                    time.monotonic() - self.started,
                    sum(x.examples for x in p),
                    sum(x.steps for x in p),
                    len(self.failures),
                    sum(x.known for x in p),
                    event.machine,
                )
            )
        elif isinstance(event, Failure):
            if event.signature in self.failures:
                # Two workers claimed it at the same moment: reported once.
                self.repeats += 1
                return
            self.failures[event.signature] = (w, event)
            self.emit(event)
        elif isinstance(event, RegressionSaved):
            if self.failures.get(event.failure.signature, (w,))[0] == w:
                self.emit(event)
        else:
            self.emit(event)


def merge(
    results: Sequence[CampaignFinished],
    elapsed_s: float,
    failures: Sequence[Failure] | None = None,
    repeats: int = 0,
) -> CampaignFinished:
    """The workers' results as one campaign's: counts summed, each finding once, a machine's
    rate its steps over the longest worker's time on it."""
    if failures is None:
        seen: dict[str, Failure] = {}
        for r in results:
            for f in r.failures:
                if f.signature in seen:
                    repeats += 1
                seen.setdefault(f.signature, f)
        failures = list(seen.values())
    rules: dict[str, RuleStats] = {}
    for r in results:
        for name, stats in r.rules.items():
            rules[name] = rules.get(name, RuleStats()).plus(stats)
    return CampaignFinished(
        elapsed_s=elapsed_s,
        examples=sum(r.examples for r in results),
        steps=sum(r.steps for r in results),
        failures=tuple(failures),
        duplicates=sum(r.duplicates for r in results) + repeats,
        rules=dict(sorted(rules.items())),
        exit_code=1 if failures else 0,
        known=_known(results),
        machines=_machines([m for r in results for m in r.machines]),
        server=next((r.server for r in results if r.server), ""),
    )


def _known(results: Sequence[CampaignFinished]) -> tuple[KnownCount, ...]:
    counts: Counter[str] = Counter()
    first: dict[str, KnownCount] = {}
    where: dict[str, set[str]] = {}
    for r in results:
        for k in r.known:
            counts[k.label] += k.count
            first.setdefault(k.label, k)
            where.setdefault(k.label, set()).update(k.machines)
    return tuple(
        attrs.evolve(first[label], count=count, machines=tuple(sorted(where[label])))
        for label, count in counts.most_common()
    )


def _machines(parts: Sequence[MachineFinished]) -> tuple[MachineFinished, ...]:
    by_name: dict[str, list[MachineFinished]] = {}
    for m in parts:
        by_name.setdefault(m.machine, []).append(m)
    return tuple(
        MachineFinished(
            machine=name,
            elapsed_s=max(m.elapsed_s for m in ms),
            examples=sum(m.examples for m in ms),
            steps=sum(m.steps for m in ms),
            # The workers' own medians' median: the examples themselves stayed in the workers.
            median_steps=statistics.median(m.median_steps for m in ms),
            full_examples=sum(m.full_examples for m in ms),
            new=sum(m.new for m in ms),
            known=sum(m.known for m in ms),
        )
        for name, ms in by_name.items()
    )
