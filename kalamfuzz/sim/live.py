"""Live queries on /v1/ws: subscriptions, snapshot paging, change fan-out, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import time
import uuid
from collections import defaultdict
from typing import Any

import pyarrow as pa
import sqlglot
from aiohttp import WSCloseCode, WSMsgType, web
from sqlglot import exp

from .auth import TokenError, decode
from .catalog import TableDef
from .engine import Change, Engine, Session, can_read_shared
from .errors import SqlError
from .query import run_sql, versions_to_arrow
from .store import Version
from .types import stored_to_json, table_to_json_rows

log = logging.getLogger("kalamfuzz.sim.live")
COMPRESSION_THRESHOLD = 512
DEFAULT_BATCH = 1000
_FORBIDDEN = (
    "order",
    "limit",
    "offset",
    "group",
    "having",
    "distinct",
    "joins",
    "with",
    "qualify",
    "windows",
)


class SubscribeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Subscription:
    def __init__(
        self,
        conn: Connection,
        sub_id: str,
        sql: str,
        table: TableDef,
        columns: list[str] | None,
        where: exp.Expression | None,
        options: dict[str, Any] | None,
    ) -> None:
        self.conn, self.id, self.sql, self.table = conn, sub_id, sql, table
        self.columns, self.where, self.options = columns, where, options
        self.owner = "" if table.table_type == "shared" else conn.session.user_id  # type: ignore[union-attr]
        self.snapshot: list[dict[str, Any]] = []
        self.cursor = 0
        self.batch_num = 0
        self.batch_size = DEFAULT_BATCH
        self.loading = False
        self.has_snapshot = False
        self.held: list[dict[str, Any]] = []
        self.changes = 0
        self.created_at = self.last_update = int(time.time() * 1_000_000)

    @property
    def star(self) -> bool:
        return self.columns is None

    def projected(self) -> list[str]:
        return [c.name for c in self.table.columns] if self.columns is None else self.columns

    def row(
        self, v: Version, seq: int | None = None, deleted: bool | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.projected():
            col = self.table.column(name)
            if col is not None:
                out[col.name] = stored_to_json(v.values.get(col.id), col.kind)
        out["_seq"] = str(v.seq if seq is None else seq)
        if self.star and self.table.table_type != "stream":
            out["_deleted"] = v.deleted if deleted is None else deleted
        return out

    def next_page(self) -> dict[str, Any]:
        bugs = self.conn.manager.engine.bugs
        page = self.snapshot[self.cursor : self.cursor + self.batch_size]
        self.cursor += len(page)
        remaining = len(self.snapshot) - self.cursor
        has_more = len(page) >= self.batch_size if "batch_has_more_exact" in bugs else remaining > 0
        if (
            self.options is not None
            and "last_rows" in self.options
            and "from" not in self.options
            and "from_seq_id" not in self.options
        ):
            has_more = False
        status = (
            "ready" if not has_more else ("loading" if self.batch_num == 0 else "loading_batch")
        )
        control = {
            "batch_num": self.batch_num,
            "has_more": has_more,
            "status": status,
            "last_seq_id": int(page[-1]["_seq"]) if page else None,
        }
        return {
            "type": "initial_data_batch",
            "subscription_id": self.id,
            "rows": page,
            "batch_control": control,
        }


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


class LiveManager:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.config
        self.connections: set[Connection] = set()
        self.by_table: dict[int, set[Subscription]] = defaultdict(set)
        engine.listeners.append(self.on_changes)
        engine.live_rows = self.system_live

    # ------------------------------------------------------------------ fan-out
    def _matches(self, sub: Subscription, versions: list[Version]) -> list[bool]:
        if sub.where is None or not versions:
            return [True] * len(versions)
        data = versions_to_arrow(sub.table, versions, {"__i": list(range(len(versions)))})
        query = exp.select("__i").from_(
            exp.Table(
                this=exp.to_identifier("__c"),
                alias=exp.TableAlias(this=exp.to_identifier(sub.table.name)),
            )
        )
        where = sub.where.copy()
        for node in list(where.find_all(exp.CurrentUser)):
            node.replace(exp.Literal.string(sub.owner))
        query = query.where(where)
        try:
            hits = set(run_sql(query.sql(dialect="postgres"), {"__c": data}).column(0).to_pylist())
        except Exception:  # a filter that cannot be evaluated matches nothing, as in KalamDB
            log.warning("filter of subscription %s failed", sub.id, exc_info=True)
            return [False] * len(versions)
        return [i in hits for i in range(len(versions))]

    def on_changes(self, changes: list[Change]) -> None:
        bugs = self.engine.bugs
        if "live_multi_insert_first_only" in bugs:
            inserts = [c for c in changes if c.kind == "insert"]
            changes = [c for c in changes if c.kind != "insert"] + inserts[:1]
        by_uid: dict[int, list[Change]] = defaultdict(list)
        for c in changes:
            by_uid[c.table.uid].append(c)
        for uid, group in by_uid.items():
            for sub in list(self.by_table.get(uid, ())):
                cross = "live_cross_user" in bugs and sub.table.table_type == "user"
                mine = [
                    c
                    for c in group
                    if sub.table.table_type == "shared" or cross or c.scope == sub.owner
                ]
                if not mine:
                    continue
                after = [c.new if c.new is not None else c.old for c in mine]
                now = self._matches(sub, [v for v in after if v is not None])
                before = self._matches(
                    sub, [c.old for c in mine if c.kind == "update" and c.old is not None]
                )
                b = iter(before)
                for change, matched in zip(mine, now, strict=True):
                    was = next(b) if change.kind == "update" else False
                    message = self._message(sub, change, matched, was)
                    if message is not None:
                        self._deliver(sub, message)

    def _message(
        self, sub: Subscription, c: Change, matched: bool, was: bool
    ) -> dict[str, Any] | None:
        base = {"type": "change", "subscription_id": sub.id}
        bugs = self.engine.bugs
        if c.kind == "insert":
            if not matched:
                return None
            assert c.new is not None
            return {**base, "change_type": "insert", "rows": [sub.row(c.new)]}
        if c.kind == "delete":
            if not matched:
                return None
            if c.old_was_cold and "live_delete_cold_missing" in bugs:
                return None
            if c.new is None:  # STREAM hard delete
                assert c.old is not None
                old_row = {} if not sub.star else {"row_id": f"{c.scope}:{c.old.seq}"}
                return {**base, "change_type": "delete", "old_values": [old_row]}
            return {**base, "change_type": "delete", "old_values": [sub.row(c.new)]}
        assert c.new is not None and c.old is not None
        if not matched:
            if not was:
                return None
            # leaving the result: the client must drop it (docs/contract.md)
            gone = sub.row(c.old, seq=c.new.seq, deleted=True)
            return {**base, "change_type": "delete", "old_values": [gone]}
        pk = sub.table.pk
        source = c.old if "live_update_old_values" in bugs else c.new
        new: dict[str, Any] = {
            pk.name: stored_to_json(c.new.values.get(pk.id), pk.kind),
            "_seq": str(c.new.seq),
        }
        old: dict[str, Any] = {
            pk.name: stored_to_json(c.old.values.get(pk.id), pk.kind),
            "_seq": str(c.old.seq),
        }
        for name in sub.projected():
            col = sub.table.column(name)
            if col is None or col.pk:
                continue
            value = source.values.get(col.id)
            if value is not None:
                new[col.name] = stored_to_json(value, col.kind)
            if c.old.values.get(col.id) != c.new.values.get(col.id):
                old[col.name] = stored_to_json(c.old.values.get(col.id), col.kind)
        return {**base, "change_type": "update", "rows": [new], "old_values": [old]}

    def _deliver(self, sub: Subscription, message: dict[str, Any]) -> None:
        if sub.loading:
            sub.held.append(message)
            return
        sub.changes += 1
        sub.last_update = int(time.time() * 1_000_000)
        sub.conn.send(message)

    # ------------------------------------------------------------------ subscribe
    def _parse(
        self, conn: Connection, sql: str
    ) -> tuple[TableDef, list[str] | None, exp.Expression | None]:
        try:
            tree = sqlglot.parse_one(sql, read="postgres")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
            raise SubscribeError(
                "INVALID_SQL",
                f"Invalid SQL: Parse error: Failed to parse SQL: {str(exc).splitlines()[0]}",
            ) from None
        if not isinstance(tree, exp.Select):
            raise SubscribeError(
                "INVALID_SQL", "Invalid SQL: Invalid SQL: Subscription query must be a SELECT"
            )
        for clause in _FORBIDDEN:
            if tree.args.get(clause):
                raise SubscribeError(
                    "INVALID_SQL",
                    f"Invalid SQL: Invalid SQL: Subscription query does not support {clause.upper()}.",
                )
        from_ = tree.args.get("from") or tree.args.get("from_")
        if from_ is None or not isinstance(from_.this, exp.Table):
            raise SubscribeError(
                "INVALID_SQL", "Invalid SQL: Query must use namespace.table format"
            )
        ref = from_.this
        if not ref.db:
            raise SubscribeError(
                "INVALID_SQL", "Invalid SQL: Query must use namespace.table format"
            )
        columns: list[str] | None = None
        if not (len(tree.expressions) == 1 and isinstance(tree.expressions[0], exp.Star)):
            columns = []
            for e in tree.expressions:
                if not isinstance(e, exp.Column):
                    raise SubscribeError(
                        "INVALID_SQL",
                        "Invalid SQL: Subscription projections must be plain column names",
                    )
                if e.name.lower() in ("_seq", "_deleted"):
                    raise SubscribeError(
                        "INVALID_SQL", f"Invalid SQL: Subscription query may not select {e.name}"
                    )
                columns.append(e.name)
        session = conn.session
        assert session is not None
        if ref.db.lower() == "system":
            raise SubscribeError(
                "UNAUTHORIZED",
                f"Permission denied: Cannot subscribe to system table 'system.{ref.name}': insufficient privileges. "
                "Only DBA and system roles can subscribe to system tables."
                if not session.admin
                else "kalamfuzz.sim does not serve live queries on system tables",
            )
        table = self.engine.catalog.table(ref.db, ref.name)
        if table is None:
            raise SubscribeError("NOT_FOUND", f"Not found: Table not found: {ref.db}.{ref.name}")
        if table.table_type == "shared" and not can_read_shared(session.role, table.access_level):
            raise SubscribeError(
                "UNAUTHORIZED",
                f"Permission denied: Cannot subscribe to shared table '{table.table_id}': access level "
                f"'{table.access_level}' requires elevated privileges.",
            )
        if columns is not None:
            # The snapshot is a plain query: a projected column the table lacks fails it, as
            # an unknown WHERE column does (WEBSOCKET.md, the subscribe error table).
            named = []
            for c in columns:
                col = table.column(c)
                if col is None:
                    raise SubscribeError(
                        "SUBSCRIPTION_FAILED",
                        f"Execution error: Schema error: No field named {c.lower()}.",
                    )
                named.append(col.name)
            columns = named
        where = tree.args.get("where")
        return table, columns, where.this if where is not None else None

    def _snapshot(self, sub: Subscription, options: dict[str, Any]) -> list[dict[str, Any]]:
        engine = self.engine
        keep_deleted = "snapshot_includes_deleted" in engine.bugs
        data = engine.scope_arrow(sub.table, sub.owner, keep_deleted)
        names = [c.name for c in sub.table.columns] if sub.star else list(sub.columns or [])
        extra = ["_seq"] + (["_deleted"] if sub.star and sub.table.table_type != "stream" else [])
        query = exp.select(*[exp.column(n, quoted=True) for n in names + extra]).from_(
            exp.Table(
                this=exp.to_identifier("__s"),
                alias=exp.TableAlias(this=exp.to_identifier(sub.table.name)),
            )
        )
        if sub.where is not None:
            where = sub.where.copy()
            for node in list(where.find_all(exp.CurrentUser)):
                node.replace(exp.Literal.string(sub.owner))
            query = query.where(where)
        start = options.get("from", options.get("from_seq_id"))
        if start is not None:
            op = ">=" if "resume_from_inclusive" in engine.bugs else ">"
            query = query.where(f"_seq {op} {int(start)}")
        query = query.order_by("_seq")
        try:
            result = run_sql(query.sql(dialect="postgres"), {"__s": data})
        except Exception as exc:
            raise SubscribeError(
                "SUBSCRIPTION_FAILED", f"Execution error: {str(exc).splitlines()[0]}"
            ) from None
        rows = [dict(zip(result.column_names, r, strict=True)) for r in table_to_json_rows(result)]
        if start is None and "last_rows" in options:
            n = int(options["last_rows"])
            rows = rows[-n:] if n else []
        return rows

    def subscribe(self, conn: Connection, body: dict[str, Any]) -> None:
        spec = body.get("subscription")
        if not isinstance(spec, dict):
            raise ValueError("missing field `subscription`")
        sub_id = spec.get("id")
        if not isinstance(sub_id, str) or not sub_id.strip():
            conn.send(
                {
                    "type": "error",
                    "subscription_id": "invalid_subscription",
                    "code": "INVALID_SUBSCRIPTION_ID",
                    "message": "Subscription ID cannot be empty",
                }
            )
            return
        sql = spec.get("sql")
        if not isinstance(sql, str):
            raise ValueError("missing field `sql`")
        options = spec.get("options")
        session = conn.session
        assert session is not None
        try:
            if options is not None and not isinstance(options, dict):
                raise SubscribeError("INVALID_SQL", "Invalid options: expected an object")
            owned = sum(
                1
                for c in self.connections
                if c.session and c.session.user_id == session.user_id
                for _ in c.subs
            )
            if sub_id not in conn.subs and owned >= self.config.max_subscriptions_per_user:
                raise SubscribeError("SUBSCRIPTION_LIMIT_EXCEEDED", "Maximum subscriptions reached")
            if sub_id not in conn.subs and len(conn.subs) >= 100:
                raise SubscribeError(
                    "UNSUPPORTED",
                    "Invalid operation: Maximum subscriptions (100) per connection exceeded",
                )
            opts = options or {}
            batch_size = opts.get("batch_size", DEFAULT_BATCH)
            if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
                raise SubscribeError(
                    "INVALID_SQL", "Invalid options: batch_size must be a positive integer"
                )
            last_rows = opts.get("last_rows")
            start = opts.get("from", opts.get("from_seq_id"))
            if start is not None and (not isinstance(start, int) or isinstance(start, bool)):
                raise ValueError("invalid type for `from`: expected i64")
            if last_rows is not None and start is None and last_rows > batch_size:
                raise SubscribeError(
                    "UNSUPPORTED",
                    f"last_rows ({last_rows}) cannot exceed batch_size ({batch_size}); paginated last_rows replay is not supported",
                )
            table, columns, where = self._parse(conn, sql)
            old = conn.subs.pop(sub_id, None)
            if old is not None:
                self.by_table[old.table.uid].discard(old)
            sub = Subscription(conn, sub_id, sql, table, columns, where, options)
            sub.batch_size = batch_size
            if options is not None:
                sub.snapshot = self._snapshot(sub, opts)
                sub.has_snapshot = True
                sub.loading = True
        except SubscribeError as exc:
            conn.send(
                {
                    "type": "error",
                    "subscription_id": sub_id,
                    "code": exc.code,
                    "message": exc.message,
                }
            )
            return
        conn.subs[sub_id] = sub
        self.by_table[table.uid].add(sub)
        schema = self._ack_schema(sub)
        if not sub.has_snapshot:
            control = {"batch_num": 0, "has_more": False, "status": "ready", "last_seq_id": None}
            conn.send(
                {
                    "type": "subscription_ack",
                    "subscription_id": sub_id,
                    "total_rows": 0,
                    "batch_control": control,
                    "schema": schema,
                }
            )
            return
        page = sub.next_page()
        conn.send(
            {
                "type": "subscription_ack",
                "subscription_id": sub_id,
                "total_rows": 0,
                "batch_control": dict(page["batch_control"]),
                "schema": schema,
            }
        )
        self._send_page(sub, page)

    def _send_page(self, sub: Subscription, page: dict[str, Any]) -> None:
        sub.conn.send(page)
        if page["batch_control"]["status"] == "ready":
            sub.loading = False
            held = sub.held[::-1] if "held_changes_reversed" in self.engine.bugs else sub.held
            sub.held = []
            for message in held:
                self._deliver(sub, message)

    def next_batch(self, conn: Connection, body: dict[str, Any]) -> None:
        sub_id = body.get("subscription_id")
        last = body.get("last_seq_id")
        if last is not None and (not isinstance(last, int) or isinstance(last, bool)):
            raise ValueError("invalid type for `last_seq_id`: expected i64")
        sub = conn.subs.get(sub_id) if isinstance(sub_id, str) else None
        if sub is None:
            conn.send(
                {
                    "type": "error",
                    "subscription_id": sub_id,
                    "code": "BATCH_FETCH_FAILED",
                    "message": f"Not found: Subscription not found: {sub_id}",
                }
            )
            return
        if not sub.has_snapshot:
            conn.send(
                {
                    "type": "error",
                    "subscription_id": sub_id,
                    "code": "BATCH_FETCH_FAILED",
                    "message": "Invalid operation: Subscription ID was created without initial data loading",
                }
            )
            return
        sub.batch_num += 1
        if last is None:
            sub.cursor = 0
        self._send_page(sub, sub.next_page())

    def unsubscribe(self, conn: Connection, body: dict[str, Any]) -> None:
        sub_id = body.get("subscription_id")
        sub = conn.subs.pop(sub_id, None) if isinstance(sub_id, str) else None
        if sub is not None:
            self.by_table[sub.table.uid].discard(sub)

    def _ack_schema(self, sub: Subscription) -> list[dict[str, Any]]:
        out = []
        names = sub.projected()
        for i, name in enumerate(names):
            col = sub.table.column(name)
            assert col is not None
            entry: dict[str, Any] = {"name": col.name, "data_type": col.kind, "index": i}
            if col.flags():
                entry["flags"] = col.flags()
            out.append(entry)
        if sub.star:
            out.append({"name": "_seq", "data_type": "BigInt", "index": len(out), "flags": ["nn"]})
            if sub.table.table_type != "stream":
                out.append(
                    {"name": "_deleted", "data_type": "Boolean", "index": len(out), "flags": ["nn"]}
                )
        return out

    def drop_connection(self, conn: Connection) -> None:
        for sub in conn.subs.values():
            self.by_table[sub.table.uid].discard(sub)
        conn.subs.clear()
        self.connections.discard(conn)
        conn.queue.put_nowait(None)

    def system_live(self) -> pa.Table:
        T = pa.timestamp("us")
        schema = pa.schema(
            [
                ("live_id", pa.string()),
                ("connection_id", pa.string()),
                ("subscription_id", pa.string()),
                ("namespace_id", pa.string()),
                ("table_name", pa.string()),
                ("user_id", pa.string()),
                ("query", pa.string()),
                ("options", pa.string()),
                ("status", pa.string()),
                ("created_at", T),
                ("last_update", T),
                ("changes", pa.int64()),
                ("node_id", pa.int64()),
                ("last_ping_at", T),
            ]
        )
        rows = []
        for conn in self.connections:
            if conn.session is None:
                continue
            for sub in conn.subs.values():
                rows.append(
                    {
                        "live_id": f"{conn.session.user_id}-{conn.id}-{sub.id}",
                        "connection_id": conn.id,
                        "subscription_id": sub.id,
                        "namespace_id": sub.table.namespace,
                        "table_name": sub.table.name,
                        "user_id": conn.session.user_id,
                        "query": sub.sql,
                        "options": None if sub.options is None else json.dumps(sub.options),
                        "status": "active",
                        "created_at": sub.created_at,
                        "last_update": sub.last_update,
                        "changes": sub.changes,
                        "node_id": 1,
                        "last_ping_at": None,
                    }
                )
        return pa.Table.from_pylist(rows, schema=schema)

    # ------------------------------------------------------------------ the socket
    def _authenticate(self, conn: Connection, token: str) -> bool:
        try:
            claims = decode(self.config.jwt_secret, token)
        except TokenError:
            claims = None
        user = self.engine.catalog.users.get(claims["sub"]) if claims else None
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
        conn = Connection(self, ws, request.query.get("compress") != "false")
        self.connections.add(conn)
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
            self.drop_connection(conn)
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
            self.subscribe(conn, body)
        elif kind == "next_batch":
            self.next_batch(conn, body)
        else:
            self.unsubscribe(conn, body)
        return True

    async def shutdown(self) -> None:
        for conn in list(self.connections):
            await self._close(conn, WSCloseCode.GOING_AWAY, "Server shutting down")
