"""Write cold-tier artifacts in KalamDB's exact on-disk format (HTTP_SQL.md §5) for reader tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

EPOCH_MS = 1704067200000  # Snowflake epoch, 2024-01-01 UTC


def seq(ms_after_epoch: int, counter: int = 0, worker: int = 1) -> int:
    return (ms_after_epoch << 22) | (worker << 12) | counter


def write_batch(scope: Path, n: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Write batch-n.parquet (id INT, body TEXT, _seq BIGINT, _deleted BOOL); return its segment."""
    scope.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": pa.array([r["id"] for r in rows], pa.int32()),
            "body": pa.array([r.get("body") for r in rows], pa.string()),
            "_seq": pa.array([r["_seq"] for r in rows], pa.int64()),
            "_deleted": pa.array([r.get("_deleted", False) for r in rows], pa.bool_()),
        }
    )
    path = scope / f"batch-{n}.parquet"
    pq.write_table(table, path)
    seqs = [r["_seq"] for r in rows]
    ids = [r["id"] for r in rows]
    return {
        "id": path.name,
        "path": path.name,
        "column_stats": {
            "1": {"min": {"Int32": min(ids)}, "max": {"Int32": max(ids)}, "null_count": 0}
        },
        "min_seq": min(seqs),
        "max_seq": max(seqs),
        "row_count": len(rows),
        "size_bytes": path.stat().st_size,
        "created_at": EPOCH_MS + 1000,
        "schema_version": 1,
        "status": "committed",
    }


def write_manifest(
    scope: Path, table_id: str, user_id: str | None, segments: list[dict[str, Any]]
) -> None:
    manifest = {
        "table_id": table_id,
        "user_id": user_id,
        "version": len(segments),
        "created_at": EPOCH_MS,
        "updated_at": EPOCH_MS + 5000,
        "segments": segments,
        "last_sequence_number": max(
            (int(s["path"].split("-")[1].split(".")[0]) for s in segments), default=0
        ),
        "files": None,
        "vector_indexes": {},
    }
    (scope / "manifest.json").write_text(json.dumps(manifest, indent=2))
