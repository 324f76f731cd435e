"""Cell conversion and schema parsing (HTTP_SQL.md §1.4, WEBSOCKET.md §4)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from kalamfuzz.adapters.values import (
    convert_positional,
    convert_row,
    convert_value,
    parse_schema,
    redact_sql,
)
from kalamfuzz.errors import KalamError, ProtocolError


def test_bigint_strings_become_ints_beyond_float_precision() -> None:
    big = "7199571542380306432"
    assert convert_value("BigInt", big) == 7199571542380306432


def test_bigint_as_json_number_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="JSON string"):
        convert_value("BigInt", 5, column="n")


def test_timestamp_microseconds_to_aware_utc_datetime() -> None:
    v = convert_value("Timestamp", 1_700_000_000_123_456)
    assert v == dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.UTC)
    assert convert_value("DateTime", 0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("data_type", "raw", "expected"),
    [
        ("Boolean", True, True),
        ("Int", 7, 7),
        ("SmallInt", -3, -3),
        ("Double", 1, 1.0),
        ("Float", 2.5, 2.5),
        ("Text", "x", "x"),
        ("Json", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("Json", "not json", "not json"),
        ("Bytes", [0, 255, 16], b"\x00\xff\x10"),
        (
            "Uuid",
            "0190b5a2-0000-7000-8000-000000000001",
            uuid.UUID("0190b5a2-0000-7000-8000-000000000001"),
        ),
        ("Decimal", "200.75", decimal.Decimal("200.75")),
        ("Date", 1, dt.date(1970, 1, 2)),
        ("Time", 3_600_000_001, dt.time(1, 0, 0, 1)),
        ("Embedding", [1, 2.5], [1.0, 2.5]),
        ("Text", None, None),
        ("SomethingNew", {"k": 1}, {"k": 1}),
    ],
)
def test_convert_value(data_type: str, raw: object, expected: object) -> None:
    assert convert_value(data_type, raw) == expected


@pytest.mark.parametrize(
    ("data_type", "raw"),
    [("Int", "1"), ("Boolean", 1), ("Text", 3), ("Timestamp", "12"), ("Bytes", "AAE=")],
)
def test_wrong_json_types_are_protocol_errors(data_type: str, raw: object) -> None:
    with pytest.raises(ProtocolError):
        convert_value(data_type, raw)


def test_bad_uuid_is_one_line_protocol_error() -> None:
    with pytest.raises(ProtocolError) as info:
        convert_value("Uuid", "nope", column="u")
    assert "'u'" in str(info.value) and "\n" not in str(info.value)


def test_parse_schema_sorts_by_index_and_reads_flags_and_object_types() -> None:
    cols = parse_schema(
        [
            {"name": "price", "data_type": {"Decimal": {"precision": 10, "scale": 2}}, "index": 2},
            {"name": "id", "data_type": "BigInt", "index": 0, "flags": ["nn", "pk", "uq"]},
            {"name": "vec", "data_type": {"Embedding": 384}, "index": 1},
        ]
    )
    assert [c.name for c in cols] == ["id", "vec", "price"]
    assert cols[0].is_pk and cols[0].not_null
    assert cols[1].data_type == "Embedding" and cols[1].type_args == (384,)
    assert cols[2].data_type == "Decimal" and cols[2].type_args == (10, 2)
    assert parse_schema(None) == ()


def test_parse_schema_rejects_garbage() -> None:
    with pytest.raises(ProtocolError):
        parse_schema({"name": "x"})
    with pytest.raises(ProtocolError):
        parse_schema([{"data_type": "Int"}])


def test_convert_positional_checks_width() -> None:
    cols = parse_schema([{"name": "a", "data_type": "Int", "index": 0}])
    assert convert_positional(cols, [1]) == (1,)
    with pytest.raises(ProtocolError, match="1 columns"):
        convert_positional(cols, [1, 2])


def test_convert_row_treats_seq_as_bigint_even_without_schema() -> None:
    row = convert_row({"id": 1, "_seq": "99", "_deleted": False}, {"id": "Int"})
    assert row == {"id": 1, "_seq": 99, "_deleted": False}


def test_redact_sql_hides_passwords() -> None:
    s = redact_sql("CREATE USER bob WITH PASSWORD 'it''s secret' ROLE user")
    assert "secret" not in s and "PASSWORD '***'" in s
    assert redact_sql("ALTER USER bob SET PASSWORD 'x1234567'").endswith("PASSWORD '***'")


def test_kalam_error_is_one_line_and_carries_fields() -> None:
    err = KalamError(
        "Statement 1 failed:\n  boom", status=400, code="SQL_EXECUTION_ERROR", statement="SELECT\n1"
    )
    text = str(err)
    assert "\n" not in text
    assert text.startswith("[400 SQL_EXECUTION_ERROR] Statement 1 failed: boom")
    assert "(statement: SELECT 1)" in text
    assert (err.status, err.code, err.statement) == (400, "SQL_EXECUTION_ERROR", "SELECT\n1")
