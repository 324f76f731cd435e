"""Subscriptions: opening, paging, resuming and checking live queries."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kalamfuzz import invariants as inv
from kalamfuzz.adapters import observe
from kalamfuzz.adapters.websocket import LiveClient, Subscription
from kalamfuzz.errors import ConfigError, LiveError
from kalamfuzz.machines.driver.core import QUIET_S, DriverCore, _Sub, change_wait
from kalamfuzz.machines.driver.transcript import (
    now_ms,
    ws_json,
)
from kalamfuzz.model import (
    Failed,
    Select,
    Subscribe,
    Succeeded,
    TableId,
    Unsubscribe,
)
from kalamfuzz.model.rows import Window
from kalamfuzz.model.where import Pred
from kalamfuzz.model.where import columns as where_columns


class SubscriptionSteps(DriverCore):
    def open_subscriptions(self) -> set[str]:
        return set(self._subs)

    def watched(self, sub: str) -> tuple[str, str]:
        """The subscriber and the (logical) table of an open subscription."""
        s = self._subs[sub]
        return s.actor, self._model_sub(s.model_id).table_id.name

    def paging_subscriptions(self) -> set[str]:
        return {k for k, s in self._subs.items() if s.paged}

    def resumable_actors(self) -> set[str]:
        return {s.actor for s in self._subs.values() if not s.paged}

    def _live(self, actor: str) -> LiveClient:
        live = self._lives.get(actor)
        if live is None:
            live = self._call(self.target.live, self.client(actor))
            self._lives[actor] = live
            self._ws_sent[actor] = 0
        return live

    def _log_ws(self, actor: str, *extra: _Sub) -> None:
        """Copy what the actor's socket sent, and what its subscriptions received, since the
        last call into the transcript, in time order."""
        new: list[tuple[float, str, str, Mapping[str, Any]]] = []
        live = self._lives.get(actor)
        if live is not None:
            sent = live.sent
            start = self._ws_sent.get(actor, 0)
            new += [(at, "ws-send", ws_json(m), {}) for at, m in sent[start:]]
            self._ws_sent[actor] = len(sent)
        handles = [s for s in self._subs.values() if s.actor == actor]
        for s in [*handles, *(x for x in extra if x not in handles)]:
            messages = s.sub.messages
            new += [(m.at, "ws-recv", s.sub.id, dict(m.payload)) for m in messages[s.logged :]]
            s.logged = len(messages)
        for at, kind, request, reply in sorted(new, key=lambda e: e[0]):
            ms = int(at * 1000)
            self._exchange(actor, kind, request, reply, Window(ms, ms))

    def subscribe(
        self,
        actor: str,
        sub: str,
        table: str,
        projection: Sequence[str] | None = None,
        where: Pred | None = None,
        batch_size: int = 1000,
        paged: bool = False,
    ) -> None:
        """Subscribe; with ``paged`` only the first snapshot page is fetched (see ``next_pages``)."""
        with self._step(
            "subscribe",
            actor,
            sub,
            table,
            projection=list(projection) if projection is not None else None,
            where=where,
            batch_size=batch_size,
            paged=paged or None,
        ):
            if sub in self._subs:
                raise ConfigError(f"subscription {sub!r} is already open")
            op = Subscribe(
                self.user_id(actor),
                f"{sub}-{self._step_no}",
                self.table_id(table),
                tuple(projection) if projection is not None else None,
                where,
                batch_size,
            )
            self._open(actor, sub, op, paged)

    def _open(self, actor: str, sub: str, op: Subscribe, paged: bool) -> None:
        live = self._live(actor)
        sent = now_ms()
        handle = self._call(
            live.subscribe,
            op.to_sql(),
            batch_size=op.batch_size,
            from_seq=op.from_seq,
            sub_id=op.sub_id,
            wait=False,
            auto_page=not paged,
        )
        predicate: Callable[[Subscription], bool] = (
            (lambda s: bool(s.batches) or s.ready) if paged else (lambda s: s.ready)
        )
        with contextlib.suppress(LiveError):
            self._wait(handle.wait_for, predicate, timeout=10.0)
        at = Window(sent, max(sent, now_ms()))
        obs = observe.subscription(handle, quiescent=False)
        entry = _Sub(actor, op.sub_id, handle, paged)
        self._log_ws(actor, entry)
        outcome = Succeeded() if obs.error_code is None else Failed(obs.error_code)
        with self.ledger.spending("model"):
            self.model.apply(op, outcome, at)
        passed = self._judge(
            self._judging(inv.check_subscribe, self.model, op, obs, at),
            f"subscribe {op.sub_id}: {op.to_sql()}",
        )
        if op.sub_id not in self.model.states[0].subs:
            # The server took a subscription the model refuses (a known finding), or one on a
            # table the model gave up on: nothing to follow.
            if obs.error_code is None:
                self._call(handle.unsubscribe)
            return
        if not passed:
            self.model.distrust_snapshot(op.sub_id)
        if obs.error_code is None:
            # ``paged`` stays as drawn even if one page held everything: preconditions read
            # it, and they must not depend on timing.
            self._subs[sub] = entry

    def next_pages(self, sub: str) -> None:
        """Fetch the rest of a paged snapshot, one ``next_batch`` at a time."""
        with self._step("next_pages", sub):
            s = self._subs.get(sub)
            if s is not None and s.paged:
                self._page_rest(sub, s)

    def _page_rest(self, name: str, s: _Sub) -> None:
        while not s.sub.ready:
            count = len(s.sub.batches)
            self._call(s.sub.request_next_batch)
            with contextlib.suppress(LiveError):
                self._wait(
                    s.sub.wait_for,
                    lambda x, c=count: len(x.batches) > c or x.ready,
                    timeout=5.0,
                )
            if len(s.sub.batches) == count and not s.sub.ready:
                break
        s.paged = False
        self._check_sub(name, quiescent=False)

    def unsubscribe(self, sub: str) -> None:
        with self._step("unsubscribe", sub):
            s = self._subs.pop(sub, None)
            if s is None:
                return
            self._check_sub_handle(s, quiescent=False)
            self._call(s.sub.unsubscribe)
            self._log_ws(s.actor, s)
            self.model.apply(Unsubscribe(s.model_id), Succeeded())

    def resume(self, actor: str) -> None:
        """Drop the actor's socket, reconnect, and resume each subscription from its last _seq."""
        with self._step("resume", actor):
            live = self._lives.get(actor)
            if live is None or not any(s.actor == actor for s in self._subs.values()):
                return
            # The socket carries every subscription of the actor: one still paging its
            # snapshot finishes first, or dropping the socket would take it down unmodelled.
            for name, s in list(self._subs.items()):
                if s.actor == actor and s.paged:
                    self._page_rest(name, s)
            for s in [s for s in self._subs.values() if s.actor == actor]:
                self._check_sub_handle(s, quiescent=False)
            # (a check may have re-subscribed one after a known finding)
            mine = {k: s for k, s in self._subs.items() if s.actor == actor}
            self._call(live.drop)
            self._call(live.reconnect)
            now = now_ms()
            self._exchange(
                actor, "fault", "WebSocket reset under the client; reconnect", {}, Window(now, now)
            )
            self._resume_subs(actor, mine)

    def _resume_subs(self, actor: str, mine: Mapping[str, _Sub], read: bool = True) -> None:
        """Subscribe again, each from the last ``_seq`` it saw (its socket or server is gone).

        A resume point must be ordered against every row of the scope: each watched scope is
        read first, once (``read=False``: the caller has just read every scope)."""
        for name, s in mine.items():
            self.model.apply(Unsubscribe(s.model_id), Succeeded())
            self._subs.pop(name, None)
        resumable = {n: s for n, s in mine.items() if self._fits(self._model_sub(s.model_id))}
        # (an ALTER changed what the others' queries name: they cannot resume)
        if read:
            tables = {self._model_sub(s.model_id).table_id for s in resumable.values()}
            with self.checking():
                for table_id in sorted(tables, key=str):
                    self._query(actor, Select(self.user_id(actor), table_id))
        for name, s in resumable.items():
            old = self._model_sub(s.model_id)
            op = Subscribe(
                old.user_id,
                f"{name}-{self._step_no}",
                old.table_id,
                old.projection,
                old.where,
                old.batch_size,
                from_seq=s.sub.max_seq if s.sub.max_seq is not None else old.from_seq,
            )
            self._open(actor, name, op, paged=False)

    def _fits(self, sub: Any) -> bool:
        """Whether a subscription's query still names columns of the types it was opened with."""
        table = self.model.table(sub.table_id)
        if table is None or sub.schema is None:
            return table is not None
        names = set(sub.projection or ()) | where_columns(sub.where)
        return all(
            table.column(n) is not None and table.type_of(n) is sub.schema.type_of(n) for n in names
        )

    def _resubscribe(self, name: str) -> None:
        """Drop a subscription and open it again with the same query (a fresh snapshot)."""
        s = self._subs.pop(name)
        old = self._model_sub(s.model_id)
        self._call(s.sub.unsubscribe)
        self._log_ws(s.actor, s)
        self.model.apply(Unsubscribe(s.model_id), Succeeded())
        if not self._fits(old):
            return
        op = Subscribe(
            old.user_id,
            f"{name}-{self._step_no}r{len(self.findings)}",
            old.table_id,
            old.projection,
            old.where,
            old.batch_size,
        )
        self._open(s.actor, name, op, paged=False)

    def _expected_changes(self, model_id: str) -> int:
        counts = [
            sum(1 for c in s.subs[model_id].changes if not c.optional)
            for s in self.model.states
            if model_id in s.subs
        ]
        return min(counts, default=0)

    def _check_live(self, table_id: TableId | None, *, settle: bool = False) -> None:
        """Wait for the changes each subscription (on ``table_id``, or every one) is owed, then
        check it; what has not come after the wait is lost. ``settle``: also wait for quiet and
        check each as quiescent, those whose paged snapshot is complete included."""
        for name, s in list(self._subs.items()):
            if s.paged and not (settle and s.sub.ready):
                continue
            if table_id is not None and self._model_sub(s.model_id).table_id != table_id:
                continue
            want = self._expected_changes(s.model_id)
            try:
                self._wait(
                    s.sub.wait_for,
                    lambda x, n=want: _change_rows(x) >= n,
                    timeout=change_wait(want),
                )
                quiescent = settle
                if settle:
                    with contextlib.suppress(LiveError):
                        self._wait(s.sub.wait_quiet, QUIET_S, timeout=5.0)
            except LiveError:
                quiescent = True  # waited long enough: what has not come is lost
            self._check_sub(name, quiescent=quiescent)

    def _check_sub(self, name: str, *, quiescent: bool) -> None:
        self._check_sub_handle(self._subs[name], quiescent=quiescent)

    def _check_sub_handle(self, s: _Sub, *, quiescent: bool) -> None:
        self._log_ws(s.actor, s)
        obs = observe.subscription(s.sub, quiescent=quiescent)
        verdict = self._judging(inv.check_subscription, self.model, s.model_id, obs)
        sub = self._model_sub(s.model_id)
        if self._judge(verdict, f"subscription {s.model_id}: {sub.sql()}"):
            with self.ledger.spending("model"):
                self.model.narrow(verdict.consistent, verdict.learned)
            return
        # A known finding about a subscription: about the snapshot's form only, stop judging
        # the snapshot; else start again from a fresh one.
        if not any(v.diverged for v in verdict.violations):
            self.model.distrust_snapshot(s.model_id)
            return
        name = next((n for n, x in self._subs.items() if x is s), None)
        if name is not None:
            self._resubscribe(name)


def _change_rows(sub: Subscription) -> int:
    return sum(max(len(c.rows), len(c.old_values), 1) for c in sub.changes)
