"""The engine: the catalog, the two tiers and the write-ahead log, and the entry point that
splits a request into statements and routes each to the module that plans it.

Everything here runs on the server's event loop thread and a request never yields to the loop
(unless a planted race pauses it), so a request, its transactions included, is atomic with
respect to other requests and to live-query dispatch; only Parquet writing moves to a worker
thread. Writes go through the write set of transactions.py: logged and fanned out at commit.

Statement modules: statements (SELECT, INSERT, UPDATE, DELETE, EXECUTE AS USER), ddl
(namespaces, tables), admin (users, storages), jobs (STORAGE FLUSH, stream eviction),
systables (system.*). They take the engine as their first argument and reach the state
through the methods below.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import admin, ddl, jobs, statements, systables, transactions
from . import parse as P
from .access import can_read_shared
from .auth import hash_password
from .bugs import (
    COLD_SHADOWS_HOT,
    RESTART_DML_BLIND,
    STREAM_TTL_UNENFORCED,
    WAL_BATCHED,
    PlantedBug,
)
from .catalog import Catalog, Namespace, Storage, TableDef, User
from .cold import load_segments, scope_dir
from .config import SimConfig
from .errors import SqlError, exec_error, invalid_sql
from .query import ArrowCache, stream_events, versions_to_arrow, visible_versions
from .seq import SeqGenerator, seq_ms
from .session import Change, Plan, Result, Session, fold_results, now_ms
from .store import Scope, TableData, Version, WriteAheadLog, remove_version, replay, rewrite

__all__ = ["Change", "Engine", "Result", "Session", "can_read_shared", "now_ms"]

MAX_SQL = 1024 * 1024


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
        #: (user, scope, INSERT text) already planned: the planted bug retry_reinserts.
        self.insert_plans: set[tuple[str, str, str]] = set()
        self.wal: WriteAheadLog | None = None
        self.live_rows: Callable[[], pa.Table] | None = (
            None  # system.live, provided by the live manager
        )
        #: The write set of the statement running now (set only while it runs).
        self.txn: transactions.WriteSet | None = None
        #: Explicit transactions open now, in any request.
        self.open_transactions = 0
        #: `_seq` of hot versions not yet committed, which a flush must leave alone.
        self.uncommitted: set[int] = set()

    def has(self, bug: PlantedBug) -> bool:
        return bug.name in self.bugs

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
        if self.has(RESTART_DML_BLIND):
            # KalamDB's commit-sequence snapshot restarts at 0 while replayed rows keep theirs.
            for table in self.catalog.tables.values():
                if table.table_type != "stream":
                    self.data[table.uid].dml_horizon = high
        self._reconcile()
        rewrite(self.dir / "hot.wal", self.data)
        self.wal = WriteAheadLog(self.dir / "hot.wal", batched=self.has(WAL_BATCHED))
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

    def scope_dirs(self, table: TableDef) -> list[tuple[str, Path]]:
        """The table's cold scope directories that exist, with their scope keys."""
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
        for key, directory in self.scope_dirs(table):
            scope = self.data[table.uid].scope(key)
            for segment, versions in load_segments(directory, table):
                scope.segments.append(segment)
                for v in versions:
                    self.seq.observe(v.seq)
                    self.set_cold(scope, table, v)

    def set_cold(self, scope: Scope, table: TableDef, v: Version) -> None:
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
    async def execute(
        self,
        session: Session,
        sql: str,
        params: list[Any] | None,
        namespace: str | None,
        request_id: str | None = None,
    ) -> list[Result]:
        if len(sql) > MAX_SQL:
            raise invalid_sql("SQL query too long")
        stmts = P.split_statements(sql)
        if not stmts:
            raise SqlError("EMPTY_SQL", "No SQL statements provided", 400, safe=True)
        if params:
            if len(stmts) > 1:
                raise SqlError(
                    "PARAMS_WITH_BATCH",
                    "Parameters not supported with multi-statement batches",
                    400,
                    safe=True,
                )
            stmts = [P.bind_params(stmts[0], params)]
        ns = namespace or "default"
        batch = [transactions.Statement.planned(self, session, s, ns) for s in stmts]
        results = await transactions.run_statements(self, session, batch, request_id)
        if len(results) > 1:
            results = fold_results(results, session.user_id)
        return results

    def plan(self, session: Session, sql: str, ns: str) -> Plan:
        words = sql.split(None, 3)
        head = " ".join(w.upper() for w in words[:3])
        first = words[0].upper()
        if first in ("SELECT", "WITH"):
            return statements.plan_select(self, session, sql, ns)
        if first == "INSERT":
            return statements.plan_insert(self, session, sql, ns)
        if first == "UPDATE":
            return statements.plan_update(self, session, sql, ns)
        if first == "DELETE":
            return statements.plan_delete(self, session, sql, ns)
        if first == "EXECUTE":
            return statements.plan_execute_as(self, session, sql, ns)
        if re.match(r"^CREATE\s+((USER|SHARED|STREAM)\s+)?TABLE\b", sql, re.IGNORECASE):
            return ddl.plan_create_table(self, session, sql, ns)
        if re.match(r"^DROP\s+((USER|SHARED|STREAM)\s+)?TABLE\b", sql, re.IGNORECASE):
            return ddl.plan_drop_table(self, session, sql, ns)
        if head.startswith("ALTER TABLE"):
            return ddl.plan_alter_table(self, session, sql, ns)
        if head.startswith(("CREATE NAMESPACE", "DROP NAMESPACE")):
            return ddl.plan_namespace(self, session, sql)
        if head.startswith(("CREATE USER", "ALTER USER", "DROP USER")):
            return admin.plan_user(self, session, sql)
        if head.startswith(("CREATE STORAGE", "DROP STORAGE")):
            return admin.plan_storage(self, session, sql)
        if head.startswith("STORAGE FLUSH"):
            return jobs.plan_flush(self, session, sql, ns)
        raise invalid_sql(f"Unsupported statement: {sql[:60]}")

    # ------------------------------------------------------------------ tables and rows
    def table(self, namespace: str, name: str) -> TableDef:
        table = self.catalog.table(namespace, name)
        if table is None:
            raise exec_error(f"Table not found: {namespace}.{name}")
        return table

    def scope_key(self, table: TableDef, session: Session) -> str:
        return "" if table.table_type == "shared" else session.user_id

    def _alive(self, table: TableDef) -> Callable[[Version], bool] | None:
        if table.table_type != "stream" or self.has(STREAM_TTL_UNENFORCED):
            return None
        deadline = now_ms() - (table.ttl_seconds or 0) * 1000
        return lambda v: seq_ms(v.seq) > deadline

    def _visible(
        self, scope: Scope, keep_deleted: bool, keys: frozenset[Any] | None = None
    ) -> list[Version]:
        prefer_cold = self.has(COLD_SHADOWS_HOT)
        return visible_versions(
            scope, keep_deleted=keep_deleted, prefer_cold=prefer_cold, keys=keys
        )

    def scope_arrow(
        self, table: TableDef, key: str, keep_deleted: bool, keys: frozenset[Any] | None = None
    ) -> pa.Table:
        """The scope's visible rows (tombstones too with ``keep_deleted``) as an Arrow table;
        only those of ``keys``, the primary keys the statement's WHERE pins, when given."""
        scope = self.data[table.uid].scope(key)

        def build() -> pa.Table:
            return versions_to_arrow(table, self._visible(scope, keep_deleted))

        if table.table_type == "stream":
            # Rows expire with the clock, so no cache key would cover them.
            return versions_to_arrow(table, stream_events(scope, self._alive(table)))
        if keys is not None:
            return versions_to_arrow(table, self._visible(scope, keep_deleted, keys))
        return self.cache.get((table.uid, key, keep_deleted, table.version, scope.epoch), build)

    def dml_arrow(self, table: TableDef, key: str, keys: frozenset[Any] | None = None) -> pa.Table:
        """The rows UPDATE and DELETE can find: what SELECT sees, less the hot versions below the
        table's DML horizon (set only by planted bug restart_dml_blind)."""
        data = self.data[table.uid]
        horizon = data.dml_horizon
        if horizon is None:
            return self.scope_arrow(table, key, False, keys)
        scope = data.scope(key)
        pk = table.pk.id
        found = [
            v
            for v in self._visible(scope, False)
            if v.seq > horizon or scope.cold.get(v.values.get(pk)) is v
        ]
        return versions_to_arrow(table, found)

    def leaky_arrow(self, table: TableDef, keep_deleted: bool) -> pa.Table:
        """Every scope's rows together (what planted bug select_scope_leak reads)."""
        parts = [
            self.scope_arrow(table, k, keep_deleted) for k in list(self.data[table.uid].scopes)
        ]
        return pa.concat_tables(parts) if parts else self.scope_arrow(table, "", keep_deleted)

    def emit(self, changes: list[Change]) -> None:
        """A statement's live changes: sent when its transaction commits."""
        if not changes:
            return
        if self.txn is not None and self.txn.holds_live(self):
            self.txn.changes.append(changes)
        else:
            self.dispatch(changes)

    def dispatch(self, changes: list[Change]) -> None:
        for listener in self.listeners:
            listener(changes)

    def new_version(
        self, table: TableDef, key: str, pk: Any, deleted: bool, values: dict[int, Any]
    ) -> Version:
        """Add one row version to the hot tier, staged in the running statement's write set
        (logged at its commit, before the caller is answered)."""
        v = Version(self.seq.next(), deleted, values)
        data = self.data[table.uid]
        scope = data.scope(key)
        scope.hot.setdefault(pk, []).append(v)
        scope.epoch += 1
        writes = self.txn or transactions.WriteSet()
        writes.stage(self, transactions.Staged(table, data, scope, key, pk, v))
        if self.txn is None:
            writes.publish(self)
        return v

    def hard_delete(self, table: TableDef, key: str, pk: Any, v: Version) -> None:
        """Remove a STREAM event for good (DELETE or TTL eviction). Never undone: STREAM
        tables are refused inside explicit transactions, and a DELETE cannot fail after its
        first hard delete."""
        remove_version(self.data[table.uid].scope(key), pk, v.seq)
        assert self.wal is not None
        self.wal.hard_delete(table.uid, key, pk, v.seq)

    # ------------------------------------------------------------------ background work
    def evict_streams(self) -> int:
        return jobs.evict_streams(self)

    def system_table(self, name: str) -> pa.Table:
        return systables.system_table(self, name)
