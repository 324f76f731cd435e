"""The system.* tables (users, namespaces, tables, storages, jobs, live, cluster) as Arrow tables,
with KalamDB's column names and types, built from the catalog on every read."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .catalog import Catalog
from .errors import exec_error

if TYPE_CHECKING:
    from .engine import Engine

T = pa.timestamp("us")


def _ts(value: int | None) -> Any:
    return (
        None
        if value is None
        else dt.datetime.fromtimestamp(value / 1000, dt.UTC).replace(tzinfo=None)
    )


def _users(catalog: Catalog) -> pa.Table:
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("password_hash", pa.string()),
            ("role", pa.string()),
            ("email", pa.string()),
            ("auth_type", pa.string()),
            ("created_at", T),
            ("updated_at", T),
            ("last_login_at", T),
            ("deleted_at", T),
        ]
    )
    rows = [
        {
            "user_id": u.user_id,
            "password_hash": "***",
            "role": u.role,
            "email": u.email,
            "auth_type": "internal",
            "created_at": _ts(u.created_at),
            "updated_at": _ts(u.updated_at),
            "last_login_at": _ts(u.last_login_at),
            "deleted_at": _ts(u.deleted_at),
        }
        for u in catalog.users.values()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _namespaces(catalog: Catalog) -> pa.Table:
    schema = pa.schema(
        [
            ("namespace_id", pa.string()),
            ("name", pa.string()),
            ("created_at", T),
            ("options", pa.string()),
            ("table_count", pa.int32()),
        ]
    )
    rows = [
        {
            "namespace_id": n.namespace_id,
            "name": n.namespace_id,
            "created_at": _ts(n.created_at),
            "options": None,
            "table_count": sum(t.namespace == n.namespace_id for t in catalog.tables.values()),
        }
        for n in catalog.namespaces.values()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _tables(catalog: Catalog) -> pa.Table:
    schema = pa.schema(
        [
            ("namespace_id", pa.string()),
            ("table_name", pa.string()),
            ("table_type", pa.string()),
            ("storage_id", pa.string()),
            ("version", pa.int32()),
            ("options", pa.string()),
            ("comment", pa.string()),
            ("updated_at", T),
            ("created_at", T),
        ]
    )
    rows = [
        {
            "namespace_id": t.namespace,
            "table_name": t.name,
            "table_type": t.table_type,
            "storage_id": t.storage_id,
            "version": t.version,
            "options": json.dumps(
                {
                    "access_level": t.access_level,
                    "ttl_seconds": t.ttl_seconds,
                    "flush_policy": t.flush_policy,
                }
            ),
            "comment": None,
            "updated_at": _ts(t.updated_at),
            "created_at": _ts(t.created_at),
        }
        for t in catalog.tables.values()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _storages(catalog: Catalog) -> pa.Table:
    schema = pa.schema(
        [
            ("storage_id", pa.string()),
            ("storage_name", pa.string()),
            ("description", pa.string()),
            ("storage_type", pa.string()),
            ("base_directory", pa.string()),
            ("credentials", pa.string()),
            ("config_json", pa.string()),
            ("shared_tables_template", pa.string()),
            ("user_tables_template", pa.string()),
            ("created_at", T),
            ("updated_at", T),
        ]
    )
    rows = [
        {
            "storage_id": s.storage_id,
            "storage_name": s.storage_name,
            "description": s.description,
            "storage_type": s.storage_type,
            "base_directory": s.base_directory,
            "credentials": None,
            "config_json": None,
            "shared_tables_template": s.shared_tables_template,
            "user_tables_template": s.user_tables_template,
            "created_at": _ts(s.created_at),
            "updated_at": _ts(s.updated_at),
        }
        for s in catalog.storages.values()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _jobs(catalog: Catalog) -> pa.Table:
    schema = pa.schema(
        [
            ("job_id", pa.string()),
            ("job_type", pa.string()),
            ("status", pa.string()),
            ("leader_status", pa.string()),
            ("parameters", pa.string()),
            ("message", pa.string()),
            ("exception_trace", pa.string()),
            ("idempotency_key", pa.string()),
            ("queue", pa.string()),
            ("priority", pa.int32()),
            ("retry_count", pa.int32()),
            ("max_retries", pa.int32()),
            ("memory_used", pa.int64()),
            ("cpu_used", pa.int64()),
            ("created_at", T),
            ("updated_at", T),
            ("started_at", T),
            ("finished_at", T),
            ("node_id", pa.int64()),
            ("leader_node_id", pa.int64()),
        ]
    )
    rows = [
        {
            "job_id": j.job_id,
            "job_type": j.job_type,
            "status": j.status,
            "leader_status": None,
            "parameters": j.parameters,
            "message": j.message,
            "exception_trace": j.exception_trace,
            "idempotency_key": j.idempotency_key,
            "queue": None,
            "priority": 0,
            "retry_count": j.retry_count,
            "max_retries": 3,
            "memory_used": None,
            "cpu_used": None,
            "created_at": _ts(j.created_at),
            "updated_at": _ts(j.updated_at),
            "started_at": _ts(j.started_at),
            "finished_at": _ts(j.finished_at),
            "node_id": 1,
            "leader_node_id": 1,
        }
        for j in catalog.jobs.values()
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _cluster(catalog: Catalog) -> pa.Table:
    return pa.table({"node_id": pa.array([1], pa.int64()), "is_self": [True], "is_leader": [True]})


_FROM_CATALOG: dict[str, Callable[[Catalog], pa.Table]] = {
    "users": _users,
    "namespaces": _namespaces,
    "tables": _tables,
    "storages": _storages,
    "jobs": _jobs,
    "cluster": _cluster,
}


def system_table(engine: Engine, name: str) -> pa.Table:
    build = _FROM_CATALOG.get(name)
    if build is not None:
        return build(engine.catalog)
    if name == "live" and engine.live_rows is not None:
        return engine.live_rows()
    raise exec_error(f"Table not found: system.{name}")
