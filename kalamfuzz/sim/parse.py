"""Statement splitting, parameter binding and KalamDB's own DDL grammar.

SELECT/INSERT/UPDATE/DELETE go to sqlglot (then DataFusion); KalamDB-specific statements
(CREATE USER TABLE ... WITH, STORAGE FLUSH, EXECUTE AS USER, CREATE STORAGE, ...) are parsed here,
after the grammar in kalamdb-dialect, because no general SQL parser knows them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from attrs import define, field

from .errors import SqlError, invalid_sql
from .types import parse_sql_type

RESERVED_NAMESPACES = {
    "system",
    "sys",
    "root",
    "kalamdb",
    "kalam",
    "main",
    "default",
    "sql",
    "admin",
    "internal",
    "information_schema",
    "pg_catalog",
    "datafusion",
}
RESERVED_COLUMNS = {
    "_seq",
    "_deleted",
    "_id",
    "_row_id",
    "_rowid",
    "_key",
    "_updated",
    "_created",
    "_timestamp",
    "_version",
    "_hash",
}
_SQL_KEYWORDS = {
    "select",
    "from",
    "where",
    "table",
    "insert",
    "update",
    "delete",
    "create",
    "drop",
    "alter",
    "user",
    "order",
    "group",
    "by",
    "limit",
    "and",
    "or",
    "not",
    "null",
    "join",
}
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def validate_identifier(name: str, what: str) -> str:
    if not _IDENT.match(name) or name.lower() in _SQL_KEYWORDS:
        raise invalid_sql(
            f"Invalid {what} name '{name}': use letters, digits and _, at most 64 characters, "
            "not starting with _ or a digit, not a reserved word"
        )
    return name


def split_statements(sql: str) -> list[str]:
    """Split on ';' outside quotes and comments; drop empty statements."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    while i < n:
        ch = sql[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                if i + 1 < n and sql[i + 1] == quote:
                    buf.append(sql[i + 1])
                    i += 1
                else:
                    quote = None
        elif ch in ("'", '"'):
            quote = ch
            buf.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise SqlError("BATCH_PARSE_ERROR", "Unterminated block comment", 400)
            i = end + 2
            continue
        elif ch == ";":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    if quote:
        raise SqlError("BATCH_PARSE_ERROR", "Unterminated quoted string", 400)
    out.append("".join(buf))
    return [s.strip() for s in out if s.strip()]


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise SqlError(
        "INVALID_PARAMETER",
        f"Parameter invalid: arrays and objects are not supported ({json.dumps(value)[:40]})",
        400,
        safe=True,
    )


def bind_params(sql: str, params: list[Any]) -> str:
    """Replace $1..$n outside quotes with SQL literals."""
    if len(params) > 50:
        raise SqlError("INVALID_PARAMETER", "Too many parameters (max 50)", 400, safe=True)
    literals = []
    for i, p in enumerate(params, start=1):
        try:
            literals.append(sql_literal(p))
        except SqlError as exc:
            raise SqlError(
                "INVALID_PARAMETER", f"Parameter ${i} invalid: {exc.message}", 400, safe=True
            ) from None
    out: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    while i < n:
        ch = sql[i]
        if quote:
            if ch == quote:
                quote = None
            out.append(ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "$" and i + 1 < n and sql[i + 1].isdigit():
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            index = int(sql[i + 1 : j])
            if not 1 <= index <= len(literals):
                raise SqlError(
                    "INVALID_PARAMETER",
                    f"Parameter ${index} invalid: no value was given",
                    400,
                    safe=True,
                )
            out.append(literals[index - 1])
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _matching_paren(text: str, start: int) -> int:
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise invalid_sql("Unbalanced parentheses")


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    depth, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    if "".join(buf).strip():
        parts.append("".join(buf).strip())
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in ("'", '"'):
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


@define
class ColumnSpec:
    name: str
    kind: str
    nullable: bool = True
    pk: bool = False
    default: str | None = None


@define
class CreateTable:
    namespace: str | None
    name: str
    table_type: str | None
    if_not_exists: bool
    columns: list[ColumnSpec]
    options: dict[str, str] = field(factory=dict)


_COLUMN_KEYWORDS = re.compile(
    r"\s+(NOT\s+NULL|NULL|PRIMARY\s+KEY|DEFAULT|UNIQUE|AUTO_INCREMENT|GENERATED\s+.*?AS\s+IDENTITY)\b",
    re.IGNORECASE,
)


def parse_column(text: str) -> ColumnSpec:
    m = re.match(r'^\s*("?)([A-Za-z_][A-Za-z0-9_]*)\1\s+(.*)$', text, re.DOTALL)
    if not m:
        raise invalid_sql(f"Invalid column definition: {text}")
    name, rest = m.group(2), m.group(3).strip()
    parts = _COLUMN_KEYWORDS.split(" " + rest)
    type_text = parts[0].strip()
    spec = ColumnSpec(name=name, kind="Text")
    upper = type_text.upper()
    if upper in ("SERIAL", "BIGSERIAL", "SMALLSERIAL"):
        spec.kind = "BigInt"
        spec.default = "SNOWFLAKE_ID()"
    else:
        spec.kind = parse_sql_type(type_text)
    i = 1
    while i < len(parts):
        kw = " ".join(parts[i].upper().split())
        tail = parts[i + 1].strip() if i + 1 < len(parts) else ""
        if kw == "NOT NULL":
            spec.nullable = False
        elif kw == "NULL":
            spec.nullable = True
        elif kw == "PRIMARY KEY":
            spec.pk = True
            spec.nullable = False
        elif kw == "DEFAULT":
            spec.default = tail
            tail = ""
        elif kw == "AUTO_INCREMENT" or kw.startswith("GENERATED"):
            spec.default = "SNOWFLAKE_ID()"
        if tail:
            raise invalid_sql(f"Invalid column definition near '{tail}'")
        i += 2
    if spec.name.lower() in RESERVED_COLUMNS:
        raise invalid_sql(f"Column name '{spec.name}' is reserved for system columns")
    return spec


def _qualified(text: str) -> tuple[str | None, str]:
    parts = [p.strip('"') for p in text.strip().split(".")]
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise invalid_sql(f"Invalid table name '{text}'")


_CREATE_TABLE = re.compile(
    r"^CREATE\s+(?:(USER|SHARED|STREAM)\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?([A-Za-z0-9_.\"]+)\s*\(",
    re.IGNORECASE,
)


def parse_create_table(sql: str) -> CreateTable:
    m = _CREATE_TABLE.match(sql)
    if not m:
        raise invalid_sql("Invalid CREATE TABLE statement")
    open_at = m.end() - 1
    close_at = _matching_paren(sql, open_at)
    body = sql[open_at + 1 : close_at]
    rest = sql[close_at + 1 :].strip()
    ns, name = _qualified(m.group(3))
    validate_identifier(name, "table")
    columns: list[ColumnSpec] = []
    table_pk: str | None = None
    for item in _split_top(body):
        pk_m = re.match(r"^PRIMARY\s+KEY\s*\((.*)\)$", item, re.IGNORECASE | re.DOTALL)
        if pk_m:
            names = [n.strip().strip('"') for n in pk_m.group(1).split(",")]
            if len(names) != 1:
                raise invalid_sql("Composite PRIMARY KEYs are not supported yet")
            table_pk = names[0]
            continue
        columns.append(parse_column(item))
    if table_pk is not None:
        for c in columns:
            if c.name.lower() == table_pk.lower():
                c.pk, c.nullable = True, False
                break
        else:
            raise invalid_sql(f"PRIMARY KEY column '{table_pk}' is not defined")
    if sum(c.pk for c in columns) > 1:
        raise invalid_sql("Composite PRIMARY KEYs are not supported yet")
    lowered = [c.name.lower() for c in columns]
    if len(set(lowered)) != len(lowered):
        raise invalid_sql("Duplicate column names are not allowed")
    options: dict[str, str] = {}
    if rest:
        rest = re.sub(r"\s+USING\s+\w+\s*$", "", rest, flags=re.IGNORECASE)
        wm = re.match(r"^WITH\s*\(", rest, re.IGNORECASE)
        if not wm:
            if rest:
                raise invalid_sql(f"Unexpected text after column list: {rest[:40]}")
        else:
            close = _matching_paren(rest, wm.end() - 1)
            if rest[close + 1 :].strip():
                raise invalid_sql("Unexpected text after WITH (...)")
            for opt in _split_top(rest[wm.end() : close]):
                if "=" not in opt:
                    raise invalid_sql(f"Invalid table option '{opt}'")
                k, v = opt.split("=", 1)
                options[k.strip().upper()] = _unquote(v)
    return CreateTable(
        ns, name, m.group(1).lower() if m.group(1) else None, bool(m.group(2)), columns, options
    )


@define
class AlterTable:
    namespace: str | None
    name: str
    action: str  # add | drop
    column: ColumnSpec | None = None
    column_name: str | None = None


def parse_alter_table(sql: str) -> AlterTable:
    m = re.match(
        r"^ALTER\s+TABLE\s+([A-Za-z0-9_.\"]+)\s+(ADD|DROP)\s+(?:COLUMN\s+)?(.*)$",
        sql,
        re.IGNORECASE | re.DOTALL,
    )
    if not m:
        raise invalid_sql(
            "Unsupported ALTER TABLE statement: the sim supports ADD COLUMN and DROP COLUMN"
        )
    ns, name = _qualified(m.group(1))
    if m.group(2).upper() == "ADD":
        return AlterTable(ns, name, "add", column=parse_column(m.group(3)))
    col = m.group(3).strip().strip('"')
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", col):
        raise invalid_sql(f"Invalid column name '{col}'")
    return AlterTable(ns, name, "drop", column_name=col)


def parse_kv_clauses(text: str, keys: set[str]) -> dict[str, str]:
    """`KEY 'value' KEY2 'value'` clauses (CREATE STORAGE, CREATE USER)."""
    out: dict[str, str] = {}
    pattern = re.compile(
        r"\s*([A-Za-z_]+)\s+('(?:[^']|'')*'|\"[^\"]*\"|[A-Za-z0-9_./-]+)", re.DOTALL
    )
    pos = 0
    while pos < len(text.rstrip()):
        m = pattern.match(text, pos)
        if not m or m.group(1).upper() not in keys:
            raise invalid_sql(f"Unexpected clause near '{text[pos : pos + 30].strip()}'")
        out[m.group(1).upper()] = _unquote(m.group(2))
        pos = m.end()
    return out


def parse_execute_as(sql: str) -> tuple[str, str]:
    m = re.match(r"^EXECUTE\s+AS\s+USER\s+('(?:[^']|'')*'|[A-Za-z0-9_]+)\s*\(", sql, re.IGNORECASE)
    if not m:
        raise invalid_sql(
            "Invalid EXECUTE AS USER statement: use EXECUTE AS USER 'name' (<statement>)"
        )
    close = _matching_paren(sql, m.end() - 1)
    if sql[close + 1 :].strip().rstrip(";").strip():
        raise invalid_sql("EXECUTE AS USER takes exactly one statement in parentheses")
    inner = sql[m.end() : close].strip().rstrip(";")
    if len(split_statements(inner)) != 1:
        raise invalid_sql("EXECUTE AS USER takes exactly one statement in parentheses")
    return _unquote(m.group(1)), inner
