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

    #: Whether the seeded rows are flushed before the rules run; None: drawn per example.
    SEED_COLD: ClassVar[bool | None] = None

    @initialize(data=st.data())
    def seed_rows(self, data: st.DataObject) -> None:
        """Start with rows, in the cold tier when drawn so: later writes then meet flushed rows."""
        super().seed_rows(data)
        cold = self.SEED_COLD
        if cold is None:
            cold = data.draw(st.booleans(), label="seed cold")
        # The spare storage stays unflushed: the jobs rules break it before its first flush.
        names = [n for n in self.live_tables() if cold and TABLES[n].storage != "spare"]
        for name in names:
            self.d.flush("root", name)
        if names:
            self.d.wait_jobs()  # one wait for all: the jobs run side by side

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def flush(self, data: st.DataObject) -> None:
        """Flush and wait for the job: deterministic, so failures shrink and replay exactly."""
        table = data.draw(st.sampled_from(self.live_tables()), label="table")
        self.d.flush(data.draw(st.sampled_from(FLUSHERS), label="actor"), table, wait=True)


@machine("flush")
class FlushMachine(SyncFlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")
    SEED_COLD = True

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def flush_in_background(self, data: st.DataObject) -> None:
        """Start a flush and go on writing and reading while it runs (timing decides what it
        takes, which the model allows for; failures found this way may replay as flaky)."""
        table = data.draw(st.sampled_from(self.live_tables()), label="table")
        self.d.flush(data.draw(st.sampled_from(FLUSHERS), label="actor"), table)
        self.background = True

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def write_during_flush(self, data: st.DataObject) -> None:
        """Write, start a flush, and write the same scope at once: the second burst lands while
        the job runs (the sim's ``flush_delay_ms``, a real server's Parquet write) and must
        outlive the job's commit, which removes only the versions it took."""
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        actor, as_user = self.actor(data, self.table(name))
        self.write(data, "insert", name, actor, as_user)
        self.d.flush(data.draw(st.sampled_from(FLUSHERS), label="flusher"), name)
        self.background = True
        self.writes(data, name, actor, as_user)

    #: A background flush was started: waiting makes sense. (Whether its job is still running
    #: is timing, and a precondition must not depend on timing, or replays diverge.)
    background = False

    @precondition(lambda self: self.background)
    @rule()
    def wait_jobs(self) -> None:
        self.d.wait_jobs()
