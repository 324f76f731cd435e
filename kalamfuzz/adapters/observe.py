"""Thin conversion from adapter results to :mod:`kalamfuzz.observations`.

Machines call these so that protocol details stay in the adapters: each function runs one adapter
call (or reads one recorded object) and returns the observation the invariants judge. Cells are
handed over as decoded from JSON (``_seq``/BIGINT strings) and Parquet timestamps as integer
microseconds, as the observations module asks.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from kalamfuzz import observations as obs
from kalamfuzz.adapters.cold import MANIFEST, read_batch, read_manifest
from kalamfuzz.adapters.sql import SqlClient, wrap_execute_as
from kalamfuzz.adapters.system import Job
from kalamfuzz.adapters.websocket import Subscription
from kalamfuzz.errors import (
    ColdArtifactError,
    ConnectionDropped,
    KalamError,
    OutcomeUnknown,
    TargetUnreachable,
)

__all__ = [
    "cold_scope",
    "job",
    "queries",
    "query",
    "statement",
    "storage_listing",
    "subscription",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LOST = (OutcomeUnknown, ConnectionDropped)
T = TypeVar("T")


def _job_id(messages: Iterable[str | None]) -> str | None:
    import re

    for m in messages:
        found = re.search(r"Job ID:\s*([A-Z]{2}-[0-9A-Za-z]+)", m or "")
        if found:
            return found.group(1)
    return None


def statement(
    client: SqlClient,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    namespace: str | None = None,
    as_user: str | None = None,
) -> obs.StatementObservation:
    """Run one statement and observe its reply (``lost`` when no reply came)."""
    text = wrap_execute_as(as_user, sql) if as_user is not None else sql
    try:
        res = client.sql(text, params=params, namespace=namespace)
    except _LOST as exc:
        return obs.StatementObservation(status=0, code=exc.code, message=exc.message, lost=True)
    except TargetUnreachable as exc:
        return obs.StatementObservation(status=0, code="UNREACHABLE", message=exc.message)
    except KalamError as exc:
        if "pre-validation returned false" in exc.message:  # flush with nothing to do
            return obs.StatementObservation(status=200, message=exc.message)
        return obs.StatementObservation(
            status=exc.status or 0, code=exc.code or type(exc).__name__, message=exc.message
        )
    messages = [r.message for r in res.results]
    last = res.results[-1] if res.results else None
    return obs.StatementObservation(
        status=200,
        message="; ".join(m for m in messages if m) or None,
        row_count=last.row_count if last is not None else None,
        job_id=_job_id(messages),
    )


def transaction(client: SqlClient, sql: str) -> obs.TransactionObservation:
    """Run a request holding one transaction and observe each SELECT and the summed counts."""
    try:
        res = client.sql(sql)
    except _LOST as exc:
        return obs.TransactionObservation(status=0, code=exc.code, message=exc.message, lost=True)
    except TargetUnreachable as exc:
        return obs.TransactionObservation(status=0, code="UNREACHABLE", message=exc.message)
    except KalamError as exc:
        return obs.TransactionObservation(
            status=exc.status or 0, code=exc.code or type(exc).__name__, message=exc.message
        )
    counts = dict.fromkeys(("Inserted", "Updated", "Deleted"), 0)
    selects = []
    for r in res.results:
        word = (r.message or "").split(" ", 1)[0]
        if r.columns:
            selects.append(
                obs.QueryObservation(status=200, columns=r.column_names, rows=r.raw_rows)
            )
        elif word in counts and (r.message or "").endswith("row(s)"):
            counts[word] += r.row_count
    return obs.TransactionObservation(
        status=200,
        selects=tuple(selects),
        counts=(counts["Inserted"], counts["Updated"], counts["Deleted"]),
    )


def _read(call: Callable[[], T]) -> T | obs.QueryObservation:
    """``call()``'s answer, or the observation of a read that failed (lost, or an error)."""
    try:
        return call()
    except _LOST as exc:
        return obs.QueryObservation(status=0, code=exc.code, message=exc.message, lost=True)
    except KalamError as exc:
        return obs.QueryObservation(
            status=exc.status or 0, code=exc.code or type(exc).__name__, message=exc.message
        )


def query(
    client: SqlClient,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    namespace: str | None = None,
    as_user: str | None = None,
) -> obs.QueryObservation:
    """Run one SELECT and observe the columns and wire cells (or the error)."""
    text = wrap_execute_as(as_user, sql) if as_user is not None else sql
    res = _read(lambda: client.sql(text, params=params, namespace=namespace).result)
    if isinstance(res, obs.QueryObservation):
        return res
    return obs.QueryObservation(status=200, columns=res.column_names, rows=res.raw_rows)


def queries(
    client: SqlClient, sqls: Sequence[str]
) -> tuple[obs.QueryObservation, ...] | obs.QueryObservation:
    """Run several SELECTs as one multi-statement request: one observation per statement, in
    order (SELECT results keep their place, HTTP_SQL.md §1.4), or the one observation of a
    request that failed as a whole (an error, a lost reply, or not one result per SELECT)."""
    res = _read(lambda: client.sql("; ".join(sqls)))
    if isinstance(res, obs.QueryObservation):
        return res
    if len(res.results) != len(sqls):
        return obs.QueryObservation(
            status=200,
            code="UNEXPECTED_RESULTS",
            message=f"{len(sqls)} SELECTs answered with {len(res.results)} results",
        )
    return tuple(
        obs.QueryObservation(status=200, columns=r.column_names, rows=r.raw_rows)
        for r in res.results
    )


def subscription(sub: Subscription, *, quiescent: bool = True) -> obs.SubscriptionObservation:
    """Everything ``sub`` received, in receive order."""
    return obs.SubscriptionObservation(
        sub_id=sub.id,
        acked=sub.ack is not None,
        batches=tuple(
            obs.Batch(
                batch_num=b.control.batch_num,
                has_more=b.control.has_more,
                status=b.control.status,
                last_seq_id=b.control.last_seq_id,
                rows=b.raw_rows,
                index=b.index,
            )
            for b in sub.batches
        ),
        changes=tuple(
            obs.Change(
                change_type=c.change_type,
                rows=c.raw_rows,
                old_values=c.raw_old_values,
                index=c.index,
            )
            for c in sub.changes
        ),
        error_code=sub.error.code if sub.error is not None else None,
        quiescent=quiescent,
    )


def job(row: Job) -> obs.JobObservation:
    """A ``system.jobs`` row as an observation."""
    return obs.JobObservation(job_id=row.job_id, status=row.status or "new", message=row.message)


def _micros(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        aware = v if v.tzinfo is not None else v.replace(tzinfo=dt.UTC)
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return v


def cold_scope(directory: str | Path) -> obs.ColdScopeObservation:
    """One scope directory: parsed manifest, every Parquet file's rows, other files."""

    d = Path(directory)
    manifest: obs.Manifest | None = None
    manifest_error: str | None = None
    if (d / MANIFEST).exists():
        try:
            m = read_manifest(d)
            manifest = obs.Manifest(
                segments=tuple(
                    obs.ManifestSegment(
                        path=s.path,
                        row_count=s.row_count if s.row_count is not None else -1,
                        min_seq=s.min_seq if s.min_seq is not None else -1,
                        max_seq=s.max_seq if s.max_seq is not None else -1,
                        status=s.status or "",
                        size_bytes=s.size_bytes,
                    )
                    for s in m.segments
                ),
                last_sequence_number=m.last_sequence_number,
                table_id=m.table_id,
                user_id=m.user_id,
            )
        except ColdArtifactError as exc:
            manifest_error = exc.message
    parquet: list[obs.ParquetFile] = []
    other: list[str] = []
    files = sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []
    for f in files:
        if f.name == MANIFEST:
            continue
        if not f.name.endswith(".parquet"):
            other.append(f.name)
            continue
        try:
            size = f.stat().st_size
            rows = tuple({k: _micros(v) for k, v in r.items()} for r in read_batch(f))
            parquet.append(obs.ParquetFile(name=f.name, size_bytes=size, rows=rows))
        except FileNotFoundError:
            # Deleted since the listing (KalamDB's SHARED cleanup runs asynchronously): the
            # directory as it is now is what the check judges.
            continue
        except ColdArtifactError as exc:
            parquet.append(
                obs.ParquetFile(name=f.name, size_bytes=size, rows=None, error=exc.message)
            )
    return obs.ColdScopeObservation(
        directory=str(d),
        manifest=manifest,
        manifest_error=manifest_error,
        parquet=tuple(parquet),
        other_files=tuple(other),
    )


def storage_listing(base_dirs: Iterable[str | Path]) -> obs.StorageListing:
    """Absolute paths of every file under the given storage base directories."""
    files: list[str] = []
    for base in base_dirs:
        root = Path(base)
        if not root.exists():
            continue
        for dirpath, _dirs, names in os.walk(root):
            files.extend(str(Path(dirpath, n).resolve()) for n in names)
    # StorageListing's ``converter=tuple`` confuses mypy's attrs plugin; the value is a tuple
    listing: Any = obs.StorageListing
    result: obs.StorageListing = listing(files=tuple(sorted(files)))
    return result
