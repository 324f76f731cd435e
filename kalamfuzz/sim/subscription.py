"""A live query's subscription: its SQL checked against what KalamDB allows, its rows shaped
for the wire, its snapshot paged."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from .access import can_read_shared
from .bugs import BATCH_HAS_MORE_EXACT, ORDER_LIMIT_RESORTED
from .catalog import TableDef
from .session import Session
from .store import Version
from .types import stored_to_json

if TYPE_CHECKING:
    from .engine import Engine
    from .ws import Connection

DEFAULT_BATCH = 1000
# Clauses a subscription query may not have (kalamdb-dialect analyze_subscription_query).
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
        self.since: int | None = None  # the client's last_seq_id for the next page
        self.silent = False  # planted bug live_filter_unsupported: no change is ever sent
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
        if self.star:
            out["_deleted"] = v.deleted if deleted is None else deleted
        return out

    def next_page(self) -> dict[str, Any]:
        engine = self.conn.manager.engine
        last_rows = (
            self.options is not None
            and "last_rows" in self.options
            and "from" not in self.options
            and "from_seq_id" not in self.options
        )
        if not last_rows and engine.has(ORDER_LIMIT_RESORTED):
            page, has_more = self._resorted_page()
        else:
            page = self.snapshot[self.cursor : self.cursor + self.batch_size]
            self.cursor += len(page)
            remaining = len(self.snapshot) - self.cursor
            has_more = (
                len(page) >= self.batch_size if engine.has(BATCH_HAS_MORE_EXACT) else remaining > 0
            )
            if last_rows:
                has_more = False  # one page of the newest rows, whatever is left
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

    def _resorted_page(self) -> tuple[list[dict[str, Any]], bool]:
        """KalamDB's page query (`_seq > last_seq_id ORDER BY _seq LIMIT batch_size + 1`) run
        through the SELECT path that re-sorts a limited result by primary key: the page is cut
        and its last_seq_id taken after that sort."""
        fetched = [r for r in self.snapshot if self.since is None or int(r["_seq"]) > self.since]
        fetched = fetched[: self.batch_size + 1]
        pk = self.table.pk
        if fetched and pk.name in fetched[0]:  # a projection without the key is left alone

            def key(row: dict[str, Any]) -> tuple[bool, Any]:
                value = row[pk.name]
                # BIGINT values travel as strings; order them as numbers.
                return value is None, int(value) if pk.kind == "BigInt" and value else value

            fetched.sort(key=key)
        return fetched[: self.batch_size], len(fetched) > self.batch_size

    def ack_schema(self) -> list[dict[str, Any]]:
        out = []
        names = self.projected()
        for i, name in enumerate(names):
            col = self.table.column(name)
            assert col is not None
            entry: dict[str, Any] = {"name": col.name, "data_type": col.kind, "index": i}
            if col.flags():
                entry["flags"] = col.flags()
            out.append(entry)
        if self.star:
            out.append({"name": "_seq", "data_type": "BigInt", "index": len(out), "flags": ["nn"]})
            out.append(
                {"name": "_deleted", "data_type": "Boolean", "index": len(out), "flags": ["nn"]}
            )
        return out


def parse_subscription(
    engine: Engine, session: Session, sql: str
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
        raise SubscribeError("INVALID_SQL", "Invalid SQL: Query must use namespace.table format")
    ref = from_.this
    if not ref.db:
        raise SubscribeError("INVALID_SQL", "Invalid SQL: Query must use namespace.table format")
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
    if ref.db.lower() == "system":
        raise SubscribeError(
            "UNAUTHORIZED",
            f"Permission denied: Cannot subscribe to system table 'system.{ref.name}': insufficient privileges. "
            "Only DBA and system roles can subscribe to system tables."
            if not session.admin
            else "kalamfuzz.sim does not serve live queries on system tables",
        )
    table = engine.catalog.table(ref.db, ref.name)
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
