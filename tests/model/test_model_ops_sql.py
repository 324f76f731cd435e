"""The SQL text of every operation: what the adapters send is what the model reasons about."""

from __future__ import annotations

import pytest
from strategies import NS, table, world

from kalamfuzz.model import (
    AlterAddColumn,
    AlterDropColumn,
    ColType,
    Column,
    CreateNamespace,
    CreateStorage,
    CreateTable,
    CreateUser,
    Delete,
    DropTable,
    Flush,
    Insert,
    Role,
    Select,
    Subscribe,
    Succeeded,
    TableId,
    TableType,
    Update,
)
from kalamfuzz.model.outcomes import Rejected
from kalamfuzz.model.where import Cmp, Col, Lit

T = TableId(NS, "t")
W = Cmp("=", Col("id"), Lit(1))


@pytest.mark.parametrize(
    "op,sql",
    [
        (CreateNamespace("root", "app"), "CREATE NAMESPACE app"),
        (
            CreateUser("root", "u1", Role.SERVICE, "pw-123456"),
            "CREATE USER u1 WITH PASSWORD 'pw-123456' ROLE service",
        ),
        (
            CreateStorage("root", "arch", "/a"),
            "CREATE STORAGE arch TYPE 'filesystem' BASE_DIRECTORY '/a' SHARED_TABLES_TEMPLATE"
            " '{namespace}/{tableName}' USER_TABLES_TEMPLATE '{namespace}/{tableName}/{userId}'",
        ),
        (DropTable("root", T), "DROP TABLE app.t"),
        (
            AlterAddColumn("u1", T, Column("c", ColType.TIMESTAMP, default=5)),
            "ALTER TABLE app.t ADD COLUMN c TIMESTAMP DEFAULT to_timestamp_micros(5)",
        ),
        (AlterDropColumn("u1", T, "c"), "ALTER TABLE app.t DROP COLUMN c"),
        (
            Insert("u1", T, ({"id": 1, "s": "it's"}, {"id": 2})),
            "INSERT INTO app.t (id, s) VALUES (1, 'it''s'), (2, NULL)",
        ),
        (
            Insert("svc", T, ({"id": 1},), as_user="o'k"),
            "EXECUTE AS USER 'o''k' (INSERT INTO app.t (id) VALUES (1))",
        ),
        (
            Update("u1", T, (("s", None), ("b", True)), W),
            "UPDATE app.t SET s = NULL, b = TRUE WHERE id = 1",
        ),
        (Delete("u1", T, W, as_user="u2"), "EXECUTE AS USER 'u2' (DELETE FROM app.t WHERE id = 1)"),
        (Select("u1", T), "SELECT * FROM app.t"),
        (
            Select("u1", T, ("id", "n"), W, (("n", True), ("id", False)), 5),
            "SELECT id, n FROM app.t WHERE id = 1 ORDER BY n DESC, id ASC LIMIT 5",
        ),
        (Flush("svc", T), "STORAGE FLUSH TABLE app.t"),
        (Subscribe("u1", "s", T, ("id",), W), "SELECT id FROM app.t WHERE id = 1"),
        (Subscribe("u1", "s", T), "SELECT * FROM app.t"),
    ],
)
def test_sql(op, sql):
    assert op.to_sql() == sql


def test_create_table_sql_and_empty_insert():
    t = table(TableType.STREAM)
    assert CreateTable("root", t).to_sql() == (
        "CREATE TABLE app.t (id INT PRIMARY KEY, n BIGINT, s TEXT, f DOUBLE, b BOOLEAN)"
        " WITH (TYPE = 'STREAM', STORAGE_ID = 'local', TTL_SECONDS = 10)"
    )
    assert Insert("u1", T, ()).to_sql() == "INSERT INTO app.t () VALUES "


def test_visible_rows_of_a_scope():
    from strategies import at_ms, seq_for

    m = world(table(), table(TableType.STREAM, name="st"))
    m.apply(Insert("u1", T, ({"id": 1},)), Succeeded())
    m.learn({1: seq_for(1)})
    m.apply(Insert("u1", TableId(NS, "st"), ({"id": 2},)), Succeeded(), at=at_ms(0))
    assert m.state.visible_rows(T, "u1") == [
        {"id": 1, "n": None, "s": None, "f": None, "b": None, "_deleted": False, "_seq": seq_for(1)}
    ]
    assert [r["id"] for r in m.state.visible_rows(TableId(NS, "st"), "u1")] == [2]
    assert isinstance(m.predict(Delete("u1", TableId(NS, "zz"), W)), Rejected)
    assert isinstance(m.predict(Insert("u1", TableId(NS, "zz"), ())), Rejected)
    assert isinstance(
        m.predict(AlterAddColumn("u1", TableId(NS, "zz"), Column("c", ColType.INT))), Rejected
    )
