"""Live-query client for KalamDB's WebSocket (``GET /v1/ws``), see WEBSOCKET.md.

One :class:`LiveClient` is one socket multiplexing many :class:`Subscription` s. The socket lives on
an event loop in a background thread (shared by all clients), so every public method is a plain
blocking call usable from Hypothesis rules. :class:`AsyncLiveClient` is the async core for code that
already runs in an event loop.

Protocol, to the letter: Bearer JWT in the upgrade header (or the ``authenticate`` message with its
required ``protocol`` object), ``?compress=false`` with gzip-binary frames still accepted, WS pings
every 4 s (the server never pings and drops silent clients after 10 s), ``options: {}`` to get a
snapshot, ``next_batch`` with an *integer* ``last_seq_id`` sent by the client for each page with
``has_more``, ``from`` as an integer, ``_seq`` and BIGINT cells as strings.

Every received message is recorded with its receive time. A subscription exposes the snapshot
(pages with their ``batch_control``), the change log, the materialised current rows, the highest
``_seq`` seen and :meth:`Subscription.resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import websockets
from attrs import field, frozen
from websockets.asyncio.client import ClientConnection, connect

from kalamfuzz.adapters.values import Column, convert_row, parse_schema
from kalamfuzz.errors import (
    AuthError,
    ConfigError,
    ConnectionDropped,
    KalamError,
    LiveError,
    ProtocolError,
    SubscriptionError,
    TargetUnreachable,
)

if TYPE_CHECKING:
    from kalamfuzz.adapters.sql import SqlClient

__all__ = [
    "AsyncLiveClient",
    "BatchControl",
    "Change",
    "LiveClient",
    "Received",
    "SnapshotBatch",
    "Subscription",
    "ws_url",
]

log = logging.getLogger("kalamfuzz.adapters.websocket")

T = TypeVar("T")
_SYNTHETIC_IDS = frozenset({"protocol", "rate_limit", "subscribe", "invalid_subscription"})
_ids = itertools.count(1)


def ws_url(base_url: str, *, compress: bool = False) -> str:
    """``http://h:p`` → ``ws://h:p/v1/ws?compress=false`` (``https`` → ``wss``)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigError(
            f"{base_url!r} is not an http(s) URL", hint="use e.g. http://127.0.0.1:8080"
        )
    return urlunsplit((scheme, parts.netloc, "/v1/ws", "" if compress else "compress=false", ""))


# ---------------------------------------------------------------------------------------------
# the background loop


class _LoopThread:
    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="kalamfuzz-live-loop", daemon=True
        )
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = _LoopThread()
            return cls._instance

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise ConfigError(
                "LiveClient's blocking API was called from its own event loop",
                hint="use AsyncLiveClient inside async code",
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise LiveError("live-client operation timed out", code="TIMEOUT") from None


# ---------------------------------------------------------------------------------------------
# recorded values


@frozen
class Received:
    """One server message as received: wall-clock ``at`` (``time.time()``), ``type``, payload."""

    at: float
    type: str
    payload: Mapping[str, Any]
    binary: bool = False


@frozen
class BatchControl:
    """``batch_control`` of an ack or snapshot page."""

    batch_num: int
    has_more: bool
    status: str
    last_seq_id: int | None

    @classmethod
    def parse(cls, raw: Any) -> BatchControl:
        if not isinstance(raw, dict):
            raise ProtocolError(f"batch_control is not an object: {raw!r}")
        last = raw.get("last_seq_id")
        if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
            raise ProtocolError(f"batch_control.last_seq_id must be an integer, got {last!r}")
        return cls(
            batch_num=int(raw.get("batch_num", 0)),
            has_more=bool(raw.get("has_more", False)),
            status=str(raw.get("status", "")),
            last_seq_id=last,
        )


@frozen
class SnapshotBatch:
    """One ``initial_data_batch`` page: converted rows (``_seq`` as int) and its control."""

    rows: tuple[dict[str, Any], ...]
    control: BatchControl
    at: float
    #: rows exactly as decoded from JSON (``_seq`` as a string)
    raw_rows: tuple[Mapping[str, Any], ...] = field(default=(), repr=False, eq=False)
    #: position of the message in the subscription's receive order
    index: int = 0


@frozen
class Change:
    """One ``change`` message: ``change_type`` insert/update/delete, converted ``rows`` and
    ``old_values`` (empty tuples when the key was absent), and the receive time."""

    change_type: str
    rows: tuple[dict[str, Any], ...]
    old_values: tuple[dict[str, Any], ...]
    at: float
    raw_rows: tuple[Mapping[str, Any], ...] = field(default=(), repr=False, eq=False)
    raw_old_values: tuple[Mapping[str, Any], ...] = field(default=(), repr=False, eq=False)
    #: position of the message in the subscription's receive order
    index: int = 0

    @property
    def seq(self) -> int | None:
        """The version's ``_seq``: of ``rows[0]``, else of ``old_values[0]`` (delete)."""
        for r in (*self.rows, *self.old_values):
            s = r.get("_seq")
            if isinstance(s, int):
                return s
        return None


# ---------------------------------------------------------------------------------------------
# subscription state


class Subscription:
    """One live query. State is updated by the loop thread; read it from any thread.

    Attributes (read-only): ``id``, ``sql``, ``options`` (as sent), ``from_seq``, ``schema``,
    ``ack``, ``batches``, ``changes``, ``messages``, ``error``, ``ready``, ``dropped``,
    ``max_seq``, ``key_columns``.
    """

    def __init__(
        self,
        client: AsyncLiveClient,
        sub_id: str,
        sql: str,
        options: dict[str, Any] | None,
        *,
        auto_page: bool,
        base_rows: Mapping[tuple[Any, ...], dict[str, Any]] | None = None,
        key_columns: tuple[str, ...] | None = None,
        resumed_from: Subscription | None = None,
    ) -> None:
        self._client = client
        self._cond = client._cond
        self.id = sub_id
        self.sql = sql
        self.options = options
        self.from_seq: int | None = options.get("from") if options else None
        self.auto_page = auto_page
        self.resumed_from = resumed_from
        self.schema: tuple[Column, ...] = ()
        self._types: dict[str, str] = {}
        self.ack: Mapping[str, Any] | None = None
        self.ack_control: BatchControl | None = None
        self._batches: list[SnapshotBatch] = []
        self._changes: list[Change] = []
        self._messages: list[Received] = []
        self.error: SubscriptionError | None = None
        self.protocol_errors: list[str] = []
        self.ready = False
        self.active = True
        self.dropped = False
        self.max_seq: int | None = None
        self._explicit_keys = key_columns
        self.key_columns: tuple[str, ...] = key_columns or ()
        self._current: dict[tuple[Any, ...], dict[str, Any]] = dict(base_rows or {})
        self._resumes = 0

    def __repr__(self) -> str:
        state = "error" if self.error else "ready" if self.ready else "loading"
        return f"<Subscription {self.id} {state} batches={len(self._batches)} changes={len(self._changes)}>"

    # -- read API ------------------------------------------------------------------------

    @property
    def batches(self) -> tuple[SnapshotBatch, ...]:
        """Snapshot pages in arrival order."""
        with self._cond:
            return tuple(self._batches)

    @property
    def snapshot_rows(self) -> list[dict[str, Any]]:
        """All snapshot rows, pages concatenated."""
        with self._cond:
            return [r for b in self._batches for r in b.rows]

    @property
    def changes(self) -> tuple[Change, ...]:
        """``change`` messages in arrival order."""
        with self._cond:
            return tuple(self._changes)

    @property
    def messages(self) -> tuple[Received, ...]:
        """Every message routed to this subscription (ack, pages, changes, errors)."""
        with self._cond:
            return tuple(self._messages)

    def current_rows(self) -> list[dict[str, Any]]:
        """Materialised rows: the snapshot with every change applied, ordered by ``_seq``.

        Rows are keyed by the primary-key columns of the ack schema (``id`` if the schema has no
        pk flag, ``_seq`` if neither). Insert upserts; update merges ``rows`` into the row and sets
        to NULL a column named in ``old_values`` but missing from ``rows`` (KalamDB omits NULLs);
        delete removes the key of ``old_values[0]`` (STREAM ``row_id`` ``user:seq`` by ``_seq``).
        """
        with self._cond:
            rows = [dict(r) for r in self._current.values()]
        return sorted(rows, key=lambda r: (r.get("_seq") is None, r.get("_seq") or 0))

    @property
    def current_by_key(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        with self._cond:
            return {k: dict(v) for k, v in self._current.items()}

    # -- waiting -------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[Subscription], bool], timeout: float = 10.0) -> None:
        """Block until ``predicate(self)`` holds; raise on error, drop or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self):
                    return
                if self.error is not None:
                    raise self.error
                if self.dropped:
                    raise ConnectionDropped(
                        f"connection dropped while waiting on subscription {self.id}: "
                        f"{self._client.close_reason or 'closed'}",
                        code=self._client.close_code_text,
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LiveError(
                        f"subscription {self.id}: condition not met within {timeout:.1f}s "
                        f"(batches={len(self._batches)}, changes={len(self._changes)})",
                        code="TIMEOUT",
                        statement=self.sql,
                    )
                self._cond.wait(left)

    def wait_ready(self, timeout: float = 10.0) -> Subscription:
        """Block until the snapshot is complete (``ready``); raise :class:`SubscriptionError`."""
        self.wait_for(lambda s: s.ready, timeout)
        return self

    def wait_changes(self, count: int, timeout: float = 10.0) -> tuple[Change, ...]:
        """Block until at least ``count`` changes arrived in total; return all changes."""
        self.wait_for(lambda s: len(s._changes) >= count, timeout)
        return self.changes

    def wait_quiet(self, quiet: float = 0.2, timeout: float = 10.0) -> None:
        """Block until no message has arrived for ``quiet`` seconds (a quiescent point)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                last = self._client._last_message_monotonic
                if self.error is not None:
                    raise self.error
            idle = time.monotonic() - last
            if idle >= quiet:
                return
            if time.monotonic() + (quiet - idle) > deadline:
                raise LiveError(
                    f"subscription {self.id}: messages still arriving after {timeout:.1f}s",
                    code="TIMEOUT",
                )
            time.sleep(quiet - idle)

    # -- actions (blocking; go through the owning LiveClient's loop) ---------------------

    def unsubscribe(self) -> None:
        """Send ``unsubscribe``; later messages are still recorded but not applied."""
        _LoopThread.get().run(self._client.unsubscribe(self.id), self._client.timeout)

    def request_next_batch(self) -> None:
        """Send ``next_batch`` for the last page (only needed with ``auto_page=False``)."""
        with self._cond:
            last = self._batches[-1].control.last_seq_id if self._batches else None
        _LoopThread.get().run(self._client._send_next_batch(self.id, last), self._client.timeout)

    def resume(
        self,
        client: LiveClient | None = None,
        *,
        batch_size: int | None = None,
        wait: bool = True,
        timeout: float = 10.0,
    ) -> Subscription:
        """A new ``subscribe`` with ``from`` = the highest ``_seq`` seen (WEBSOCKET.md §5).

        Runs on ``client`` or on this subscription's client (reconnecting it first if its socket
        dropped). The new subscription starts from this one's materialised rows, so its
        :meth:`current_rows` keeps reconstructing the query result. Nothing is filtered: a
        replayed row (``_seq <= from``) stays visible in its log for the invariants to judge.
        """
        owner = client or self._client.facade
        if owner is None:
            raise ConfigError(
                "resume() of an async subscription needs a LiveClient", hint="pass client="
            )
        if not owner.connected:
            owner.reconnect()
        with self._cond:
            self._resumes += 1
            new_id = f"{self.id.split('~')[0]}~r{self._resumes}"
            base = {k: dict(v) for k, v in self._current.items()}
            from_seq = self.max_seq if self.max_seq is not None else self.from_seq
        bs = batch_size
        if bs is None and self.options:
            bs = self.options.get("batch_size")
        return owner.subscribe(
            self.sql,
            batch_size=bs,
            from_seq=from_seq,
            sub_id=new_id,
            wait=wait,
            timeout=timeout,
            auto_page=self.auto_page,
            key_columns=self.key_columns or None,
            _base_rows=base,
            _resumed_from=self,
        )

    # -- updates (loop thread, under the condition) -------------------------------------

    def _see_seq(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for r in rows:
            s = r.get("_seq")
            if isinstance(s, int) and (self.max_seq is None or s > self.max_seq):
                self.max_seq = s

    def _key(self, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
        if not self.key_columns:
            return None
        if not all(k in row for k in self.key_columns):
            return None
        return tuple(_hashable(row[k]) for k in self.key_columns)

    def _on_ack(self, msg: Received) -> None:
        p = msg.payload
        self.ack = p
        self.schema = parse_schema(p.get("schema"))
        self._types = {c.name: c.data_type for c in self.schema}
        if not self._explicit_keys:
            pks = tuple(c.name for c in self.schema if c.is_pk)
            names = {c.name for c in self.schema}
            self.key_columns = pks or (("id",) if "id" in names else ("_seq",))
        if p.get("batch_control") is not None:
            self.ack_control = BatchControl.parse(p["batch_control"])
            if self.options is None and self.ack_control.status == "ready":
                self.ready = True  # no snapshot requested: no page follows

    def _convert(self, rows: Any, what: str) -> tuple[dict[str, Any], ...]:
        if rows is None:
            return ()
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ProtocolError(f"{what} must be an array of objects, got {rows!r}")
        return tuple(convert_row(r, self._types) for r in rows)

    def _on_batch(self, msg: Received) -> bool:
        """Record a page; return whether to request the next one."""
        control = BatchControl.parse(msg.payload.get("batch_control"))
        rows = self._convert(msg.payload.get("rows"), "initial_data_batch.rows")
        self._batches.append(
            SnapshotBatch(
                rows=rows,
                control=control,
                at=msg.at,
                raw_rows=tuple(msg.payload.get("rows") or ()),
                index=len(self._messages) - 1,
            )
        )
        self._see_seq(rows)
        for r in rows:
            key = self._key(r)
            if key is not None:
                self._current[key] = dict(r)
        if not control.has_more:
            self.ready = True
            return False
        return self.auto_page

    def _on_change(self, msg: Received) -> None:
        p = msg.payload
        change = Change(
            change_type=str(p.get("change_type")),
            rows=self._convert(p.get("rows"), "change.rows"),
            old_values=self._convert(p.get("old_values"), "change.old_values"),
            at=msg.at,
            raw_rows=tuple(p.get("rows") or ()),
            raw_old_values=tuple(p.get("old_values") or ()),
            index=len(self._messages) - 1,
        )
        if not self.active:
            return
        self._changes.append(change)
        self._see_seq((*change.rows, *change.old_values))
        self._apply(change)

    def _apply(self, change: Change) -> None:
        if change.change_type == "insert":
            for r in change.rows:
                key = self._key(r)
                if key is not None:
                    self._current[key] = dict(r)
        elif change.change_type == "update":
            old = change.old_values[0] if change.old_values else {}
            for r in change.rows:
                key = self._key(r)
                if key is None:
                    continue
                base = self._current.get(key)
                if base is None:
                    base = {c.name: None for c in self.schema}
                merged = dict(base)
                merged.update(r)
                for col in old:
                    if col not in r and col != "_seq":
                        merged[col] = None  # KalamDB omits columns that became NULL
                self._current[key] = merged
        elif change.change_type == "delete":
            for r in change.old_values:
                if "row_id" in r and self.key_columns != ("row_id",):
                    self._delete_stream_row(r["row_id"])
                    continue
                key = self._key(r)
                if key is not None:
                    self._current.pop(key, None)

    def _delete_stream_row(self, row_id: Any) -> None:
        try:
            seq = int(str(row_id).rsplit(":", 1)[1])
        except (IndexError, ValueError):
            self.protocol_errors.append(f"bad STREAM row_id {row_id!r}")
            return
        for key, row in list(self._current.items()):
            if row.get("_seq") == seq:
                del self._current[key]


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


# ---------------------------------------------------------------------------------------------
# async core


class AsyncLiveClient:
    """The async core: one WebSocket, many subscriptions. Use from inside an event loop."""

    def __init__(
        self,
        url: str,
        token: str | Callable[[], str],
        *,
        compress: bool = False,
        auth: str = "header",
        ping_interval: float = 4.0,
        ping_timeout: float = 20.0,
        timeout: float = 10.0,
    ) -> None:
        if auth not in ("header", "message"):
            raise ConfigError(
                f"auth must be 'header' or 'message', got {auth!r}", hint="use auth='header'"
            )
        if ping_interval > 5.0:
            raise ConfigError(
                f"ping_interval {ping_interval}s is too long: KalamDB drops clients silent for 10 s",
                hint="use ping_interval <= 5",
            )
        self.base_url = url.rstrip("/")
        self.url = ws_url(url, compress=compress)
        self._token = token
        self.auth = auth
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.timeout = timeout
        self._cond = threading.Condition()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.errors: list[Received] = []
        self.user: str | None = None
        self.role: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.connected = False
        self._last_message_monotonic = time.monotonic()
        self.facade: LiveClient | None = None
        #: Every client message sent, with its wall-clock time (transcripts and reports).
        self.sent: list[tuple[float, dict[str, Any]]] = []

    @property
    def close_code_text(self) -> str | None:
        return None if self.close_code is None else str(self.close_code)

    def _get_token(self) -> str:
        return self._token() if callable(self._token) else self._token

    async def connect(self, token: str | None = None) -> None:
        """Open the socket and authenticate; raise :class:`AuthError` on ``auth_error``."""
        tok = token if token is not None else self._get_token()
        headers = {"Authorization": f"Bearer {tok}"} if self.auth == "header" else None
        try:
            ws = await connect(
                self.url,
                additional_headers=headers,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                open_timeout=self.timeout,
                close_timeout=2.0,
                max_size=64 * 1024 * 1024,
                compression=None,
                proxy=None,
            )
        except (OSError, TimeoutError) as exc:
            raise TargetUnreachable(
                f"cannot open WebSocket {self.url}: {exc or type(exc).__name__}",
                hint="start the server, or fix --target / KALAMFUZZ_TARGET",
            ) from None
        except websockets.exceptions.InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body.decode(errors="replace")[:200] if exc.response.body else ""
            raise LiveError(
                f"WebSocket upgrade refused: HTTP {status} {body}".strip(), status=status
            ) from None
        except websockets.exceptions.WebSocketException as exc:
            raise ProtocolError(f"WebSocket handshake with {self.url} failed: {exc}") from None
        try:
            if self.auth == "message":
                await ws.send(
                    json.dumps(
                        {
                            "type": "authenticate",
                            "method": "jwt",
                            "token": tok,
                            "protocol": {"serialization": "json", "compression": "gzip"},
                        }
                    )
                )
            first = await asyncio.wait_for(ws.recv(), self.timeout)
        except (TimeoutError, websockets.exceptions.ConnectionClosed) as exc:
            await ws.close()
            raise AuthError(f"no auth_success from {self.url}: {exc or 'timeout'}") from None
        msg = _decode(first)
        if msg.get("type") != "auth_success":
            await ws.close()
            raise AuthError(
                f"WebSocket authentication failed: {msg.get('message', msg)}",
                code=str(msg.get("type")),
                hint="the access token is invalid or expired; log in again",
            )
        self.user = msg.get("user")
        self.role = msg.get("role")
        self._ws = ws
        with self._cond:
            self.connected = True
            self.close_code = None
            self.close_reason = None
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(ws))

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                await self._dispatch(frame)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as exc:  # record, never crash the loop thread silently
            log.exception("live reader failed")
            with self._cond:
                self.close_reason = f"reader failed: {exc}"
        finally:
            self._mark_closed(ws)

    def _mark_closed(self, ws: ClientConnection) -> None:
        with self._cond:
            if ws is not self._ws:
                return
            self.connected = False
            if self.close_code is None:
                self.close_code = ws.close_code if ws.close_code is not None else 1006
                self.close_reason = ws.close_reason or self.close_reason or "connection lost"
            for sub in self.subscriptions.values():
                if sub.active:
                    sub.dropped = True
            self._cond.notify_all()

    async def _dispatch(self, frame: str | bytes) -> None:
        at = time.time()
        try:
            payload = _decode(frame)
        except ProtocolError as exc:
            with self._cond:
                self.errors.append(Received(at, "protocol_error", {"message": exc.message}))
                self._cond.notify_all()
            return
        msg = Received(
            at=at, type=str(payload.get("type")), payload=payload, binary=isinstance(frame, bytes)
        )
        next_batch: tuple[str, int | None] | None = None
        with self._cond:
            self._last_message_monotonic = time.monotonic()
            sid = payload.get("subscription_id")
            sub = self.subscriptions.get(sid) if isinstance(sid, str) else None
            if sub is None:
                if msg.type == "error" and sid in _SYNTHETIC_IDS:
                    self._route_synthetic_error(msg)
                else:
                    self.errors.append(msg)
                self._cond.notify_all()
                return
            sub._messages.append(msg)
            try:
                if msg.type == "subscription_ack":
                    sub._on_ack(msg)
                elif msg.type == "initial_data_batch":
                    if sub._on_batch(msg):
                        next_batch = (sub.id, sub._batches[-1].control.last_seq_id)
                elif msg.type == "change":
                    sub._on_change(msg)
                elif msg.type == "error":
                    sub.error = SubscriptionError(
                        f"subscription {sub.id} failed: {payload.get('message')}",
                        code=_str(payload.get("code")),
                        statement=sub.sql,
                    )
                else:
                    sub.protocol_errors.append(f"unknown message type {msg.type!r}")
            except ProtocolError as exc:
                sub.protocol_errors.append(exc.message)
                sub.error = SubscriptionError(
                    f"subscription {sub.id}: unreadable {msg.type}: {exc.message}",
                    code="PROTOCOL",
                    statement=sub.sql,
                )
            self._cond.notify_all()
        if next_batch is not None:
            await self._send_next_batch(*next_batch)

    def _route_synthetic_error(self, msg: Received) -> None:
        self.errors.append(msg)
        code = _str(msg.payload.get("code"))
        if code == "AUTH_REQUIRED":
            for sub in self.subscriptions.values():
                if sub.ack is None and sub.error is None:
                    sub.error = SubscriptionError(
                        str(msg.payload.get("message")), code=code, statement=sub.sql
                    )

    async def _send(self, message: Mapping[str, Any]) -> None:
        ws = self._ws
        if ws is None or not self.connected:
            raise ConnectionDropped(
                f"not connected to {self.url} ({self.close_reason or 'never connected'})",
                hint="call reconnect()",
            )
        try:
            await ws.send(json.dumps(message, separators=(",", ":")))
            with self._cond:
                self.sent.append((time.time(), dict(message)))
        except websockets.exceptions.ConnectionClosed as exc:
            raise ConnectionDropped(f"connection closed while sending: {exc}") from None

    async def _send_next_batch(self, sub_id: str, last_seq_id: int | None) -> None:
        msg: dict[str, Any] = {"type": "next_batch", "subscription_id": sub_id}
        if last_seq_id is not None:
            msg["last_seq_id"] = int(last_seq_id)
        with contextlib.suppress(ConnectionDropped):
            await self._send(msg)

    async def send_raw(self, message: Mapping[str, Any]) -> None:
        """Send any client message (for protocol tests)."""
        await self._send(message)

    async def subscribe(
        self,
        sql: str,
        *,
        batch_size: int | None = None,
        last_rows: int | None = None,
        from_seq: int | None = None,
        snapshot: bool = True,
        sub_id: str | None = None,
        auto_page: bool = True,
        key_columns: tuple[str, ...] | None = None,
        _base_rows: Mapping[tuple[Any, ...], dict[str, Any]] | None = None,
        _resumed_from: Subscription | None = None,
    ) -> Subscription:
        """Send ``subscribe`` and return the (loading) :class:`Subscription` at once."""
        options: dict[str, Any] | None
        if snapshot or batch_size is not None or last_rows is not None or from_seq is not None:
            options = {}
            if batch_size is not None:
                options["batch_size"] = int(batch_size)
            if last_rows is not None:
                options["last_rows"] = int(last_rows)
            if from_seq is not None:
                options["from"] = int(from_seq)
        else:
            options = None
        sid = sub_id or f"kf_{next(_ids)}_{time.time_ns() % 10**9}"
        sub = Subscription(
            self,
            sid,
            sql,
            options,
            auto_page=auto_page,
            base_rows=_base_rows,
            key_columns=key_columns,
            resumed_from=_resumed_from,
        )
        message: dict[str, Any] = {"id": sid, "sql": sql}
        if options is not None:
            message["options"] = options
        with self._cond:
            self.subscriptions[sid] = sub
        await self._send({"type": "subscribe", "subscription": message})
        return sub

    async def unsubscribe(self, sub_id: str) -> None:
        with self._cond:
            sub = self.subscriptions.get(sub_id)
            if sub is not None:
                sub.active = False
                self._cond.notify_all()
        if self.connected:
            await self._send({"type": "unsubscribe", "subscription_id": sub_id})

    async def close(self) -> None:
        """Close the socket normally (code 1000)."""
        ws = self._ws
        if ws is not None:
            await ws.close()
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._reader, 3.0)

    async def drop(self) -> None:
        """Break the TCP connection without a close handshake (a simulated network failure)."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._reader, 3.0)


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _decode(frame: str | bytes) -> dict[str, Any]:
    """JSON text, or a binary frame holding (gzip-compressed) JSON."""
    try:
        if isinstance(frame, bytes):
            data = gzip.decompress(frame) if frame[:2] == b"\x1f\x8b" else frame
            text = data.decode("utf-8")
        else:
            text = frame
        msg = json.loads(text)
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"unreadable WebSocket frame: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"WebSocket message is not an object: {msg!r}")
    return msg


# ---------------------------------------------------------------------------------------------
# synchronous facade


class LiveClient:
    """Blocking live-query client (one socket, many subscriptions) for Hypothesis rules.

    ``token`` is an access token, a callable returning one, or a logged-in
    :class:`~kalamfuzz.adapters.sql.SqlClient` (whose token is read at each (re)connect).
    """

    def __init__(
        self,
        url: str,
        token: str | Callable[[], str] | SqlClient,
        *,
        compress: bool = False,
        auth: str = "header",
        ping_interval: float = 4.0,
        ping_timeout: float = 20.0,
        timeout: float = 10.0,
        connect: bool = True,
    ) -> None:
        provider: str | Callable[[], str]
        if isinstance(token, str) or callable(token):
            provider = token
        else:
            sql_client = token
            provider = lambda: sql_client.token  # noqa: E731
        self._core = AsyncLiveClient(
            url,
            provider,
            compress=compress,
            auth=auth,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            timeout=timeout,
        )
        self._core.facade = self
        self._loop = _LoopThread.get()
        self.timeout = timeout
        if connect:
            self.connect()

    def __repr__(self) -> str:
        return f"LiveClient({self._core.url!r}, connected={self.connected})"

    def __enter__(self) -> LiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro, self.timeout + 5.0)

    @property
    def connected(self) -> bool:
        return self._core.connected

    @property
    def close_code(self) -> int | None:
        """WebSocket close code after a drop (1006 when the TCP connection broke)."""
        return self._core.close_code

    @property
    def close_reason(self) -> str | None:
        return self._core.close_reason

    @property
    def user(self) -> str | None:
        """``auth_success.user``."""
        return self._core.user

    @property
    def errors(self) -> list[Received]:
        """Messages not routed to a subscription (synthetic-id errors, unknown ids)."""
        with self._core._cond:
            return list(self._core.errors)

    @property
    def subscriptions(self) -> list[Subscription]:
        with self._core._cond:
            return list(self._core.subscriptions.values())

    @property
    def sent(self) -> list[tuple[float, dict[str, Any]]]:
        """Every client message sent so far (time, message), in order."""
        with self._core._cond:
            return list(self._core.sent)

    def connect(self) -> None:
        """Open and authenticate the socket."""
        token = self._core._get_token()  # resolved in the caller's thread (may do HTTP)
        self._run(self._core.connect(token))

    def reconnect(self) -> None:
        """Close the current socket (if any) and open a new one. Old subscriptions stay dropped."""
        if self._core.connected:
            self._run(self._core.close())
        self.connect()

    def subscribe(
        self,
        sql: str,
        *,
        batch_size: int | None = None,
        last_rows: int | None = None,
        from_seq: int | None = None,
        snapshot: bool = True,
        sub_id: str | None = None,
        wait: bool = True,
        timeout: float = 10.0,
        auto_page: bool = True,
        key_columns: tuple[str, ...] | None = None,
        _base_rows: Mapping[tuple[Any, ...], dict[str, Any]] | None = None,
        _resumed_from: Subscription | None = None,
    ) -> Subscription:
        """Subscribe to ``sql`` (``SELECT cols|* FROM ns.t [WHERE ...]``).

        ``snapshot=False`` sends no ``options`` (no initial data). ``batch_size``, ``last_rows``
        and ``from_seq`` map to the options ``batch_size``, ``last_rows``, ``from``. With ``wait``
        (default) blocks until the snapshot is ``ready`` and raises :class:`SubscriptionError` if
        the server refused it.
        """
        sub = self._run(
            self._core.subscribe(
                sql,
                batch_size=batch_size,
                last_rows=last_rows,
                from_seq=from_seq,
                snapshot=snapshot,
                sub_id=sub_id,
                auto_page=auto_page,
                key_columns=key_columns,
                _base_rows=_base_rows,
                _resumed_from=_resumed_from,
            )
        )
        if wait:
            sub.wait_ready(timeout)
        return sub

    def unsubscribe(self, sub: Subscription | str) -> None:
        sid = sub if isinstance(sub, str) else sub.id
        self._run(self._core.unsubscribe(sid))

    def send_raw(self, message: Mapping[str, Any]) -> None:
        """Send any client message as JSON text (for protocol tests)."""
        self._run(self._core.send_raw(message))

    def drop(self) -> None:
        """Abort the TCP connection without a close handshake (simulated network failure)."""
        self._run(self._core.drop())

    def close(self) -> None:
        """Close the socket; every subscription ends (the server removes them)."""
        with contextlib.suppress(KalamError):
            self._run(self._core.close())
