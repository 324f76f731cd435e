"""DDL: tables and columns come and go while data and subscriptions live on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kalamfuzz.machines.driver.core import checks
from kalamfuzz.machines.driver.faults import FaultSteps
from kalamfuzz.machines.world import COLUMNS
from kalamfuzz.model import (
    AlterAddColumn,
    AlterDropColumn,
    Column,
    CreateNamespace,
    CreateTable,
    DropTable,
    Select,
    Table,
    TableType,
)


class SchemaSteps(FaultSteps):
    def create_table(
        self,
        actor: str,
        name: str,
        kind: TableType,
        storage: str = "local",
        access: Any = None,
        ttl_seconds: int | None = None,
        columns: Sequence[Column] | None = None,
    ) -> None:
        """CREATE TABLE with the machines' columns, or ``columns`` (a scenario's schema)."""
        with self._step(
            "create_table",
            actor,
            name,
            kind,
            storage=storage if storage != "local" else None,
            access=access,
            ttl_seconds=ttl_seconds,
            columns=list(columns) if columns is not None else None,
        ):
            table = Table(
                self.table_id(name),
                kind,
                tuple(columns) if columns is not None else COLUMNS,
                storage_id=self._storage_id(storage),
                access_level=access,
                ttl_seconds=ttl_seconds,
            )
            self._statement(actor, CreateTable(self.user_id(actor), table))
            self._poll_jobs()

    def create_namespace(self, actor: str, name: str) -> None:
        """An extra namespace of the example; its tables are named ``name.table``."""
        with self._step("create_namespace", actor, name):
            self._statement(actor, CreateNamespace(self.user_id(actor), self.namespace_id(name)))

    def drop_table(self, actor: str, table: str) -> None:
        with self._step("drop_table", actor, table):
            self._poll_jobs(wait=True)
            self._statement(actor, DropTable(self.user_id(actor), self.table_id(table)))
            self._check_live(self.table_id(table))

    def add_column(self, actor: str, table: str, column: Column) -> None:
        with self._step("add_column", actor, table, column):
            t = self.model.table(self.table_id(table))
            if t is not None and t.former_type(column.name) is not None:
                self.events.add("column-readded")
            self._statement(
                actor, AlterAddColumn(self.user_id(actor), self.table_id(table), column)
            )
            self._after_ddl(table)

    def drop_column(self, actor: str, table: str, column: str) -> None:
        with self._step("drop_column", actor, table, column):
            self._statement(
                actor, AlterDropColumn(self.user_id(actor), self.table_id(table), column)
            )
            self._after_ddl(table)

    @checks
    def _after_ddl(self, table: str) -> None:
        t = self.model.table(self.table_id(table))
        if t is not None:
            owner = self._readers(t)[0]
            self._query(owner, Select(self.user_id(owner), t.id))
        self._check_live(self.table_id(table))
        self._poll_jobs()
