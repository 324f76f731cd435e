"""STREAM TTL as a visibility interval, bracketed by client-measured request times."""

from __future__ import annotations

import enum

from kalamfuzz.model.rows import Version, Window
from kalamfuzz.model.values import ModelError

#: Snowflake epoch of KalamDB's ``_seq``: 2024-01-01T00:00:00Z in ms.
SEQ_EPOCH_MS = 1_704_067_200_000


class Seen(enum.Enum):
    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


def seq_ms(seq: int) -> int:
    """The millisecond embedded in a ``_seq`` (41 bits above 10 worker and 12 counter bits)."""
    return (seq >> 22) + SEQ_EPOCH_MS


def make_seq(ms: int, worker: int = 0, counter: int = 0) -> int:
    """A ``_seq`` for ``ms``; used by tests and by anything that must fabricate server ids."""
    return ((ms - SEQ_EPOCH_MS) << 22) | (worker << 12) | counter


def written_bounds(version: Version, seq: int | None) -> tuple[int, int]:
    """Earliest and latest ms the row can carry in its ``_seq``."""
    if seq is not None:
        ms = seq_ms(seq)
        return ms, ms
    if version.written is None:
        raise ModelError("a STREAM write needs its request window (at=Window(...))")
    return version.written.sent_ms, version.written.recv_ms


def visibility(version: Version, seq: int | None, ttl_seconds: int, at: Window) -> Seen:
    """Whether a read answered inside ``at`` returns the row.

    The row is visible at ``t`` iff ``t < ts(_seq) + ttl``; the read happened at some
    ``t`` in ``at`` and, until the ``_seq`` is known, ``ts`` lies in the write's window.
    """
    lo, hi = written_bounds(version, seq)
    ttl_ms = ttl_seconds * 1000
    if at.recv_ms < lo + ttl_ms:
        return Seen.YES
    if at.sent_ms >= hi + ttl_ms:
        return Seen.NO
    return Seen.MAYBE
