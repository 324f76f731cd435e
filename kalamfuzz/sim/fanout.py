"""Live queries: subscribing (snapshot and paging), and fanning committed changes out to the
subscriptions that watch them, in commit order. The socket side is in ws.py."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa
from sqlglot import exp

from .bugs import (
    HELD_CHANGES_REVERSED,
    LIVE_CHANGE_DROPPED_COLUMN,
    LIVE_CROSS_USER,
    LIVE_DELETE_COLD_MISSING,
    LIVE_FILTER_LEAVE_SILENT,
    LIVE_FILTER_UNSUPPORTED,
    LIVE_MULTI_INSERT_FIRST_ONLY,
    LIVE_UPDATE_OLD_VALUES,
    RESUME_FROM_INCLUSIVE,
    SNAPSHOT_INCLUDES_DELETED,
)
from .engine import Engine
from .query import run_sql, versions_to_arrow
from .session import Change
from .store import Version
from .subscription import DEFAULT_BATCH, SubscribeError, Subscription, parse_subscription
from .types import stored_to_json, table_to_json_rows
from .ws import Connection

log = logging.getLogger("kalamfuzz.sim.fanout")


def _beyond_live_filter(where: exp.Expression | None) -> bool:
    """What KalamDB's live filter evaluator cannot evaluate: IS [NOT] NULL, IN, BETWEEN and a
    negative number (a unary minus), as a release build showed for ``n <= -2``."""
    if where is None:
        return False
    is_null = any(isinstance(n.expression, exp.Null) for n in where.find_all(exp.Is))
    return is_null or any(True for _ in where.find_all(exp.In, exp.Between, exp.Neg))


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
        if self.engine.has(LIVE_MULTI_INSERT_FIRST_ONLY):
            inserts = [c for c in changes if c.kind == "insert"]
            changes = [c for c in changes if c.kind != "insert"] + inserts[:1]
        by_uid: dict[int, list[Change]] = defaultdict(list)
        for c in changes:
            by_uid[c.table.uid].append(c)
        for uid, group in by_uid.items():
            for sub in list(self.by_table.get(uid, ())):
                if sub.silent:
                    continue
                cross = self.engine.has(LIVE_CROSS_USER) and sub.table.table_type == "user"
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
        if c.kind == "insert":
            if not matched:
                return None
            assert c.new is not None
            return {**base, "change_type": "insert", "rows": [sub.row(c.new)]}
        if c.kind == "delete":
            if not matched:
                return None
            if c.old_was_cold and self.engine.has(LIVE_DELETE_COLD_MISSING):
                return None
            if c.new is None:  # STREAM hard delete
                assert c.old is not None
                old_row = {} if not sub.star else {"row_id": f"{c.scope}:{c.old.seq}"}
                return {**base, "change_type": "delete", "old_values": [old_row]}
            gone = self._leak_dropped(sub, c.new, sub.row(c.new))
            return {**base, "change_type": "delete", "old_values": [gone]}
        assert c.new is not None and c.old is not None
        if not matched:
            if not was or self.engine.has(LIVE_FILTER_LEAVE_SILENT):
                return None
            # leaving the result: the client must drop it (docs/contract.md)
            gone = sub.row(c.old, seq=c.new.seq, deleted=True)
            return {**base, "change_type": "delete", "old_values": [gone]}
        pk = sub.table.pk
        source = c.old if self.engine.has(LIVE_UPDATE_OLD_VALUES) else c.new
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
            # KalamDB's project_update_delta: a column the old stored row lacks (added after
            # it was written) counts as changed but has no old value to send. It stores rows
            # by column name, so a dropped column of the same name counts as present (and
            # reads NULL, like the column added again).
            stored = col.id in c.old.values or sub.table.dropped.get(col.name) in c.old.values
            if stored and c.old.values.get(col.id) != c.new.values.get(col.id):
                old[col.name] = stored_to_json(c.old.values.get(col.id), col.kind)
        new = self._leak_dropped(sub, c.new, new)
        return {**base, "change_type": "update", "rows": [new], "old_values": [old]}

    def _leak_dropped(self, sub: Subscription, v: Version, row: dict[str, Any]) -> dict[str, Any]:
        """The planted LIVE_CHANGE_DROPPED_COLUMN: a dropped column's stored value rides along."""
        if not sub.star or not self.engine.has(LIVE_CHANGE_DROPPED_COLUMN):
            return row
        kinds = {c.id: c.kind for cols in sub.table.history.values() for c in cols}
        extra = {
            name: stored_to_json(v.values.get(cid), kinds.get(cid, "TEXT"))
            for name, cid in sub.table.dropped.items()
            if name not in row and cid in v.values
        }
        return {**row, **extra}

    def _deliver(self, sub: Subscription, message: dict[str, Any]) -> None:
        if sub.loading:
            sub.held.append(message)
            return
        sub.changes += 1
        sub.last_update = int(time.time() * 1_000_000)
        sub.conn.send(message)

    def _snapshot(self, sub: Subscription, options: dict[str, Any]) -> list[dict[str, Any]]:
        engine = self.engine
        keep_deleted = engine.has(SNAPSHOT_INCLUDES_DELETED)
        data = engine.scope_arrow(sub.table, sub.owner, keep_deleted)
        names = [c.name for c in sub.table.columns] if sub.star else list(sub.columns or [])
        extra = ["_seq"] + (["_deleted"] if sub.star else [])
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
            op = ">=" if engine.has(RESUME_FROM_INCLUSIVE) else ">"
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
            table, columns, where = parse_subscription(self.engine, session, sql)
            old = conn.subs.pop(sub_id, None)
            if old is not None:
                self.by_table[old.table.uid].discard(old)
            sub = Subscription(conn, sub_id, sql, table, columns, where, options)
            sub.batch_size = batch_size
            # KalamDB's live filter evaluator has no IS NULL, IN, BETWEEN or unary minus: it
            # fails on every change and drops it, while the snapshot (run by DataFusion) works.
            sub.silent = self.engine.has(LIVE_FILTER_UNSUPPORTED) and _beyond_live_filter(where)
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
        schema = sub.ack_schema()
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
            held = sub.held[::-1] if self.engine.has(HELD_CHANGES_REVERSED) else sub.held
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
        sub.since = last
        if last is None:
            sub.cursor = 0
        self._send_page(sub, sub.next_page())

    def unsubscribe(self, conn: Connection, body: dict[str, Any]) -> None:
        sub_id = body.get("subscription_id")
        sub = conn.subs.pop(sub_id, None) if isinstance(sub_id, str) else None
        if sub is not None:
            self.by_table[sub.table.uid].discard(sub)

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
