"""Live: subscriptions with random filters, projections and batch sizes; writes while a snapshot
is still paging; unsubscribe; dropping the socket and resuming from the last ``_seq``."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from kalamfuzz.machines import strategies as kst
from kalamfuzz.machines.base import machine
from kalamfuzz.machines.flush import SyncFlushMachine
from kalamfuzz.machines.world import ACTORS

SUBS = ("s1", "s2", "s3")
BATCH_SIZES = (1, 2, 3, 1000)


@machine("live")
class LiveMachine(SyncFlushMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")

    # Reads are checked by every write's read-back already; here the steps go to streams.
    select = None  # type: ignore[assignment]

    def _open(self) -> list[str]:
        return sorted(self.d.open_subscriptions())

    @precondition(lambda self: len(self._open()) < len(SUBS) and bool(self.live_tables()))
    @rule(data=st.data())
    def subscribe(self, data: st.DataObject) -> None:
        sub = data.draw(st.sampled_from([s for s in SUBS if s not in self._open()]), label="sub")
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        table = self.table(name)
        self.d.subscribe(
            data.draw(st.sampled_from(ACTORS), label="actor"),
            sub,
            name,
            projection=data.draw(kst.projections(table), label="projection"),
            where=data.draw(kst.predicates(table), label="where"),
            batch_size=data.draw(st.sampled_from(BATCH_SIZES), label="batch_size"),
            paged=data.draw(st.booleans(), label="paged"),
        )

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
