"""Where a driver's time goes and what its server calls are for: a step's cost by part (server,
model, invariants, waiting) and its calls by purpose (the steps' own operations, or checks of
what they did). The campaign sums it per rule; ``kalamfuzz bench`` reports it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, MutableMapping

import attrs
from attrs import define, field, frozen


@frozen
class StepStats:
    """What steps of one kind cost: how many, their time and where it went."""

    count: int = 0
    seconds: float = 0.0
    #: Time inside server calls (round trips, job polls, restarts).
    io_seconds: float = 0.0
    #: Time in the model (predicting, applying, narrowing) and in the invariants (judging).
    model_seconds: float = 0.0
    invariants_seconds: float = 0.0
    #: Time waiting for live events and in deliberate pauses (a TTL, a cleanup).
    waiting_seconds: float = 0.0
    #: Server calls that were the steps' own operations, and those that checked them.
    operations: int = 0
    checks: int = 0
    #: Time checking what the steps did (read-backs, job polls, the sweep), all parts of it.
    check_seconds: float = 0.0
    #: The part of ``check_seconds`` inside server calls: the target's, not kalamfuzz's.
    check_io_seconds: float = 0.0

    def plus(self, other: StepStats, sign: int = 1) -> StepStats:
        fields = attrs.fields(StepStats)
        return StepStats(*(getattr(self, f.name) + sign * getattr(other, f.name) for f in fields))


_PARTS = tuple(f.name for f in attrs.fields(StepStats))


@define
class Ledger:
    """The running account of one driver."""

    #: Running sums by StepStats field, added to in place: a step edges dozens of sections,
    #: and a new StepStats at each edge was 4% of a data campaign's time.
    _totals: dict[str, float] = field(factory=lambda: dict.fromkeys(_PARTS, 0))
    #: What the time since ``_mark`` is being spent on (None: the driver's own bookkeeping).
    _doing: str | None = None
    _mark: float = 0.0
    #: Depth of ``checking`` sections.
    _checks: int = 0

    @property
    def checking_now(self) -> bool:
        return self._checks > 0

    @property
    def spent(self) -> StepStats:
        return StepStats(**self._totals)  # type: ignore[arg-type]

    def spend(self, **more: float) -> None:
        for part, value in more.items():
            self._totals[part] += value

    def call(self) -> None:
        """Count one server call, as an operation or a check."""
        self._totals["checks" if self._checks else "operations"] += 1

    def _credit(self) -> None:
        """Credit the time since the last edge of any section to what was under way."""
        now = time.perf_counter()
        took, totals = now - self._mark, self._totals
        if self._doing is not None:
            totals[f"{self._doing}_seconds"] += took
        if self._checks:
            totals["check_seconds"] += took
            if self._doing == "io":
                totals["check_io_seconds"] += took
        self._mark = now

    @contextlib.contextmanager
    def spending(self, what: str) -> Iterator[None]:
        """Count the time inside as ``what`` (io, model, invariants or waiting); a section nested
        in it counts as its own (a server call inside a check is the server's time)."""
        self._credit()
        outer, self._doing = self._doing, what
        try:
            yield
        finally:
            self._credit()
            self._doing = outer

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Server calls inside check what the steps did (read-backs, job polls, the sweep)."""
        # Credited at every edge like the parts, not once at the end: a check may enclose a
        # step's account (the sweep's), whose time must land in that step.
        self._credit()
        self._checks += 1
        try:
            yield
        finally:
            self._credit()
            self._checks -= 1

    @contextlib.contextmanager
    def accounted(self, stats: MutableMapping[str, StepStats], name: str) -> Iterator[None]:
        """Add the time inside, and where it went, to ``stats[name]``."""
        self._credit()
        before = self.spent
        started = time.perf_counter()
        try:
            yield
        finally:
            self._credit()
            step = StepStats(count=1, seconds=time.perf_counter() - started)
            spent = self.spent.plus(before, -1).plus(step)
            stats[name] = stats.get(name, StepStats()).plus(spent)
