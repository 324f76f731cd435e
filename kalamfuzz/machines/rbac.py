"""RBAC and multi-tenancy: every role tries reads, writes, DDL, flushes and impersonation on
USER, PUBLIC and PRIVATE SHARED tables; forbidden ones must fail with PERMISSION_DENIED and
change nothing, allowed ones must succeed."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from kalamfuzz.machines.base import machine
from kalamfuzz.machines.data import DataMachine
from kalamfuzz.machines.world import ACTORS, TENANTS
from kalamfuzz.model.catalog import AccessLevel, TableType

EVERYONE = ("root", *ACTORS)
EXTRA_TABLES = ("extra1", "extra2")


@machine("rbac")
class RbacMachine(DataMachine):
    TABLES: ClassVar[tuple[str, ...]] = ("notes", "board", "vault")

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def impersonate(self, data: st.DataObject) -> None:
        """EXECUTE AS USER by anyone: only service and admin roles may, on per-user tables."""
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        table = self.table(name)
        actor = data.draw(st.sampled_from(EVERYONE), label="actor")
        as_user = data.draw(st.sampled_from(TENANTS), label="as_user")
        if data.draw(st.booleans(), label="write"):
            self.insert_rows(actor, name, self.rows(data, table, max_rows=1), as_user=as_user)
        else:
            self.d.select(actor, name, as_user=as_user)

    @rule(data=st.data())
    def create_table(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from([TableType.USER, TableType.SHARED]), label="kind")
        access = (
            data.draw(st.sampled_from([AccessLevel.PUBLIC, AccessLevel.PRIVATE]), label="access")
            if kind is TableType.SHARED
            else None
        )
        self.d.create_table(
            data.draw(st.sampled_from(EVERYONE), label="actor"),
            data.draw(st.sampled_from(EXTRA_TABLES), label="name"),
            kind,
            access=access,
        )

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def flush_attempt(self, data: st.DataObject) -> None:
        """STORAGE FLUSH by anyone: users must be refused, the others' jobs must end well."""
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        self.d.flush(data.draw(st.sampled_from(EVERYONE), label="actor"), name, wait=True)

    @precondition(lambda self: bool(self.live_tables()))
    @rule(data=st.data())
    def drop_table(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.live_tables()), label="table")
        self.d.drop_table(data.draw(st.sampled_from(EVERYONE), label="actor"), name)
