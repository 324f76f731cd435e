"""Flush: STORAGE FLUSH TABLE while writes and reads go on, waiting for jobs, checking the cold
files each finished job left (manifest, Parquet rows, placement)."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from kalamfuzz.machines.base import machine
from kalamfuzz.machines.data import DataMachine
from kalamfuzz.machines.world import TABLES
from kalamfuzz.model.catalog import TableType
from kalamfuzz.model.where import Col, InList, Lit

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
        flusher = data.draw(st.sampled_from(FLUSHERS), label="flusher")
        self.d.flush(flusher, name)
        self.background = True
        self.writes(data, name, actor, as_user)
        if data.draw(st.booleans(), label="flush again"):
            # The next flush must take what the first one left: nothing else marks it pending.
            self.d.wait_jobs()
            self.d.flush(flusher, name, wait=True)

    @precondition(lambda self: bool(self._durable_tables()))
    @rule(data=st.data())
    def short_lived_rows(self, data: st.DataObject) -> None:
        """Rows inserted and deleted between two flushes: the flush must drop them without a
        trace (no tombstone for a key it never wrote, no empty file, a manifest that counts
        only what the file holds)."""
        name = data.draw(st.sampled_from(self._durable_tables()), label="table")
        table = self.table(name)
        actor, as_user = self.actor(data, table)
        rows = self.rows(data, table)
        self.insert_rows(actor, name, rows, as_user=as_user)
        keys = [r[table.pk.name] for r in rows]
        doomed = data.draw(st.lists(st.sampled_from(keys), min_size=1, unique=True), label="doomed")
        where = InList(Col(table.pk.name), tuple(Lit(k) for k in doomed), False)
        self.d.delete(actor, name, where, as_user=as_user)
        self.d.flush(data.draw(st.sampled_from(FLUSHERS), label="flusher"), name, wait=True)

    def _durable_tables(self) -> list[str]:
        # STREAM rows are hard-deleted and never flushed: nothing to drop there.
        return [n for n in self.live_tables() if self.table(n).type is not TableType.STREAM]

    #: A background flush was started: waiting makes sense. (Whether its job is still running
    #: is timing, and a precondition must not depend on timing, or replays diverge.)
    background = False

    @precondition(lambda self: self.background)
    @rule()
    def wait_jobs(self) -> None:
        self.d.wait_jobs()
