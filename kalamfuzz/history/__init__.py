"""Histories of concurrent calls, checked against the model (Knossos/Porcupine-style).

The model stays the sequential spec; :func:`check.check` searches orders of its steps that keep
real time and explain every reply; :mod:`render` draws a failing history as lanes on a timeline.
Pure like the model: no I/O, no clocks (the driver stamps the times).
"""

from kalamfuzz.history.check import Explained, Undecided, Unexplained, Whole, check, memoized
from kalamfuzz.history.record import Call, History
from kalamfuzz.history.spec import ModelSpec, settled

__all__ = [
    "Call",
    "Explained",
    "History",
    "ModelSpec",
    "Undecided",
    "Unexplained",
    "Whole",
    "check",
    "memoized",
    "settled",
]
