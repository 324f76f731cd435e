"""Hostile clients (contract item 10): between ordinary reads and writes, statements broken on
purpose, request bodies the SQL endpoint does not take, credentials that must not
authenticate, and weak passwords. Each must get a clear 4xx, change nothing, carry nothing of
another user and no secret, and leave the server up. Every tenant's scope holds a marker row
that no answer to another user may carry."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from kalamfuzz.adapters import hostile as kinds
from kalamfuzz.machines.base import machine
from kalamfuzz.machines.data import DataMachine
from kalamfuzz.machines.driver.hostile import WEAK_PASSWORDS
from kalamfuzz.machines.world import ACTORS, TENANTS
from kalamfuzz.model.hostile import NON_FINITE

#: Where each tenant's marker row lives, and its key (outside the keys rules draw).
MARKED = "notes"
MARKER_KEY = 7


@machine("hostile")
class HostileMachine(DataMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board")

    @initialize()
    def mark(self) -> None:
        self.d.mark_scopes(MARKED, MARKER_KEY, TENANTS)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def malformed_sql(self, data: st.DataObject) -> None:
        name, table, actor, _ = self._target(data)
        mutation = data.draw(st.sampled_from(kinds.MUTATIONS), label="mutation")
        n = data.draw(st.integers(0, 1_000), label="n")
        if data.draw(st.booleans(), label="insert"):
            self.d.malformed_sql(actor, name, mutation, n, rows=self.rows(data, table, 1))
        else:
            self.d.malformed_sql(actor, name, mutation, n, where=self.where(data, name, actor))

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def malformed_body(self, data: st.DataObject) -> None:
        name, table, actor, _ = self._target(data)
        kind = data.draw(st.sampled_from(kinds.BODIES), label="body")
        self.d.malformed_body(actor, name, kind, self.rows(data, table, 1))

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def forged_token(self, data: st.DataObject) -> None:
        # a write the actor may make with its own credential: only the credential is wrong
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        kind = data.draw(st.sampled_from(self.d.token_kinds), label="token")
        self.d.forged_token(actor, MARKED, kind, self.rows(data, self.table(MARKED), 1))

    @rule(kind=st.sampled_from(sorted(NON_FINITE)))
    def non_finite(self, kind: str) -> None:
        self.d.non_finite(kind)

    @rule(kind=st.sampled_from(sorted(WEAK_PASSWORDS)))
    def weak_password(self, kind: str) -> None:
        self.d.weak_password(kind)
