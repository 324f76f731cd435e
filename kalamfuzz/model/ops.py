"""Operations the machines draw, as plain values.

Every operation that a client sends names its ``actor`` (the authenticated user id); row
operations may add ``as_user`` for ``EXECUTE AS USER``. ``to_sql()`` gives the statement text
the adapters send, so what the model reasons about and what the server executes cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import frozen

from kalamfuzz.model.catalog import Column, Role, Table, TableId
from kalamfuzz.model.exprs import Assigned, term_sql
from kalamfuzz.model.values import Value, sql_literal
from kalamfuzz.model.where import Pred, to_sql


def _as_user(sql: str, as_user: str | None) -> str:
    if as_user is None:
        return sql
    return f"EXECUTE AS USER '{as_user.replace(chr(39), chr(39) * 2)}' ({sql})"


@frozen
class CreateNamespace:
    actor: str
    namespace: str

    def to_sql(self) -> str:
        return f"CREATE NAMESPACE {self.namespace}"


@frozen
class CreateUser:
    actor: str
    user_id: str
    role: Role
    #: Never rendered into reports; the adapters use it for the statement and for logging in.
    password: str = "kalamfuzz-pw-1"

    def to_sql(self) -> str:
        return f"CREATE USER {self.user_id} WITH PASSWORD '{self.password}' ROLE {self.role.value}"


@frozen
class CreateStorage:
    actor: str
    storage_id: str
    base_directory: str
    shared_template: str = "{namespace}/{tableName}"
    user_template: str = "{namespace}/{tableName}/{userId}"

    def to_sql(self) -> str:
        return (
            f"CREATE STORAGE {self.storage_id} TYPE 'filesystem' "
            f"BASE_DIRECTORY '{self.base_directory}' "
            f"SHARED_TABLES_TEMPLATE '{self.shared_template}' "
            f"USER_TABLES_TEMPLATE '{self.user_template}'"
        )


@frozen
class CreateTable:
    actor: str
    table: Table

    def to_sql(self) -> str:
        return self.table.create_sql()


@frozen
class DropTable:
    actor: str
    table_id: TableId

    def to_sql(self) -> str:
        return f"DROP TABLE {self.table_id}"


@frozen
class AlterAddColumn:
    actor: str
    table_id: TableId
    column: Column

    def to_sql(self) -> str:
        return f"ALTER TABLE {self.table_id} ADD COLUMN {self.column.ddl()}"


@frozen
class AlterDropColumn:
    actor: str
    table_id: TableId
    column: str

    def to_sql(self) -> str:
        return f"ALTER TABLE {self.table_id} DROP COLUMN {self.column}"


@frozen
class Insert:
    actor: str
    table_id: TableId
    #: Each row maps column names to values; the first row's keys fix the column list.
    rows: tuple[Mapping[str, Value], ...]
    as_user: str | None = None

    def to_sql(self) -> str:
        cols = list(self.rows[0]) if self.rows else []
        values = ", ".join(
            "(" + ", ".join(sql_literal(r.get(c)) for c in cols) + ")" for r in self.rows
        )
        sql = f"INSERT INTO {self.table_id} ({', '.join(cols)}) VALUES {values}"
        return _as_user(sql, self.as_user)


@frozen
class Update:
    actor: str
    table_id: TableId
    #: Constants, or values computed from the row (``n = n + 1``: model/exprs.py).
    assignments: tuple[tuple[str, Assigned], ...]
    where: Pred | None
    as_user: str | None = None

    def to_sql(self) -> str:
        sets = ", ".join(f"{c} = {term_sql(v)}" for c, v in self.assignments)
        return _as_user(f"UPDATE {self.table_id} SET {sets}{to_sql(self.where)}", self.as_user)


@frozen
class Delete:
    actor: str
    table_id: TableId
    where: Pred | None
    as_user: str | None = None

    def to_sql(self) -> str:
        return _as_user(f"DELETE FROM {self.table_id}{to_sql(self.where)}", self.as_user)


#: A SELECT without LIMIT returns at most DEFAULT rows; no SELECT (or JOIN) returns more than MAX.
DEFAULT_QUERY_LIMIT = 50
MAX_QUERY_LIMIT = 1000


@frozen
class Select:
    actor: str
    table_id: TableId
    #: None means ``SELECT *``.
    projection: tuple[str, ...] | None = None
    where: Pred | None = None
    #: (column, descending) pairs.
    order_by: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None
    as_user: str | None = None

    def to_sql(self) -> str:
        cols = "*" if self.projection is None else ", ".join(self.projection)
        sql = f"SELECT {cols} FROM {self.table_id}{to_sql(self.where)}"
        if self.order_by:
            sql += " ORDER BY " + ", ".join(
                f"{c} {'DESC' if d else 'ASC'}" for c, d in self.order_by
            )
        if self.limit is not None:
            sql += f" LIMIT {self.limit}"
        return _as_user(sql, self.as_user)


@frozen
class Join:
    """``SELECT l.c AS l_c, r.d AS r_d FROM left l JOIN right r ON l.a = r.b``: an inner
    equi-join of two tables as the actor sees them (its partition of a USER table)."""

    actor: str
    left: TableId
    right: TableId
    on: tuple[str, str]
    #: ("l" or "r", column) pairs, output as ``l_column`` / ``r_column``.
    columns: tuple[tuple[str, str], ...]

    @property
    def table_id(self) -> TableId:
        return self.left

    def output(self) -> tuple[str, ...]:
        return tuple(f"{side}_{c}" for side, c in self.columns)

    def to_sql(self) -> str:
        cols = ", ".join(f"{side}.{c} AS {side}_{c}" for side, c in self.columns)
        return (
            f"SELECT {cols} FROM {self.left} l JOIN {self.right} r "
            f"ON l.{self.on[0]} = r.{self.on[1]} LIMIT {MAX_QUERY_LIMIT}"
        )


@frozen
class Flush:
    actor: str
    table_id: TableId

    def to_sql(self) -> str:
        return f"STORAGE FLUSH TABLE {self.table_id}"


@frozen
class JobFinished:
    """The machine saw a job reach a final status in ``system.jobs``."""

    job_id: str


@frozen
class SetStorageWritable:
    """Fault injection: the storage's directory became (un)writable for the server."""

    storage_id: str
    writable: bool


@frozen
class Restart:
    """Fault injection: the server was killed and started again on the same data."""


@frozen
class Subscribe:
    actor: str
    sub_id: str
    table_id: TableId
    projection: tuple[str, ...] | None = None
    where: Pred | None = None
    batch_size: int = 1000
    #: Resume: only rows with ``_seq`` greater than this.
    from_seq: int | None = None

    def to_sql(self) -> str:
        cols = "*" if self.projection is None else ", ".join(self.projection)
        return f"SELECT {cols} FROM {self.table_id}{to_sql(self.where)}"

    def options(self) -> dict[str, int]:
        opts = {"batch_size": self.batch_size}
        if self.from_seq is not None:
            opts["from"] = self.from_seq
        return opts


@frozen
class Unsubscribe:
    sub_id: str


#: How a transaction ends: COMMIT, ROLLBACK, or "" (the request ends with it open).
TxEnd = Literal["COMMIT", "ROLLBACK", ""]


@frozen
class Transaction:
    """``BEGIN; s1; s2; ...; COMMIT`` (or ROLLBACK, or left open) in one request, as ``actor``.

    ``tx_id`` names it in the model between its snapshot and its commit when it ran beside
    others (``TxBegin``); a transaction run alone takes its snapshot when it commits."""

    actor: str
    statements: tuple[Insert | Update | Delete | Select, ...]
    end: TxEnd = "COMMIT"
    tx_id: str = ""

    def to_sql(self) -> str:
        parts = ["BEGIN", *(s.to_sql() for s in self.statements)]
        return "; ".join([*parts, self.end] if self.end else parts)


@frozen
class TxBegin:
    """The model's snapshot point of a transaction sent beside others: its reads see the state
    here (and its own writes), its commit comes later (snapshot isolation)."""

    tx_id: str


Statement = (
    CreateNamespace
    | CreateUser
    | CreateStorage
    | CreateTable
    | DropTable
    | AlterAddColumn
    | AlterDropColumn
    | Insert
    | Update
    | Delete
    | Select
    | Flush
    | Transaction
)
Operation = (
    Statement
    | Join
    | JobFinished
    | SetStorageWritable
    | Restart
    | Subscribe
    | Unsubscribe
    | TxBegin
)
