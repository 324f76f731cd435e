"""Read and check KalamDB's Parquet cold tier on disk (HTTP_SQL.md §5).

Layout under a storage's base directory (default ``<data>/storage``), default templates:
SHARED ``<ns>/<table>/``, USER ``<ns>/<table>/<user_id>/``; each scope holds ``manifest.json`` and
``batch-<N>.parquet`` files (written as ``.parquet.tmp`` then renamed). Parquet rows hold the user
columns plus ``_seq`` and ``_deleted``.

* :func:`list_scopes` finds scopes; :func:`read_manifest` parses ``manifest.json`` into
  :class:`Manifest`; :func:`read_batch` / :func:`scope_rows` read rows with pyarrow;
* :func:`validate_scope` / :func:`validate_storage` compare manifests with files and return
  :class:`Problem` s (row counts, seq ranges, stray ``.tmp``, empty files, orphans, ...).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from kalamfuzz.errors import ColdArtifactError

__all__ = [
    "ColumnStats",
    "Manifest",
    "Problem",
    "Scope",
    "Segment",
    "list_scopes",
    "read_batch",
    "read_manifest",
    "scope_rows",
    "validate_scope",
    "validate_storage",
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


@frozen
class Problem:
    """One disagreement between a scope's manifest and its files."""

    scope: Path
    kind: str
    detail: str
    file: Path | None = None

    def __str__(self) -> str:
        where = self.file if self.file is not None else self.scope
        return f"{self.kind}: {where}: {self.detail}"


# ---------------------------------------------------------------------------------------------


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


def validate_scope(scope: Scope | str | Path) -> list[Problem]:
    """Compare one scope's manifest with its files; an empty list means consistent."""
    import pyarrow.parquet as pq

    d = scope.path if isinstance(scope, Scope) else Path(scope)
    parts = scope.parts if isinstance(scope, Scope) else ()
    problems: list[Problem] = []

    def add(kind: str, detail: str, file: Path | None = None) -> None:
        problems.append(Problem(scope=d, kind=kind, detail=detail, file=file))

    files = sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []
    for f in files:
        if f.name.endswith(".tmp"):
            add("stray_tmp", "temporary file left behind", f)
        elif f.stat().st_size == 0:
            add("empty_file", "file has 0 bytes", f)
    on_disk = {f.name for f in files if _BATCH.match(f.name)}

    if not (d / MANIFEST).exists():
        if on_disk:
            add("missing_manifest", f"batch files without manifest.json: {sorted(on_disk)}")
        return problems
    try:
        manifest = read_manifest(d)
    except ColdArtifactError as exc:
        add("bad_manifest", exc.message, d / MANIFEST)
        return problems

    if len(parts) in (2, 3):
        expected_table = f"{parts[0]}.{parts[1]}"
        if manifest.table_id != expected_table:
            add("scope_mismatch", f"table_id {manifest.table_id!r} under {expected_table!r}")
        expected_user = parts[2] if len(parts) == 3 else None
        if manifest.user_id != expected_user:
            add("scope_mismatch", f"user_id {manifest.user_id!r}, directory says {expected_user!r}")

    ids = [s.id for s in manifest.segments]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        add("duplicate_segment", f"segment {dup!r} listed more than once")

    referenced = {Path(s.path).name for s in manifest.segments}
    for orphan in sorted(on_disk - referenced):
        add("orphan_file", "batch file not listed in the manifest", d / orphan)

    numbers = [n for n in (s.batch_number for s in manifest.segments) if n is not None]
    if numbers and manifest.last_sequence_number != max(numbers):
        add(
            "last_sequence_mismatch",
            f"last_sequence_number {manifest.last_sequence_number} but highest batch is {max(numbers)}",
        )

    seen_seqs: dict[int, str] = {}
    for seg in manifest.committed:
        f = d / seg.path
        if not f.exists():
            add("missing_file", f"segment {seg.id} has no file", f)
            continue
        size = f.stat().st_size
        if size == 0:
            continue  # already reported as empty_file
        if seg.size_bytes and seg.size_bytes != size:
            add("size_mismatch", f"manifest says {seg.size_bytes} bytes, file has {size}", f)
        try:
            table = pq.read_table(str(f))
        except (OSError, ValueError) as exc:
            add("unreadable_parquet", str(exc).splitlines()[0] if str(exc) else "unreadable", f)
            continue
        if table.num_rows == 0:
            add("empty_batch", "Parquet file has no rows", f)
        if seg.row_count is not None and seg.row_count != table.num_rows:
            add(
                "row_count_mismatch",
                f"manifest row_count {seg.row_count}, file has {table.num_rows}",
                f,
            )
        if "_seq" not in table.column_names:
            add("missing_seq_column", f"columns {table.column_names}", f)
            continue
        seqs = [int(s) for s in table.column("_seq").to_pylist() if s is not None]
        if seqs:
            lo, hi = min(seqs), max(seqs)
            if (seg.min_seq, seg.max_seq) != (lo, hi):
                add(
                    "seq_range_mismatch",
                    f"manifest min_seq/max_seq {seg.min_seq}/{seg.max_seq}, file has {lo}/{hi}",
                    f,
                )
        for s in seqs:
            if s in seen_seqs:
                add("duplicate_seq", f"_seq {s} also in {seen_seqs[s]}", f)
            else:
                seen_seqs[s] = f.name
    return problems


def validate_storage(
    base_dir: str | Path, under: str | Path | None = None, scopes: Iterable[Scope] | None = None
) -> list[Problem]:
    """:func:`validate_scope` over every scope under ``base_dir`` (optionally only ``under`` a
    sub-path such as a namespace), plus stray ``.tmp`` and empty files anywhere below it."""
    base = Path(base_dir)
    root = base / under if under is not None else base
    problems: list[Problem] = []
    scope_list = list(scopes) if scopes is not None else list_scopes(base, under)
    scope_dirs = {s.path for s in scope_list}
    for s in scope_list:
        problems.extend(validate_scope(s))
    if root.exists():
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.parent not in scope_dirs:
                if p.name.endswith(".tmp"):
                    problems.append(Problem(p.parent, "stray_tmp", "temporary file left behind", p))
                elif p.stat().st_size == 0:
                    problems.append(Problem(p.parent, "empty_file", "file has 0 bytes", p))
    return problems
