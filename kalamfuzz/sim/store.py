"""The hot tier: row versions per table scope, made durable by an append-only write-ahead log.

Every acknowledged write is in the log (os.write on an O_APPEND descriptor) before the response
goes out, so it survives SIGKILL like KalamDB's RocksDB WAL with sync_writes=false. Cold segments
are read from Parquet once (at flush commit or start-up) and kept as versions in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrs import define, field

from .types import wal_decode, wal_encode


@define(slots=True)
class Version:
    seq: int
    deleted: bool
    values: dict[int, Any]  # column id -> stored value, the primary key included


@define
class Segment:
    batch: int
    path: str
    min_seq: int
    max_seq: int
    row_count: int
    size_bytes: int
    schema_version: int
    created_at: int


@define
class Scope:
    hot: dict[Any, list[Version]] = field(factory=dict)  # pk -> versions, ascending _seq
    cold: dict[Any, Version] = field(factory=dict)  # pk -> newest version across segments
    segments: list[Segment] = field(factory=list)
    epoch: int = 0  # bumped on every change, for read caches

    def has_hot(self) -> bool:
        return any(self.hot.values())

    def latest(self, pk: Any, prefer_cold: bool = False) -> Version | None:
        versions = self.hot.get(pk)
        hot = versions[-1] if versions else None
        cold = self.cold.get(pk)
        if hot is None or cold is None:
            return hot or cold
        if prefer_cold:
            return cold
        return hot if hot.seq > cold.seq else cold

    def primary_keys(self) -> Iterator[Any]:
        seen = set(self.cold)
        yield from self.cold
        for pk, versions in self.hot.items():
            if versions and pk not in seen:
                yield pk


@define
class TableData:
    scopes: dict[str, Scope] = field(factory=dict)
    writes: int = 0  # versions committed since start-up: a flush job compares it across its run
    # Planted bugs only. No pending writes until the next write, whatever is hot:
    pending_cleared: bool = False
    # Hot versions with a _seq up to this one are invisible to UPDATE and DELETE:
    dml_horizon: int | None = None

    def scope(self, key: str) -> Scope:
        s = self.scopes.get(key)
        if s is None:
            s = self.scopes[key] = Scope()
        return s


class WriteAheadLog:
    """JSON lines: w (write a version), t (write several versions at once), x (hard-delete a
    version), f (versions left for cold)."""

    def __init__(self, path: Path, batched: bool = False) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._batched = batched  # planted bug wal_batched
        self._pending: list[bytes] = []

    def _emit(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        if self._batched:
            self._pending.append(line)
            if len(self._pending) >= 64:
                self.sync()
            return
        os.write(self._fd, line)

    def sync(self) -> None:
        if self._pending:
            os.write(self._fd, b"".join(self._pending))
            self._pending.clear()

    def write(self, uid: int, scope: str, pk: Any, v: Version) -> None:
        self._emit(_version_record(uid, scope, pk, v))

    def commit(self, writes: list[tuple[int, str, Any, Version]]) -> None:
        """A transaction's versions as one line: a kill mid-write tears the line, and replay
        drops a torn line whole, so the log never holds part of a transaction."""
        if len(writes) == 1:
            self.write(*writes[0])
        elif writes:
            self._emit({"t": [_version_record(*w) for w in writes]})

    def hard_delete(self, uid: int, scope: str, pk: Any, seq: int) -> None:
        self._emit({"x": uid, "s": scope, "k": wal_encode(pk), "q": seq})

    def flushed(self, uid: int, scope: str, keys: list[tuple[Any, int]]) -> None:
        self._emit({"f": uid, "s": scope, "q": [[wal_encode(k), s] for k, s in keys]})

    def close(self) -> None:
        self.sync()
        os.close(self._fd)


def _version_record(uid: int, scope: str, pk: Any, v: Version) -> dict[str, Any]:
    values = {str(k): wal_encode(x) for k, x in v.values.items()}
    return {"w": uid, "s": scope, "k": wal_encode(pk), "q": v.seq, "d": v.deleted, "v": values}


def replay(path: Path, data: dict[int, TableData]) -> int:
    """Apply a log to the in-memory hot tier; returns the highest `_seq` seen."""
    high = 0
    if not path.exists():
        return high
    with path.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except ValueError:
                break  # a torn last line from a kill mid-write: the write was never acknowledged
            # Logs written by older sims may hold "a" (default backfill) records: defaults are no
            # longer retroactive, so they are skipped like any unknown record.
            if "w" in rec or "t" in rec:
                for w in rec.get("t", [rec]):
                    high = max(high, w["q"])
                    _replay_version(data, w)
            elif "x" in rec:
                table = data.get(rec["x"])
                if table is not None:
                    remove_version(table.scope(rec["s"]), wal_decode(rec["k"]), rec["q"])
            elif "f" in rec:
                table = data.get(rec["f"])
                if table is not None:
                    scope = table.scope(rec["s"])
                    for k, s in rec["q"]:
                        remove_version(scope, wal_decode(k), s)
    return high


def _replay_version(data: dict[int, TableData], rec: dict[str, Any]) -> None:
    table = data.get(rec["w"])
    if table is None:
        return  # the table was dropped
    values = {int(k): wal_decode(x) for k, x in rec["v"].items()}
    pk = wal_decode(rec["k"])
    table.scope(rec["s"]).hot.setdefault(pk, []).append(Version(rec["q"], rec["d"], values))


def remove_version(scope: Scope, pk: Any, seq: int) -> None:
    versions = scope.hot.get(pk)
    if not versions:
        return
    kept = [v for v in versions if v.seq != seq]
    if kept:
        scope.hot[pk] = kept
    else:
        del scope.hot[pk]
    scope.epoch += 1


def rewrite(path: Path, data: dict[int, TableData]) -> None:
    """Compact the log to the current hot tier (at start-up, after replay)."""
    tmp = path.with_suffix(".tmp")
    if tmp.exists():
        tmp.unlink()
    log = WriteAheadLog(tmp)
    for uid, table in data.items():
        for key, scope in table.scopes.items():
            for pk, versions in scope.hot.items():
                for v in versions:
                    log.write(uid, key, pk, v)
    log.close()
    os.replace(tmp, path)
