"""What the sim knows about namespaces, users, storages, tables and jobs.

Saved as a JSON snapshot (``catalog.json``) plus a journal beside it (``catalog.log``): each change
appends the one entity it touched, so a change costs the same however many tables a long campaign
has made. Opening replays the journal over the snapshot; a full save folds it in.
"""

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
    owner: str | None = None  # the user id that created it

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


#: The catalog's entity collections, as named in the snapshot and the journal.
KINDS = ("namespaces", "users", "storages", "tables", "jobs")


def _entity(kind: str, data: dict[str, Any]) -> Any:
    if kind == "tables":
        data = dict(data)
        data["columns"] = [Column(**c) for c in data["columns"]]
        data["history"] = {v: [Column(**c) for c in cols] for v, cols in data["history"].items()}
        return TableDef(**data)
    cls = {"namespaces": Namespace, "users": User, "storages": Storage, "jobs": Job}[kind]
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

    def _items(self, kind: str) -> dict[str, Any]:
        items: dict[str, Any] = getattr(self, kind)
        return items

    def save(self, path: Path) -> None:
        """Write the whole catalog and empty the journal."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(attrs.asdict(self)))
        os.replace(tmp, path)
        # A crash right here replays the journal over a snapshot that already holds it:
        # harmless, since each record sets an entity to its value.
        path.with_suffix(".log").write_text("")

    def record(self, path: Path, kind: str, key: str) -> None:
        """Journal the current value of one entity (its absence if it was removed)."""
        value = self._items(kind).get(key)
        entry = {
            "kind": kind,
            "key": key,
            "value": None if value is None else attrs.asdict(value),
            "next_table_uid": self.next_table_uid,
        }
        with path.with_suffix(".log").open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    @classmethod
    def load(cls, path: Path) -> Catalog:
        raw = json.loads(path.read_text())
        catalog = cls(
            **{kind: {k: _entity(kind, v) for k, v in raw[kind].items()} for kind in KINDS},
            next_table_uid=raw["next_table_uid"],
        )
        journal = path.with_suffix(".log")
        lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # a record cut short by a crash: it was never acknowledged
            items = catalog._items(entry["kind"])
            if entry["value"] is None:
                items.pop(entry["key"], None)
            else:
                items[entry["key"]] = _entity(entry["kind"], entry["value"])
            catalog.next_table_uid = entry["next_table_uid"]
        return catalog
