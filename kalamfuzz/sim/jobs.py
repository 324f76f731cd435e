"""Background jobs: STORAGE FLUSH (hot tier to Parquet) and STREAM eviction.

A flush job runs as an asyncio task; only the Parquet write moves to a worker thread, so what
the job takes and what it commits are each atomic with respect to statements.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import parse as P
from .bugs import (
    EMPTY_BATCH_FILE,
    FAILED_FLUSH_CLEARS_PENDING,
    FAILED_FLUSH_DROPS_HOT,
    FLUSH_DROPS_CONCURRENT_WRITES,
    FLUSH_DROPS_TOMBSTONES,
    FLUSH_IGNORES_STORAGE_ID,
    FLUSH_RACE_CLEARS_PENDING,
    MANIFEST_ROW_COUNT,
    PARTIAL_PARQUET_ON_CRASH,
)
from .catalog import Job, TableDef
from .cold import clear_segments, scope_dir, write_segment
from .errors import denied, exec_error, invalid_sql
from .query import visible_versions
from .seq import seq_ms
from .session import Plan, Result, Session, now_ms
from .store import Scope, Version, remove_version

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("kalamfuzz.sim.jobs")
ACTIVE = ("new", "queued", "running")


def plan_flush(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
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
            table = engine.table(namespace, name)
            if table.table_type == "stream":
                raise exec_error(
                    "Invalid operation: STORAGE FLUSH TABLE is not supported for STREAM tables"
                )
            if not _has_pending_writes(engine, table):
                return Result(
                    0,
                    session.user_id,
                    f"Storage flush skipped: no pending writes for table '{table.table_id}'",
                )
            if _in_progress(engine, table):
                return Result(
                    0,
                    session.user_id,
                    f"Storage flush skipped: a flush is already queued or running for table '{table.table_id}'",
                )
            job = start_flush(engine, table)
            return Result(
                0,
                session.user_id,
                f"Storage flush started for table '{table.table_id}'. Job ID: {job.job_id}",
            )

        return flush_one
    if m_all:

        def flush_all() -> Result:
            target = m_all.group(1) or ns
            if target not in engine.catalog.namespaces:
                raise exec_error(f"Namespace not found: {target}")
            ids = []
            for table in list(engine.catalog.tables.values()):
                if (
                    table.namespace != target
                    or table.table_type == "stream"
                    or _in_progress(engine, table)
                ):
                    continue
                if _has_pending_writes(engine, table):
                    ids.append(start_flush(engine, table).job_id)
            return Result(
                0,
                session.user_id,
                f"Storage flush started for {len(ids)} table(s) in namespace '{target}'. Job IDs: [{', '.join(ids)}]",
            )

        return flush_all
    raise invalid_sql(
        "Invalid STORAGE FLUSH statement: STORAGE FLUSH TABLE ns.t | STORAGE FLUSH ALL [IN ns]"
    )


def _has_pending_writes(engine: Engine, table: TableDef) -> bool:
    # Any hot version counts, a tombstone kept to hide a cold row included (KalamDB leaves
    # such a scope PendingWrite, so each STORAGE FLUSH starts a job that writes nothing).
    data = engine.data[table.uid]
    return not data.pending_cleared and any(
        _committed(engine, versions) for s in data.scopes.values() for versions in s.hot.values()
    )


def _committed(engine: Engine, versions: list[Version]) -> list[Version]:
    """Only committed versions are pending writes and flushed, as KalamDB's pending index
    is updated at commit. Staged versions are in the hot tier while their transaction runs:
    seen by a STORAGE FLUSH inside it, or by a job while a planted race pauses a request."""
    if not engine.uncommitted:
        return versions
    return [v for v in versions if v.seq not in engine.uncommitted]


def _in_progress(engine: Engine, table: TableDef) -> bool:
    return any(
        j.job_type == "flush"
        and j.status in ACTIVE
        and j.idempotency_key == f"flush-{table.namespace}-{table.name}"
        for j in engine.catalog.jobs.values()
    )


def start_flush(engine: Engine, table: TableDef) -> Job:
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
    engine.catalog.jobs[job.job_id] = job
    engine.record("jobs", job.job_id)
    engine.spawn(_run_flush(engine, job, table))
    return job


def _finish(engine: Engine, job: Job, status: str, message: str) -> None:
    ts = now_ms()
    job.status, job.message, job.finished_at, job.updated_at = status, message, ts, ts
    engine.record("jobs", job.job_id)


async def _run_flush(engine: Engine, job: Job, table: TableDef) -> None:
    job.status, job.started_at = "running", now_ms()
    job.updated_at = job.started_at
    engine.record("jobs", job.job_id)
    data = engine.data.get(table.uid)
    if data is None:
        return
    # What the job flushes is fixed when it starts; writes from then on stay hot.
    writes_at_start = data.writes
    taken_by_scope = [
        (key, scope, [(pk, v) for pk, vs in scope.hot.items() for v in _committed(engine, vs)])
        for key, scope in list(data.scopes.items())
    ]
    if engine.config.flush_delay_ms and not engine.has(PARTIAL_PARQUET_ON_CRASH):
        # A slow Parquet write: writes to the table land between the take and the commit.
        # (With the planted bug the slow part is the in-place write itself, from the start.)
        await asyncio.sleep(engine.config.flush_delay_ms / 1000)
    if engine.data.get(table.uid) is not data or job.status != "running":
        return
    storage_id = "local" if engine.has(FLUSH_IGNORES_STORAGE_ID) else (table.storage_id or "local")
    storage = engine.catalog.storages.get(storage_id) or engine.catalog.storages["local"]
    total = files = 0
    for key, scope, taken in taken_by_scope:
        if not taken:
            continue
        newest: dict[Any, Version] = {}
        for pk, v in taken:
            if pk not in newest or newest[pk].seq < v.seq:
                newest[pk] = v
        # Parquet holds live rows only (KalamDB's rows_from_versions): no tombstone is written.
        rows = sorted((v for v in newest.values() if not v.deleted), key=lambda v: v.seq)
        declared = len(newest) if engine.has(MANIFEST_ROW_COUNT) else None
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
                allow_empty=engine.has(EMPTY_BATCH_FILE),
            )
        except OSError as exc:
            if engine.has(FAILED_FLUSH_DROPS_HOT):
                _drop_flushed(engine, table, key, scope, taken)
            if engine.has(FAILED_FLUSH_CLEARS_PENDING):
                # KalamDB's scope stays Syncing after a failed write: out of the pending index.
                data.pending_cleared = True
            _finish(engine, job, "failed", f"Flush failed for scope '{key or 'shared'}': {exc}")
            return
        if segment is not None and engine.has(PARTIAL_PARQUET_ON_CRASH):
            await _written_in_place(directory / segment.path, engine.config.flush_delay_ms)
        if engine.data.get(table.uid) is not data:
            return  # dropped while writing
        if segment is not None:
            scope.segments.append(segment)
            files += 1
            for v in rows:
                engine.set_cold(scope, table, v)
        # A tombstone that hides a row of an older segment stays hot: with it gone, the cold
        # row would be visible again. One with nothing cold to hide leaves with the rest.
        hiding = {pk for pk, v in newest.items() if v.deleted and pk in scope.cold}
        if rows and engine.has(FLUSH_DROPS_TOMBSTONES):
            hiding = set()
        if engine.has(FLUSH_DROPS_CONCURRENT_WRITES):
            taken = [(pk, v) for pk, versions in scope.hot.items() for v in versions]
        taken = [(pk, v) for pk, v in taken if not (pk in hiding and v is newest[pk])]
        _drop_flushed(engine, table, key, scope, taken)
        total += len(rows)
    if data.writes != writes_at_start and engine.has(FLUSH_RACE_CLEARS_PENDING):
        # KalamDB's update_after_flush marks the scope InSync over a write's PendingWrite.
        data.pending_cleared = True
    if table.table_type == "shared":
        _clear_if_empty(engine, table, data.scopes.get(""), scope_dir(storage, table, None))
    _finish(
        engine,
        job,
        "completed",
        f"Flushed {table.namespace}:{table.name} successfully ({total} rows, {files} files)",
    )


async def _written_in_place(path: Path, delay_ms: int) -> None:
    """Planted bug: the batch file is written under its final name after the manifest already
    names it; for a while (a slow write) only its first half is on disk."""
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    await asyncio.sleep(max(delay_ms, 100) / 1000)
    path.write_bytes(whole)


def _clear_if_empty(engine: Engine, table: TableDef, scope: Scope | None, directory: Path) -> None:
    """KalamDB's post-flush cleanup of a SHARED table that has no live row left: its manifest
    loses every segment and its batch files go. KalamDB runs it in the background and may skip
    it; here it runs before the job is reported completed, so what a client sees is fixed."""
    if scope is None or visible_versions(scope):
        return
    try:
        cleared = clear_segments(directory)
    except OSError:
        log.warning("cold cleanup of empty table %s failed", table.table_id, exc_info=True)
        return  # non-critical, as in KalamDB: the segments stay and stay readable
    if cleared:
        scope.segments.clear()
        scope.cold.clear()
        scope.epoch += 1


def _drop_flushed(
    engine: Engine, table: TableDef, key: str, scope: Scope, taken: list[tuple[Any, Version]]
) -> None:
    for pk, v in taken:
        remove_version(scope, pk, v.seq)
    assert engine.wal is not None
    engine.wal.flushed(table.uid, key, [(pk, v.seq) for pk, v in taken])


def evict_streams(engine: Engine) -> int:
    """Physically remove expired STREAM rows (KalamDB's stream_eviction job)."""
    removed = 0
    now = now_ms()
    for table in list(engine.catalog.tables.values()):
        if table.table_type != "stream":
            continue
        horizon = now - (table.ttl_seconds or 0) * 1000
        for key, scope in engine.data[table.uid].scopes.items():
            for pk, versions in list(scope.hot.items()):
                for v in list(versions):
                    if seq_ms(v.seq) <= horizon:
                        engine.hard_delete(table, key, pk, v)
                        removed += 1
    return removed
