"""STREAM TTL: events are written and read while time passes; an event older than its table's
TTL_SECONDS must never be returned. A machine of its own because waiting costs a second a
step: kept out of the other machines, it would slow every shrink down."""

from __future__ import annotations

from typing import ClassVar

from hypothesis.stateful import precondition, rule

from kalamfuzz.machines.base import machine
from kalamfuzz.machines.data import DataMachine
from kalamfuzz.machines.world import STREAM_TTL_SECONDS


@machine("ttl")
class TtlMachine(DataMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("events",)

    #: Steps between pauses, so that most of an example is writing and reading.
    PAUSE_EVERY = 4
    last_pause = -PAUSE_EVERY

    def _may_pause(self) -> bool:
        return (
            self.may_sleep()
            and self.d.has_rows("events")
            and self.d.steps - self.last_pause >= self.PAUSE_EVERY
        )

    @precondition(_may_pause)
    @rule()
    def pause(self) -> None:
        """Wait past the TTL: every event written before must vanish from reads."""
        self.last_pause = self.d.steps
        self.d.pause(STREAM_TTL_SECONDS + 0.2)
