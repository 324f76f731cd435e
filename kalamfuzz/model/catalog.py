"""Namespaces, users, roles, storages and tables with their schema versions."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from attrs import evolve, field, frozen

from kalamfuzz.model.values import DELETED, SEQ, ColType, ModelError, Value, sql_literal


class Role(enum.Enum):
    USER = "user"
    SERVICE = "service"
    DBA = "dba"
    SYSTEM = "system"

    @property
    def is_admin(self) -> bool:
        return self in (Role.DBA, Role.SYSTEM)


class TableType(enum.Enum):
    USER = "user"
    SHARED = "shared"
    STREAM = "stream"

    @property
    def per_user(self) -> bool:
        """USER and STREAM rows live in one scope per user."""
        return self is not TableType.SHARED


class AccessLevel(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    RESTRICTED = "restricted"
    DBA = "dba"


@frozen
class Column:
    name: str
    type: ColType
    nullable: bool = True
    default: Value = None
    primary_key: bool = False
    #: Schema version that added the column; rows written before it read the default.
    added_in: int = 1

    def ddl(self) -> str:
        parts = [self.name, self.type.sql]
        if self.primary_key:
            parts.append("PRIMARY KEY")
        elif not self.nullable:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {sql_literal(self.default, self.type)}")
        return " ".join(parts)


@frozen(order=True)
class TableId:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"


@frozen
class Table:
    id: TableId
    type: TableType
    columns: tuple[Column, ...]
    storage_id: str = "local"
    access_level: AccessLevel | None = None
    ttl_seconds: int | None = None
    schema_version: int = 1
    #: Columns removed by DROP COLUMN, kept so the model can say why a statement fails.
    dropped: frozenset[str] = frozenset()
    #: Types of dropped columns, to read rows a client received before the drop.
    former_types: tuple[tuple[str, ColType], ...] = ()
    #: The account that created it (CREATE TABLE's caller): a plain user alters only its own.
    owner: str | None = None

    @property
    def pk(self) -> Column:
        for c in self.columns:
            if c.primary_key:
                return c
        raise ModelError(f"table {self.id} has no primary key")

    @property
    def effective_access(self) -> AccessLevel:
        """SHARED tables default to PRIVATE when no ACCESS_LEVEL is given."""
        return self.access_level or AccessLevel.PRIVATE

    @property
    def system_columns(self) -> tuple[str, ...]:
        # Every table has both, STREAM tables too: `_deleted` is always false there
        # (docs/contract.md).
        return (SEQ, DELETED)

    @property
    def star_columns(self) -> tuple[str, ...]:
        """What ``SELECT *`` returns: user columns in order, then the system columns."""
        return tuple(c.name for c in self.columns) + self.system_columns

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def type_of(self, name: str) -> ColType:
        if name == SEQ:
            return ColType.BIGINT
        if name == DELETED:
            return ColType.BOOLEAN
        col = self.column(name)
        if col is None:
            raise ModelError(f"no column {name!r} in {self.id}")
        return col.type

    def former_type(self, name: str) -> ColType | None:
        """The type a dropped column had (None if it never existed)."""
        return dict(self.former_types).get(name)

    def knows(self, name: str) -> bool:
        return self.column(name) is not None or name in self.system_columns

    def add_column(self, column: Column) -> Table:
        added = evolve(column, added_in=self.schema_version + 1)
        return evolve(
            self,
            columns=(*self.columns, added),
            schema_version=self.schema_version + 1,
            dropped=self.dropped - {column.name},
        )

    def drop_column(self, name: str) -> Table:
        return evolve(
            self,
            columns=tuple(c for c in self.columns if c.name != name),
            schema_version=self.schema_version + 1,
            dropped=self.dropped | {name},
            former_types=(
                *((n, t) for n, t in self.former_types if n != name),
                *((c.name, c.type) for c in self.columns if c.name == name),
            ),
        )

    def create_sql(self) -> str:
        cols = ", ".join(c.ddl() for c in self.columns)
        opts = [f"TYPE = '{self.type.name}'", f"STORAGE_ID = '{self.storage_id}'"]
        if self.ttl_seconds is not None:
            opts.append(f"TTL_SECONDS = {self.ttl_seconds}")
        if self.access_level is not None:
            opts.append(f"ACCESS_LEVEL = '{self.access_level.name}'")
        return f"CREATE TABLE {self.id} ({cols}) WITH ({', '.join(opts)})"


DEFAULT_SHARED_TEMPLATE = "{namespace}/{tableName}"
DEFAULT_USER_TEMPLATE = "{namespace}/{tableName}/{userId}"

_TEMPLATE_ALIASES = {
    "{namespace}": "{namespace}",
    "{namespace_id}": "{namespace}",
    "{tableName}": "{table}",
    "{table_name}": "{table}",
    "{table}": "{table}",
    "{userId}": "{user}",
    "{user_id}": "{user}",
}


@frozen
class Storage:
    storage_id: str
    base_directory: str
    shared_template: str = DEFAULT_SHARED_TEMPLATE
    user_template: str = DEFAULT_USER_TEMPLATE

    def table_directory(self, table: Table) -> str:
        """The directory that holds every scope of ``table``."""
        if table.type.per_user:
            return self.scope_directory(table, "x").rsplit("/", 1)[0]
        return self.scope_directory(table, None)

    def scope_directory(self, table: Table, user_id: str | None) -> str:
        """Where a flush of ``table`` for ``user_id`` (None for SHARED) must write."""
        per_user = table.type.per_user
        template = self.user_template if per_user else self.shared_template
        # Omitted templates are stored as empty strings: the server defaults apply.
        if not template:
            template = DEFAULT_USER_TEMPLATE if per_user else DEFAULT_SHARED_TEMPLATE
        path = template
        for alias, canonical in _TEMPLATE_ALIASES.items():
            path = path.replace(alias, canonical)
        path = (
            path.replace("{namespace}", table.id.namespace)
            .replace("{table}", table.id.name)
            .replace("{user}", user_id or "")
        )
        return self.base_directory.rstrip("/") + "/" + path.strip("/")


@frozen
class User:
    user_id: str
    role: Role


@frozen
class Catalog:
    """Everything DDL changes. Maps are never mutated in place: every change builds a new one."""

    namespaces: frozenset[str] = frozenset()
    users: Mapping[str, User] = field(factory=dict)
    storages: Mapping[str, Storage] = field(factory=dict)
    tables: Mapping[TableId, Table] = field(factory=dict)
    #: Storages whose directory the fault injector made unwritable.
    broken_storages: frozenset[str] = frozenset()
    #: Tables the model gave up on: a known bug left them in a state no read could re-learn
    #: (rows that no longer read at all). Nothing about them is predicted any more.
    lost_tables: frozenset[TableId] = frozenset()
    #: Directories of dropped tables: KalamDB deletes their files in a cleanup job of its own,
    #: some time after DROP TABLE answered (kalamdb-jobs executors/cleanup.rs).
    dropped_dirs: frozenset[str] = frozenset()

    def role_of(self, user_id: str) -> Role:
        # EXECUTE AS USER treats unknown ids as plain users (HTTP_SQL.md §2.6).
        user = self.users.get(user_id)
        return user.role if user is not None else Role.USER

    def table(self, table_id: TableId) -> Table:
        try:
            return self.tables[table_id]
        except KeyError:
            raise ModelError(f"no table {table_id}") from None

    def with_table(self, table: Table) -> Catalog:
        return evolve(self, tables={**self.tables, table.id: table})

    def without_table(self, table_id: TableId) -> Catalog:
        return evolve(
            self,
            tables={k: v for k, v in self.tables.items() if k != table_id},
            lost_tables=self.lost_tables - {table_id},
        )

    def with_user(self, user: User) -> Catalog:
        return evolve(self, users={**self.users, user.user_id: user})

    def with_storage(self, storage: Storage) -> Catalog:
        return evolve(self, storages={**self.storages, storage.storage_id: storage})

    def with_namespace(self, namespace: str) -> Catalog:
        return evolve(self, namespaces=self.namespaces | {namespace})
