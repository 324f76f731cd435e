"""What the sim knows about namespaces, users, storages, tables and jobs; saved as one JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field

ROLES = ("user", "service", "dba", "system")
ADMIN_ROLES = ("dba", "system")


@define
class Column:
    id: int
    name: str
    kind: str
    nullable: bool = True
    pk: bool = False
    default: str | None = None  # SQL text of the DEFAULT expression

    def flags(self) -> list[str]:
        out = []
        if not self.nullable:
            out.append("nn")
        if self.pk:
            out.append("pk")
            out.append("uq")
        return sorted(out)


@define
class TableDef:
    uid: int
    namespace: str
    name: str
    table_type: str  # user | shared | stream
    columns: list[Column]
    storage_id: str | None = "local"
    access_level: str | None = None  # SHARED only: public|private|restricted|dba
    ttl_seconds: int | None = None
    flush_policy: str | None = None
    version: int = 1
    created_at: int = 0
    updated_at: int = 0
    next_column_id: int = 1
    dropped: dict[str, int] = field(factory=dict)  # name -> id of dropped columns
    history: dict[str, list[Column]] = field(factory=dict)  # schema version -> columns

    @property
    def table_id(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def pk(self) -> Column:
        for c in self.columns:
            if c.pk:
                return c
        raise LookupError(f"{self.table_id} has no primary key")

    def column(self, name: str) -> Column | None:
        lowered = name.lower()
        for c in self.columns:
            if c.name.lower() == lowered:
                return c
        return None

    def snapshot_version(self) -> None:
        self.history[str(self.version)] = [attrs.evolve(c) for c in self.columns]

    def columns_at(self, version: int) -> list[Column]:
        return self.history.get(str(version), self.columns)


@define
class User:
    user_id: str
    password_hash: str
    role: str
    email: str | None = None
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    last_login_at: int | None = None


@define
class Storage:
    storage_id: str
    storage_name: str
    description: str
    storage_type: str
    base_directory: str
    shared_tables_template: str
    user_tables_template: str
    created_at: int = 0
    updated_at: int = 0


@define
class Job:
    job_id: str
    job_type: str
    status: str
    parameters: str
    idempotency_key: str
    message: str | None = None
    exception_trace: str | None = None
    created_at: int = 0
    updated_at: int = 0
    started_at: int | None = None
    finished_at: int | None = None
    retry_count: int = 0


@define
class Namespace:
    namespace_id: str
    created_at: int = 0


def _load(cls: type, data: dict[str, Any]) -> Any:
    return cls(**data)


@define
class Catalog:
    namespaces: dict[str, Namespace] = field(factory=dict)
    users: dict[str, User] = field(factory=dict)
    storages: dict[str, Storage] = field(factory=dict)
    tables: dict[str, TableDef] = field(factory=dict)  # "ns.t" (lower case) -> def
    jobs: dict[str, Job] = field(factory=dict)
    next_table_uid: int = 1

    def table(self, namespace: str, name: str) -> TableDef | None:
        return self.tables.get(f"{namespace}.{name}".lower())

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(attrs.asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        raw = json.loads(path.read_text())
        tables = {}
        for key, t in raw["tables"].items():
            t["columns"] = [Column(**c) for c in t["columns"]]
            t["history"] = {v: [Column(**c) for c in cols] for v, cols in t["history"].items()}
            tables[key] = TableDef(**t)
        return cls(
            namespaces={k: _load(Namespace, v) for k, v in raw["namespaces"].items()},
            users={k: _load(User, v) for k, v in raw["users"].items()},
            storages={k: _load(Storage, v) for k, v in raw["storages"].items()},
            tables=tables,
            jobs={k: _load(Job, v) for k, v in raw["jobs"].items()},
            next_table_uid=raw["next_table_uid"],
        )
