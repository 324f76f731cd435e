"""Flush placement: which versions a completed flush moves to which scope directory, and what each
Parquet file and manifest must then hold (docs/contract.md, "Flush")."""

from __future__ import annotations

from collections.abc import Mapping

from attrs import evolve, frozen

from kalamfuzz.model.catalog import Storage, Table
from kalamfuzz.model.rows import Scope, ScopeKey, Segment, SeqBook, Version, row_of
from kalamfuzz.model.values import Value

MANIFEST = "manifest.json"


def flush_scope(
    table: Table, scope: Scope, cut: int, may_lack: frozenset[str] = frozenset()
) -> Scope:
    """The scope after a flush that took the hot versions with ordinal <= ``cut``.

    Per key only the newest taken version is written; a tombstone is written only when an
    older cold segment holds the key (otherwise the key simply vanishes). Every taken
    version leaves the hot tier, written or not. ``may_lack``: columns added while the job
    ran, which its file may not have.
    """
    taken = [v for v in scope.hot if v.ordinal <= cut and v.ordinal not in scope.adopted]
    if not taken:
        return scope
    newest: dict[Value, Version] = {}
    for v in taken:
        newest[v.key] = v  # hot is in commit order, so the last one wins
    cold_keys = scope.cold_keys()
    kept = sorted(
        (v for v in newest.values() if not v.deleted or v.key in cold_keys),
        key=lambda v: v.ordinal,
    )
    remaining = scope.remove(frozenset(v.ordinal for v in taken))
    if not kept:
        return remaining
    batch = scope.cold[-1].batch + 1 if scope.cold else 0
    segment = Segment(
        batch=batch,
        versions=tuple(kept),
        columns=tuple(c.name for c in table.columns),
        rows=tuple(row_of(table, v) | {"_deleted": v.deleted} for v in kept),
        schema_version=table.schema_version,
        may_lack=may_lack,
    )
    return evolve(remaining, cold=(*remaining.cold, segment))


def pending(scope: Scope, cut: int | None = None) -> bool:
    return any(
        (cut is None or v.ordinal <= cut) and v.ordinal not in scope.adopted for v in scope.hot
    )


@frozen
class ExpectedSegment:
    path: str
    row_count: int
    #: None until the server's ``_seq`` of those versions is known.
    min_seq: int | None
    max_seq: int | None
    #: Columns the file may lack (added while its job ran).
    may_lack: frozenset[str] = frozenset()


@frozen
class ExpectedCold:
    """What one scope directory must contain after the flushes the model knows of."""

    directory: str
    segments: tuple[ExpectedSegment, ...]
    #: Parquet file name -> (expected rows without ``_seq``, the versions' ordinals) in order.
    files: Mapping[str, tuple[tuple[Mapping[str, Value], int], ...]]

    @property
    def last_sequence_number(self) -> int | None:
        return int(self.segments[-1].path[6:-8]) if self.segments else None

    @property
    def paths(self) -> frozenset[str]:
        if not self.segments:
            return frozenset()
        return frozenset({MANIFEST, *(s.path for s in self.segments)})


def expected_cold(
    table: Table, storage: Storage, scope_key: ScopeKey, scope: Scope, seqs: SeqBook
) -> ExpectedCold:
    segments: list[ExpectedSegment] = []
    files: dict[str, tuple[tuple[Mapping[str, Value], int], ...]] = {}
    for seg in scope.cold:
        bound = [seqs.get(v.ordinal) for v in seg.versions]
        known = [s for s in bound if s is not None]
        complete = len(known) == len(bound)
        segments.append(
            ExpectedSegment(
                path=seg.path,
                row_count=len(seg.versions),
                min_seq=min(known) if complete else None,
                max_seq=max(known) if complete else None,
                may_lack=seg.may_lack,
            )
        )
        files[seg.path] = tuple(zip(seg.rows, (v.ordinal for v in seg.versions), strict=True))
    return ExpectedCold(
        directory=storage.scope_directory(table, scope_key),
        segments=tuple(segments),
        files=files,
    )
