"""What one benchmark campaign measured: where its steps' time went, which of its server calls
were operations and which checked them, and the operations themselves (for the ceiling)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import define, field, frozen

from kalamfuzz.campaign.engine import Campaign, CampaignConfig
from kalamfuzz.campaign.events import CampaignFinished, Event, RuleStats
from kalamfuzz.machines.driver import Exchange

#: The parts of a step's time, in the order tables and plots show them: the model and the
#: invariants are kalamfuzz's checking, the driver its bookkeeping (transcript, observations),
#: generation Hypothesis' drawing and the machines' rule code between steps.
PARTS = ("generation", "server", "model", "invariants", "waiting", "driver")

#: How the driver names its server objects: ``kf_<tag>_alice``, ``kf_<tag>_12``.
_TAG = re.compile(r"\bkf_([0-9a-f]{6})_")


@frozen
class Split:
    """Seconds spent in each part of PARTS, in all."""

    generation: float
    server: float
    model: float
    invariants: float
    waiting: float
    driver: float

    @classmethod
    def of(cls, elapsed: float, rules: Mapping[str, RuleStats], skip: Iterable[str] = ()) -> Split:
        """``elapsed``: the campaign's wall time; ``skip``: rules left out (a growth run's
        ``setup``, which writes the background rows)."""
        skipped = set(skip)
        kept = [r for name, r in rules.items() if name not in skipped]
        left = elapsed - sum(r.seconds for name, r in rules.items() if name in skipped)

        def total(attr: str) -> float:
            return float(sum(getattr(r, attr) for r in kept))

        steps = total("seconds")
        parts = {
            "server": total("io_seconds"),
            "model": total("model_seconds"),
            "invariants": total("invariants_seconds"),
            "waiting": total("waiting_seconds"),
        }
        return cls(
            generation=max(0.0, left - steps),
            driver=max(0.0, steps - sum(parts.values())),
            **parts,
        )

    @property
    def total(self) -> float:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, float]:
        return {p: getattr(self, p) for p in PARTS}

    def shares(self) -> dict[str, float]:
        total = self.total
        return {p: (v / total if total else 0.0) for p, v in self.as_dict().items()}


@frozen
class Operation:
    """A statement a step sent as its own operation (not to check one), as the server got it."""

    actor: str
    sql: str


@define
class Recorder:
    """A campaign handler that keeps the operations, in order."""

    operations: list[Operation] = field(factory=list)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Exchange) and event.kind == "sql" and not event.check:
            self.operations.append(Operation(event.actor, event.request))

    @property
    def tag(self) -> str | None:
        """The driver tag the recorded statements carry."""
        for op in self.operations:
            m = _TAG.search(op.sql)
            if m:
                return m.group(1)
        return None


@frozen
class Measured:
    """One campaign: its rate, the share of its server calls that were operations, its split."""

    machine: str
    seed: int
    examples: int
    steps: int
    elapsed_s: float
    #: Server calls (HTTP and WebSocket) that were the steps' own operations, and those that
    #: checked them.
    operations: int
    checks: int
    #: The operations that were SQL statements: what the ceiling sends again.
    statements: int
    split: Split
    #: Seconds spent checking what the steps did (read-backs, job polls, the sweep), and the
    #: part of them inside server calls.
    check_s: float
    check_server_s: float
    failures: int
    server: str

    @property
    def steps_per_s(self) -> float:
        busy = self.split.total
        return self.steps / busy if busy else 0.0

    @property
    def statements_per_s(self) -> float:
        busy = self.split.total
        return self.statements / busy if busy else 0.0

    @property
    def operation_share(self) -> float:
        calls = self.operations + self.checks
        return self.operations / calls if calls else 0.0

    @property
    def checking_share(self) -> float:
        """Model plus invariants, as a share of a step's time."""
        s = self.split
        return (s.model + s.invariants) / s.total if s.total else 0.0


def measure(config: CampaignConfig, skip: Iterable[str] = ()) -> tuple[Measured, Recorder]:
    """Run one campaign and measure it (``skip``: rules whose time is left out)."""
    recorder = Recorder()
    finished: CampaignFinished = Campaign(config, [recorder]).run()
    skipped = set(skip)
    rules = finished.rules
    # The machine's share: from its first example to its last (the target's start not in it).
    elapsed = sum(m.elapsed_s for m in finished.machines)
    measured = Measured(
        machine=config.machine,
        seed=config.seed,
        examples=finished.examples,
        steps=finished.steps,
        elapsed_s=elapsed,
        operations=sum(r.operations for n, r in rules.items() if n not in skipped),
        checks=sum(r.checks for n, r in rules.items() if n not in skipped),
        statements=len(recorder.operations),
        check_s=sum(r.check_seconds for n, r in rules.items() if n not in skipped),
        check_server_s=sum(r.check_io_seconds for n, r in rules.items() if n not in skipped),
        split=Split.of(elapsed, rules, skipped),
        failures=len(finished.failures),
        server=finished.server,
    )
    return measured, recorder


def deep_size(root: object) -> int:
    """Bytes of ``root`` and everything it reaches (classes, modules and functions aside)."""
    import gc
    import types

    shared = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen: set[int] = set()
    todo: list[Any] = [root]
    size = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, shared):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return size
