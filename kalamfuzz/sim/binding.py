"""From parsed SQL to what DataFusion runs: table references bound to the rows the caller may
see, session functions replaced by their values, literals and DEFAULTs evaluated."""

from __future__ import annotations

import functools
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from .access import check_read
from .bugs import SELECT_SCOPE_LEAK
from .catalog import Column, TableDef
from .errors import SqlError, denied, exec_error, invalid_sql
from .keys import pinned_keys
from .query import run_sql
from .session import Session
from .types import arrow_to_kalam

if TYPE_CHECKING:
    from .engine import Engine


def qualified_name(table: exp.Table, namespace: str) -> tuple[str, str]:
    # sqlglot reads a statement cut short ("DELETE FRO") with something else where the table
    # goes; KalamDB's parser refuses it
    if not isinstance(table, exp.Table) or not table.name:
        raise invalid_sql("SQL parse error: expected a table name")
    return (table.db or namespace), table.name


#: The deepest expression tree the sim takes. Deeper ones (``1 + 1 + ...`` thousands of times:
#: no parentheses, so no parser's nesting limit applies) would overflow the stack of the
#: engines that walk them, as they overflow kalamdb-server's; a clear 400 is the contract.
MAX_DEPTH = 1000


@functools.lru_cache(maxsize=4096)
def _parsed(sql: str) -> exp.Expr:
    # Clients send the same text again and again (a read-back, a sweep's reads): parsing is a
    # fifth of a statement's time on the sim, copying a parsed tree a quarter of parsing.
    tree = sqlglot.parse_one(sql, read="postgres")
    if len(sql) < MAX_DEPTH:
        return tree  # each level of a tree takes a character of text at least
    todo = [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise invalid_sql(f"SQL parse error: expression deeper than {MAX_DEPTH}")
        todo.extend((child, depth + 1) for child in node.iter_expressions())
    return tree


def parse(sql: str, kind: type[exp.Expr]) -> Any:
    """A tree of its own for ``sql`` (plans rewrite the tree they get)."""
    try:
        tree = _parsed(sql)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise invalid_sql(f"SQL parse error: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        # sqlparser-rs stops at a nesting depth of 50 with the same kind of error
        raise invalid_sql("SQL parse error: recursion limit exceeded") from None
    if not isinstance(tree, kind):
        raise invalid_sql(f"Unsupported statement: {sql[:60]}")
    return tree.copy()


def bind_tables(
    engine: Engine,
    session: Session,
    tree: exp.Expression,
    ns: str,
    *,
    keep_deleted: bool,
    dml: bool = False,
) -> tuple[dict[str, pa.Table], list[TableDef]]:
    """Replace each table reference with a registered Arrow table of what the caller may see
    (with ``dml``, of what an UPDATE or DELETE may find)."""
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    registered: dict[str, pa.Table] = {}
    tables: list[TableDef] = []
    leak = engine.has(SELECT_SCOPE_LEAK) and any(True for _ in tree.find_all(exp.Or))
    refs = list(tree.find_all(exp.Table))
    # One table and no subquery: the statement's WHERE is about that table's rows alone.
    where = tree.args.get("where") if len(refs) == 1 and not tree.find(exp.Subquery) else None
    for i, ref in enumerate(refs):
        if not ref.db and ref.name.lower() in ctes:
            continue
        namespace, name = qualified_name(ref, ns)
        reg = f"__t{i}"
        if namespace.lower() == "system":
            if not session.admin:
                raise denied(
                    f"Access denied: system table system.{name} requires DBA or System role"
                )
            registered[reg] = engine.system_table(name.lower())
        else:
            table = engine.table(namespace, name)
            check_read(session, table)
            tables.append(table)
            if leak and table.table_type == "user":
                registered[reg] = engine.leaky_arrow(table, keep_deleted)
            elif dml:
                keys = pinned_keys(table, where)
                registered[reg] = engine.dml_arrow(table, engine.scope_key(table, session), keys)
            else:
                registered[reg] = engine.scope_arrow(
                    table, engine.scope_key(table, session), keep_deleted, pinned_keys(table, where)
                )
        alias = ref.alias or name
        ref.replace(
            exp.Table(
                this=exp.to_identifier(reg), alias=exp.TableAlias(this=exp.to_identifier(alias))
            )
        )
    for user_fn in list(tree.find_all(exp.CurrentUser)):
        user_fn.replace(exp.Literal.string(session.user_id))
    for role_fn in list(tree.find_all(exp.CurrentRole)):
        role_fn.replace(exp.Literal.string(session.role))
    for call in list(tree.find_all(exp.Anonymous)):
        fname = call.name.upper()
        if fname in ("CURRENT_USER_ID", "KDB_CURRENT_USER"):
            call.replace(exp.Literal.string(session.user_id))
        elif fname == "KDB_CURRENT_ROLE":
            call.replace(exp.Literal.string(session.role))
    return registered, tables


def run(tree: exp.Expression, registered: dict[str, pa.Table]) -> pa.Table:
    try:
        return run_sql(tree.sql(dialect="postgres"), registered)
    except Exception as exc:  # DataFusion reports planning and execution errors alike
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        text = re.sub(r"__t\d+\.", "", text)
        raise exec_error(f"Execution error: {text}") from None


def result_schema(schema: pa.Schema, tables: list[TableDef]) -> list[dict[str, Any]]:
    out = []
    for i, f in enumerate(schema):
        entry: dict[str, Any] = {
            "name": f.name,
            "data_type": arrow_to_kalam(f.type),
            "index": i,
        }
        if f.name == "_seq":
            entry["flags"] = ["nn"]
        elif f.name == "_deleted":
            entry["data_type"] = "Boolean"
        elif len(tables) == 1 and (col := tables[0].column(f.name)) is not None:
            entry["data_type"] = col.kind
            if col.flags():
                entry["flags"] = col.flags()
        out.append(entry)
    return out


def literal(node: exp.Expr, session: Session) -> Any:
    if isinstance(node, exp.Paren):
        return literal(node.this, session)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        value = literal(node.this, session)
        return -value
    if isinstance(node, exp.CurrentUser):
        return session.user_id
    wrapper = exp.select(node.copy().as_("v"))
    for n in list(wrapper.find_all(exp.CurrentUser)):
        n.replace(exp.Literal.string(session.user_id))
    result = run(wrapper, {})
    col = result.column(0)
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    return col.to_pylist()[0]


def default(engine: Engine, col: Column, session: Session) -> Any:
    text = (col.default or "").strip()
    upper = text.upper().replace(" ", "")
    if upper in ("SNOWFLAKE_ID()",):
        return engine.seq.next()
    if upper in ("UUID_V7()", "UUID()"):
        return str(uuid.uuid4())
    if upper == "ULID()":
        return uuid.uuid4().hex.upper()[:26]
    if upper in ("NOW()", "CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP()"):
        return int(time.time() * 1_000_000)
    if upper in ("CURRENT_USER()", "CURRENT_USER"):
        return session.user_id
    try:
        return literal(sqlglot.parse_one(text, read="postgres"), session)
    except SqlError:
        raise
    except Exception:
        raise exec_error(f"Invalid DEFAULT expression for column '{col.name}': {text}") from None
