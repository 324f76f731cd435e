"""Statement execution: the catalog, the two tiers, permissions, flush jobs and change events.

Everything here runs on the server's event loop thread, so a statement is atomic with respect to
other requests and to live-query dispatch; only Parquet writing moves to a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pyarrow as pa
import sqlglot
from attrs import define, frozen
from sqlglot import exp

from . import parse as P
from .auth import hash_password, password_problem
from .catalog import ADMIN_ROLES, Catalog, Column, Job, Namespace, Storage, TableDef, User
from .cold import load_segments, scope_dir, write_segment
from .config import SimConfig
from .errors import SqlError, denied, exec_error, invalid_sql
from .query import ArrowCache, run_sql, versions_to_arrow, visible_versions
from .seq import SeqGenerator, seq_ms
from .store import Scope, TableData, Version, WriteAheadLog, remove_version, replay, rewrite
from .types import arrow_to_kalam, coerce, table_to_json_rows

MAX_SQL = 1024 * 1024
ROLE_WORDS = {
    "dba": "dba",
    "admin": "dba",
    "service": "service",
    "developer": "service",
    "analyst": "service",
    "user": "user",
    "viewer": "user",
    "readonly": "user",
    "system": "system",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@frozen
class Session:
    user_id: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role in ADMIN_ROLES


@define
class Result:
    row_count: int
    as_user: str
    message: str | None = None
    schema: list[dict[str, Any]] | None = None
    rows: list[list[Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.schema is not None:
            out["schema"] = self.schema
        if self.rows is not None:
            out["rows"] = self.rows
        out["row_count"] = self.row_count
        if self.message is not None:
            out["message"] = self.message
        out["as_user"] = self.as_user
        return out


@frozen
class Change:
    """One committed row change, for live-query dispatch."""

    table: TableDef
    scope: str
    kind: str  # insert | update | delete
    new: Version | None
    old: Version | None
    old_was_cold: bool = False


Plan = Callable[[], Result]


def _qualified_name(table: exp.Table, namespace: str) -> tuple[str, str]:
    return (table.db or namespace), table.name


def can_read_shared(role: str, level: str | None) -> bool:
    level = level or "private"
    if level == "public":
        return True
    if level in ("private", "restricted"):
        return role in ("service", "dba", "system")
    return role in ADMIN_ROLES


class Engine:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.bugs = config.bugs
        self.dir = config.data_path / "sim"
        self.catalog = Catalog()
        self.data: dict[int, TableData] = {}
        self.seq = SeqGenerator(config.worker_id)
        self.listeners: list[Callable[[list[Change]], None]] = []
        self.cache = ArrowCache()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.wal: WriteAheadLog | None = None
        self.live_rows: Callable[[], pa.Table] | None = (
            None  # system.live, provided by the live manager
        )

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.storage_dir.mkdir(parents=True, exist_ok=True)
        catalog_path = self.dir / "catalog.json"
        if catalog_path.exists():
            self.catalog = Catalog.load(catalog_path)
        self._bootstrap()
        for table in self.catalog.tables.values():
            self.data[table.uid] = TableData()
            self._load_cold(table)
        high = replay(self.dir / "hot.wal", self.data)
        self.seq.observe(high)
        self._reconcile()
        rewrite(self.dir / "hot.wal", self.data)
        self.wal = WriteAheadLog(self.dir / "hot.wal", batched="wal_batched" in self.bugs)
        for job in self.catalog.jobs.values():
            if job.status in ("new", "queued", "running", "retrying"):
                job.status, job.message = "failed", "Server restarted while the job ran"
                job.finished_at = now_ms()
        self.save_catalog()

    def close(self) -> None:
        if self.wal is not None:
            self.wal.close()
            self.wal = None
        self.save_catalog()

    def save_catalog(self) -> None:
        """Write the whole catalog (at open and close, and for changes of many entities)."""
        self.catalog.save(self.dir / "catalog.json")

    def record(self, kind: str, key: str) -> None:
        """Persist a change to one entity of the catalog (``kind`` as in catalog.KINDS)."""
        self.catalog.record(self.dir / "catalog.json", kind, key)

    def _bootstrap(self) -> None:
        ts = now_ms()
        if "root" not in self.catalog.users:
            pw = self.config.root_password
            self.catalog.users["root"] = User(
                "root",
                hash_password(pw, self.config.bcrypt_cost) if pw else "",
                "system",
                "root@localhost",
                ts,
                ts,
            )
        for ns in ("default", "dba"):
            self.catalog.namespaces.setdefault(ns, Namespace(ns, ts))
        if not self.catalog.storages:
            self.catalog.storages["local"] = Storage(
                "local",
                "Local Filesystem",
                "Default local filesystem storage",
                "filesystem",
                str(self.config.storage_dir),
                self.config.shared_tables_template,
                self.config.user_tables_template,
                ts,
                ts,
            )

    def _scope_dirs(self, table: TableDef) -> list[tuple[str, Path]]:
        storage = (
            self.catalog.storages.get(table.storage_id or "local") or self.catalog.storages["local"]
        )
        if table.table_type == "shared":
            return [("", scope_dir(storage, table, None))]
        base = scope_dir(storage, table, "\0").parent
        if not base.is_dir():
            return []
        return [(d.name, d) for d in sorted(base.iterdir()) if d.is_dir()]

    def _load_cold(self, table: TableDef) -> None:
        if table.table_type == "stream":
            return
        for key, directory in self._scope_dirs(table):
            scope = self.data[table.uid].scope(key)
            for segment, versions in load_segments(directory, table):
                scope.segments.append(segment)
                # Columns added with a DEFAULT after this segment was written read the default
                # (evaluated again: the fuzzer's defaults are literals; NOW() and the like would
                # drift across a restart).
                known = {c.id for c in table.columns_at(segment.schema_version)}
                backfill = {
                    c.id: coerce(self._default(c, Session("root", "system")), c.kind, c.name)
                    for c in table.columns
                    if c.default and c.id not in known
                }
                for v in versions:
                    for col_id, value in backfill.items():
                        v.values.setdefault(col_id, value)
                    self.seq.observe(v.seq)
                    self._set_cold(scope, table, v)

    def _set_cold(self, scope: Scope, table: TableDef, v: Version) -> None:
        pk = v.values.get(table.pk.id)
        current = scope.cold.get(pk)
        if current is None or current.seq < v.seq:
            scope.cold[pk] = v

    def _reconcile(self) -> None:
        # A kill between a manifest commit and its WAL record leaves flushed versions in both tiers.
        for table in self.catalog.tables.values():
            for scope in self.data[table.uid].scopes.values():
                for pk, cold in scope.cold.items():
                    for v in list(scope.hot.get(pk, [])):
                        if v.seq <= cold.seq:
                            remove_version(scope, pk, v.seq)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ------------------------------------------------------------------ requests
    def execute(
        self, session: Session, sql: str, params: list[Any] | None, namespace: str | None
    ) -> list[Result]:
        if len(sql) > MAX_SQL:
            raise invalid_sql("SQL query too long")
        statements = P.split_statements(sql)
        if not statements:
            raise SqlError("EMPTY_SQL", "No SQL statements provided", 400, safe=True)
        if params:
            if len(statements) > 1:
                raise SqlError(
                    "PARAMS_WITH_BATCH",
                    "Parameters not supported with multi-statement batches",
                    400,
                    safe=True,
                )
            statements = [P.bind_params(statements[0], params)]
        ns = namespace or "default"
        plans = [self.plan(session, s, ns) for s in statements]
        results = []
        for k, run in enumerate(plans, start=1):
            try:
                results.append(run())
            except SqlError as exc:
                if exc.code == "SQL_EXECUTION_ERROR":
                    exc.message = f"Statement {k} failed: {exc.message}"
                raise
        if len(results) > 1:
            results = _fold(results, session.user_id)
        return results

    def plan(self, session: Session, sql: str, ns: str) -> Plan:
        words = sql.split(None, 3)
        head = " ".join(w.upper() for w in words[:3])
        first = words[0].upper()
        if first in ("SELECT", "WITH"):
            return self._plan_select(session, sql, ns)
        if first == "INSERT":
            return self._plan_insert(session, sql, ns)
        if first == "UPDATE":
            return self._plan_update(session, sql, ns)
        if first == "DELETE":
            return self._plan_delete(session, sql, ns)
        if first == "EXECUTE":
            return self._plan_execute_as(session, sql, ns)
        if re.match(r"^CREATE\s+((USER|SHARED|STREAM)\s+)?TABLE\b", sql, re.IGNORECASE):
            return self._plan_create_table(session, sql, ns)
        if re.match(r"^DROP\s+((USER|SHARED|STREAM)\s+)?TABLE\b", sql, re.IGNORECASE):
            return self._plan_drop_table(session, sql, ns)
        if head.startswith("ALTER TABLE"):
            return self._plan_alter_table(session, sql, ns)
        if head.startswith(("CREATE NAMESPACE", "DROP NAMESPACE")):
            return self._plan_namespace(session, sql)
        if head.startswith(("CREATE USER", "ALTER USER", "DROP USER")):
            return self._plan_user(session, sql)
        if head.startswith(("CREATE STORAGE", "DROP STORAGE")):
            return self._plan_storage(session, sql)
        if head.startswith("STORAGE FLUSH"):
            return self._plan_flush(session, sql, ns)
        raise invalid_sql(f"Unsupported statement: {sql[:60]}")

    # ------------------------------------------------------------------ helpers
    def _table(self, namespace: str, name: str) -> TableDef:
        table = self.catalog.table(namespace, name)
        if table is None:
            raise exec_error(f"Table not found: {namespace}.{name}")
        return table

    def _require_admin(self, session: Session, what: str) -> None:
        if not session.admin:
            raise denied(f"Admin privileges (DBA or System role) required for {what}")

    def _check_write(self, session: Session, table: TableDef) -> None:
        if table.namespace == "system":
            raise exec_error(f"Cannot modify system table system.{table.name}")
        if table.table_type != "shared":
            return
        level = table.access_level or "private"
        role = session.role
        if role == "user":
            if not (level == "public" and "user_writes_public_shared" in self.bugs):
                raise denied(
                    f"Access denied: role 'user' cannot write shared table '{table.table_id}'"
                )
        elif role == "service" and level == "dba":
            raise denied(f"Access denied: shared table '{table.table_id}' requires DBA privileges")

    def _check_read(self, session: Session, table: TableDef) -> None:
        if table.table_type == "shared" and not can_read_shared(session.role, table.access_level):
            raise denied(
                f"Access denied: shared table '{table.table_id}' with access level "
                f"'{table.access_level or 'private'}' requires elevated privileges"
            )

    def scope_key(self, table: TableDef, session: Session) -> str:
        return "" if table.table_type == "shared" else session.user_id

    def _alive(self, table: TableDef) -> Callable[[Version], bool] | None:
        if table.table_type != "stream" or "stream_ttl_unenforced" in self.bugs:
            return None
        deadline = now_ms() - (table.ttl_seconds or 0) * 1000
        return lambda v: seq_ms(v.seq) > deadline

    def scope_arrow(self, table: TableDef, key: str, keep_deleted: bool) -> pa.Table:
        scope = self.data[table.uid].scope(key)
        prefer_cold = "cold_shadows_hot" in self.bugs

        def build() -> pa.Table:
            return versions_to_arrow(
                table,
                visible_versions(
                    scope,
                    keep_deleted=keep_deleted,
                    prefer_cold=prefer_cold,
                    alive=self._alive(table),
                ),
            )

        if table.table_type == "stream":
            return build()
        return self.cache.get((table.uid, key, keep_deleted, table.version, scope.epoch), build)

    def _leaky_arrow(self, table: TableDef, keep_deleted: bool) -> pa.Table:
        parts = [
            self.scope_arrow(table, k, keep_deleted) for k in list(self.data[table.uid].scopes)
        ]
        return pa.concat_tables(parts) if parts else self.scope_arrow(table, "", keep_deleted)

    def _emit(self, changes: list[Change]) -> None:
        if changes:
            for listener in self.listeners:
                listener(changes)

    def _new_version(
        self, table: TableDef, key: str, pk: Any, deleted: bool, values: dict[int, Any]
    ) -> Version:
        v = Version(self.seq.next(), deleted, values)
        scope = self.data[table.uid].scope(key)
        scope.hot.setdefault(pk, []).append(v)
        scope.epoch += 1
        assert self.wal is not None
        self.wal.write(table.uid, key, pk, v)
        return v

    # ------------------------------------------------------------------ SELECT
    def _parse(self, sql: str, kind: type[exp.Expr]) -> Any:
        try:
            tree = sqlglot.parse_one(sql, read="postgres")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
            raise invalid_sql(f"SQL parse error: {str(exc).splitlines()[0]}") from None
        if not isinstance(tree, kind):
            raise invalid_sql(f"Unsupported statement: {sql[:60]}")
        return tree

    def _bind_tables(
        self, session: Session, tree: exp.Expression, ns: str, *, keep_deleted: bool
    ) -> tuple[dict[str, pa.Table], list[TableDef]]:
        """Replace each table reference with a registered Arrow table of what the caller may see."""
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        registered: dict[str, pa.Table] = {}
        tables: list[TableDef] = []
        leak = "select_scope_leak" in self.bugs and any(True for _ in tree.find_all(exp.Or))
        for i, ref in enumerate(list(tree.find_all(exp.Table))):
            if not ref.db and ref.name.lower() in ctes:
                continue
            namespace, name = _qualified_name(ref, ns)
            reg = f"__t{i}"
            if namespace.lower() == "system":
                if not session.admin:
                    raise denied(
                        f"Access denied: system table system.{name} requires DBA or System role"
                    )
                registered[reg] = self.system_table(name.lower())
            else:
                table = self._table(namespace, name)
                self._check_read(session, table)
                tables.append(table)
                if leak and table.table_type == "user":
                    registered[reg] = self._leaky_arrow(table, keep_deleted)
                else:
                    registered[reg] = self.scope_arrow(
                        table, self.scope_key(table, session), keep_deleted
                    )
            alias = ref.alias or name
            ref.replace(
                exp.Table(
                    this=exp.to_identifier(reg), alias=exp.TableAlias(this=exp.to_identifier(alias))
                )
            )
        for user_fn in list(tree.find_all(exp.CurrentUser)):
            user_fn.replace(exp.Literal.string(session.user_id))
        for role_fn in list(tree.find_all(exp.CurrentRole)):
            role_fn.replace(exp.Literal.string(session.role))
        for call in list(tree.find_all(exp.Anonymous)):
            fname = call.name.upper()
            if fname in ("CURRENT_USER_ID", "KDB_CURRENT_USER"):
                call.replace(exp.Literal.string(session.user_id))
            elif fname == "KDB_CURRENT_ROLE":
                call.replace(exp.Literal.string(session.role))
        return registered, tables

    def _run(self, tree: exp.Expression, registered: dict[str, pa.Table]) -> pa.Table:
        try:
            return run_sql(tree.sql(dialect="postgres"), registered)
        except Exception as exc:  # DataFusion reports planning and execution errors alike
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            text = re.sub(r"__t\d+\.", "", text)
            raise exec_error(f"Execution error: {text}") from None

    def _plan_select(self, session: Session, sql: str, ns: str) -> Plan:
        tree = self._parse(sql, exp.Query)

        def run() -> Result:
            keep_deleted = any(
                c.name.lower() == "_deleted"
                for w in tree.find_all(exp.Where)
                for c in w.find_all(exp.Column)
            )
            registered, tables = self._bind_tables(session, tree, ns, keep_deleted=keep_deleted)
            if isinstance(tree, exp.Select | exp.Union):
                limit = tree.args.get("limit")
                value = None
                if limit is not None and isinstance(limit.expression, exp.Literal):
                    value = int(limit.expression.this)
                if limit is None:
                    tree.set(
                        "limit",
                        exp.Limit(expression=exp.Literal.number(self.config.default_query_limit)),
                    )
                elif value is not None and value > self.config.max_query_limit:
                    tree.set(
                        "limit",
                        exp.Limit(expression=exp.Literal.number(self.config.max_query_limit)),
                    )
            result = self._run(tree, registered)
            return Result(
                row_count=result.num_rows,
                as_user=session.user_id,
                schema=self._result_schema(result.schema, tables),
                rows=table_to_json_rows(result),
            )

        return run

    def _result_schema(self, schema: pa.Schema, tables: list[TableDef]) -> list[dict[str, Any]]:
        out = []
        for i, f in enumerate(schema):
            entry: dict[str, Any] = {
                "name": f.name,
                "data_type": arrow_to_kalam(f.type),
                "index": i,
            }
            if f.name == "_seq":
                entry["flags"] = ["nn"]
            elif f.name == "_deleted":
                entry["data_type"] = "Boolean"
            elif len(tables) == 1 and (col := tables[0].column(f.name)) is not None:
                entry["data_type"] = col.kind
                if col.flags():
                    entry["flags"] = col.flags()
            out.append(entry)
        return out

    # ------------------------------------------------------------------ INSERT
    def _literal(self, node: exp.Expr, session: Session) -> Any:
        if isinstance(node, exp.Paren):
            return self._literal(node.this, session)
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return node.this
            text = node.this
            return float(text) if any(ch in text for ch in ".eE") else int(text)
        if (
            isinstance(node, exp.Neg)
            and isinstance(node.this, exp.Literal)
            and not node.this.is_string
        ):
            value = self._literal(node.this, session)
            return -value
        if isinstance(node, exp.CurrentUser):
            return session.user_id
        registered: dict[str, pa.Table] = {}
        wrapper = exp.select(node.copy().as_("v"))
        for n in list(wrapper.find_all(exp.CurrentUser)):
            n.replace(exp.Literal.string(session.user_id))
        result = self._run(wrapper, registered)
        col = result.column(0)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        return col.to_pylist()[0]

    def _default(self, col: Column, session: Session) -> Any:
        text = (col.default or "").strip()
        upper = text.upper().replace(" ", "")
        if upper in ("SNOWFLAKE_ID()",):
            return self.seq.next()
        if upper in ("UUID_V7()", "UUID()"):
            return str(uuid.uuid4())
        if upper == "ULID()":
            return uuid.uuid4().hex.upper()[:26]
        if upper in ("NOW()", "CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP()"):
            return int(time.time() * 1_000_000)
        if upper in ("CURRENT_USER()", "CURRENT_USER"):
            return session.user_id
        try:
            return self._literal(sqlglot.parse_one(text, read="postgres"), session)
        except SqlError:
            raise
        except Exception:
            raise exec_error(
                f"Invalid DEFAULT expression for column '{col.name}': {text}"
            ) from None

    def _target(self, node: exp.Expression, ns: str) -> TableDef:
        table = node.this if isinstance(node, exp.Schema) else node
        if not isinstance(table, exp.Table):
            raise invalid_sql("Unsupported INSERT target")
        namespace, name = _qualified_name(table, ns)
        if namespace.lower() == "system":
            raise exec_error(f"Cannot insert into system table system.{name}")
        return self._table(namespace, name)

    def _plan_insert(
        self, session: Session, sql: str, ns: str, scope_user: str | None = None
    ) -> Plan:
        tree = self._parse(sql, exp.Insert)
        values = tree.expression
        if not isinstance(values, exp.Values):
            raise invalid_sql("Only INSERT ... VALUES is supported")
        names = (
            [i.name for i in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None
        )

        def run() -> Result:
            table = self._target(tree.this, ns)
            self._check_write(session, table)
            columns = [table.column(n) for n in names] if names else list(table.columns)
            for n, c in zip(names or [], columns, strict=False):
                if c is None:
                    raise exec_error(
                        f"Schema error: column '{n}' not found in table {table.table_id}", safe=True
                    )
            key = self.scope_key(table, Session(scope_user or session.user_id, session.role))
            scope = self.data[table.uid].scope(key)
            pk_col = table.pk
            rows: list[tuple[Any, dict[int, Any]]] = []
            for tup in values.expressions:
                exprs = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
                if len(exprs) != len(columns):
                    raise exec_error(
                        f"Insert has {len(exprs)} values but {len(columns)} columns", safe=True
                    )
                row: dict[int, Any] = {}
                for c, e in zip(columns, exprs, strict=True):
                    assert c is not None
                    row[c.id] = coerce(self._literal(e, session), c.kind, c.name)
                for c in table.columns:
                    if c.id not in row:
                        row[c.id] = (
                            coerce(self._default(c, session), c.kind, c.name) if c.default else None
                        )
                    if row[c.id] is None and not c.nullable:
                        raise exec_error(f"Column '{c.name}' cannot be null", safe=True)
                rows.append((row[pk_col.id], row))
            seen: set[Any] = set()
            for pk, _ in rows:
                if pk in seen:
                    raise exec_error(
                        f"Already exists: Primary key violation: value '{pk}' appears multiple times in the insert batch",
                        safe=True,
                    )
                seen.add(pk)
                if table.table_type == "stream":
                    continue
                if "dup_pk_cold" in self.bugs:
                    hot = scope.hot.get(pk)
                    current = hot[-1] if hot else None
                else:
                    current = scope.latest(pk)
                if current is not None and not current.deleted:
                    raise exec_error(
                        f"Already exists: Primary key violation: value '{pk}' already exists in column '{pk_col.name}'",
                        safe=True,
                    )
            changes = []
            for pk, row in rows:
                v = self._new_version(table, key, pk, False, row)
                changes.append(Change(table, key, "insert", v, None))
            self._emit(changes)
            return Result(
                row_count=len(rows), as_user=session.user_id, message=f"Inserted {len(rows)} row(s)"
            )

        return run

    # ------------------------------------------------------------------ UPDATE / DELETE
    def _matching(
        self,
        session: Session,
        table_node: exp.Table,
        where: exp.Expression,
        ns: str,
        outputs: list[exp.Expr],
    ) -> tuple[TableDef, pa.Table]:
        namespace, name = _qualified_name(table_node, ns)
        table = self._table(namespace, name)
        query = exp.select(*outputs).from_(
            exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(namespace))
        )
        query = query.where(where.copy())
        registered, _ = self._bind_tables(session, query, ns, keep_deleted=False)
        return table, self._run(query, registered)

    def _plan_update(self, session: Session, sql: str, ns: str) -> Plan:
        tree = self._parse(sql, exp.Update)

        def run() -> Result:
            namespace, name = _qualified_name(tree.this, ns)
            table = self._table(namespace, name)
            if table.table_type == "stream":
                raise exec_error(
                    "Invalid operation: UPDATE not supported for STREAM tables", safe=True
                )
            self._check_write(session, table)
            where = tree.args.get("where")
            if where is None:
                raise exec_error("Invalid operation: UPDATE requires a WHERE clause", safe=True)
            assigns: list[tuple[Column, exp.Expression]] = []
            for eq in tree.expressions:
                col = table.column(eq.this.name)
                if col is None:
                    raise exec_error(
                        f"Schema error: column '{eq.this.name}' not found in table {table.table_id}",
                        safe=True,
                    )
                if col.pk:
                    raise exec_error(
                        f"Invalid operation: UPDATE cannot modify primary key column '{col.name}'",
                        safe=True,
                    )
                assigns.append((col, eq.expression))
            outputs = [exp.column(table.pk.name).as_("__pk")] + [
                e.copy().as_(f"__v{i}") for i, (_, e) in enumerate(assigns)
            ]
            _, found = self._matching(session, tree.this, where.this, ns, outputs)
            key = self.scope_key(table, session)
            scope = self.data[table.uid].scope(key)
            cols = []
            for i in range(found.num_columns):
                c = found.column(i)
                if pa.types.is_timestamp(c.type):
                    c = c.cast(pa.int64())
                elif pa.types.is_date(c.type):
                    c = c.cast(pa.int32())
                cols.append(c.to_pylist())
            changes = []
            for r in range(found.num_rows):
                pk = cols[0][r]
                old = scope.latest(pk)
                if old is None or old.deleted:
                    continue
                values = dict(old.values)
                for i, (col, _) in enumerate(assigns):
                    values[col.id] = coerce(cols[i + 1][r], col.kind, col.name)
                    if values[col.id] is None and not col.nullable:
                        raise exec_error(f"Column '{col.name}' cannot be null", safe=True)
                if all(values.get(c.id) == old.values.get(c.id) for c in table.columns):
                    continue  # KalamDB's update_assignments_noop: not written, not counted
                was_cold = scope.hot.get(pk) is None
                v = self._new_version(table, key, pk, False, values)
                changes.append(Change(table, key, "update", v, old, was_cold))
            self._emit(changes)
            return Result(
                row_count=len(changes),
                as_user=session.user_id,
                message=f"Updated {len(changes)} row(s)",
            )

        return run

    def _plan_delete(self, session: Session, sql: str, ns: str) -> Plan:
        tree = self._parse(sql, exp.Delete)

        def run() -> Result:
            namespace, name = _qualified_name(tree.this, ns)
            table = self._table(namespace, name)
            self._check_write(session, table)
            where = tree.args.get("where")
            if where is None:
                raise exec_error("Invalid operation: DELETE requires a WHERE clause", safe=True)
            key = self.scope_key(table, session)
            scope = self.data[table.uid].scope(key)
            changes = []
            if table.table_type == "stream":
                _, found = self._matching(
                    session, tree.this, where.this, ns, [exp.column("_seq").as_("__s")]
                )
                doomed = set(found.column(0).to_pylist())
                for pk, versions in list(scope.hot.items()):
                    for v in versions:
                        if v.seq in doomed:
                            remove_version(scope, pk, v.seq)
                            assert self.wal is not None
                            self.wal.hard_delete(table.uid, key, pk, v.seq)
                            changes.append(Change(table, key, "delete", None, v))
            else:
                _, found = self._matching(
                    session, tree.this, where.this, ns, [exp.column(table.pk.name).as_("__pk")]
                )
                for pk in found.column(0).to_pylist():
                    old = scope.latest(pk)
                    if old is None or old.deleted:
                        continue
                    was_cold = scope.hot.get(pk) is None
                    v = self._new_version(table, key, pk, True, dict(old.values))
                    changes.append(Change(table, key, "delete", v, old, was_cold))
            self._emit(changes)
            return Result(
                row_count=len(changes),
                as_user=session.user_id,
                message=f"Deleted {len(changes)} row(s)",
            )

        return run

    # ------------------------------------------------------------------ EXECUTE AS USER
    def _plan_execute_as(self, session: Session, sql: str, ns: str) -> Plan:
        target, inner = P.parse_execute_as(sql)
        target_user = self.catalog.users.get(target)
        target_role = target_user.role if target_user and target_user.deleted_at is None else "user"
        allowed = {
            "system": ("system", "dba", "service", "user"),
            "dba": ("dba", "service", "user"),
            "service": ("service", "user"),
            "user": (),
        }[session.role]
        if target != session.user_id and target_role not in allowed:
            raise denied(
                f"EXECUTE AS USER is not authorized: role '{session.role}' cannot impersonate '{target}'"
            )
        try:
            tree = sqlglot.parse_one(inner, read="postgres")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
            raise invalid_sql(f"SQL parse error: {str(exc).splitlines()[0]}") from None
        for ref in tree.find_all(exp.Table):
            namespace, name = _qualified_name(ref, ns)
            table = self.catalog.table(namespace, name)
            if table is not None and table.table_type == "shared":
                raise exec_error(
                    f"Invalid operation: EXECUTE AS USER is not allowed on SHARED tables ({table.table_id})",
                    safe=True,
                )
        as_session = Session(target, "user")
        if isinstance(tree, exp.Insert) and "execute_as_wrong_scope" in self.bugs:
            return self._plan_insert(as_session, inner, ns, scope_user=session.user_id)
        return self.plan(as_session, inner, ns)

    # ------------------------------------------------------------------ DDL
    def _plan_namespace(self, session: Session, sql: str) -> Plan:
        self._require_admin(session, "namespace operations")
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

        def run() -> Result:
            if verb == "CREATE":
                P.validate_identifier(name, "namespace")
                if name.lower() in P.RESERVED_NAMESPACES or name.startswith("_"):
                    raise exec_error(
                        f"Invalid operation: namespace name '{name}' is reserved", safe=True
                    )
                if name in self.catalog.namespaces:
                    if guarded:
                        return Result(0, session.user_id, f"Namespace '{name}' already exists")
                    raise exec_error(
                        f"Already exists: Namespace '{name}' already exists", safe=True
                    )
                self.catalog.namespaces[name] = Namespace(name, now_ms())
                self.record("namespaces", name)
                return Result(0, session.user_id, f"Namespace '{name}' created successfully")
            if name not in self.catalog.namespaces:
                if guarded:
                    return Result(0, session.user_id, f"Namespace '{name}' does not exist")
                raise exec_error(f"Namespace not found: {name}", safe=True)
            tables = [t for t in self.catalog.tables.values() if t.namespace == name]
            if tables and not cascade:
                raise exec_error(
                    f"Invalid operation: Namespace '{name}' contains {len(tables)} table(s); drop them first or use CASCADE",
                    safe=True,
                )
            for t in tables:
                self._drop_table(t)
            del self.catalog.namespaces[name]
            self.save_catalog()
            return Result(0, session.user_id, f"Namespace '{name}' dropped successfully")

        return run

    def _plan_create_table(self, session: Session, sql: str, ns: str) -> Plan:
        spec = P.parse_create_table(sql)

        def run() -> Result:
            namespace = spec.namespace or ns
            opts = dict(spec.options)
            known = {
                "TYPE",
                "STORAGE_ID",
                "USE_USER_STORAGE",
                "FLUSH_POLICY",
                "DELETED_RETENTION_HOURS",
                "TTL_SECONDS",
                "ACCESS_LEVEL",
            }
            for k in opts:
                if k not in known:
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
            if namespace not in self.catalog.namespaces:
                raise exec_error(
                    f"Namespace '{namespace}' does not exist. Create it first with CREATE NAMESPACE {namespace}",
                    safe=True,
                )
            if session.role == "user" and kind == "shared":
                raise denied("Access denied: role 'user' cannot create SHARED tables")
            if self.catalog.table(namespace, spec.name) is not None:
                if spec.if_not_exists:
                    return Result(
                        0, session.user_id, f"Table {namespace}.{spec.name} already exists"
                    )
                raise exec_error(
                    f"Already exists: Table {namespace}.{spec.name} already exists", safe=True
                )
            ttl = None
            if kind == "stream":
                if "TTL_SECONDS" not in opts:
                    raise exec_error(
                        "Invalid operation: STREAM tables must specify 'TTL_SECONDS'", safe=True
                    )
                try:
                    ttl = int(opts["TTL_SECONDS"])
                except ValueError:
                    raise invalid_sql("TTL_SECONDS must be an integer") from None
            elif "TTL_SECONDS" in opts:
                raise exec_error(
                    "Invalid operation: TTL_SECONDS is only supported for STREAM tables", safe=True
                )
            level = None
            if "ACCESS_LEVEL" in opts:
                if kind != "shared":
                    raise exec_error(
                        "Invalid operation: ACCESS_LEVEL is only supported for SHARED tables",
                        safe=True,
                    )
                level = opts["ACCESS_LEVEL"].lower()
                if level not in ("public", "private", "restricted", "dba"):
                    raise invalid_sql(f"Invalid ACCESS_LEVEL '{opts['ACCESS_LEVEL']}'")
            elif kind == "shared":
                level = "private"
            pks = [c for c in spec.columns if c.pk]
            if kind in ("user", "shared") and not pks:
                raise exec_error(
                    f"Invalid operation: {kind.capitalize()} tables require a PRIMARY KEY column",
                    safe=True,
                )
            if kind == "stream" and not pks:
                raise exec_error(
                    "Invalid operation: kalamfuzz.sim needs a PRIMARY KEY on STREAM tables",
                    safe=True,
                )
            storage_id = None if kind == "stream" else opts.get("STORAGE_ID", "local")
            if storage_id is not None and storage_id not in self.catalog.storages:
                raise exec_error(
                    f"Invalid operation: Storage '{storage_id}' does not exist", safe=True
                )
            ts = now_ms()
            columns = [
                Column(i + 1, c.name, c.kind, c.nullable, c.pk, c.default)
                for i, c in enumerate(spec.columns)
            ]
            table = TableDef(
                uid=self.catalog.next_table_uid,
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
            )
            table.snapshot_version()
            self.catalog.next_table_uid += 1
            self.catalog.tables[table.table_id.lower()] = table
            self.data[table.uid] = TableData()
            self.record("tables", table.table_id.lower())
            return Result(
                0,
                session.user_id,
                f"CREATE TABLE via Raft consensus: Table {table.table_id} created successfully",
            )

        return run

    def _drop_table(self, table: TableDef) -> str:
        dirs = [] if table.table_type == "stream" else [d for _, d in self._scope_dirs(table)]
        del self.catalog.tables[table.table_id.lower()]
        self.data.pop(table.uid, None)
        job_id = f"CL-{os.urandom(6).hex()}"
        ts = now_ms()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        if dirs and table.table_type == "user":
            with contextlib.suppress(OSError):
                dirs[0].parent.rmdir()
        self.catalog.jobs[job_id] = Job(
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

    def _plan_drop_table(self, session: Session, sql: str, ns: str) -> Plan:
        m = re.match(
            r"^DROP\s+(?:(?:USER|SHARED|STREAM)\s+)?TABLE\s+(IF\s+EXISTS\s+)?([A-Za-z0-9_.\"]+)\s*$",
            sql,
            re.IGNORECASE,
        )
        if not m:
            raise invalid_sql("Invalid DROP TABLE statement")
        self._require_admin(session, "DROP TABLE")

        def run() -> Result:
            namespace, name = P._qualified(m.group(2))
            table = self.catalog.table(namespace or ns, name)
            if table is None:
                if m.group(1):
                    return Result(
                        0, session.user_id, f"Table {namespace or ns}.{name} does not exist"
                    )
                raise exec_error(f"Table not found: {namespace or ns}.{name}")
            for job in self.catalog.jobs.values():
                if (
                    job.job_type == "flush"
                    and job.status in ("new", "queued", "running")
                    and table.table_id in job.parameters
                ):
                    job.status, job.message, job.finished_at = (
                        "cancelled",
                        "Table dropped",
                        now_ms(),
                    )
                    self.record("jobs", job.job_id)
            job_id = self._drop_table(table)
            self.record("tables", table.table_id.lower())
            self.record("jobs", job_id)
            return Result(
                0,
                session.user_id,
                f"Table {table.table_id} dropped successfully. Cleanup job: {job_id}",
            )

        return run

    def _plan_alter_table(self, session: Session, sql: str, ns: str) -> Plan:
        spec = P.parse_alter_table(sql)

        def run() -> Result:
            table = self._table(spec.namespace or ns, spec.name)
            if session.role == "user" and table.table_type == "shared":
                raise denied("Access denied: role 'user' cannot alter SHARED tables")
            if spec.action == "add":
                assert spec.column is not None
                c = spec.column
                if table.column(c.name) is not None:
                    raise exec_error(
                        f"Already exists: Column '{c.name}' already exists in {table.table_id}",
                        safe=True,
                    )
                if c.pk:
                    raise exec_error(
                        "Invalid operation: cannot add a PRIMARY KEY column", safe=True
                    )
                if not c.nullable and c.default is None:
                    raise exec_error(
                        f"Invalid operation: NOT NULL column '{c.name}' needs a DEFAULT", safe=True
                    )
                col_id = table.next_column_id
                if "drop_column_resurrects" in self.bugs and c.name.lower() in table.dropped:
                    col_id = table.dropped[c.name.lower()]
                else:
                    table.next_column_id += 1
                default_value = (
                    coerce(
                        self._default(Column(0, c.name, c.kind, default=c.default), session),
                        c.kind,
                        c.name,
                    )
                    if c.default
                    else None
                )
                table.columns.append(Column(col_id, c.name, c.kind, c.nullable, False, c.default))
                if default_value is not None:
                    # old rows read the column's default, in both tiers (docs/contract.md);
                    # logged so that a restart replaying the WAL backfills the same rows
                    assert self.wal is not None
                    self.wal.backfill(table.uid, col_id, default_value)
                    for td in [self.data[table.uid]]:
                        for scope in td.scopes.values():
                            for versions in scope.hot.values():
                                for v in versions:
                                    v.values.setdefault(col_id, default_value)
                            for v in scope.cold.values():
                                v.values.setdefault(col_id, default_value)
                message = f"Column '{c.name}' added to {table.table_id}"
            else:
                assert spec.column_name is not None
                col = table.column(spec.column_name)
                if col is None:
                    raise exec_error(
                        f"Column '{spec.column_name}' not found in {table.table_id}", safe=True
                    )
                if col.pk:
                    raise exec_error(
                        "Invalid operation: cannot drop the PRIMARY KEY column", safe=True
                    )
                table.columns.remove(col)
                table.dropped[col.name.lower()] = col.id
                message = f"Column '{col.name}' dropped from {table.table_id}"
            table.version += 1
            table.updated_at = now_ms()
            table.snapshot_version()
            for scope in self.data[table.uid].scopes.values():
                scope.epoch += 1
            self.record("tables", table.table_id.lower())
            return Result(0, session.user_id, message)

        return run

    def _plan_user(self, session: Session, sql: str) -> Plan:
        verb = sql.split(None, 1)[0].upper()
        if verb == "CREATE":
            self._require_admin(session, "user management")
            m = re.match(
                r"^CREATE\s+USER\s+('[^']+'|\"[^\"]+\"|[A-Za-z0-9_]+)\s+WITH\s+(.*)$",
                sql,
                re.IGNORECASE | re.DOTALL,
            )
            if not m:
                raise invalid_sql(
                    "Invalid CREATE USER statement: CREATE USER name WITH PASSWORD 'pw' ROLE role"
                )
            name = P._unquote(m.group(1))
            clauses = P.parse_kv_clauses(m.group(2), {"PASSWORD", "ROLE", "EMAIL"})

            def create() -> Result:
                role = ROLE_WORDS.get(clauses.get("ROLE", "user").lower())
                if role is None:
                    raise invalid_sql(f"Invalid role '{clauses.get('ROLE')}'")
                if role == "system" and session.role != "system":
                    raise denied("Only system users may create system users")
                pw = clauses.get("PASSWORD", "")
                problem = password_problem(pw)
                if problem:
                    raise exec_error(f"Invalid operation: {problem}", safe=True)
                existing = self.catalog.users.get(name)
                if existing is not None and existing.deleted_at is None:
                    raise exec_error(f"Already exists: User '{name}' already exists", safe=True)
                ts = now_ms()
                self.catalog.users[name] = User(
                    name,
                    hash_password(pw, self.config.bcrypt_cost),
                    role,
                    clauses.get("EMAIL"),
                    ts,
                    ts,
                )
                self.record("users", name)
                return Result(0, session.user_id, f"User '{name}' created")

            return create
        if verb == "DROP":
            self._require_admin(session, "user management")
            # not `m`: mypy keeps a closure's narrowing only for a name not reassigned later
            dropped = re.match(
                r"^DROP\s+USER\s+(IF\s+EXISTS\s+)?('[^']+'|\"[^\"]+\"|[A-Za-z0-9_]+)\s*$",
                sql,
                re.IGNORECASE,
            )
            if not dropped:
                raise invalid_sql("Invalid DROP USER statement")

            def drop() -> Result:
                name = P._unquote(dropped.group(2))
                user = self.catalog.users.get(name)
                if user is None or user.deleted_at is not None:
                    if dropped.group(1):
                        return Result(0, session.user_id, f"User '{name}' does not exist")
                    raise exec_error(f"Not found: User '{name}' not found", safe=True)
                if name == "root":
                    raise exec_error("Invalid operation: cannot drop root", safe=True)
                user.deleted_at = now_ms()
                self.record("users", name)
                return Result(0, session.user_id, f"User '{name}' dropped (soft delete)")

            return drop
        m = re.match(
            r"^ALTER\s+USER\s+('[^']+'|\"[^\"]+\"|[A-Za-z0-9_]+)\s+SET\s+(PASSWORD|ROLE|EMAIL)\s+(.*)$",
            sql,
            re.IGNORECASE | re.DOTALL,
        )
        if not m:
            raise invalid_sql("Invalid ALTER USER statement")

        def alter() -> Result:
            name, what, value = P._unquote(m.group(1)), m.group(2).upper(), P._unquote(m.group(3))
            if not session.admin and (name != session.user_id or what == "ROLE"):
                raise denied(
                    "Access denied: only DBA or System users may alter other users or roles"
                )
            user = self.catalog.users.get(name)
            if user is None or user.deleted_at is not None:
                raise exec_error(f"Not found: User '{name}' not found", safe=True)
            if what == "PASSWORD":
                problem = password_problem(value)
                if problem:
                    raise exec_error(f"Invalid operation: {problem}", safe=True)
                user.password_hash = hash_password(value, self.config.bcrypt_cost)
            elif what == "ROLE":
                role = ROLE_WORDS.get(value.lower())
                if role is None:
                    raise invalid_sql(f"Invalid role '{value}'")
                user.role = role
            else:
                user.email = value
            user.updated_at = now_ms()
            self.record("users", name)
            return Result(0, session.user_id, f"User '{name}' updated")

        return alter

    def _plan_storage(self, session: Session, sql: str) -> Plan:
        self._require_admin(session, "storage management")
        # not `m`: mypy keeps a closure's narrowing only for a name not reassigned later
        dropped = re.match(
            r"^DROP\s+STORAGE\s+(IF\s+EXISTS\s+)?([A-Za-z0-9_-]+)\s*$", sql, re.IGNORECASE
        )
        if dropped:

            def drop() -> Result:
                sid = dropped.group(2)
                if sid not in self.catalog.storages:
                    if dropped.group(1):
                        return Result(0, session.user_id, f"Storage '{sid}' does not exist")
                    raise exec_error(f"Not found: Storage '{sid}' not found", safe=True)
                if sid == "local":
                    raise exec_error(
                        "Invalid operation: the default storage 'local' cannot be dropped",
                        safe=True,
                    )
                used = [t.table_id for t in self.catalog.tables.values() if t.storage_id == sid]
                if used:
                    raise exec_error(
                        f"Invalid operation: Storage '{sid}' is used by {', '.join(used)}",
                        safe=True,
                    )
                del self.catalog.storages[sid]
                self.record("storages", sid)
                return Result(0, session.user_id, f"Storage '{sid}' dropped successfully")

            return drop
        m = re.match(
            r"^CREATE\s+STORAGE\s+([A-Za-z0-9_-]+)\s+(.*)$", sql, re.IGNORECASE | re.DOTALL
        )
        if not m:
            raise invalid_sql("Invalid CREATE STORAGE statement")
        sid = m.group(1)
        clauses = P.parse_kv_clauses(
            m.group(2),
            {
                "TYPE",
                "NAME",
                "DESCRIPTION",
                "PATH",
                "BASE_DIRECTORY",
                "SHARED_TABLES_TEMPLATE",
                "USER_TABLES_TEMPLATE",
                "CREDENTIALS",
                "CONFIG",
            },
        )

        def create() -> Result:
            if clauses.get("TYPE", "").lower() != "filesystem":
                raise exec_error(
                    "Invalid operation: kalamfuzz.sim supports TYPE 'filesystem' storages only",
                    safe=True,
                )
            base = clauses.get("BASE_DIRECTORY") or clauses.get("PATH")
            if not base:
                raise invalid_sql("CREATE STORAGE needs BASE_DIRECTORY '/dir' (or PATH)")
            if sid in self.catalog.storages:
                raise exec_error(f"Already exists: Storage '{sid}' already exists", safe=True)
            try:
                Path(base).mkdir(parents=True, exist_ok=True)
                probe = Path(base) / ".kalam_health_check"
                probe.write_text("ok")
                probe.unlink()
            except OSError as exc:
                raise exec_error(
                    f"Invalid operation: storage health check failed for '{base}': {exc}", safe=True
                ) from None
            ts = now_ms()
            self.catalog.storages[sid] = Storage(
                sid,
                clauses.get("NAME", sid),
                clauses.get("DESCRIPTION", ""),
                "filesystem",
                base,
                clauses.get("SHARED_TABLES_TEMPLATE", ""),
                clauses.get("USER_TABLES_TEMPLATE", ""),
                ts,
                ts,
            )
            self.record("storages", sid)
            return Result(0, session.user_id, f"Storage '{sid}' created successfully")

        return create

    # ------------------------------------------------------------------ flush
    def _plan_flush(self, session: Session, sql: str, ns: str) -> Plan:
        if session.role not in ("service", "dba", "system"):
            raise denied("Access denied: STORAGE FLUSH requires the service, dba or system role")
        m_table = re.match(r"^STORAGE\s+FLUSH\s+TABLE\s+([A-Za-z0-9_.\"]+)\s*$", sql, re.IGNORECASE)
        m_all = re.match(
            r"^STORAGE\s+FLUSH\s+ALL(?:\s+IN\s+(?:NAMESPACE\s+)?([A-Za-z0-9_]+))?\s*$",
            sql,
            re.IGNORECASE,
        )
        if m_table:
            namespace, name = P._qualified(m_table.group(1))
            if namespace is None:
                raise invalid_sql(
                    "Table name must be qualified (namespace.table) for STORAGE FLUSH TABLE"
                )

            def flush_one() -> Result:
                table = self._table(namespace, name)
                if table.table_type == "stream":
                    raise exec_error(
                        "Invalid operation: STORAGE FLUSH TABLE is not supported for STREAM tables",
                        safe=True,
                    )
                if not any(s.has_hot() for s in self.data[table.uid].scopes.values()):
                    return Result(
                        0,
                        session.user_id,
                        f"Storage flush skipped: no pending writes for table '{table.table_id}'",
                    )
                if self._flush_pending(table):
                    return Result(
                        0,
                        session.user_id,
                        f"Storage flush skipped: a flush is already queued or running for table '{table.table_id}'",
                    )
                job = self._start_flush(table)
                return Result(
                    0,
                    session.user_id,
                    f"Storage flush started for table '{table.table_id}'. Job ID: {job.job_id}",
                )

            return flush_one
        if m_all:

            def flush_all() -> Result:
                target = m_all.group(1) or ns
                if target not in self.catalog.namespaces:
                    raise exec_error(f"Namespace not found: {target}", safe=True)
                ids = []
                for table in list(self.catalog.tables.values()):
                    if (
                        table.namespace != target
                        or table.table_type == "stream"
                        or self._flush_pending(table)
                    ):
                        continue
                    if any(s.has_hot() for s in self.data[table.uid].scopes.values()):
                        ids.append(self._start_flush(table).job_id)
                return Result(
                    0,
                    session.user_id,
                    f"Storage flush started for {len(ids)} table(s) in namespace '{target}'. Job IDs: [{', '.join(ids)}]",
                )

            return flush_all
        raise invalid_sql(
            "Invalid STORAGE FLUSH statement: STORAGE FLUSH TABLE ns.t | STORAGE FLUSH ALL [IN ns]"
        )

    def _flush_pending(self, table: TableDef) -> bool:
        return any(
            j.job_type == "flush"
            and j.status in ("new", "queued", "running")
            and j.idempotency_key == f"flush-{table.namespace}-{table.name}"
            for j in self.catalog.jobs.values()
        )

    def _start_flush(self, table: TableDef) -> Job:
        ts = now_ms()
        params = json.dumps(
            {
                "table_id": table.table_id,
                "table_type": table.table_type.capitalize(),
                "flush_threshold": None,
            }
        )
        job = Job(
            f"FL-{os.urandom(6).hex()}",
            "flush",
            "queued",
            params,
            f"flush-{table.namespace}-{table.name}",
            created_at=ts,
            updated_at=ts,
        )
        self.catalog.jobs[job.job_id] = job
        self.record("jobs", job.job_id)
        self.spawn(self._run_flush(job, table))
        return job

    def _finish(self, job: Job, status: str, message: str) -> None:
        ts = now_ms()
        job.status, job.message, job.finished_at, job.updated_at = status, message, ts, ts
        self.record("jobs", job.job_id)

    async def _run_flush(self, job: Job, table: TableDef) -> None:
        job.status, job.started_at = "running", now_ms()
        job.updated_at = job.started_at
        self.record("jobs", job.job_id)
        data = self.data.get(table.uid)
        if data is None:
            return
        # What the job flushes is fixed when it starts; writes from then on stay hot.
        taken_by_scope = [
            (key, scope, [(pk, v) for pk, versions in scope.hot.items() for v in versions])
            for key, scope in list(data.scopes.items())
        ]
        if self.config.flush_delay_ms:
            # A slow Parquet write: writes to the table land between the take and the commit.
            await asyncio.sleep(self.config.flush_delay_ms / 1000)
        if self.data.get(table.uid) is not data or job.status != "running":
            return
        storage_id = (
            "local" if "flush_ignores_storage_id" in self.bugs else (table.storage_id or "local")
        )
        storage = self.catalog.storages.get(storage_id) or self.catalog.storages["local"]
        total = 0
        for key, scope, taken in taken_by_scope:
            if not taken:
                continue
            newest: dict[Any, Version] = {}
            for pk, v in taken:
                if pk not in newest or newest[pk].seq < v.seq:
                    newest[pk] = v
            keep_tombstones = "flush_drops_tombstones" not in self.bugs
            rows = [
                v
                for pk, v in newest.items()
                if not v.deleted or (keep_tombstones and pk in scope.cold)
            ]
            rows.sort(key=lambda v: v.seq)
            declared = len(newest) if "manifest_row_count" in self.bugs else None
            allow_empty = "empty_batch_file" in self.bugs
            directory = scope_dir(storage, table, key or None)
            schema_snapshot = attrs.evolve(table, columns=list(table.columns))
            try:
                segment = await asyncio.to_thread(
                    write_segment,
                    directory,
                    schema_snapshot,
                    key or None,
                    rows,
                    declared_rows=declared,
                    allow_empty=allow_empty,
                )
            except OSError as exc:
                if "failed_flush_drops_hot" in self.bugs:
                    self._drop_flushed(table, key, scope, taken)
                self._finish(job, "failed", f"Flush failed for scope '{key or 'shared'}': {exc}")
                return
            if self.data.get(table.uid) is not data:
                return  # dropped while writing
            if segment is not None:
                scope.segments.append(segment)
                for v in rows:
                    self._set_cold(scope, table, v)
            if "flush_drops_concurrent_writes" in self.bugs:
                taken = [(pk, v) for pk, versions in scope.hot.items() for v in versions]
            self._drop_flushed(table, key, scope, taken)
            total += len(rows)
        self._finish(job, "completed", f"Flushed {total} row(s) for table {table.table_id}")

    def _drop_flushed(
        self, table: TableDef, key: str, scope: Scope, taken: list[tuple[Any, Version]]
    ) -> None:
        for pk, v in taken:
            remove_version(scope, pk, v.seq)
        assert self.wal is not None
        self.wal.flushed(table.uid, key, [(pk, v.seq) for pk, v in taken])

    # ------------------------------------------------------------------ background work
    def evict_streams(self) -> int:
        """Physically remove expired STREAM rows (KalamDB's stream_eviction job)."""
        removed = 0
        now = now_ms()
        for table in list(self.catalog.tables.values()):
            if table.table_type != "stream":
                continue
            horizon = now - (table.ttl_seconds or 0) * 1000
            for key, scope in self.data[table.uid].scopes.items():
                for pk, versions in list(scope.hot.items()):
                    for v in list(versions):
                        if seq_ms(v.seq) <= horizon:
                            remove_version(scope, pk, v.seq)
                            assert self.wal is not None
                            self.wal.hard_delete(table.uid, key, pk, v.seq)
                            removed += 1
        return removed

    # ------------------------------------------------------------------ system tables
    def system_table(self, name: str) -> pa.Table:
        def ts(value: int | None) -> Any:
            return (
                None
                if value is None
                else dt.datetime.fromtimestamp(value / 1000, dt.UTC).replace(tzinfo=None)
            )

        def build(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
            return pa.Table.from_pylist(rows, schema=schema)

        T = pa.timestamp("us")
        if name == "users":
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
            return build(
                [
                    {
                        "user_id": u.user_id,
                        "password_hash": "***",
                        "role": u.role,
                        "email": u.email,
                        "auth_type": "internal",
                        "created_at": ts(u.created_at),
                        "updated_at": ts(u.updated_at),
                        "last_login_at": ts(u.last_login_at),
                        "deleted_at": ts(u.deleted_at),
                    }
                    for u in self.catalog.users.values()
                ],
                schema,
            )
        if name == "namespaces":
            schema = pa.schema(
                [
                    ("namespace_id", pa.string()),
                    ("name", pa.string()),
                    ("created_at", T),
                    ("options", pa.string()),
                    ("table_count", pa.int32()),
                ]
            )
            return build(
                [
                    {
                        "namespace_id": n.namespace_id,
                        "name": n.namespace_id,
                        "created_at": ts(n.created_at),
                        "options": None,
                        "table_count": sum(
                            t.namespace == n.namespace_id for t in self.catalog.tables.values()
                        ),
                    }
                    for n in self.catalog.namespaces.values()
                ],
                schema,
            )
        if name == "tables":
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
            return build(
                [
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
                        "updated_at": ts(t.updated_at),
                        "created_at": ts(t.created_at),
                    }
                    for t in self.catalog.tables.values()
                ],
                schema,
            )
        if name == "storages":
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
            return build(
                [
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
                        "created_at": ts(s.created_at),
                        "updated_at": ts(s.updated_at),
                    }
                    for s in self.catalog.storages.values()
                ],
                schema,
            )
        if name == "jobs":
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
            return build(
                [
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
                        "created_at": ts(j.created_at),
                        "updated_at": ts(j.updated_at),
                        "started_at": ts(j.started_at),
                        "finished_at": ts(j.finished_at),
                        "node_id": 1,
                        "leader_node_id": 1,
                    }
                    for j in self.catalog.jobs.values()
                ],
                schema,
            )
        if name == "live" and self.live_rows is not None:
            return self.live_rows()
        if name == "cluster":
            return pa.table(
                {"node_id": pa.array([1], pa.int64()), "is_self": [True], "is_leader": [True]}
            )
        raise exec_error(f"Table not found: system.{name}")


def _fold(results: list[Result], user: str) -> list[Result]:
    """KalamDB's multi-statement rule: DML counts are summed into trailing entries."""
    kept: list[Result] = []
    totals = {"Inserted": 0, "Updated": 0, "Deleted": 0}
    seen = dict.fromkeys(totals, False)
    for r in results:
        word = next((w for w in totals if r.message and r.message.startswith(w)), None)
        if word is None:
            kept.append(r)
        else:
            totals[word] += r.row_count
            seen[word] = True
    for word, total in totals.items():
        if seen[word]:
            kept.append(Result(row_count=total, as_user=user, message=f"{word} {total} row(s)"))
    return kept
