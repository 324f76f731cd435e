"""Namespaces and tables: CREATE/DROP NAMESPACE, CREATE/DROP/ALTER TABLE."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from typing import TYPE_CHECKING

from . import binding as B
from . import parse as P
from .access import require_admin
from .bugs import ALTER_IGNORES_OWNER, DROP_COLUMN_RESURRECTS
from .catalog import Column, Job, Namespace, TableDef
from .errors import denied, exec_error, invalid_sql
from .session import Plan, Result, Session, now_ms
from .store import TableData
from .types import coerce

if TYPE_CHECKING:
    from .engine import Engine

TABLE_OPTIONS = {
    "TYPE",
    "STORAGE_ID",
    "USE_USER_STORAGE",
    "FLUSH_POLICY",
    "DELETED_RETENTION_HOURS",
    "TTL_SECONDS",
    "ACCESS_LEVEL",
}


def plan_namespace(engine: Engine, session: Session, sql: str) -> Plan:
    require_admin(session, "namespace operations")
    m = re.match(
        r"^(CREATE|DROP)\s+NAMESPACE\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?([A-Za-z0-9_]+)\s*(CASCADE)?\s*$",
        sql,
        re.IGNORECASE,
    )
    if not m:
        raise invalid_sql("Invalid NAMESPACE statement")
    verb, guarded, name, cascade = (
        m.group(1).upper(),
        bool(m.group(2)),
        m.group(3),
        bool(m.group(4)),
    )
    catalog = engine.catalog

    def run() -> Result:
        if verb == "CREATE":
            P.validate_identifier(name, "namespace")
            if name.lower() in P.RESERVED_NAMESPACES or name.startswith("_"):
                raise exec_error(f"Invalid operation: namespace name '{name}' is reserved")
            if name in catalog.namespaces:
                if guarded:
                    return Result(0, session.user_id, f"Namespace '{name}' already exists")
                raise exec_error(f"Already exists: Namespace '{name}' already exists")
            catalog.namespaces[name] = Namespace(name, now_ms())
            engine.record("namespaces", name)
            return Result(0, session.user_id, f"Namespace '{name}' created successfully")
        if name not in catalog.namespaces:
            if guarded:
                return Result(0, session.user_id, f"Namespace '{name}' does not exist")
            raise exec_error(f"Namespace not found: {name}")
        tables = [t for t in catalog.tables.values() if t.namespace == name]
        if tables and not cascade:
            raise exec_error(
                f"Invalid operation: Namespace '{name}' contains {len(tables)} table(s); drop them first or use CASCADE"
            )
        for t in tables:
            drop_table(engine, t)
        del catalog.namespaces[name]
        engine.save_catalog()
        return Result(0, session.user_id, f"Namespace '{name}' dropped successfully")

    return run


def plan_create_table(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    spec = P.parse_create_table(sql)
    catalog = engine.catalog

    def run() -> Result:
        namespace = spec.namespace or ns
        opts = dict(spec.options)
        for k in opts:
            if k not in TABLE_OPTIONS:
                raise invalid_sql(f"Unknown table option '{k}'")
        kind = spec.table_type
        if "TYPE" in opts:
            t = opts["TYPE"].lower()
            if t not in ("user", "shared", "stream"):
                raise invalid_sql(f"Invalid table TYPE '{opts['TYPE']}'")
            if kind and kind != t:
                raise invalid_sql("Table type prefix and TYPE option disagree")
            kind = t
        if kind is None:
            kind = (
                "user"
                if session.role in ("user", "service") and namespace == session.user_id
                else "shared"
            )
        if namespace not in catalog.namespaces:
            # KalamDB's NamespaceNotFound: shown to every caller, though the text lacks the class.
            raise exec_error(
                f"Namespace '{namespace}' does not exist. Create it first with CREATE NAMESPACE {namespace}",
                safe=True,
            )
        if session.role == "user" and kind == "shared":
            raise denied("Access denied: role 'user' cannot create SHARED tables")
        if catalog.table(namespace, spec.name) is not None:
            if spec.if_not_exists:
                return Result(0, session.user_id, f"Table {namespace}.{spec.name} already exists")
            raise exec_error(f"Already exists: Table {namespace}.{spec.name} already exists")
        ttl = None
        if kind == "stream":
            if "TTL_SECONDS" not in opts:
                raise exec_error("Invalid operation: STREAM tables must specify 'TTL_SECONDS'")
            try:
                ttl = int(opts["TTL_SECONDS"])
            except ValueError:
                raise invalid_sql("TTL_SECONDS must be an integer") from None
        elif "TTL_SECONDS" in opts:
            raise exec_error("Invalid operation: TTL_SECONDS is only supported for STREAM tables")
        level = None
        if "ACCESS_LEVEL" in opts:
            if kind != "shared":
                raise exec_error(
                    "Invalid operation: ACCESS_LEVEL is only supported for SHARED tables"
                )
            level = opts["ACCESS_LEVEL"].lower()
            if level not in ("public", "private", "restricted", "dba"):
                raise invalid_sql(f"Invalid ACCESS_LEVEL '{opts['ACCESS_LEVEL']}'")
        elif kind == "shared":
            level = "private"
        pks = [c for c in spec.columns if c.pk]
        if kind in ("user", "shared") and not pks:
            raise exec_error(
                f"Invalid operation: {kind.capitalize()} tables require a PRIMARY KEY column"
            )
        if kind == "stream" and not pks:
            raise exec_error(
                "Invalid operation: kalamfuzz.sim needs a PRIMARY KEY on STREAM tables"
            )
        storage_id = None if kind == "stream" else opts.get("STORAGE_ID", "local")
        if storage_id is not None and storage_id not in catalog.storages:
            raise exec_error(f"Invalid operation: Storage '{storage_id}' does not exist")
        ts = now_ms()
        columns = [
            Column(i + 1, c.name, c.kind, c.nullable, c.pk, c.default)
            for i, c in enumerate(spec.columns)
        ]
        table = TableDef(
            uid=catalog.next_table_uid,
            namespace=namespace,
            name=spec.name,
            table_type=kind,
            columns=columns,
            storage_id=storage_id,
            access_level=level,
            ttl_seconds=ttl,
            flush_policy=opts.get("FLUSH_POLICY"),
            created_at=ts,
            updated_at=ts,
            next_column_id=len(columns) + 1,
            owner=session.user_id,
        )
        table.snapshot_version()
        catalog.next_table_uid += 1
        catalog.tables[table.table_id.lower()] = table
        engine.data[table.uid] = TableData()
        engine.record("tables", table.table_id.lower())
        return Result(
            0,
            session.user_id,
            f"CREATE TABLE via Raft consensus: Table {table.table_id} created successfully",
        )

    return run


def drop_table(engine: Engine, table: TableDef) -> str:
    """Forget the table and remove its cold files; returns the id of the cleanup job."""
    dirs = [] if table.table_type == "stream" else [d for _, d in engine.scope_dirs(table)]
    del engine.catalog.tables[table.table_id.lower()]
    engine.data.pop(table.uid, None)
    job_id = f"CL-{os.urandom(6).hex()}"
    ts = now_ms()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    if dirs and table.table_type == "user":
        with contextlib.suppress(OSError):
            dirs[0].parent.rmdir()
    engine.catalog.jobs[job_id] = Job(
        job_id,
        "cleanup",
        "completed",
        json.dumps({"table_id": table.table_id}),
        f"cleanup-{table.table_id}",
        "Table data removed",
        None,
        ts,
        ts,
        ts,
        ts,
    )
    return job_id


def plan_drop_table(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    m = re.match(
        r"^DROP\s+(?:(?:USER|SHARED|STREAM)\s+)?TABLE\s+(IF\s+EXISTS\s+)?([A-Za-z0-9_.\"]+)\s*$",
        sql,
        re.IGNORECASE,
    )
    if not m:
        raise invalid_sql("Invalid DROP TABLE statement")
    require_admin(session, "DROP TABLE")

    def run() -> Result:
        namespace, name = P._qualified(m.group(2))
        table = engine.catalog.table(namespace or ns, name)
        if table is None:
            if m.group(1):
                return Result(0, session.user_id, f"Table {namespace or ns}.{name} does not exist")
            raise exec_error(f"Table not found: {namespace or ns}.{name}")
        for job in engine.catalog.jobs.values():
            if (
                job.job_type == "flush"
                and job.status in ("new", "queued", "running")
                and table.table_id in job.parameters
            ):
                job.status, job.message, job.finished_at = "cancelled", "Table dropped", now_ms()
                engine.record("jobs", job.job_id)
        job_id = drop_table(engine, table)
        engine.record("tables", table.table_id.lower())
        engine.record("jobs", job_id)
        return Result(
            0,
            session.user_id,
            f"Table {table.table_id} dropped successfully. Cleanup job: {job_id}",
        )

    return run


def plan_alter_table(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    spec = P.parse_alter_table(sql)

    def run() -> Result:
        table = engine.table(spec.namespace or ns, spec.name)
        if session.role == "user" and table.table_type == "shared":
            raise denied("Access denied: role 'user' cannot alter SHARED tables")
        if (
            session.role == "user"
            and table.owner != session.user_id
            and not engine.has(ALTER_IGNORES_OWNER)
        ):
            raise denied("Insufficient privileges to alter table: it belongs to another user")
        if spec.action == "add":
            assert spec.column is not None
            c = spec.column
            if table.column(c.name) is not None:
                raise exec_error(
                    f"Already exists: Column '{c.name}' already exists in {table.table_id}"
                )
            if c.pk:
                raise exec_error("Invalid operation: cannot add a PRIMARY KEY column")
            if not c.nullable and c.default is None:
                raise exec_error(f"Invalid operation: NOT NULL column '{c.name}' needs a DEFAULT")
            if c.default:
                # Evaluated only to refuse a DEFAULT that cannot be computed or coerced. Rows
                # written before the ALTER read NULL, hot and cold: KalamDB applies a default to
                # later INSERTs only, not retroactively (smoke_test_alter_with_data.rs).
                probe = Column(0, c.name, c.kind, default=c.default)
                coerce(B.default(engine, probe, session), c.kind, c.name)
            col_id = table.next_column_id
            if engine.has(DROP_COLUMN_RESURRECTS) and c.name.lower() in table.dropped:
                col_id = table.dropped[c.name.lower()]
            else:
                table.next_column_id += 1
            table.columns.append(Column(col_id, c.name, c.kind, c.nullable, False, c.default))
            message = f"Column '{c.name}' added to {table.table_id}"
        else:
            assert spec.column_name is not None
            col = table.column(spec.column_name)
            if col is None:
                raise exec_error(f"Column '{spec.column_name}' not found in {table.table_id}")
            if col.pk:
                raise exec_error("Invalid operation: cannot drop the PRIMARY KEY column")
            table.columns.remove(col)
            table.dropped[col.name.lower()] = col.id
            message = f"Column '{col.name}' dropped from {table.table_id}"
        table.version += 1
        table.updated_at = now_ms()
        table.snapshot_version()
        for scope in engine.data[table.uid].scopes.values():
            scope.epoch += 1
        engine.record("tables", table.table_id.lower())
        return Result(0, session.user_id, message)

    return run
