"""Writes and reads, each followed by the incremental check of what it touched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kalamfuzz.adapters.proxy import Fault
from kalamfuzz.machines.driver.core import checks
from kalamfuzz.machines.driver.jobs import JobSteps
from kalamfuzz.model import (
    Delete,
    Insert,
    Select,
    TableType,
    Update,
)
from kalamfuzz.model.exprs import Assigned
from kalamfuzz.model.ops import Statement
from kalamfuzz.model.values import Value
from kalamfuzz.model.where import Pred


class DataSteps(JobSteps):
    def has_rows(self, table: str) -> bool:
        """Whether any possible state holds a version in the table (hot or cold)."""
        tid = self.table_id(table)
        return any(
            any(True for _ in scope.all_versions())
            for st in self.model.states
            for scope in st.scopes(tid).values()
        )

    @checks
    def _after_write(self, table_name: str, owner: str, since: int) -> None:
        """The incremental check: read back what the write touched, then the subscribers."""
        table = self.model.table(self.table_id(table_name))
        if table is None:
            return
        since = min(since, self._unread.pop((table.id, owner), since))
        self._read_back(table, owner, owner, since)
        self._check_live(table.id)
        self._poll_jobs()

    def insert(
        self,
        actor: str,
        table: str,
        rows: Sequence[Mapping[str, Value]],
        as_user: str | None = None,
        fault: Fault | None = None,
        retry: bool = False,
    ) -> None:
        with self._step(
            "insert", actor, table, list(rows), as_user=as_user, fault=fault, retry=retry or None
        ):
            op = Insert(
                self.user_id(actor),
                self.table_id(table),
                tuple(rows),
                as_user=self.user_id(as_user) if as_user else None,
            )
            # Looked for until seen once an example: it scans the scope's events.
            if "stream-key-repeated" not in self.events and self._repeats_stream_key(op):
                self.events.add("stream-key-repeated")
            self._write(actor, table, op, as_user, fault, retry)

    def _repeats_stream_key(self, op: Insert) -> bool:
        """An INSERT into a STREAM table of a key an event of its scope already has: KalamDB
        stores it (keys of events are not checked), and a DELETE of either then removes both
        (a known bug needs this first)."""
        t = self.model.table(op.table_id)
        if t is None or t.type is not TableType.STREAM:
            return False
        keys = {r.get(t.pk.name) for r in op.rows}
        user = op.as_user or op.actor
        return any(
            v.key in keys
            for s in self.model.states
            for v in s.scope(t.id, s.scope_key(t, user)).hot
        )

    def update(
        self,
        actor: str,
        table: str,
        assignments: Mapping[str, Assigned],
        where: Pred | None = None,
        as_user: str | None = None,
        fault: Fault | None = None,
        retry: bool = False,
    ) -> None:
        with self._step(
            "update",
            actor,
            table,
            dict(assignments),
            where=where,
            as_user=as_user,
            fault=fault,
            retry=retry or None,
        ):
            op = Update(
                self.user_id(actor),
                self.table_id(table),
                tuple(assignments.items()),
                where,
                as_user=self.user_id(as_user) if as_user else None,
            )
            self._write(actor, table, op, as_user, fault, retry)

    def delete(
        self,
        actor: str,
        table: str,
        where: Pred | None = None,
        as_user: str | None = None,
        fault: Fault | None = None,
        retry: bool = False,
    ) -> None:
        with self._step(
            "delete", actor, table, where=where, as_user=as_user, fault=fault, retry=retry or None
        ):
            op = Delete(
                self.user_id(actor),
                self.table_id(table),
                where,
                as_user=self.user_id(as_user) if as_user else None,
            )
            self._write(actor, table, op, as_user, fault, retry)

    def _write(
        self,
        actor: str,
        table: str,
        op: Statement,
        as_user: str | None,
        fault: Fault | None = None,
        retry: bool = False,
    ) -> None:
        """Send a write, and read back what it touched. A write whose reply was lost is read
        back at once (the read decides whether it ran); ``retry`` then sends it again, as a
        client would: it must not apply twice what must apply once."""
        if fault is not None:
            self._read_unread()  # what a lost reply leaves unknown is read alone
        since = self.model.clock
        findings = len(self.findings)
        obs = self._statement(actor, op, fault)
        t = self.model.table(self.table_id(table))
        if obs.lost and t is not None:
            self._after_write(table, self._scope_owner(t, actor, as_user), since)
            if not retry:
                return
            obs = self._statement(actor, op)
        if obs.ok and t is not None:
            owner = self._scope_owner(t, actor, as_user)
            if owner != actor and t.type.per_user:
                # EXECUTE AS: the caller's own partition first, at once. A write that landed
                # there is a row of another user in it (item 1), which explains the row then
                # missing where it belonged; read later, the next write of the user it acted
                # as would meet the row's absence first (a duplicate key accepted, item 6).
                self._read_back(t, actor, owner, since)
            elif len(self.model.states) == 1 and len(self.findings) == findings:
                # The reply left one possible state and was what the model expected: the
                # read that checks the rows can wait for the next read of the table.
                self._defer_read_back(t.id, owner, since)
                self._check_live(t.id)
                self._poll_jobs()
                return
            self._after_write(table, owner, since)
        else:
            self._poll_jobs()

    def select(
        self,
        actor: str,
        table: str,
        projection: Sequence[str] | None = None,
        where: Pred | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int | None = None,
        as_user: str | None = None,
    ) -> None:
        with self._step(
            "select",
            actor,
            table,
            projection=list(projection) if projection is not None else None,
            where=where,
            order_by=list(order_by) or None,
            limit=limit,
            as_user=as_user,
        ):
            self._read_unread(self.table_id(table))
            self._query(
                actor,
                Select(
                    self.user_id(actor),
                    self.table_id(table),
                    tuple(projection) if projection is not None else None,
                    where,
                    tuple(order_by),
                    limit,
                    as_user=self.user_id(as_user) if as_user else None,
                ),
            )
            self._poll_jobs()
