"""The server process's memory and CPU over a run, sampled with psutil from a thread of its own
(only for a server kalamfuzz started: sim or binary)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil
from attrs import define, field, frozen


@frozen
class Sample:
    #: Epoch seconds.
    at: float
    rss_mb: float
    #: The process's share of the whole machine (100 = every core busy).
    cpu_pct: float


@define
class Sampler:
    """Samples the process ``pid()`` names (it changes when the server restarts)."""

    pid: Callable[[], int | None]
    interval: float = 0.25
    samples: list[Sample] = field(factory=list)
    #: (epoch seconds, label): where each scenario or phase began.
    marks: list[tuple[float, str]] = field(factory=list)
    _stop: threading.Event = field(factory=threading.Event)
    _thread: threading.Thread | None = None
    _proc: psutil.Process | None = None
    _cores: int = field(factory=lambda: psutil.cpu_count() or 1)

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="kalamfuzz-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def mark(self, label: str) -> None:
        self.marks.append((time.time(), label))

    def rss_now(self) -> float | None:
        """The RSS right now, in MiB (read apart from the sampling loop's CPU measurement)."""
        try:
            proc = self._process()
            return proc.memory_info().rss / 2**20 if proc is not None else None
        except psutil.Error:
            return None

    def _process(self) -> psutil.Process | None:
        pid = self.pid()
        if pid is None:
            return None
        if self._proc is None or self._proc.pid != pid:
            self._proc = psutil.Process(pid)
            self._proc.cpu_percent(None)  # the first call only starts the measurement
        return self._proc

    def _sample(self) -> Sample | None:
        try:
            proc = self._process()
            if proc is None:
                return None
            with proc.oneshot():
                rss = proc.memory_info().rss / 2**20
                cpu = proc.cpu_percent(None) / self._cores
        except psutil.Error:
            return None  # the server is restarting or gone: a gap in the plot
        return Sample(time.time(), rss, cpu)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            sample = self._sample()
            if sample is not None:
                self.samples.append(sample)

    def between(self, start: float, end: float | None = None) -> list[Sample]:
        return [s for s in self.samples if s.at >= start and (end is None or s.at <= end)]
