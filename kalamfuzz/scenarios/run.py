"""What a scenario program works with: the driver, the scale, and its checklist.

Every check of the data goes through the driver (the model and the invariants, as in a fuzzed
step). The checklist records which of the seed's items each part of the program proves; the
few items that are not about the data (how many snapshot pages came, a resource threshold) are
stated with ``expect`` and ``threshold``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Iterator

from attrs import define, field

from kalamfuzz.machines.driver import Driver, Exchange
from kalamfuzz.machines.driver.workload import ExpectationFailed
from kalamfuzz.scenarios.resources import Sampler
from kalamfuzz.scenarios.scale import Scale


@define
class Item:
    """One checklist line: ``pass``, ``fail``, ``measured`` (a threshold not judged at this
    scale or on the sim) or ``not supported`` (with why)."""

    name: str
    status: str
    detail: str = ""


@define
class Run:
    d: Driver
    scale: Scale
    sampler: Sampler | None = None
    #: The target is the embedded sim: its memory, CPU and latency are a Python process's, not
    #: KalamDB's (it keeps every hot row in objects, and CPython seldom hands freed memory back
    #: to the OS), so the seed's resource limits are measured there, not judged.
    sim: bool = False
    items: list[Item] = field(factory=list)
    notes: list[str] = field(factory=list)
    measures: dict[str, float] = field(factory=dict)
    #: (sent epoch ms, milliseconds) of every SELECT.
    latencies: list[tuple[int, float]] = field(factory=list)
    #: Milliseconds of round trips so far, by statement verb (SELECT, INSERT, ...).
    server_ms: dict[str, float] = field(factory=dict)
    #: Milliseconds from the latest subscribe sent to its snapshot's last page received.
    snapshot_ms: float | None = None
    _subscribed: dict[str, int] = field(factory=dict)

    def users(self, n: int | None = None) -> list[str]:
        return [f"u{i}" for i in range(1, (n or self.scale.users) + 1)]

    @contextlib.contextmanager
    def item(self, name: str) -> Iterator[None]:
        """The steps inside prove the checklist item ``name``."""
        try:
            yield
        except BaseException as exc:
            self.items.append(Item(name, "fail", headline(str(exc))))
            raise
        self.items.append(Item(name, "pass"))

    def unsupported(self, name: str, why: str) -> None:
        self.items.append(Item(name, "not supported", why))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def expect(self, ok: bool, what: str, explained: bool = False) -> None:
        """The seed's number holds; ``explained``: if not, a known finding changed the data it
        is about (see ExpectationFailed)."""
        if not ok:
            raise ExpectationFailed(what, explained)

    def threshold(self, name: str, value: float, limit: float, unit: str) -> None:
        """The seed's resource limit: ``value`` must stay under ``limit`` (judged at full
        scale; at smoke scale recorded only)."""
        self.measures[name] = round(value, 3)
        detail = f"{value:.1f} {unit} (limit {limit:g} {unit})"
        if not self.scale.judge_resources or self.sim:
            where = "on a real server" if self.sim else "at full scale"
            self.items.append(Item(name, "measured", f"{detail}; judged {where}"))
            return
        if value >= limit:
            self.items.append(Item(name, "fail", detail))
            raise ExpectationFailed(f"{name}: {detail}")
        self.items.append(Item(name, "pass", detail))

    def mark(self, label: str) -> None:
        if self.sampler is not None:
            self.sampler.mark(label)

    def rss_mb(self) -> float | None:
        """The server's RSS now (None when kalamfuzz did not start it)."""
        return self.sampler.rss_now() if self.sampler is not None else None

    def record(self, exchange: Exchange) -> None:
        """An ``on_exchange`` handler: the latency of every SELECT, client-measured, the time
        the server took for the statements of each kind, and for each snapshot."""
        if exchange.kind == "ws-send" and '"subscribe"' in exchange.request:
            sub = json.loads(exchange.request).get("subscription") or {}
            self._subscribed[str(sub.get("id"))] = exchange.sent_ms
            return
        if exchange.kind == "ws-recv":
            control = exchange.reply.get("batch_control") or {}
            if exchange.reply.get("type") == "initial_data_batch" and not control.get("has_more"):
                sent = self._subscribed.get(exchange.request)
                if sent is not None:
                    self.snapshot_ms = float(exchange.recv_ms - sent)
            return
        if exchange.kind != "sql":
            return
        ms = float(exchange.recv_ms - exchange.sent_ms)
        verb = exchange.request.lstrip().split(" ", 1)[0].upper()
        if verb == "SELECT":
            self.latencies.append((exchange.sent_ms, ms))
        self.server_ms[verb] = self.server_ms.get(verb, 0.0) + ms

    @contextlib.contextmanager
    def server_time(self, verb: str) -> Iterator[list[float]]:
        """Milliseconds the server took for ``verb`` statements inside the block (requests'
        round trips, not the checks between them): the one-element list is filled on exit."""
        before = self.server_ms.get(verb, 0.0)
        took: list[float] = []
        yield took
        took.append(self.server_ms.get(verb, 0.0) - before)

    def select_latencies(self, since_ms: int = 0) -> list[float]:
        """Milliseconds each SELECT took since ``since_ms`` (epoch ms)."""
        return [ms for at, ms in self.latencies if at >= since_ms]


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def headline(finding: str) -> str:
    """The line that says what broke (an invariant's message starts with ``after STEP:``)."""
    lines = [x.strip() for x in finding.splitlines() if x.strip()]
    if len(lines) > 1 and lines[0].startswith("after "):
        return lines[1]
    return lines[0] if lines else ""
