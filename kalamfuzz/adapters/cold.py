"""Read KalamDB's Parquet cold tier on disk (HTTP_SQL.md §5).

Layout under a storage's base directory (default ``<data>/storage``), default templates:
SHARED ``<ns>/<table>/``, USER ``<ns>/<table>/<user_id>/``; each scope holds ``manifest.json`` and
``batch-<N>.parquet`` files (written as ``.parquet.tmp`` then renamed). Parquet rows hold the user
columns plus ``_seq`` and ``_deleted``.

:func:`list_scopes` finds scopes; :func:`read_manifest` parses ``manifest.json`` into
:class:`Manifest`; :func:`read_batch` (the one Parquet reader) and :func:`scope_rows` read rows
with pyarrow. Judging what they hold is the invariants' job (``invariants.cold_artifacts``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from kalamfuzz.errors import ColdArtifactError

__all__ = [
    "ColumnStats",
    "Manifest",
    "Scope",
    "Segment",
    "list_scopes",
    "read_batch",
    "read_manifest",
    "scope_rows",
]

MANIFEST = "manifest.json"
_BATCH = re.compile(r"^batch-(\d+)\.parquet$")
_BATCHISH = re.compile(r"^batch-\d+\.parquet")


@frozen
class ColumnStats:
    """Per-column stats of a segment; ``min``/``max`` keep KalamDB's tagged form
    (``{"Int64": "123"}``, ``{"Utf8": "a"}``); :attr:`min_value`/:attr:`max_value` untag them."""

    min: Any
    max: Any
    null_count: int | None

    @staticmethod
    def _untag(v: Any) -> Any:
        if isinstance(v, dict) and len(v) == 1:
            ((tag, inner),) = v.items()
            if tag in {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}:
                try:
                    return int(inner)
                except (TypeError, ValueError):
                    return inner
            return inner
        return v

    @property
    def min_value(self) -> Any:
        return self._untag(self.min)

    @property
    def max_value(self) -> Any:
        return self._untag(self.max)


@frozen
class Segment:
    """One ``segments[]`` entry of a manifest."""

    id: str
    path: str
    min_seq: int | None
    max_seq: int | None
    row_count: int | None
    size_bytes: int | None
    status: str | None
    schema_version: int | None
    created_at: int | None
    column_stats: Mapping[str, ColumnStats]

    @property
    def batch_number(self) -> int | None:
        m = _BATCH.match(Path(self.path).name)
        return int(m.group(1)) if m else None


@frozen
class Manifest:
    """``manifest.json`` of one scope."""

    table_id: str
    user_id: str | None
    version: int | None
    created_at: int | None
    updated_at: int | None
    segments: tuple[Segment, ...]
    last_sequence_number: int | None
    raw: Mapping[str, Any]

    @property
    def committed(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.status == "committed")


@frozen
class Scope:
    """A directory holding one scope's cold artifacts.

    ``parts`` is the path relative to the storage base; with KalamDB's default templates a SHARED
    scope is ``(ns, table)`` and a USER scope ``(ns, table, user_id)``.
    """

    path: Path
    parts: tuple[str, ...]

    @property
    def namespace(self) -> str | None:
        return self.parts[0] if len(self.parts) >= 2 else None

    @property
    def table(self) -> str | None:
        return self.parts[1] if len(self.parts) >= 2 else None

    @property
    def user_id(self) -> str | None:
        return self.parts[2] if len(self.parts) == 3 else None

    @property
    def table_id(self) -> str | None:
        return f"{self.namespace}.{self.table}" if len(self.parts) >= 2 else None

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST


def _int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def list_scopes(base_dir: str | Path, under: str | Path | None = None) -> list[Scope]:
    """Every directory under ``base_dir`` (the storage's base directory) with a manifest or batch
    file, sorted by path. ``under`` (relative to the base, e.g. a namespace) limits the search;
    scope ``parts`` stay relative to the base."""
    base = Path(base_dir)
    root = base / under if under is not None else base
    if not root.exists():
        return []
    found: set[Path] = set()
    for p in root.rglob("*"):
        if p.is_file() and (p.name == MANIFEST or _BATCHISH.match(p.name)):
            found.add(p.parent)
    return [Scope(path=d, parts=d.relative_to(base).parts) for d in sorted(found)]


def read_manifest(scope_dir: str | Path) -> Manifest:
    """Parse ``<scope_dir>/manifest.json``; raise :class:`ColdArtifactError` if unreadable."""
    path = Path(scope_dir) / MANIFEST
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ColdArtifactError(f"no manifest.json in {path.parent}") from None
    except (OSError, ValueError) as exc:
        raise ColdArtifactError(f"cannot read {path}: {exc}") from None
    return parse_manifest(raw, where=str(path))


def parse_manifest(raw: Any, *, where: str = "manifest") -> Manifest:
    if not isinstance(raw, dict):
        raise ColdArtifactError(f"{where}: manifest is not a JSON object")
    table_id = raw.get("table_id")
    if not isinstance(table_id, str):
        raise ColdArtifactError(f"{where}: table_id must be a string 'ns.table', got {table_id!r}")
    segs_raw = raw.get("segments")
    if not isinstance(segs_raw, list):
        raise ColdArtifactError(f"{where}: segments must be an array")
    segments = []
    for i, s in enumerate(segs_raw):
        if not isinstance(s, dict) or not isinstance(s.get("path", s.get("id")), str):
            raise ColdArtifactError(f"{where}: segment {i} has no path")
        stats_raw = s.get("column_stats") or {}
        stats = {
            str(k): ColumnStats(
                min=v.get("min"), max=v.get("max"), null_count=_int(v.get("null_count"))
            )
            for k, v in (stats_raw.items() if isinstance(stats_raw, dict) else [])
            if isinstance(v, dict)
        }
        path = str(s.get("path", s.get("id")))
        segments.append(
            Segment(
                id=str(s.get("id", path)),
                path=path,
                min_seq=_int(s.get("min_seq")),
                max_seq=_int(s.get("max_seq")),
                row_count=_int(s.get("row_count")),
                size_bytes=_int(s.get("size_bytes")),
                status=None if s.get("status") is None else str(s.get("status")),
                schema_version=_int(s.get("schema_version")),
                created_at=_int(s.get("created_at")),
                column_stats=stats,
            )
        )
    user_id = raw.get("user_id")
    return Manifest(
        table_id=table_id,
        user_id=None if user_id is None else str(user_id),
        version=_int(raw.get("version")),
        created_at=_int(raw.get("created_at")),
        updated_at=_int(raw.get("updated_at")),
        segments=tuple(segments),
        last_sequence_number=_int(raw.get("last_sequence_number")),
        raw=raw,
    )


def _normalise(v: Any) -> Any:
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.UTC)
    return v


def read_batch(path: str | Path) -> list[dict[str, Any]]:
    """Rows of one Parquet file as dicts (TIMESTAMP → aware UTC datetime, INT64 → int)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except FileNotFoundError:
        raise  # gone, not unreadable: the caller decides what a vanished file means
    except (OSError, ValueError) as exc:
        raise ColdArtifactError(f"cannot read Parquet file {path}: {exc}") from None
    rows: list[dict[str, Any]] = table.to_pylist()
    return [{k: _normalise(v) for k, v in r.items()} for r in rows]


def scope_rows(
    scope: Scope | str | Path, *, include_uncommitted: bool = False
) -> list[dict[str, Any]]:
    """All rows of a scope's committed segments, in manifest order (every stored version,
    tombstones included: resolving versions is the model's job)."""
    d = scope.path if isinstance(scope, Scope) else Path(scope)
    manifest = read_manifest(d)
    segs = manifest.segments if include_uncommitted else manifest.committed
    rows: list[dict[str, Any]] = []
    for seg in segs:
        rows.extend(read_batch(d / seg.path))
    return rows
