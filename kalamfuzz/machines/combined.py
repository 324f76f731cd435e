"""Everything at once: the default machine of ``tox -e fuzz``. Rules of every domain interleave
over every world table."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize

from kalamfuzz.machines.base import machine
from kalamfuzz.machines.concurrency import ConcurrencyMachine
from kalamfuzz.machines.data import DataMachine
from kalamfuzz.machines.ddl import DdlMachine
from kalamfuzz.machines.jobs import JobsMachine
from kalamfuzz.machines.rbac import RbacMachine
from kalamfuzz.machines.routing import RoutingMachine
from kalamfuzz.machines.ttl import TtlMachine
from kalamfuzz.machines.world import TABLES


@machine("combined")
class CombinedMachine(
    DdlMachine, RbacMachine, RoutingMachine, JobsMachine, TtlMachine, ConcurrencyMachine
):
    TABLES: ClassVar[tuple[str, ...]] = tuple(TABLES)
    # The live machine leaves SELECT out to spend its steps on streams; here it is back.
    select = DataMachine.select  # type: ignore[assignment]
    # Waiting past a TTL costs a second: about once an example among all the other rules.
    PAUSE_EVERY = 12
    sleepy = False

    @initialize(data=st.data())
    def choose_sleepiness(self, data: st.DataObject) -> None:
        """Crash restarts and TTL pauses in one example of three: with them in every example
        they took 78% of a campaign's time (the jobs and ttl machines always have them).
        Shrinking goes to False, so a regression sleeps only when its failure needs it."""
        self.sleepy = data.draw(st.sampled_from([False, False, True]), label="sleepy")

    def may_sleep(self) -> bool:
        return self.sleepy
