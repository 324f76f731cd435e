"""The example database a campaign shares: a directory or Redis, the keys kalamfuzz gives its
examples there, and the findings its workers have claimed.

``open_database(spec)`` takes ``DIR`` (Hypothesis' ``DirectoryBasedExampleDatabase``) or
``redis://HOST:PORT/N`` (``hypothesis.extra.redis.RedisExampleDatabase``, with the ``redis``
package: ``pip install 'kalamfuzz[redis]'``). Hypothesis saves each failing example there and,
in a campaign's first round of a machine, replays the saved ones before generating new ones.

Keys: Hypothesis keys a test's examples by a digest of its source; a campaign's test is one
closure for every machine, so :class:`Keyed` files them under :func:`example_key` instead (the
machine and whatever changes what a saved example means: steps, planted bugs, the target's
kind, background rows), readable in Redis and stable across edits of the engine.

:class:`Claims`: the workers of one campaign (``kalamfuzz run --workers N``, or one
``--worker-index`` each on many machines) share its findings through the same database, under
the reserved key ``kalamfuzz:signatures:<run id>``. A worker claims a new signature before it
shrinks it; the lowest worker index among the claims of a signature owns it, and every other
worker counts that finding as known and explores past it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from kalamfuzz.errors import ConfigError

__all__ = [
    "SIGNATURES_KEY",
    "Claims",
    "DatabaseError",
    "Keyed",
    "example_key",
    "is_redis",
    "open_database",
]

#: Prefix of the key under which the workers of a run claim the signatures they shrink.
SIGNATURES_KEY = b"kalamfuzz:signatures:"
#: The sub-keys Hypothesis files under a test's key (``<key>.secondary``, ``<key>.pareto``).
_SUB_KEYS = (b"secondary", b"pareto")
REDIS_FIX = "pip install 'kalamfuzz[redis]'"

T = TypeVar("T")


class DatabaseError(ConfigError):
    """The example database could not be opened, read or written. Raised through the campaign
    (never taken for a finding of the target)."""


def is_redis(spec: str) -> bool:
    return spec.startswith(("redis://", "rediss://", "unix://"))


def open_database(spec: str) -> ExampleDatabase:
    """The database ``spec`` names (a directory, or a ``redis://`` URL), checked usable: a
    directory is created and written to once, a Redis server must answer."""
    if is_redis(spec):
        return _redis(spec)
    path = Path(spec).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".kalamfuzz-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DatabaseError(
            f"cannot write the example database directory {spec}: {exc.strerror or exc}",
            hint="give --database a directory you can write, or redis://HOST:PORT/N",
        ) from None
    return DirectoryBasedExampleDatabase(path)


def _redis(spec: str) -> ExampleDatabase:
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise DatabaseError(
            f"a Redis example database ({spec}) needs the redis package", hint=REDIS_FIX
        ) from None
    try:
        client = redis.Redis.from_url(spec, socket_connect_timeout=5, socket_timeout=30)
        client.ping()
    except ValueError as exc:
        raise DatabaseError(
            f"bad Redis URL {spec!r}: {exc}", hint="use --database redis://HOST:PORT/N"
        ) from None
    except redis.RedisError as exc:
        raise DatabaseError(
            f"cannot reach the Redis example database at {spec}: {exc}",
            hint="start redis-server there (or fix the URL: redis://HOST:PORT/N)",
        ) from None
    return RedisExampleDatabase(client)


def _guarded(what: str, call: Callable[[], T]) -> T:
    """``call()``, a failure of the database's I/O raised as :class:`DatabaseError`."""
    try:
        return call()
    except DatabaseError:
        raise
    except Exception as exc:
        # Redis' errors, or an OSError of a directory: the run cannot share its examples.
        raise DatabaseError(
            f"the example database failed to {what}: {type(exc).__name__}: {exc}",
            hint="check that the database (--database) is still reachable and writable",
        ) from None


def example_key(
    machine: str, steps: int, bugs: Iterable[str], target_kind: str, background_rows: int = 0
) -> bytes:
    """Where a machine's saved examples live: everything that changes what one means."""
    parts = [
        "kalamfuzz",
        machine,
        f"steps={steps}",
        "bugs=" + (",".join(sorted(bugs)) or "-"),
        f"target={target_kind}",
    ]
    if background_rows:
        parts.append(f"rows={background_rows}")
    return ":".join(parts).encode()


class Keyed(ExampleDatabase):
    """``db`` seen through one key: whatever key Hypothesis gives the test, its examples go
    under ``key`` (and its sub-keys under ``key.secondary``, ``key.pareto``). Failures of the
    underlying database raise :class:`DatabaseError`."""

    def __init__(self, db: ExampleDatabase, key: bytes) -> None:
        super().__init__()
        self.db = db
        self.key = key

    def __repr__(self) -> str:
        return f"Keyed({self.db!r}, {self.key!r})"

    def _map(self, key: bytes) -> bytes:
        for sub in _SUB_KEYS:
            if key.endswith(b"." + sub):
                return self.key + b"." + sub
        return self.key

    def fetch(self, key: bytes) -> Iterable[bytes]:
        mapped = self._map(key)
        return _guarded("read", lambda: [v for v in self.db.fetch(mapped) if v])

    def save(self, key: bytes, value: bytes) -> None:
        # Hypothesis saves the choices of a test case that raised anything but a failure. The
        # campaign drops a shrink candidate before its first draw (out of shrinking work, or
        # claimed by another worker), which Hypothesis' data tree calls flaky: the empty
        # choice sequence is saved. Kept, it would sort first and replay first as a whole new
        # example, using up a small budget before the saved failures (every example draws).
        if value:
            _guarded("save an example", lambda: self.db.save(self._map(key), value))

    def delete(self, key: bytes, value: bytes) -> None:
        _guarded("delete an example", lambda: self.db.delete(self._map(key), value))

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        _guarded("move an example", lambda: self.db.move(self._map(src), self._map(dest), value))


class Claims:
    """The signatures the workers of run ``run_id`` have claimed, in the shared database.

    A worker claims a new finding before shrinking it: when no worker has claimed it yet it
    saves its claim, reads the claims again, and owns the finding when its index is the lowest
    among them (two workers that claimed at the same moment agree which one shrinks). A worker
    that finds a claim of another worker counts the finding as known instead. Best effort: a
    claim that lands after another worker already read the claims and saw none can make both
    shrink it (the campaign's summary still lists each signature once).
    """

    def __init__(self, db: ExampleDatabase, run_id: str, worker: int) -> None:
        self.db = db
        self.key = SIGNATURES_KEY + run_id.encode()
        self.worker = worker
        #: Signatures this worker owns.
        self.mine: set[str] = set()

    def entries(self) -> list[dict[str, Any]]:
        """Every claim: ``{"sig", "worker", "parts"}`` (parts: the violations' own signatures,
        what the triage needs to count them as known)."""
        raw = _guarded("read the claimed findings", lambda: list(self.db.fetch(self.key)))
        out = []
        for value in raw:
            try:
                entry = json.loads(value)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("sig"), str):
                out.append(entry)
        return out

    def _owners(self, sig: str) -> set[int]:
        return {int(e.get("worker", 0)) for e in self.entries() if e["sig"] == sig}

    def claim(self, sig: str, parts: Iterable[str] = ()) -> bool:
        """Claim ``sig``; True when this worker owns it (and so shrinks and saves it)."""
        if sig in self.mine:
            return True
        owners = self._owners(sig)
        if not owners:
            entry = {"sig": sig, "worker": self.worker, "parts": sorted(parts)}
            value = json.dumps(entry, sort_keys=True).encode()
            _guarded("save a claim", lambda: self.db.save(self.key, value))
            owners = self._owners(sig) | {self.worker}
        if min(owners) != self.worker:
            return False
        self.mine.add(sig)
        return True

    def others(self) -> list[dict[str, Any]]:
        """The claims of findings other workers own."""
        entries = self.entries()
        owner: dict[str, int] = {}
        for e in entries:
            owner[e["sig"]] = min(owner.get(e["sig"], 1 << 30), int(e.get("worker", 0)))
        return [
            e
            for e in entries
            if owner[e["sig"]] != self.worker
            and int(e.get("worker", 0)) == owner[e["sig"]]
            and e["sig"] not in self.mine
        ]

    def clear(self) -> None:
        """Forget the run's claims (when the run is over)."""

        def clear() -> None:
            for value in list(self.db.fetch(self.key)):
                self.db.delete(self.key, value)

        _guarded("delete the claims", clear)
