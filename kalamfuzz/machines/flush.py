"""Flush: STORAGE FLUSH TABLE while writes and reads go on, waiting for jobs, checking the cold
files each finished job left (manifest, Parquet rows, placement)."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from kalamfuzz.machines.base import machine
from kalamfuzz.machines.data import DataMachine
from kalamfuzz.machines.world import TABLES

#: Roles that may flush; a user's attempt is the RBAC machine's business.
FLUSHERS = ("dba", "root", "svc")


class SyncFlushMachine(DataMachine):
    """Data rules plus a flush that waits for its job (for machines where flushing is a means)."""

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def flush(self, data: st.DataObject) -> None:
        """Flush and wait for the job: deterministic, so failures shrink and replay exactly."""
        table = data.draw(st.sampled_from(self.live_tables()), label="table")
        self.d.flush(data.draw(st.sampled_from(FLUSHERS), label="actor"), table, wait=True)


@machine("flush")
class FlushMachine(SyncFlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")

    @initialize(data=st.data())
    def seed_rows(self, data: st.DataObject) -> None:
        """Start with rows in the cold tier, so every later write meets flushed data."""
        super().seed_rows(data)
        for name in self.live_tables():
            # The spare storage stays unflushed: the jobs rules break it before its first flush.
            if TABLES[name].storage != "spare":
                self.d.flush("root", name, wait=True)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def flush_in_background(self, data: st.DataObject) -> None:
        """Start a flush and go on writing and reading while it runs (timing decides what it
        takes, which the model allows for; failures found this way may replay as flaky)."""
        table = data.draw(st.sampled_from(self.live_tables()), label="table")
        self.d.flush(data.draw(st.sampled_from(FLUSHERS), label="actor"), table)
        self.background = True

    #: A background flush was started: waiting makes sense. (Whether its job is still running
    #: is timing, and a precondition must not depend on timing, or replays diverge.)
    background = False

    @precondition(lambda self: self.background)
    @rule()
    def wait_jobs(self) -> None:
        self.d.wait_jobs()
