"""Row semantics: versions, tombstones, PK uniqueness, EXECUTE AS USER, SELECT shape and limits."""

from __future__ import annotations

import pytest
from strategies import NS, SERVICE, Echo, seq_for, table, world

from kalamfuzz.invariants.coerce import outcome
from kalamfuzz.model import (
    AccessLevel,
    ColType,
    Column,
    ContractItem,
    Delete,
    Insert,
    ModelError,
    Ok,
    QueryResult,
    Rejected,
    Role,
    Select,
    Succeeded,
    TableId,
    TableType,
    Update,
)
from kalamfuzz.model.exprs import Arith, Neg
from kalamfuzz.model.ops import AlterAddColumn, AlterDropColumn, CreateUser
from kalamfuzz.model.rows import SeqBook, Window
from kalamfuzz.model.state import DEFAULT_QUERY_LIMIT
from kalamfuzz.model.where import Cmp, Col, Lit

T = TableId(NS, "t")


def row(i: int, **kw: object) -> dict[str, object]:
    return {"id": i, "n": kw.get("n"), "s": kw.get("s"), "f": kw.get("f"), "b": kw.get("b")}


def rows_of(m, op):
    pred = m.predict(op)
    assert isinstance(pred, QueryResult), pred
    return [dict(r.values) for r in pred.rows]


def insert(m, actor, *ids, as_user=None, **kw):
    op = Insert(actor, T, tuple(row(i, **kw) for i in ids), as_user=as_user)
    m.apply(op, Succeeded(row_count=len(ids)))
    return op


class TestInsert:
    def test_duplicate_key_rejected_until_deleted(self):
        m = world()
        insert(m, "u1", 1)
        dup = m.predict(Insert("u1", T, (row(1),)))
        assert isinstance(dup, Rejected) and dup.item is ContractItem.IDEMPOTENCY
        assert dup.message_contains == ("Primary key violation",)
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded(row_count=1))
        assert m.predict(Insert("u1", T, (row(1),))) == Ok(row_count=1)

    def test_keys_are_per_scope(self):
        m = world()
        insert(m, "u1", 1)
        assert m.predict(Insert("u2", T, (row(1),))) == Ok(row_count=1)

    def test_key_twice_in_one_statement_writes_nothing(self):
        m = world()
        op = Insert("u1", T, (row(1), row(1)))
        assert isinstance(m.predict(op), Rejected)
        m.apply(op, Succeeded(row_count=2))  # the server wrongly accepted: the model stays put
        assert rows_of(m, Select("u1", T)) == []

    def test_defaults_and_not_null(self):
        cols = (
            Column("id", ColType.INT, nullable=False, primary_key=True),
            Column("c", ColType.TEXT, nullable=False, default="d"),
            Column("n", ColType.INT, nullable=False),
        )
        from kalamfuzz.model import CreateTable, Table

        m = world()
        m.apply(CreateTable("root", Table(TableId(NS, "d"), TableType.USER, cols)), Succeeded())
        d = TableId(NS, "d")
        assert isinstance(m.predict(Insert("u1", d, ({"id": 1},))), Rejected)
        m.apply(Insert("u1", d, ({"id": 1, "n": 2},)), Succeeded())
        assert rows_of(m, Select("u1", d, ("c",))) == [{"c": "d"}]
        with pytest.raises(ModelError):
            m.predict(Insert("u1", d, ({"id": "x", "n": 1},)))

    def test_unknown_and_dropped_columns(self):
        m = world()
        pred = m.predict(Insert("u1", T, ({"id": 1, "zz": 1},)))
        assert isinstance(pred, Rejected) and pred.item is ContractItem.SCHEMA_EVOLUTION
        assert pred.message_contains == ("zz",) and pred.kept  # shown to every caller
        m.apply(AlterDropColumn("root", T, "s"), Succeeded())
        pred = m.predict(Insert("root", T, ({"id": 1, "s": "x"},)))
        assert isinstance(pred, Rejected) and pred.message_contains == ("s",)
        assert "dropped" in pred.reason

    def test_shared_writes_need_the_role(self):
        m = world(table(TableType.SHARED, access_level=AccessLevel.PUBLIC))
        pred = m.predict(Insert("u1", T, (row(1),)))
        assert isinstance(pred, Rejected) and pred.codes == {"PERMISSION_DENIED"}
        assert m.predict(Insert(SERVICE, T, (row(1),))) == Ok(row_count=1)
        assert m.predict(Select("u1", T)) == m.predict(Select(SERVICE, T))


class TestExecuteAs:
    def test_service_writes_into_target_scope_only(self):
        m = world()
        insert(m, SERVICE, 1, as_user="u1")
        assert [r["id"] for r in rows_of(m, Select("u1", T))] == [1]
        assert rows_of(m, Select(SERVICE, T)) == []
        assert rows_of(m, Select("u2", T)) == []
        assert [r["id"] for r in rows_of(m, Select(SERVICE, T, as_user="u1"))] == [1]

    def test_user_cannot_impersonate_and_shared_refuses(self):
        m = world(table(), table(TableType.SHARED, name="sh"))
        pred = m.predict(Insert("u1", T, (row(1),), as_user="u2"))
        assert isinstance(pred, Rejected) and pred.item is ContractItem.RBAC and pred.status == 403
        assert m.predict(Insert("u1", T, (row(1),), as_user="u1")) == Ok(row_count=1)
        pred = m.predict(Insert("root", TableId(NS, "sh"), (row(1),), as_user="u1"))
        assert isinstance(pred, Rejected) and pred.status == 400

    def test_service_cannot_impersonate_dba(self):
        m = world()
        m.apply(CreateUser("root", "boss", Role.DBA), Succeeded())
        assert isinstance(m.predict(Delete(SERVICE, T, None, as_user="boss")), Rejected)


class TestUpdateDelete:
    def test_update_writes_versions_and_counts_changes_only(self):
        m = world()
        insert(m, "u1", 1, 2, s="a")
        upd = Update("u1", T, (("s", "a"),), Cmp(">=", Col("id"), Lit(1)))
        assert m.predict(upd) == Ok(row_count=0)
        upd = Update("u1", T, (("s", "b"),), Cmp("=", Col("id"), Lit(2)))
        assert m.predict(upd) == Ok(row_count=1)
        m.apply(upd, Succeeded(row_count=1))
        assert {r["id"]: r["s"] for r in rows_of(m, Select("u1", T))} == {1: "a", 2: "b"}
        assert m.state.clock == 3

    def test_integer_arithmetic_wraps_like_datafusion_and_an_int_out_of_range_is_refused(self):
        m = world()
        insert(m, "u1", 1, n=2**63 - 1)
        one = Cmp("=", Col("id"), Lit(1))
        upd = Update("u1", T, (("n", Arith("+", Col("n"), Lit(1))),), one)
        m.apply(upd, Succeeded(row_count=1))
        assert [r["n"] for r in rows_of(m, Select("u1", T))] == [-(2**63)]
        m.apply(Update("u1", T, (("n", Neg(Col("n"))),), one), Succeeded(row_count=1))
        assert [r["n"] for r in rows_of(m, Select("u1", T))] == [-(2**63)]
        m.apply(AlterAddColumn("root", T, Column("k", ColType.INT)), Succeeded())
        m.apply(Update("u1", T, (("k", 2**31 - 1),), one), Succeeded(row_count=1))
        pred = m.predict(Update("u1", T, (("k", Arith("+", Col("k"), Lit(1))),), one))
        assert isinstance(pred, Rejected) and pred.status == 400

    def test_update_errors(self):
        m = world(table(), table(TableType.STREAM, name="st"))
        where = Cmp("=", Col("id"), Lit(1))
        for op in (
            Update("u1", T, (("id", 5),), where),
            Update("u1", T, (("s", "x"),), None),
            Update("u1", T, (("zz", 1),), where),
            Update("u1", TableId(NS, "st"), (("s", "x"),), where),
            Update("u1", TableId(NS, "nope"), (("s", "x"),), where),
            Delete("u1", T, None),
        ):
            assert isinstance(m.predict(op), Rejected), op
        m2 = world(table(name="t"))
        m2.apply(
            AlterAddColumn("root", T, Column("k", ColType.INT, nullable=False, default=1)),
            Succeeded(),
        )
        assert isinstance(m2.predict(Update("u1", T, (("k", None),), where)), Rejected)
        with pytest.raises(ModelError):
            m2.predict(Update("u1", T, (("k", "x"),), where))

    def test_delete_hides_and_deleted_filter_shows_tombstones(self):
        m = world()
        insert(m, "u1", 1, 2)
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded(row_count=1))
        assert [r["id"] for r in rows_of(m, Select("u1", T))] == [2]
        gone = rows_of(m, Select("u1", T, where=Cmp("=", Col("_deleted"), Lit(True))))
        assert [(r["id"], r["_deleted"]) for r in gone] == [(1, True)]
        assert m.predict(Delete("u1", T, Cmp("=", Col("id"), Lit(1)))) == Ok(row_count=0)


class TestSelect:
    def test_projection_seq_and_key_column(self):
        m = world()
        insert(m, "u1", 1, n=4)
        pred = m.predict(Select("u1", T, ("n", "_seq")))
        assert pred.columns == ("n", "_seq") and pred.key_column is None
        assert pred.rows[0].seq_of == 1
        pred = m.predict(Select("u1", T, ("id",)))
        assert pred.rows[0].seq_of is None and pred.key_column == "id"

    def test_default_limit_truncates_to_any_rows(self):
        m = world()
        insert(m, "u1", *range(DEFAULT_QUERY_LIMIT + 2))
        pred = m.predict(Select("u1", T))
        assert pred.count == DEFAULT_QUERY_LIMIT and all(r.optional for r in pred.rows)

    def test_order_by_with_ties_at_the_cut(self):
        m = world()
        insert(m, "u1", 1, n=3)
        insert(m, "u1", 2, n=1)
        insert(m, "u1", 3, n=1)
        insert(m, "u1", 4, n=None)
        pred = m.predict(Select("u1", T, ("id", "n"), order_by=(("n", False),), limit=1))
        assert pred.count == 1 and {r.key for r in pred.rows} == {2, 3}
        assert all(r.optional for r in pred.rows)
        pred = m.predict(Select("u1", T, ("id",), order_by=(("n", True), ("id", False)), limit=3))
        assert [r.key for r in pred.rows] == [4, 1, 2]
        assert [r.optional for r in pred.rows] == [False, False, False]
        pred = m.predict(Select("u1", T, ("id",), order_by=(("_seq", True),)))
        assert [r.key for r in pred.rows] == [4, 3, 2, 1]

    def test_where_on_seq_needs_known_seqs(self):
        m = world()
        insert(m, "u1", 1)
        op = Select("u1", T, where=Cmp(">", Col("_seq"), Lit(0)))
        with pytest.raises(ModelError):
            m.predict(op)
        m.learn({1: seq_for(1)})
        assert len(m.predict(op).rows) == 1

    def test_private_shared_read_denied_to_users(self):
        m = world(table(TableType.SHARED, access_level=AccessLevel.PRIVATE))
        assert isinstance(m.predict(Select("u1", T)), Rejected)
        assert isinstance(m.predict(Select("root", T, ("zz",))), Rejected)
        assert isinstance(m.predict(Select("u1", T, as_user="u2")), Rejected)

    def test_learning_seqs_from_a_read(self):
        m = world()
        insert(m, "u1", 1, 2)
        obs = Echo.query(m, Select("u1", T))
        m.apply(Select("u1", T), outcome(obs, m.state.catalog.table(T)))
        assert m.state.seqs.get(1) == seq_for(1) and m.state.seqs.get(2) == seq_for(2)


class TestSeqBook:
    def test_conflicts_and_order_inference(self):
        book = SeqBook().bind(5, 500).bind(1, 100)
        assert book.bind(5, 999) is book
        assert book.conflict(5, 500) is None
        assert "already has" in book.conflict(5, 501)
        assert "not after" in book.conflict(6, 400)
        assert "not before" in book.conflict(3, 600)
        assert book.conflict(3, 300) is None
        assert book.after(3, 99) is True and book.after(3, 500) is False
        assert book.after(3, 300) is None and book.after(5, 400) is True

    def test_window_must_not_run_backwards(self):
        with pytest.raises(ModelError):
            Window(5, 4)
