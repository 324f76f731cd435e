"""Row versions per scope, hot and cold, and which of them a read sees.

Every INSERT, UPDATE and DELETE appends a :class:`Version`. The model cannot know the server's
``_seq`` ahead of time, so a version is identified by its *ordinal*, the model's own commit
counter; the server's ``_seq`` is bound to the ordinal once a read shows it (see
:class:`SeqBook`). Both orders must agree: ``_seq`` is strictly increasing in commit order.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import evolve, field, frozen
from immutables import Map

from kalamfuzz.model.catalog import Table, TableType
from kalamfuzz.model.values import DELETED, ModelError, Value

#: The scope of a SHARED table; USER and STREAM scopes are user ids.
ScopeKey = str | None


@frozen
class Window:
    """A client-measured request interval in ms: the server acted somewhere inside it."""

    sent_ms: int
    recv_ms: int

    def __attrs_post_init__(self) -> None:
        if self.recv_ms < self.sent_ms:
            raise ModelError(f"window ends before it starts: {self}")


@frozen
class Version:
    ordinal: int
    key: Value
    #: User-column values as they were at ``schema_version``.
    values: Mapping[str, Value]
    schema_version: int
    deleted: bool = False
    #: When the write was sent and answered; only STREAM TTL needs it.
    written: Window | None = None


def materialize(table: Table, version: Version) -> dict[str, Value]:
    """The user columns of ``version`` under the table's current schema.

    A column added after the version was written reads NULL, whatever its DEFAULT (which only
    new INSERTs get: KalamDB applies no default retroactively, smoke_test_alter_with_data.rs),
    and even when an older, dropped column had the same name.
    """
    out: dict[str, Value] = {}
    for col in table.columns:
        if col.added_in > version.schema_version:
            out[col.name] = None
        else:
            out[col.name] = version.values.get(col.name, col.default)
    return out


@frozen
class Segment:
    """One committed ``batch-N.parquet``: exactly what it must hold."""

    batch: int
    versions: tuple[Version, ...]
    #: The user columns of the file (the table's columns when it was flushed).
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Value], ...]
    schema_version: int
    #: Columns added or dropped while the segment's job ran: the job may have taken its rows
    #: under either schema, so the file may hold them or not.
    unsettled: frozenset[str] = frozenset()

    @property
    def path(self) -> str:
        return f"batch-{self.batch}.parquet"


@frozen
class Scope:
    hot: tuple[Version, ...] = ()
    cold: tuple[Segment, ...] = ()
    #: The model re-learned the scope from a server read after a known finding: which tier
    #: holds what is no longer known, so cold files and flush outcomes are not predicted.
    relearned: bool = False
    #: Ordinals of the versions that re-learning added: the server's rows, not writes waiting
    #: for a flush.
    adopted: frozenset[int] = frozenset()
    #: Ordinals of tombstones a flush left in the hot tier: they hide a key's cold version,
    #: since Parquet never holds tombstones. Not writes waiting for a flush.
    kept: frozenset[int] = frozenset()
    #: SHARED cold cleanup (KalamDB runs it after a flush that left the table without live
    #: rows, asynchronously and not always): ``clearable`` while it may have emptied the cold
    #: tier the model shows; ``cleared`` once it has (a manifest with no segments).
    clearable: bool = False
    cleared: bool = False
    #: ``latest()``, once asked for: a scope never changes, and a statement's ``extend`` passes
    #: it on updated, so a read or a key check costs the rows it names, not the scope's size.
    #: Persistent, so that passing it on costs the statement's rows too (a copy of a 50,000-key
    #: dict per statement made every write cost the table's size).
    _by_key: Map[Value, Version] | None = field(default=None, init=False, eq=False, repr=False)

    @property
    def has_cold(self) -> bool:
        """Whether the scope's directory holds (or may hold) cold artifacts."""
        return bool(self.cold) or self.cleared or self.clearable

    def all_versions(self) -> Iterable[Version]:
        for seg in self.cold:
            yield from seg.versions
        yield from self.hot

    def latest(self) -> Mapping[Value, Version]:
        """The newest version of every key, hot and cold together."""
        if self._by_key is None:
            object.__setattr__(self, "_by_key", Map(_newest({}, self.all_versions())))
        assert self._by_key is not None
        return self._by_key

    def since(self, ordinal: int) -> list[Version]:
        """The versions written after ``ordinal`` that the scope holds, newest first, found
        from the end (the hot tier and each segment are in commit order): their cost, not
        the scope's."""
        out = _newer(self.hot, ordinal)
        for seg in reversed(self.cold):
            newer = _newer(seg.versions, ordinal)
            out += newer
            if len(newer) < len(seg.versions):
                break  # older segments hold older versions only
        return out

    def live(self, table: Table) -> list[Version]:
        """The rows a default read sees, in commit order (STREAM TTL not applied here)."""
        if table.type is TableType.STREAM:
            return list(self.hot)
        return sorted((v for v in self.latest().values() if not v.deleted), key=lambda v: v.ordinal)

    def with_tombstones(self) -> list[Version]:
        """What a read whose WHERE names ``_deleted`` sees (KalamDB's ``keep_deleted``)."""
        return sorted(self.latest().values(), key=lambda v: v.ordinal)

    def cold_keys(self) -> frozenset[Value]:
        return frozenset(v.key for seg in self.cold for v in seg.versions)

    def extend(self, versions: Sequence[Version]) -> Scope:
        if not versions:
            return self
        scope = evolve(self, hot=self.hot + tuple(versions))
        if self._by_key is not None:
            object.__setattr__(scope, "_by_key", _newest_of(self._by_key, versions))
        return scope

    def remove(self, ordinals: frozenset[int]) -> Scope:
        if not ordinals:
            return self
        return evolve(self, hot=tuple(v for v in self.hot if v.ordinal not in ordinals))


def _newer(versions: Sequence[Version], ordinal: int) -> list[Version]:
    """The versions after ``ordinal`` at the end of ``versions`` (in commit order)."""
    return list(itertools.takewhile(lambda v: v.ordinal > ordinal, reversed(versions)))


def _newest(best: dict[Value, Version], versions: Iterable[Version]) -> dict[Value, Version]:
    for v in versions:
        cur = best.get(v.key)
        if cur is None or v.ordinal > cur.ordinal:
            best[v.key] = v
    return best


def _newest_of(best: Map[Value, Version], versions: Iterable[Version]) -> Map[Value, Version]:
    """``best`` with ``versions`` where they are newer, at the cost of ``versions``."""
    changes = best.mutate()
    for key, v in _newest({}, versions).items():
        cur = best.get(key)
        if cur is None or v.ordinal > cur.ordinal:
            changes[key] = v
    return changes.finish()


@frozen
class Intervals:
    """Disjoint ordinal ranges, each mapped to a (first, last) statement span: what ``SeqBook``
    keeps per statement rather than per row (a dict entry per row copied on every statement
    made a write cost the table's size). Sorted; a range put over others replaces them where
    they overlap, as setting each ordinal of it would."""

    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()
    values: tuple[tuple[int, int], ...] = ()

    def get(self, ordinal: int) -> tuple[int, int] | None:
        i = bisect.bisect_right(self.starts, ordinal) - 1
        return self.values[i] if i >= 0 and self.ends[i] >= ordinal else None

    def put(self, first: int, last: int, value: tuple[int, int]) -> Intervals:
        lo = bisect.bisect_left(self.ends, first)  # the first range ending at or after first
        hi = bisect.bisect_right(self.starts, last)  # past the last range starting by last
        kept: list[tuple[int, int, tuple[int, int]]] = []
        if lo < hi and self.starts[lo] < first:
            kept.append((self.starts[lo], first - 1, self.values[lo]))
        kept.append((first, last, value))
        if lo < hi and self.ends[hi - 1] > last:
            kept.append((last + 1, self.ends[hi - 1], self.values[hi - 1]))
        return Intervals(
            (*self.starts[:lo], *(k[0] for k in kept), *self.starts[hi:]),
            (*self.ends[:lo], *(k[1] for k in kept), *self.ends[hi:]),
            (*self.values[:lo], *(k[2] for k in kept), *self.values[hi:]),
        )


def row_of(table: Table, version: Version) -> dict[str, Value]:
    """User columns plus ``_deleted`` (where the table has it); ``_seq`` is bound separately."""
    row = materialize(table, version)
    if DELETED in table.system_columns:
        row[DELETED] = version.deleted
    return row


@frozen
class SeqBook:
    """The server ``_seq`` learned for each version ordinal.

    ``ordinals`` and ``seqs`` are parallel sorted tuples, so lookups and order checks are
    binary searches. ``_seq`` grows with commit order from one statement to the next; the rows
    of one statement may get theirs in any order among themselves (``spans``).
    """

    ordinals: tuple[int, ...] = ()
    seqs: tuple[int, ...] = ()
    by_ordinal: Map[int, int] = field(factory=Map)
    #: (first, last) ordinal of the statement of each version a multi-row statement wrote.
    spans: Intervals = field(factory=Intervals)
    #: (first, last) ordinal of each version's statement: one atomic write, which a flush
    #: job takes whole or not at all (``spans`` may be wider: statements sent at once).
    atoms: Intervals = field(factory=Intervals)
    #: ``_seq`` values taken as the server showed them when the model re-learned a scope after
    #: a known finding: they sit outside the model's commit order and are never order-checked.
    pinned: Map[int, int] = field(factory=Map)

    def get(self, ordinal: int) -> int | None:
        pinned = self.pinned.get(ordinal)
        return pinned if pinned is not None else self.by_ordinal.get(ordinal)

    def span(self, ordinal: int) -> tuple[int, int]:
        return self.spans.get(ordinal) or (ordinal, ordinal)

    def atom(self, ordinal: int) -> tuple[int, int]:
        return self.atoms.get(ordinal) or (ordinal, ordinal)

    def statement(self, first: int, last: int) -> SeqBook:
        """Versions ``first..last`` were written by one statement."""
        if last <= first:
            return self
        span = (first, last)
        return evolve(
            self, spans=self.spans.put(first, last, span), atoms=self.atoms.put(first, last, span)
        )

    def unordered(self, first: int, last: int) -> SeqBook:
        """Versions ``first..last`` were written by statements sent at once: their ``_seq``
        may come in any order among them (each statement stays one atomic write)."""
        if last <= first:
            return self
        return evolve(self, spans=self.spans.put(first, last, (first, last)))

    def _group_max(self, k: int) -> int:
        """The largest ``_seq`` bound in the statement of ``ordinals[k]``, at or before k."""
        first, _ = self.span(self.ordinals[k])
        return max(self.seqs[bisect.bisect_left(self.ordinals, first, 0, k) : k + 1])

    def _group_min(self, k: int) -> int:
        """The smallest ``_seq`` bound in the statement of ``ordinals[k]``, at or after k."""
        _, last = self.span(self.ordinals[k])
        return min(self.seqs[k : bisect.bisect_right(self.ordinals, last, k)])

    def _neighbours(self, ordinal: int) -> tuple[int | None, int | None, range]:
        """The largest ``_seq`` of an earlier statement, the smallest of a later one, and the
        indexes of the versions bound in ``ordinal``'s own statement."""
        first, last = self.span(ordinal)
        i = bisect.bisect_left(self.ordinals, first)
        j = bisect.bisect_right(self.ordinals, last)
        before = self._group_max(i - 1) if i > 0 else None
        after = self._group_min(j) if j < len(self.ordinals) else None
        return before, after, range(i, j)

    def conflict(self, ordinal: int, seq: int) -> str | None:
        """Why binding ``seq`` to ``ordinal`` breaks the ``_seq`` order, or None."""
        if ordinal in self.pinned:
            known = self.pinned[ordinal]
            return None if known == seq else f"version already has _seq {known}, now {seq}"
        known_seq = self.by_ordinal.get(ordinal)
        if known_seq is not None:
            return None if known_seq == seq else f"version already has _seq {known_seq}, now {seq}"
        before, after, own = self._neighbours(ordinal)
        return _order_conflict(seq, before, after, {self.seqs[k] for k in own})

    def bind(self, ordinal: int, seq: int) -> SeqBook:
        if ordinal in self.by_ordinal or ordinal in self.pinned:
            return self
        i = bisect.bisect_left(self.ordinals, ordinal)
        return evolve(
            self,
            ordinals=(*self.ordinals[:i], ordinal, *self.ordinals[i:]),
            seqs=(*self.seqs[:i], seq, *self.seqs[i:]),
            by_ordinal=self.by_ordinal.set(ordinal, seq),
        )

    def bind_all(self, pairs: Mapping[int, int]) -> tuple[SeqBook, list[str]]:
        """Bind each (ordinal, seq), in ordinal order, that does not conflict with the book as
        bound so far; returns the new book and why each of the others conflicts.

        One copy of the book for the lot: binding a 1,000-row page one by one copied the whole
        book a thousand times (quadratic in the table's size)."""
        conflicts: list[str] = []
        fresh: dict[int, int] = {}
        for ordinal, seq in sorted(pairs.items()):
            if ordinal in self.by_ordinal or ordinal in self.pinned:
                why = self.conflict(ordinal, seq)
                conflicts += [why] if why is not None else []
            else:
                fresh[ordinal] = seq
        if not fresh:
            return self, conflicts  # most reads learn nothing new: no copy
        ordinals, seqs, by = list(self.ordinals), list(self.seqs), self.by_ordinal.mutate()
        # ``_neighbours`` reads the lists through this view as they grow (lists where the
        # fields are typed tuples: only bisect and indexing touch them).
        view: Any = evolve
        work: SeqBook = view(self, ordinals=ordinals, seqs=seqs)
        # In ordinal order, binding into one statement changes neither its neighbours' _seq
        # nor any other statement's: they are looked up once per statement, not per row (per
        # row walked the statement each time: quadratic in a 10,000-row parallel load).
        span: tuple[int, int] | None = None
        before = after = None
        own: set[int] = set()
        for ordinal, seq in fresh.items():
            if work.span(ordinal) != span:
                span = work.span(ordinal)
                before, after, bound = work._neighbours(ordinal)
                own = {seqs[k] for k in bound}
            why = _order_conflict(seq, before, after, own)
            if why is not None:
                conflicts.append(why)
                continue
            i = bisect.bisect_left(ordinals, ordinal)
            ordinals.insert(i, ordinal)
            seqs.insert(i, seq)
            by[ordinal] = seq
            own.add(seq)
        if len(by) == len(self.by_ordinal):
            return self, conflicts
        book = evolve(self, ordinals=tuple(ordinals), seqs=tuple(seqs), by_ordinal=by.finish())
        return book, conflicts

    def pin(self, ordinal: int, seq: int) -> SeqBook:
        return evolve(self, pinned=self.pinned.set(ordinal, seq))

    def after(self, ordinal: int, seq: int) -> bool | None:
        """Whether the version ``ordinal`` has ``_seq > seq``; None when the book cannot tell."""
        known = self.get(ordinal)
        if known is not None:
            return known > seq
        # An earlier statement's write with _seq >= seq proves this one is later; a later
        # statement's write with _seq <= seq proves this one is not.
        before, after, _ = self._neighbours(ordinal)
        if before is not None and before >= seq:
            return True
        if after is not None and after <= seq:
            return False
        return None


def _order_conflict(seq: int, before: int | None, after: int | None, own: set[int]) -> str | None:
    """Why ``seq`` cannot sit between an earlier statement's largest ``_seq`` (``before``) and a
    later one's smallest (``after``) next to the ``_seq`` its own statement already has."""
    if before is not None and before >= seq:
        return f"_seq {seq} is not after _seq {before} of an earlier statement"
    if after is not None and after <= seq:
        return f"_seq {seq} is not before _seq {after} of a later statement"
    if seq in own:
        return f"_seq {seq} is shared by two rows of one statement"
    return None
