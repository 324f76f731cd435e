"""The Parquet cold tier: batch files and manifest.json in KalamDB's layout and format."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import Column, Storage, TableDef
from .store import Segment, Version
from .types import ARROW, to_arrow_value

log = logging.getLogger("kalamfuzz.sim.cold")


def resolve_template(template: str, namespace: str, table: str, user_id: str | None) -> str:
    out = template
    for names, value in (
        (("{namespace}", "{namespace_id}", "{namespaceId}"), namespace),
        (("{tableName}", "{table_name}", "{table}"), table),
        (("{userId}", "{user_id}"), user_id or ""),
    ):
        for name in names:
            out = out.replace(name, value)
    return out.strip("/")


def scope_dir(storage: Storage, table: TableDef, user_id: str | None) -> Path:
    template = (
        storage.user_tables_template
        if table.table_type == "user"
        else storage.shared_tables_template
    )
    if not template:
        template = (
            "{namespace}/{tableName}/{userId}"
            if table.table_type == "user"
            else "{namespace}/{tableName}"
        )
    return Path(storage.base_directory) / resolve_template(
        template, table.namespace, table.name, user_id
    )


def _schema(columns: list[Column], arrays: list[pa.Array]) -> pa.Schema:
    # A NOT NULL column added after rows were written reads NULL for those rows (defaults are
    # not retroactive); Parquet refuses nulls in a non-nullable field, so such a file allows them.
    fields = [
        pa.field(c.name, ARROW[c.kind], nullable=c.nullable or a.null_count > 0)
        for c, a in zip(columns, arrays, strict=False)
    ]
    fields += [
        pa.field("_seq", pa.int64(), nullable=False),
        pa.field("_deleted", pa.bool_(), nullable=False),
    ]
    return pa.schema(fields)


def _stat(value: Any, kind: str) -> dict[str, Any] | None:
    if value is None:
        return None
    tag = {
        "Boolean": "Boolean",
        "SmallInt": "Int16",
        "Int": "Int32",
        "BigInt": "Int64",
        "Float": "Float32",
        "Double": "Float64",
        "Timestamp": "TimestampMicrosecond",
        "DateTime": "TimestampMicrosecond",
        "Date": "Date32",
    }.get(kind, "Utf8")
    return {tag: str(value) if tag in ("Int64", "TimestampMicrosecond") else value}


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / "manifest.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write_segment(
    directory: Path,
    table: TableDef,
    user_id: str | None,
    rows: list[Version],
    *,
    declared_rows: int | None = None,
    allow_empty: bool = False,
) -> Segment | None:
    """Write one batch file and commit it in the manifest. Runs on a worker thread.

    The batch is written as `.tmp` and renamed, then the manifest likewise: a crash at any point
    leaves either no segment or a whole one. `declared_rows` lets a planted bug misreport the count.
    """
    if not rows and not allow_empty:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory)
    now_ms = int(time.time() * 1000)
    if manifest is None:
        manifest = {
            "table_id": table.table_id,
            "user_id": user_id,
            "version": 0,
            "created_at": now_ms,
            "updated_at": now_ms,
            "segments": [],
            "last_sequence_number": 0,
            "files": None,
            "vector_indexes": {},
        }
    batch = manifest["last_sequence_number"] + 1 if manifest["segments"] else 0
    name = f"batch-{batch}.parquet"
    columns = table.columns
    arrays: list[pa.Array] = []
    for c in columns:
        arrays.append(
            pa.array([to_arrow_value(v.values.get(c.id), c.kind) for v in rows], type=ARROW[c.kind])
        )
    arrays.append(pa.array([v.seq for v in rows], type=pa.int64()))
    arrays.append(pa.array([v.deleted for v in rows], type=pa.bool_()))
    batch_table = pa.Table.from_arrays(arrays, schema=_schema(columns, arrays))
    tmp = directory / (name + ".tmp")
    try:
        pq.write_table(batch_table, tmp)
        os.replace(tmp, directory / name)
    finally:
        if tmp.exists():
            tmp.unlink()
    stats = {}
    for c in columns:
        present: list[Any] = [v.values.get(c.id) for v in rows if v.values.get(c.id) is not None]
        comparable = present if c.kind not in ("Bytes", "Json") else []
        stats[str(c.id)] = {
            "min": _stat(min(comparable), c.kind) if comparable else None,
            "max": _stat(max(comparable), c.kind) if comparable else None,
            "null_count": len(rows) - len(present),
        }
    seqs = [v.seq for v in rows]
    segment = Segment(
        batch=batch,
        path=name,
        min_seq=min(seqs, default=0),
        max_seq=max(seqs, default=0),
        row_count=len(rows) if declared_rows is None else declared_rows,
        size_bytes=(directory / name).stat().st_size,
        schema_version=table.version,
        created_at=now_ms,
    )
    manifest["segments"].append(
        {
            "id": name,
            "path": name,
            "column_stats": stats,
            "min_seq": segment.min_seq,
            "max_seq": segment.max_seq,
            "row_count": segment.row_count,
            "size_bytes": segment.size_bytes,
            "created_at": now_ms,
            "schema_version": table.version,
            "status": "committed",
        }
    )
    manifest["last_sequence_number"] = batch
    manifest["version"] += 1
    manifest["updated_at"] = now_ms
    mtmp = directory / "manifest.json.tmp"
    mtmp.write_text(json.dumps(manifest, indent=2))
    os.replace(mtmp, directory / "manifest.json")
    return segment


def clear_segments(directory: Path) -> bool:
    """Empty a scope's manifest (no segments, sequence 0, version + 1), then delete its batch
    files: KalamDB's clear_segments_and_delete_files. False when there was nothing to clear."""
    manifest = read_manifest(directory)
    if manifest is None or not manifest["segments"]:
        return False
    doomed = {seg["path"] for seg in manifest["segments"]}
    doomed.update(p.name for p in directory.glob("batch-*.parquet"))
    manifest["segments"] = []
    manifest["last_sequence_number"] = 0
    manifest["version"] += 1
    manifest["updated_at"] = int(time.time() * 1000)
    # Manifest first: a crash in between leaves files no manifest names, never the reverse.
    mtmp = directory / "manifest.json.tmp"
    mtmp.write_text(json.dumps(manifest, indent=2))
    os.replace(mtmp, directory / "manifest.json")
    for name in doomed:
        (directory / name).unlink(missing_ok=True)
    return True


def load_segments(directory: Path, table: TableDef) -> list[tuple[Segment, list[Version]]]:
    """Read a scope's committed segments back into versions (start-up)."""
    manifest = read_manifest(directory)
    if manifest is None:
        return []
    out = []
    for seg in manifest["segments"]:
        if seg.get("status") != "committed":
            continue
        path = directory / seg["path"]
        if not path.exists():
            continue
        try:
            data = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            # Unreadable (a crash left it half written): its rows are still in the WAL.
            log.warning("skipping unreadable segment %s: %s", path, exc)
            continue
        by_name = {c.name: c for c in table.columns_at(seg.get("schema_version", table.version))}
        names = [n for n in data.column_names if n in by_name]
        cols = {}
        for n in names:
            col = data.column(n)
            t = col.type
            if pa.types.is_timestamp(t):
                col = col.cast(pa.int64())
            elif pa.types.is_date(t):
                col = col.cast(pa.int32())
            cols[n] = col.to_pylist()
        seqs = data.column("_seq").to_pylist()
        deleted = data.column("_deleted").to_pylist()
        versions = [
            Version(seqs[i], bool(deleted[i]), {by_name[n].id: cols[n][i] for n in names})
            for i in range(data.num_rows)
        ]
        out.append(
            (
                Segment(
                    seg["id"] and int(seg["path"].split("-")[1].split(".")[0]),
                    seg["path"],
                    seg["min_seq"],
                    seg["max_seq"],
                    seg["row_count"],
                    seg["size_bytes"],
                    seg.get("schema_version", 1),
                    seg["created_at"],
                ),
                versions,
            )
        )
    return out
