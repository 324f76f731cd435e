"""SELECT, INSERT, UPDATE, DELETE and EXECUTE AS USER: planning and running the data statements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from . import binding as B
from . import parse as P
from .access import check_write, may_impersonate
from .bugs import (
    DIRTY_READ,
    DML_NEVER_TRUE_REFUSED,
    DUP_PK_COLD,
    EXECUTE_AS_WRONG_SCOPE,
    LOST_UPDATE,
    ORDER_LIMIT_RESORTED,
    PK_CHECK_IGNORES_TOMBSTONES,
    PK_INSERT_RACE,
    RACE_WINDOW_S,
    RETRY_REINSERTS,
)
from .catalog import Column, TableDef
from .errors import SqlError, denied, exec_error, invalid_sql
from .folding import never_true
from .session import Change, Pending, Plan, Result, Session
from .transactions import in_transaction, refuse_stream
from .types import coerce, table_to_json_rows

if TYPE_CHECKING:
    from .engine import Engine


# ---------------------------------------------------------------------------------- SELECT
def plan_select(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    tree = B.parse(sql, exp.Query)
    config = engine.config

    def run() -> Result:
        keep_deleted = any(
            c.name.lower() == "_deleted"
            for w in tree.find_all(exp.Where)
            for c in w.find_all(exp.Column)
        )
        registered, tables = B.bind_tables(engine, session, tree, ns, keep_deleted=keep_deleted)
        resort = (
            isinstance(tree, exp.Select)
            and tree.args.get("order") is not None
            and tree.args.get("limit") is not None
            and bool(tables)
            and engine.has(ORDER_LIMIT_RESORTED)
        )
        if isinstance(tree, exp.Select | exp.Union):
            limit = tree.args.get("limit")
            value = None
            if limit is not None and isinstance(limit.expression, exp.Literal):
                value = int(limit.expression.this)
            if limit is None:
                tree.set(
                    "limit", exp.Limit(expression=exp.Literal.number(config.default_query_limit))
                )
            elif value is not None and value > config.max_query_limit:
                tree.set("limit", exp.Limit(expression=exp.Literal.number(config.max_query_limit)))
        result = B.run(tree, registered)
        if resort:
            result = _sorted_by_key(result, tables[0])
        return Result(
            row_count=result.num_rows,
            as_user=session.user_id,
            schema=B.result_schema(result.schema, tables),
            rows=table_to_json_rows(result),
        )

    if engine.has(DIRTY_READ):
        # The read path is slow while a transaction is open: a read sent with one lands
        # inside it (and a read with none open, most of them, costs nothing).
        return lambda: Pending(RACE_WINDOW_S / 2, run) if engine.open_transactions else run()
    return run


def _written(
    engine: Engine, session: Session, changes: list[Change], verb: str, rows: int
) -> Result:
    """A DML's reply, its changes sent to subscribers (at COMMIT inside a transaction)."""
    engine.emit(changes)
    return Result(row_count=rows, as_user=session.user_id, message=f"{verb} {rows} row(s)")


def _sorted_by_key(result: pa.Table, table: TableDef) -> pa.Table:
    """KalamDB's apply_default_order_by wrapping a Limit(Sort) plan in Sort(pk): the rows the
    query chose, in primary-key order (only when the key is an output column, as there)."""
    if result.column_names.count(table.pk.name) != 1:
        return result
    return result.sort_by([(table.pk.name, "ascending")])


# ---------------------------------------------------------------------------------- INSERT
def _target(engine: Engine, node: exp.Expression, ns: str) -> TableDef:
    table = node.this if isinstance(node, exp.Schema) else node
    if not isinstance(table, exp.Table):
        raise invalid_sql("Unsupported INSERT target")
    namespace, name = B.qualified_name(table, ns)
    if namespace.lower() == "system":
        raise exec_error(f"Cannot insert into system table system.{name}")
    return engine.table(namespace, name)


def plan_insert(
    engine: Engine, session: Session, sql: str, ns: str, scope_user: str | None = None
) -> Plan:
    tree = B.parse(sql, exp.Insert)
    values = tree.expression
    if not isinstance(values, exp.Values):
        raise invalid_sql("Only INSERT ... VALUES is supported")
    names = [i.name for i in tree.this.expressions] if isinstance(tree.this, exp.Schema) else None

    def run() -> Result | Pending:
        table = _target(engine, tree.this, ns)
        check_write(engine, session, table)
        refuse_stream(engine, table)
        columns = [table.column(n) for n in names] if names else list(table.columns)
        for n, c in zip(names or [], columns, strict=False):
            if c is None:
                raise exec_error(f"Schema error: column '{n}' not found in table {table.table_id}")
        key = engine.scope_key(table, Session(scope_user or session.user_id, session.role))
        scope = engine.data[table.uid].scope(key)
        pk_col = table.pk
        rows: list[tuple[Any, dict[int, Any]]] = []
        for tup in values.expressions:
            exprs = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
            if len(exprs) != len(columns):
                raise exec_error(f"Insert has {len(exprs)} values but {len(columns)} columns")
            row: dict[int, Any] = {}
            for c, e in zip(columns, exprs, strict=True):
                assert c is not None
                row[c.id] = coerce(B.literal(e, session), c.kind, c.name)
            for c in table.columns:
                if c.id not in row:
                    row[c.id] = (
                        coerce(B.default(engine, c, session), c.kind, c.name) if c.default else None
                    )
                if row[c.id] is None and not c.nullable:
                    raise exec_error(not_null_violation(c))
            rows.append((row[pk_col.id], row))
        seen: set[Any] = set()
        # STREAM rows are events keyed by _seq: KalamDB keeps no primary-key index for them.
        checked = table.table_type != "stream"
        if engine.has(RETRY_REINSERTS):
            cached = (session.user_id, key, sql) in engine.insert_plans
            engine.insert_plans.add((session.user_id, key, sql))
            checked = checked and not cached
        for pk, _ in rows if checked else []:
            if pk in seen:
                raise exec_error(
                    f"Already exists: Primary key violation: value '{pk}' appears multiple times in the insert batch"
                )
            seen.add(pk)
            if engine.has(DUP_PK_COLD):
                hot = scope.hot.get(pk)
                current = hot[-1] if hot else None
            elif engine.has(PK_CHECK_IGNORES_TOMBSTONES) and pk in scope.cold:
                current = scope.cold[pk]
            else:
                current = scope.latest(pk)
            if current is not None and not current.deleted:
                raise exec_error(
                    f"Already exists: Primary key violation: value '{pk}' already exists in column '{pk_col.name}'"
                )

        def write() -> Result:
            _still_there(engine, table)
            changes = []
            for pk, row in rows:
                v = engine.new_version(table, key, pk, False, row)
                changes.append(Change(table, key, "insert", v, None))
            return _written(engine, session, changes, "Inserted", len(rows))

        if checked and engine.has(PK_INSERT_RACE) and not in_transaction(engine):
            return Pending(RACE_WINDOW_S, write)
        return write()

    return run


def _still_there(engine: Engine, table: TableDef) -> None:
    """After a pause (planted races only): the table may have been dropped meanwhile."""
    current = engine.catalog.table(table.namespace, table.name)
    if current is None or current.uid != table.uid:
        raise exec_error(f"Table not found: {table.table_id}")


# ---------------------------------------------------------------------------------- UPDATE / DELETE
def not_null_violation(col: Column) -> str:
    return f"NOT NULL constraint violation: column '{col.name}' cannot be null"


def _require_where(engine: Engine, tree: exp.Update | exp.Delete, verb: str) -> exp.Expression:
    """The statement's predicate; KalamDB's providers refuse UPDATE and DELETE without one."""
    where = tree.args.get("where")
    predicate: exp.Expression | None = None if where is None else where.this
    # With the planted bug, a WHERE DataFusion folds to NULL or FALSE is eliminated before the
    # provider sees it, which then finds no predicate at all.
    if predicate is None or (engine.has(DML_NEVER_TRUE_REFUSED) and never_true(predicate)):
        raise exec_error(f"Execution error: Error during planning: {verb} requires a WHERE clause")
    return predicate


def _matching(
    engine: Engine,
    session: Session,
    table_node: exp.Table,
    where: exp.Expression,
    ns: str,
    outputs: list[exp.Expr],
) -> pa.Table:
    """The caller's current rows the WHERE selects, as the given output expressions."""
    namespace, name = B.qualified_name(table_node, ns)
    query = exp.select(*outputs).from_(
        exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(namespace))
    )
    query = query.where(where.copy())
    registered, _ = B.bind_tables(engine, session, query, ns, keep_deleted=False, dml=True)
    return B.run(query, registered)


def plan_update(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    tree = B.parse(sql, exp.Update)

    def run() -> Result | Pending:
        namespace, name = B.qualified_name(tree.this, ns)
        table = engine.table(namespace, name)
        if table.table_type == "stream":
            raise exec_error(
                "Execution error: Error during planning: UPDATE not supported for STREAM tables"
            )
        check_write(engine, session, table)
        where = _require_where(engine, tree, "UPDATE")
        assigns: list[tuple[Column, exp.Expression]] = []
        for eq in tree.expressions:
            col = table.column(eq.this.name)
            if col is None:
                raise exec_error(
                    f"Schema error: column '{eq.this.name}' not found in table {table.table_id}"
                )
            if col.pk:
                raise exec_error(
                    f"Invalid operation: UPDATE cannot modify primary key column '{col.name}'"
                )
            assigns.append((col, eq.expression))
        outputs = [exp.column(table.pk.name).as_("__pk")] + [
            e.copy().as_(f"__v{i}") for i, (_, e) in enumerate(assigns)
        ]
        found = _matching(engine, session, tree.this, where, ns, outputs)
        key = engine.scope_key(table, session)
        cols = []
        for i in range(found.num_columns):
            c = found.column(i)
            if pa.types.is_timestamp(c.type):
                c = c.cast(pa.int64())
            elif pa.types.is_date(c.type):
                c = c.cast(pa.int32())
            cols.append(c.to_pylist())

        def write() -> Result:
            # The assigned values were computed from the rows read above; they are merged
            # onto each row's latest version, as KalamDB's update_by_pk_value does.
            _still_there(engine, table)
            scope = engine.data[table.uid].scope(key)
            changes = []
            for r in range(found.num_rows):
                pk = cols[0][r]
                old = scope.latest(pk)
                if old is None or old.deleted:
                    continue
                values = dict(old.values)
                for i, (col, _) in enumerate(assigns):
                    values[col.id] = coerce(cols[i + 1][r], col.kind, col.name)
                    if values[col.id] is None and not col.nullable:
                        raise exec_error(not_null_violation(col))
                if all(values.get(c.id) == old.values.get(c.id) for c in table.columns):
                    continue  # KalamDB's update_assignments_noop: not written, not counted
                was_cold = scope.hot.get(pk) is None
                v = engine.new_version(table, key, pk, False, values)
                changes.append(Change(table, key, "update", v, old, was_cold))
            return _written(engine, session, changes, "Updated", len(changes))

        if engine.has(LOST_UPDATE) and not in_transaction(engine):
            return Pending(RACE_WINDOW_S, write)
        return write()

    return run


def plan_delete(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    tree = B.parse(sql, exp.Delete)

    def run() -> Result:
        namespace, name = B.qualified_name(tree.this, ns)
        table = engine.table(namespace, name)
        check_write(engine, session, table)
        refuse_stream(engine, table)
        where = _require_where(engine, tree, "DELETE")
        key = engine.scope_key(table, session)
        scope = engine.data[table.uid].scope(key)
        changes = []
        if table.table_type == "stream":
            # A hard delete of exactly the events the WHERE selects, whatever keys they share.
            found = _matching(
                engine, session, tree.this, where, ns, [exp.column("_seq").as_("__s")]
            )
            doomed = set(found.column(0).to_pylist())
            for pk, versions in list(scope.hot.items()):
                for v in list(versions):
                    if v.seq in doomed:
                        engine.hard_delete(table, key, pk, v)
                        changes.append(Change(table, key, "delete", None, v))
        else:
            found = _matching(
                engine, session, tree.this, where, ns, [exp.column(table.pk.name).as_("__pk")]
            )
            for pk in found.column(0).to_pylist():
                old = scope.latest(pk)
                if old is None or old.deleted:
                    continue
                was_cold = scope.hot.get(pk) is None
                v = engine.new_version(table, key, pk, True, dict(old.values))
                changes.append(Change(table, key, "delete", v, old, was_cold))
        return _written(engine, session, changes, "Deleted", len(changes))

    return run


# ---------------------------------------------------------------------------------- EXECUTE AS USER
def _written_table(tree: exp.Expr, ns: str) -> tuple[str, str] | None:
    """The table an INSERT, UPDATE or DELETE writes (KalamDB fills table_type for these only)."""
    if not isinstance(tree, exp.Insert | exp.Update | exp.Delete):
        return None
    node = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    return B.qualified_name(node, ns) if isinstance(node, exp.Table) else None


def plan_execute_as(engine: Engine, session: Session, sql: str, ns: str) -> Plan:
    target, inner = P.parse_execute_as(sql)
    target_user = engine.catalog.users.get(target)
    # An unknown (or dropped) target counts as role user (docs/reference/sql.md, rule 8).
    target_role = target_user.role if target_user and target_user.deleted_at is None else "user"
    if not may_impersonate(session, target, target_role):
        raise denied(
            f"EXECUTE AS USER is not authorized: role '{session.role}' cannot impersonate '{target}'"
        )
    try:
        tree = sqlglot.parse_one(inner, read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise invalid_sql(f"SQL parse error: {str(exc).splitlines()[0]}") from None
    written = _written_table(tree, ns)
    table = engine.catalog.table(*written) if written else None
    if table is not None and table.table_type == "shared":
        # Answered before the statement runs (execution_paths.rs, error_for_privilege): no
        # "Statement k failed" prefix, and every non-admin actor gets the generic text. A
        # wrapped SELECT is not refused: it reads the SHARED table with role user.
        raise SqlError(
            "SQL_EXECUTION_ERROR",
            f"EXECUTE AS USER is not allowed on SHARED tables (table '{table.namespace}:{table.name}'). "
            "AS USER impersonation is only supported for USER and STREAM tables.",
            safe=False,
            numbered=False,
        )
    as_session = Session(target, "user")
    if isinstance(tree, exp.Insert) and engine.has(EXECUTE_AS_WRONG_SCOPE):
        return plan_insert(engine, as_session, inner, ns, scope_user=session.user_id)
    return engine.plan(as_session, inner, ns)
