"""Typed rows of the KalamDB system tables kalamfuzz reads (HTTP_SQL.md §4).

Each class is built from a converted row dict with :meth:`from_row`; unknown or missing columns are
tolerated (``None``) so that a server build with a slightly different column list still reads.
Password hashes and credentials are never copied.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from attrs import frozen

__all__ = ["Job", "LiveQueryRow", "StorageRow", "TableRow", "UserRow"]

JOB_FINAL_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})
JOB_OK_STATUSES = frozenset({"completed", "skipped"})


def _s(row: Mapping[str, Any], key: str) -> str | None:
    v = row.get(key)
    return None if v is None else str(v)


def _i(row: Mapping[str, Any], key: str) -> int | None:
    v = row.get(key)
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _t(row: Mapping[str, Any], key: str) -> dt.datetime | None:
    v = row.get(key)
    return v if isinstance(v, dt.datetime) else None


def _j(row: Mapping[str, Any], key: str) -> Any:
    v = row.get(key)
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


@frozen
class Job:
    """A ``system.jobs`` row."""

    job_id: str
    job_type: str | None
    status: str | None
    message: str | None
    parameters: Any
    idempotency_key: str | None
    retry_count: int | None
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    exception_trace: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in JOB_FINAL_STATUSES

    @property
    def ok(self) -> bool:
        """``completed`` or ``skipped`` (the repo's own test helper's notion of success)."""
        return self.status in JOB_OK_STATUSES

    @property
    def table_id(self) -> str | None:
        """``"ns.table"`` from the flush parameters, if present."""
        p = self.parameters
        if isinstance(p, dict) and isinstance(p.get("table_id"), str):
            return str(p["table_id"])
        return None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(
            job_id=str(row.get("job_id")),
            job_type=_s(row, "job_type"),
            status=_s(row, "status"),
            message=_s(row, "message"),
            parameters=_j(row, "parameters"),
            idempotency_key=_s(row, "idempotency_key"),
            retry_count=_i(row, "retry_count"),
            created_at=_t(row, "created_at"),
            started_at=_t(row, "started_at"),
            finished_at=_t(row, "finished_at"),
            exception_trace=_s(row, "exception_trace"),
        )


@frozen
class LiveQueryRow:
    """A ``system.live`` row (one active subscription on the answering node)."""

    live_id: str
    connection_id: str | None
    subscription_id: str | None
    namespace_id: str | None
    table_name: str | None
    user_id: str | None
    query: str | None
    options: Any
    status: str | None
    changes: int | None
    created_at: dt.datetime | None
    last_update: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LiveQueryRow:
        return cls(
            live_id=str(row.get("live_id")),
            connection_id=_s(row, "connection_id"),
            subscription_id=_s(row, "subscription_id"),
            namespace_id=_s(row, "namespace_id"),
            table_name=_s(row, "table_name"),
            user_id=_s(row, "user_id"),
            query=_s(row, "query"),
            options=_j(row, "options"),
            status=_s(row, "status"),
            changes=_i(row, "changes"),
            created_at=_t(row, "created_at"),
            last_update=_t(row, "last_update"),
        )


@frozen
class UserRow:
    """A ``system.users`` row (without password hash or auth data)."""

    user_id: str
    role: str | None
    email: str | None
    auth_type: str | None
    storage_mode: str | None
    storage_id: str | None
    created_at: dt.datetime | None
    deleted_at: dt.datetime | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> UserRow:
        return cls(
            user_id=str(row.get("user_id")),
            role=_s(row, "role"),
            email=_s(row, "email"),
            auth_type=_s(row, "auth_type"),
            storage_mode=_s(row, "storage_mode"),
            storage_id=_s(row, "storage_id"),
            created_at=_t(row, "created_at"),
            deleted_at=_t(row, "deleted_at"),
        )


@frozen
class StorageRow:
    """A ``system.storages`` row (without credentials)."""

    storage_id: str
    storage_name: str | None
    storage_type: str | None
    base_directory: str | None
    shared_tables_template: str | None
    user_tables_template: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StorageRow:
        return cls(
            storage_id=str(row.get("storage_id")),
            storage_name=_s(row, "storage_name"),
            storage_type=_s(row, "storage_type"),
            base_directory=_s(row, "base_directory"),
            shared_tables_template=_s(row, "shared_tables_template"),
            user_tables_template=_s(row, "user_tables_template"),
        )


@frozen
class TableRow:
    """A ``system.tables`` row; ``table_type`` is lowercase (``user|shared|stream|system``)."""

    namespace_id: str
    table_name: str
    table_type: str | None
    storage_id: str | None
    version: int | None
    options: Any
    created_at: dt.datetime | None

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace_id}.{self.table_name}"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TableRow:
        return cls(
            namespace_id=str(row.get("namespace_id")),
            table_name=str(row.get("table_name")),
            table_type=_s(row, "table_type"),
            storage_id=_s(row, "storage_id"),
            version=_i(row, "version"),
            options=_j(row, "options"),
            created_at=_t(row, "created_at"),
        )
