"""Jobs and faults: a flush to a storage whose directory cannot be written must fail with a
message and keep every row; the retry after repair must succeed without duplicates or empty
files. A crash (SIGKILL and restart) must keep every acknowledged write."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from kalamfuzz.adapters.proxy import FAULTS
from kalamfuzz.machines.base import machine
from kalamfuzz.machines.data import WRITES
from kalamfuzz.machines.flush import FLUSHERS, FlushMachine
from kalamfuzz.machines.world import TENANTS


def _may_break(self: JobsMachine) -> bool:
    return "spare" not in self.d.broken_storages() and not self.d.flush_requested("fragile")


@machine("jobs")
class JobsMachine(FlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("fragile", "board")

    # Breaking the directory also hides cold files already in it, which reads need; so it is
    # broken only before the first flush of its table (the failure then meets hot rows only).
    @precondition(_may_break)
    @rule()
    def break_storage(self) -> None:
        self.d.break_storage("spare")

    # The failure path as one rule: with a dozen rules to pick from, the separate break, write
    # and flush steps meet in the right order too rarely (a flush of the table before the break
    # rules the break out for the rest of the example).
    @precondition(lambda self: _may_break(self) and "fragile" in self.live_tables())
    @rule(data=st.data())
    def failed_flush(self, data: st.DataObject) -> None:
        """Break the storage, flush: the job must fail and keep every row hot and pending; after
        the repair, a retry must write them all once."""
        self.d.break_storage("spare")
        if data.draw(st.booleans(), label="write first"):
            self.write(data, "insert", "fragile", "root")
        flusher = data.draw(st.sampled_from(FLUSHERS), label="flusher")
        self.d.flush(flusher, "fragile", wait=True)
        # Repaired at once, so a crash (which needs every storage readable) stays possible.
        self.d.repair_storage("spare")
        if data.draw(st.booleans(), label="retry"):
            self.d.flush(flusher, "fragile", wait=True)

    @precondition(lambda self: "spare" in self.d.broken_storages())
    @rule()
    def repair_storage(self) -> None:
        self.d.repair_storage("spare")

    @precondition(lambda self: bool(self.live_tables()) and self.d.can_fault_network())
    @rule(data=st.data())
    def lose_reply(self, data: st.DataObject) -> None:
        """A write meets a network fault (half its request, or its reply, lost; or its reply
        slow): a read decides whether it ran, and a retry must not apply it twice."""
        name, _, actor, as_user = self._target(data)
        kind = data.draw(st.sampled_from(WRITES), label="kind")
        fault = data.draw(st.sampled_from(FAULTS), label="fault")
        retry = data.draw(st.booleans(), label="retry")
        self.write(data, kind, name, actor, as_user, fault=fault, retry=retry)

    #: A restart costs about a second: at most this many per example.
    CRASHES_PER_EXAMPLE = 1
    crashes = 0

    # A restart reloads cold files from disk: not while a storage directory is gone.
    def _may_crash(self) -> bool:
        return (
            self.d.can_crash()
            and not self.d.broken_storages()
            and self.crashes < self.CRASHES_PER_EXAMPLE
            and self.may_sleep()
        )

    @precondition(_may_crash)
    @rule(graceful=st.booleans())
    def crash(self, graceful: bool) -> None:
        """Kill the server between steps (or stop it gracefully), and start it again."""
        self.crashes += 1
        if graceful:
            self.d.graceful_restart()
        else:
            self.d.crash()

    #: How long after the flush or the first insert the kill lands (a sim flush job writes
    #: its files 10-30 ms after it starts).
    DELAYS_MS = (40, 0, 10, 25, 80)
    #: For a flush, also "as soon as system.jobs shows it running" (None): on a release build a
    #: job runs for a few ms only, and a fixed delay rarely meets it.
    FLUSH_DELAYS_MS = (*DELAYS_MS, None)

    @precondition(lambda self: self._may_crash() and bool(self.live_tables()))
    @rule(data=st.data())
    def crash_during_flush(self, data: st.DataObject) -> None:
        self.crashes += 1
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        delay = data.draw(st.sampled_from(self.FLUSH_DELAYS_MS), label="ms")
        self.d.crash_during_flush(name, delay)

    @precondition(lambda self: self._may_crash() and bool(self.live_tables()))
    @rule(data=st.data())
    def crash_during_burst(self, data: st.DataObject) -> None:
        self.crashes += 1
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        table = self.table(name)
        # Writers that may write there (a burst writes as itself, no EXECUTE AS).
        writers = TENANTS if table.type.per_user else ("dba", "svc")
        actor = data.draw(st.sampled_from(writers), label="actor")
        rows = self.rows(data, table, max_rows=6)
        delay_ms = data.draw(st.sampled_from(self.DELAYS_MS), label="ms")
        self.d.crash_during_burst(actor, name, rows, delay_ms)
