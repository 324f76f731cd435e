"""KalamDB column types: SQL spellings, Arrow types, value coercion and JSON cell encoding."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from typing import Any

import pyarrow as pa

from .errors import exec_error, invalid_sql

# SQL spelling -> KalamDataType serde name (kalamdb-dialect/src/compatibility.rs)
_SQL_TYPES = {
    "BOOLEAN": "Boolean",
    "BOOL": "Boolean",
    "SMALLINT": "SmallInt",
    "INT2": "SmallInt",
    "INT": "Int",
    "INTEGER": "Int",
    "INT4": "Int",
    "BIGINT": "BigInt",
    "INT8": "BigInt",
    "REAL": "Float",
    "FLOAT": "Float",
    "FLOAT4": "Float",
    "DOUBLE": "Double",
    "FLOAT8": "Double",
    "DOUBLE PRECISION": "Double",
    "TEXT": "Text",
    "VARCHAR": "Text",
    "CHAR": "Text",
    "STRING": "Text",
    "JSON": "Json",
    "JSONB": "Json",
    "BYTEA": "Bytes",
    "BLOB": "Bytes",
    "BINARY": "Bytes",
    "VARBINARY": "Bytes",
    "DATE": "Date",
    "TIMESTAMP": "Timestamp",
    "DATETIME": "DateTime",
    "UUID": "Uuid",
}

ARROW: dict[str, pa.DataType] = {
    "Boolean": pa.bool_(),
    "SmallInt": pa.int16(),
    "Int": pa.int32(),
    "BigInt": pa.int64(),
    "Float": pa.float32(),
    "Double": pa.float64(),
    "Text": pa.string(),
    "Json": pa.string(),
    "Bytes": pa.binary(),
    "Date": pa.date32(),
    "Timestamp": pa.timestamp("us"),
    "DateTime": pa.timestamp("us", tz="UTC"),
    "Uuid": pa.string(),
}

_INT_RANGE = {"SmallInt": 2**15, "Int": 2**31, "BigInt": 2**63}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def parse_sql_type(text: str) -> str:
    t = " ".join(text.upper().split())
    t = re.sub(r"\(\s*\d+\s*(,\s*\d+\s*)?\)$", "", t).strip()  # VARCHAR(10) -> VARCHAR
    if t.endswith("[]"):
        return "Text"
    kind = _SQL_TYPES.get(t)
    if kind is None:
        raise invalid_sql(f"Unsupported data type: {text}")
    return kind


def arrow_to_kalam(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "Boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "SmallInt"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "Int"
    if pa.types.is_integer(t):
        return "BigInt"
    if pa.types.is_float32(t) or pa.types.is_float16(t):
        return "Float"
    if pa.types.is_floating(t):
        return "Double"
    if pa.types.is_decimal(t):
        return "Double"
    if pa.types.is_timestamp(t):
        return "DateTime" if t.tz else "Timestamp"
    if pa.types.is_date(t):
        return "Date"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "Bytes"
    return "Text"


def _parse_timestamp(value: str) -> int:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise exec_error(
            f"Execution error: Cast error: Cannot cast string '{value}' to value of Timestamp"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000)


def coerce(value: Any, kind: str, column: str) -> Any:
    """Cast a literal to the stored form of a column type the way DataFusion's INSERT casts do."""
    if value is None:
        return None
    try:
        if kind == "Boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "t", "f", "1", "0"):
                return value.lower() in ("true", "t", "1")
            if isinstance(value, int):
                return value != 0
        elif kind in _INT_RANGE:
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, float):
                if math.isnan(value) or math.isinf(value):
                    raise ValueError
                value = int(value)
            elif isinstance(value, str):
                value = int(value.strip())
            if isinstance(value, int):
                bound = _INT_RANGE[kind]
                if not -bound <= value < bound:
                    raise exec_error(
                        f"Execution error: Arrow error: Cast error: value {value} is out of range for column '{column}' ({kind})"
                    )
                return value
        elif kind in ("Float", "Double"):
            if isinstance(value, bool):
                return float(value)
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str):
                return float(value.strip())
        elif kind in ("Text", "Json"):
            if kind == "Json" and isinstance(value, str):
                json.loads(value)
            if isinstance(value, bool):
                return "true" if value else "false"
            return (
                value
                if isinstance(value, str)
                else json.dumps(value)
                if kind == "Json"
                else str(value)
            )
        elif kind == "Uuid":
            if isinstance(value, str) and _UUID.match(value):
                return value.lower()
        elif kind in ("Timestamp", "DateTime"):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            if isinstance(value, str):
                return _parse_timestamp(value)
        elif kind == "Date":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                return (dt.date.fromisoformat(value) - dt.date(1970, 1, 1)).days
        elif kind == "Bytes":
            if isinstance(value, bytes):
                return value
            if isinstance(value, str):
                return value.encode()
    except (ValueError, TypeError):
        pass
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    raise exec_error(
        f"Execution error: Arrow error: Cast error: Cannot cast value {shown} to {kind} for column '{column}'"
    )


def to_arrow_value(value: Any, kind: str) -> Any:
    """Stored value -> something pa.array accepts for ARROW[kind]."""
    if value is None:
        return None
    if kind in ("Timestamp", "DateTime"):
        return dt.datetime(
            1970, 1, 1, tzinfo=dt.UTC if kind == "DateTime" else None
        ) + dt.timedelta(microseconds=value)
    if kind == "Date":
        return dt.date(1970, 1, 1) + dt.timedelta(days=value)
    return value


def wal_encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    return value


def wal_decode(value: Any) -> Any:
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    return value


def json_cell(value: Any, t: pa.DataType) -> Any:
    """KalamDB's scalar_value_to_json: Int64/UInt64 as strings, timestamps as integers in their unit."""
    if value is None:
        return None
    if pa.types.is_integer(t):
        return str(value) if t.bit_width == 64 else value
    if pa.types.is_timestamp(t):
        return value  # already cast to int64 by the caller
    if pa.types.is_date(t):
        return value
    if pa.types.is_decimal(t):
        return str(value)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return list(value)
    if pa.types.is_floating(t):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return value


def table_to_json_rows(table: pa.Table) -> list[list[Any]]:
    """Arrow result -> positional JSON rows in KalamDB's cell encoding."""
    columns: list[list[Any]] = []
    for field, column in zip(table.schema, table.columns, strict=True):
        t = field.type
        if pa.types.is_timestamp(t):
            values = column.cast(pa.int64()).to_pylist()
        elif pa.types.is_date(t):
            values = column.cast(pa.int32()).to_pylist()
        elif pa.types.is_time(t) or pa.types.is_duration(t):
            values = column.cast(pa.int64()).to_pylist()
        else:
            values = column.to_pylist()
        columns.append([json_cell(v, t) for v in values])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def stored_to_json(value: Any, kind: str) -> Any:
    """A stored cell -> its JSON form in live-query messages."""
    if value is None:
        return None
    if kind == "BigInt":
        return str(value)
    if kind == "Bytes":
        return list(value)
    return value
