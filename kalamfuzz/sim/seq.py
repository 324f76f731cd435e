"""Snowflake sequence ids, shaped like KalamDB's `_seq`."""

from __future__ import annotations

import time

EPOCH_MS = 1704067200000  # 2024-01-01T00:00:00Z, KalamDB's custom epoch


def seq_ms(seq: int) -> int:
    """Unix milliseconds embedded in a `_seq`."""
    return (seq >> 22) + EPOCH_MS


class SeqGenerator:
    """Strictly increasing ids: 41-bit ms since EPOCH_MS, 10-bit worker id, 12-bit counter."""

    def __init__(self, worker_id: int = 1, floor: int = 0) -> None:
        self._worker = worker_id & 0x3FF
        self._last = floor

    def observe(self, seq: int) -> None:
        """Never hand out an id at or below one already used (e.g. replayed from disk)."""
        self._last = max(self._last, seq)

    def next(self) -> int:
        now = int(time.time() * 1000) - EPOCH_MS
        candidate = (now << 22) | (self._worker << 12)
        if candidate <= self._last:
            last_ms = self._last >> 22
            counter = (self._last & 0xFFF) + 1
            if counter > 0xFFF:
                last_ms, counter = last_ms + 1, 0
            candidate = (last_ms << 22) | (self._worker << 12) | counter
        self._last = candidate
        return candidate
