"""Live: subscriptions with random filters, projections and batch sizes; writes while a snapshot
is still paging; unsubscribe; dropping the socket and resuming from the last ``_seq``."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.base import machine
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.flush import SyncFlushMachine
from kalamfuzz.machines.world import ACTORS
from kalamfuzz.model.where import Pred, columns

SUBS = ("s1", "s2", "s3")
WATCHED_WRITES = ("update", "insert", "delete", "update")
BATCH_SIZES = (1, 2, 3, 1000)
PAGE_SIZES = (1, 2)


@machine("live")
class LiveMachine(SyncFlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")

    def __init__(self, driver: Driver) -> None:
        super().__init__(driver)
        #: The filter each open subscription was drawn with (drawn facts, timing-free).
        self.filters: dict[str, Pred | None] = {}

    # Reads are checked by every write's read-back already; here the steps go to streams.
    select = None  # type: ignore[assignment]

    def _open(self) -> list[str]:
        return sorted(self.d.open_subscriptions())

    @precondition(lambda self: len(self._open()) < len(SUBS) and bool(self.live_tables()))
    @rule(data=st.data())
    def subscribe(self, data: st.DataObject) -> None:
        sub = data.draw(st.sampled_from([s for s in SUBS if s not in self._open()]), label="sub")
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        projection = data.draw(kst.projections(self.table(name)), label="projection")
        # The whole table is what a subscriber usually watches, and what pages longest.
        filtered = data.draw(st.booleans(), label="filtered")
        known = self.written.get((name, self._owner(name, actor, None)), [])
        where = data.draw(kst.filters(self.table(name), known), label="where") if filtered else None
        # A snapshot fetched page by page holds back the changes made meanwhile: small pages.
        paged = data.draw(st.booleans(), label="paged")
        sizes = PAGE_SIZES if paged else BATCH_SIZES
        batch_size = data.draw(st.sampled_from(sizes), label="batch_size")
        self.d.subscribe(actor, sub, name, projection, where, batch_size=batch_size, paged=paged)
        self.filters[sub] = where

    def _watched_scope(self, sub: str) -> tuple[str, str] | None:
        """The table a subscription watches and who writes into its scope (None once the
        table is gone). On a SHARED table a user may not write: an admin writes what the user
        watches."""
        subscriber, name = self.d.watched(sub)
        if name not in self.live_tables():
            return None
        return name, subscriber if self.table(name).type.per_user else "dba"

    @precondition(lambda self: bool(self._open()))
    @rule(data=st.data())
    def write_watched(self, data: st.DataObject) -> None:
        """A burst of writes into the scope a subscription watches, maybe while its snapshot is
        still paging (the changes must then come after the last page, in order)."""
        sub = data.draw(st.sampled_from(self._open()), label="sub")
        target = self._watched_scope(sub)
        if target is None:
            return
        name, writer = target
        # Updates set what the filter reads, so rows enter and leave the subscription; they
        # come first and last (where Hypothesis draws most often), inserts and deletes between.
        prefer = sorted(columns(self.filters.get(sub)))
        self.writes(data, name, writer, None, prefer, kinds=WATCHED_WRITES)

    @precondition(lambda self: bool(self._open()))
    @rule(data=st.data())
    def change_flushed(self, data: st.DataObject) -> None:
        """Flush the table a subscription watches, then update or delete in its scope: a change
        to a row whose visible version is in the cold tier must reach subscribers like any
        other (the hot tier is empty then, so the server must look further for the old row)."""
        sub = data.draw(st.sampled_from(self._open()), label="sub")
        target = self._watched_scope(sub)
        if target is None:
            return
        name, writer = target
        self.d.flush("root", name, wait=True)
        prefer = sorted(columns(self.filters.get(sub)))
        self.writes(data, name, writer, None, prefer, kinds=("update", "delete"))

    def _filtered(self) -> list[str]:
        return [s for s in self._open() if self.filters.get(s) is not None]

    @precondition(lambda self: bool(self._filtered()))
    @rule(data=st.data())
    def leave_filter(self, data: st.DataObject) -> None:
        """Set the columns a subscription's filter reads to NULL in the rows it holds (a NULL
        fails every comparison but IS NULL): each row that leaves must send a delete."""
        sub = data.draw(st.sampled_from(self._filtered()), label="sub")
        target = self._watched_scope(sub)
        where = self.filters[sub]
        if target is None or where is None:
            return
        name, writer = target
        table = self.table(name)
        read = sorted(c for c in columns(where) if table.column(c) is not None)
        sets = {c: None for c in read if c != table.pk.name}
        if sets:
            self.d.update(writer, name, sets, where)

    @precondition(lambda self: bool(self.d.paging_subscriptions()))
    @rule(data=st.data())
    def write_while_paging(self, data: st.DataObject) -> None:
        """Inserts while a snapshot is still paging, then the rest of its pages: the server
        holds the changes back and must send them after the last page, in commit order."""
        sub = data.draw(st.sampled_from(sorted(self.d.paging_subscriptions())), label="sub")
        target = self._watched_scope(sub)
        if target is None:
            return
        name, writer = target
        for _ in range(2):
            self.write(data, "insert", name, writer)
        self.d.next_pages(sub)

    @precondition(lambda self: bool(self.d.paging_subscriptions()))
    @rule(data=st.data())
    def next_pages(self, data: st.DataObject) -> None:
        self.d.next_pages(data.draw(st.sampled_from(sorted(self.d.paging_subscriptions()))))

    @precondition(lambda self: bool(self._open()))
    @rule(data=st.data())
    def unsubscribe(self, data: st.DataObject) -> None:
        self.d.unsubscribe(data.draw(st.sampled_from(self._open()), label="sub"))

    @precondition(lambda self: bool(self.d.resumable_actors()))
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        self.d.resume(data.draw(st.sampled_from(sorted(self.d.resumable_actors())), label="actor"))

    crashed = False

    # A restart costs about a second: once an example at most.
    @precondition(
        lambda self: bool(self.d.paging_subscriptions()) and self.d.can_crash() and not self.crashed
    )
    @rule()
    def crash_while_paging(self) -> None:
        """SIGKILL the server while a snapshot pages: after the restart every subscription
        resumes from the last _seq it saw and must get exactly what it missed."""
        self.crashed = True
        self.d.crash()
