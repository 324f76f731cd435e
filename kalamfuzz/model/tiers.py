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
    table: Table, scope: Scope, cut: int, unsettled: frozenset[str] = frozenset()
) -> Scope:
    """The scope after a flush that took the hot versions with ordinal <= ``cut``.

    Per key only the newest taken version counts, and only a live one is written: Parquet
    never holds tombstones. A newest tombstone whose key has a cold version stays hot (it hides
    that version from reads); so does every newest tombstone when nothing is written (KalamDB
    then returns before deleting anything from the hot tier); every other taken version leaves
    the hot tier. ``unsettled``: columns added or dropped while the job ran, which its file may
    hold or not.
    """
    taken = [v for v in scope.hot if v.ordinal <= cut and v.ordinal not in scope.adopted]
    if not taken:
        return scope
    newest: dict[Value, Version] = {}
    for v in taken:
        newest[v.key] = v  # hot is in commit order, so the last one wins
    cold_keys = scope.cold_keys()
    written = sorted((v for v in newest.values() if not v.deleted), key=lambda v: v.ordinal)
    kept = frozenset(
        v.ordinal for v in newest.values() if v.deleted and (v.key in cold_keys or not written)
    )
    remaining = scope.remove(frozenset(v.ordinal for v in taken) - kept)
    remaining = evolve(remaining, kept=(remaining.kept & _ordinals(remaining)) | kept)
    if not written:
        return remaining
    batch = scope.cold[-1].batch + 1 if scope.cold else 0
    segment = Segment(
        batch=batch,
        versions=tuple(written),
        columns=tuple(c.name for c in table.columns),
        rows=tuple(row_of(table, v) for v in written),
        schema_version=table.schema_version,
        unsettled=unsettled,
    )
    return evolve(remaining, cold=(*remaining.cold, segment), cleared=False)


def _ordinals(scope: Scope) -> frozenset[int]:
    return frozenset(v.ordinal for v in scope.hot)


def pending(scope: Scope, cut: int | None = None) -> bool:
    """Whether the scope holds writes a flush would take (re-learned rows and tombstones an
    earlier flush left hot are not such writes)."""
    skip = scope.adopted | scope.kept
    return any((cut is None or v.ordinal <= cut) and v.ordinal not in skip for v in scope.hot)


def cleared(scope: Scope) -> Scope:
    """The scope after KalamDB's SHARED cold cleanup: no segments, a manifest without them."""
    return evolve(scope, cold=(), cleared=True, clearable=False)


@frozen
class ExpectedSegment:
    path: str
    row_count: int
    #: None until the server's ``_seq`` of those versions is known.
    min_seq: int | None
    max_seq: int | None
    #: Columns the file may hold or not (added or dropped while its job ran).
    unsettled: frozenset[str] = frozenset()


@frozen
class ExpectedCold:
    """What one scope directory must contain after the flushes the model knows of."""

    directory: str
    segments: tuple[ExpectedSegment, ...]
    #: Parquet file name -> (expected rows without ``_seq``, the versions' ordinals) in order.
    files: Mapping[str, tuple[tuple[Mapping[str, Value], int], ...]]
    #: The SHARED cleanup emptied the scope: a manifest without segments, no Parquet file.
    cleared: bool = False
    #: The cleanup may have run since: the directory may also be in the cleared layout.
    clearable: bool = False

    @property
    def last_sequence_number(self) -> int | None:
        if self.segments:
            return int(self.segments[-1].path[6:-8])
        return 0 if self.cleared else None

    @property
    def paths(self) -> frozenset[str]:
        """The files the directory must hold (in the layout the model predicts)."""
        if not self.segments:
            return frozenset({MANIFEST}) if self.cleared else frozenset()
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
                unsettled=seg.unsettled,
            )
        )
        files[seg.path] = tuple(zip(seg.rows, (v.ordinal for v in seg.versions), strict=True))
    return ExpectedCold(
        directory=storage.scope_directory(table, scope_key),
        segments=tuple(segments),
        files=files,
        cleared=scope.cleared,
        clearable=scope.clearable,
    )
