"""The /v1/ws wire: connections, authentication, framing (gzip above 512 bytes), heartbeats,
message dispatch. What a subscription does is the live manager's business (fanout.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from .auth import TokenError, decode
from .errors import SqlError
from .session import Session

if TYPE_CHECKING:
    from .fanout import LiveManager
    from .subscription import Subscription

COMPRESSION_THRESHOLD = 512


class Connection:
    def __init__(self, manager: LiveManager, ws: web.WebSocketResponse, compress: bool) -> None:
        self.manager, self.ws, self.compress = manager, ws, compress
        self.id = uuid.uuid4().hex
        self.session: Session | None = None
        self.subs: dict[str, Subscription] = {}
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.opened = self.last_heartbeat = time.monotonic()
        self.window_start, self.window_count = time.monotonic(), 0
        self.auth_started = False

    def send(self, message: dict[str, Any]) -> None:
        self.queue.put_nowait(message)

    async def writer(self) -> None:
        while True:
            message = await self.queue.get()
            if message is None or self.ws.closed:
                return
            payload = json.dumps(message, separators=(",", ":"))
            try:
                if self.compress and len(payload) >= COMPRESSION_THRESHOLD:
                    packed = gzip.compress(payload.encode(), compresslevel=1)
                    if len(packed) < len(payload):
                        await self.ws.send_bytes(packed)
                        continue
                await self.ws.send_str(payload)
            except (ConnectionError, RuntimeError):
                return


class LiveSocket:
    """Serves /v1/ws for one live manager."""

    def __init__(self, manager: LiveManager) -> None:
        self.manager = manager
        self.config = manager.config

    def _authenticate(self, conn: Connection, token: str) -> bool:
        try:
            claims = decode(self.config.jwt_secret, token)
        except TokenError:
            claims = None
        user = self.manager.engine.catalog.users.get(claims["sub"]) if claims else None
        if (
            claims is None
            or user is None
            or user.deleted_at is not None
            or claims.get("token_type") != "access"
        ):
            conn.send({"type": "auth_error", "message": "Invalid credentials"})
            return False
        conn.session = Session(user.user_id, user.role)
        conn.send(
            {
                "type": "auth_success",
                "user": user.user_id,
                "role": user.role,
                "protocol": {"serialization": "json", "compression": "gzip"},
            }
        )
        return True

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        # let the writer send what is queued (an auth_error, say) before the close frame
        for _ in range(50):
            if conn.queue.empty():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.close(code=code, message=reason.encode()[:120])

    async def _watchdog(self, conn: Connection) -> None:
        interval = max(0.05, min(self.config.heartbeat_interval_secs, 1.0))
        while not conn.ws.closed:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if (
                conn.session is None
                and not conn.auth_started
                and now - conn.opened > self.config.auth_timeout_secs
            ):
                secs = int(self.config.auth_timeout_secs)
                conn.send(
                    {
                        "type": "auth_error",
                        "message": f"Authentication timeout - no auth message received within {secs} seconds",
                    }
                )
                await self._close(conn, WSCloseCode.POLICY_VIOLATION, "Authentication timeout")
                return
            if now - conn.last_heartbeat > self.config.client_timeout_secs:
                await self._close(conn, WSCloseCode.OK, "Heartbeat timeout")
                return

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(self.manager, ws, request.query.get("compress") != "false")
        self.manager.connections.add(conn)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        watchdog = asyncio.get_running_loop().create_task(self._watchdog(conn))
        header = request.headers.get("Authorization", "")
        try:
            if header.startswith("Bearer "):
                conn.auth_started = True
                if not self._authenticate(conn, header[7:].strip()):
                    await self._close(conn, WSCloseCode.POLICY_VIOLATION, "Authentication failed")
                    return ws
            async for msg in ws:
                conn.last_heartbeat = time.monotonic()
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                    continue
                if msg.type in (WSMsgType.PONG,):
                    continue
                if msg.type == WSMsgType.BINARY:
                    conn.send(
                        {
                            "type": "error",
                            "subscription_id": "protocol",
                            "code": "UNSUPPORTED_DATA",
                            "message": "Binary not supported",
                        }
                    )
                    continue
                if msg.type != WSMsgType.TEXT:
                    break
                if len(msg.data) > self.config.max_ws_message_size:
                    conn.send(
                        {
                            "type": "error",
                            "subscription_id": "protocol",
                            "code": "MESSAGE_TOO_LARGE",
                            "message": f"Message exceeds maximum size of {self.config.max_ws_message_size} bytes",
                        }
                    )
                    continue
                now = time.monotonic()
                if now - conn.window_start >= 1.0:
                    conn.window_start, conn.window_count = now, 0
                conn.window_count += 1
                if conn.window_count > self.config.max_messages_per_sec:
                    conn.send(
                        {
                            "type": "error",
                            "subscription_id": "rate_limit",
                            "code": "RATE_LIMIT_EXCEEDED",
                            "message": "Too many messages",
                        }
                    )
                    continue
                try:
                    body = json.loads(msg.data)
                    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
                        raise ValueError("expected an object with a `type` field")
                    if not await self._dispatch(conn, body):
                        return ws
                except (ValueError, KeyError, TypeError) as exc:
                    await self._close(conn, WSCloseCode.INTERNAL_ERROR, f"Invalid message: {exc}")
                    return ws
                except SqlError as exc:
                    conn.send(
                        {
                            "type": "error",
                            "subscription_id": "protocol",
                            "code": exc.code,
                            "message": exc.message,
                        }
                    )
        finally:
            self.manager.drop_connection(conn)
            watchdog.cancel()
            await writer
        return ws

    async def _dispatch(self, conn: Connection, body: dict[str, Any]) -> bool:
        kind = body["type"]
        if kind == "authenticate":
            conn.auth_started = True
            if body.get("method") != "jwt" or not isinstance(body.get("token"), str):
                raise ValueError("unknown variant: expected method `jwt` with a token")
            if not isinstance(body.get("protocol"), dict):
                raise ValueError("missing field `protocol`")
            if conn.session is not None:
                conn.send(
                    {
                        "type": "auth_success",
                        "user": conn.session.user_id,
                        "role": conn.session.role,
                        "protocol": {"serialization": "json", "compression": "gzip"},
                    }
                )
                return True
            if not self._authenticate(conn, body["token"]):
                await self._close(conn, WSCloseCode.POLICY_VIOLATION, "Authentication failed")
                return False
            return True
        if kind == "ping":
            return True
        if kind not in ("subscribe", "next_batch", "unsubscribe"):
            raise ValueError(f"unknown variant `{kind}`")
        if conn.session is None:
            if kind == "subscribe":
                conn.send(
                    {
                        "type": "error",
                        "subscription_id": "subscribe",
                        "code": "AUTH_REQUIRED",
                        "message": "Authentication required before subscribing",
                    }
                )
            return True
        if kind == "subscribe":
            self.manager.subscribe(conn, body)
        elif kind == "next_batch":
            self.manager.next_batch(conn, body)
        else:
            self.manager.unsubscribe(conn, body)
        return True

    async def shutdown(self) -> None:
        for conn in list(self.manager.connections):
            await self._close(conn, WSCloseCode.GOING_AWAY, "Server shutting down")
