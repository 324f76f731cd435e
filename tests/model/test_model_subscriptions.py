"""Expected snapshots, change shapes, paging and client reconstruction."""

from __future__ import annotations

import pytest
from strategies import NS, SERVICE, Echo, seq_for, table, world

from kalamfuzz.model import (
    AccessLevel,
    AlterAddColumn,
    ColType,
    Column,
    Delete,
    Insert,
    ModelError,
    Rejected,
    Subscribe,
    Subscribed,
    Succeeded,
    TableId,
    TableType,
    Unsubscribe,
    Update,
)
from kalamfuzz.model.ops import DropTable
from kalamfuzz.model.state import subscription_view
from kalamfuzz.model.subscriptions import ChangeType, apply_change, page_sizes
from kalamfuzz.model.where import Cmp, Col, Lit

T = TableId(NS, "t")


def row(i, n=None, s=None):
    return {"id": i, "n": n, "s": s, "f": None, "b": None}


def sub(m, sid="s1", user="u1", **kw):
    op = Subscribe(user, sid, T, **kw)
    assert m.predict(op) == Subscribed(sid)
    m.apply(op, Succeeded())
    return m.state.subs[sid]


def changes(m, sid="s1"):
    return [
        (
            c.change_type.value,
            Echo.resolve(c.rows) if c.rows else None,
            Echo.resolve(c.old_values) if c.old_values else None,
        )
        for c in m.state.subs[sid].changes
    ]


class TestSnapshot:
    def test_snapshot_is_the_filtered_scope_in_commit_order(self):
        m = world()
        m.apply(Insert("u1", T, (row(2, 5), row(1, 1))), Succeeded())
        m.apply(Insert("u2", T, (row(3, 5),)), Succeeded())
        s = sub(m, where=Cmp(">", Col("n"), Lit(2)), projection=("id", "s"))
        assert [(r.key, dict(r.values)) for r in s.snapshot] == [(2, {"id": 2, "s": None})]
        assert s.sql() == "SELECT id, s FROM app.t WHERE n > 2"

    def test_resume_snapshot_holds_only_later_rows(self):
        m = world()
        m.apply(Insert("u1", T, (row(1), row(2))), Succeeded())
        m.learn({1: seq_for(1), 2: seq_for(2)})
        m.apply(Update("u1", T, (("s", "x"),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        s = sub(m, from_seq=seq_for(2))
        assert [r.key for r in s.snapshot] == [1]
        m2 = world()
        m2.apply(Insert("u1", T, (row(1),)), Succeeded())
        with pytest.raises(ModelError):
            m2.predict(Subscribe("u1", "s", T, from_seq=5))

    def test_subscribe_errors(self):
        m = world(table(), table(TableType.SHARED, name="sh", access_level=AccessLevel.PRIVATE))
        cases = {
            Subscribe("u1", "a", TableId(NS, "zz")): "NOT_FOUND",
            Subscribe("u1", "a", TableId(NS, "sh")): "UNAUTHORIZED",
            Subscribe("u1", "a", T, projection=("id", "_seq")): "INVALID_SQL",
            Subscribe("u1", "a", T, where=Cmp("=", Col("zz"), Lit(1))): "SUBSCRIPTION_FAILED",
        }
        for op, code in cases.items():
            pred = m.predict(op)
            assert isinstance(pred, Rejected) and pred.codes == {code} and pred.status is None
        with pytest.raises(ModelError):
            m.predict(Subscribe("u1", "a", T, projection=("s",)))
        assert Subscribe("u1", "a", T, batch_size=2, from_seq=9).options() == {
            "batch_size": 2,
            "from": 9,
        }

    @pytest.mark.parametrize(
        "total,size,pages", [(0, 2, [0]), (4, 2, [2, 2]), (5, 2, [2, 2, 1]), (1, 5, [1])]
    )
    def test_page_sizes(self, total, size, pages):
        assert page_sizes(total, size) == pages


class TestChanges:
    def test_insert_update_delete_shapes(self):
        m = world()
        sub(m)
        m.apply(Insert("u1", T, (row(1, 1, "a"),)), Succeeded())
        m.apply(Update("u1", T, (("s", None), ("n", 2)), Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded())
        seq = seq_for
        assert changes(m) == [
            (
                "insert",
                {
                    "id": 1,
                    "n": 1,
                    "s": "a",
                    "f": None,
                    "b": None,
                    "_deleted": False,
                    "_seq": seq(1),
                },
                None,
            ),
            (
                "update",
                {"id": 1, "n": 2, "_seq": seq(2)},
                {"id": 1, "n": 1, "s": "a", "_seq": seq(1)},
            ),
            (
                "delete",
                None,
                {
                    "id": 1,
                    "n": 2,
                    "s": None,
                    "f": None,
                    "b": None,
                    "_deleted": True,
                    "_seq": seq(3),
                },
            ),
        ]

    def test_leaving_and_entering_the_filter(self):
        m = world()
        sub(m, where=Cmp("=", Col("s"), Lit("in")), projection=("id", "s"))
        m.apply(Insert("u1", T, (row(1, s="out"),)), Succeeded())
        m.apply(Update("u1", T, (("s", "in"),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Update("u1", T, (("n", 4),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Update("u1", T, (("s", "gone"),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Update("u1", T, (("n", 5),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded())
        assert [c[0] for c in changes(m)] == ["update", "update", "delete"]
        assert changes(m)[1] == (
            "update",
            {"id": 1, "s": "in", "_seq": seq_for(3)},
            {"id": 1, "_seq": seq_for(2)},
        )
        assert changes(m)[2] == ("delete", None, {"id": 1, "s": "in", "_seq": seq_for(4)})

    def test_leaving_star_subscription_marks_deleted(self):
        m = world()
        sub(m, where=Cmp("=", Col("n"), Lit(1)))
        m.apply(Insert("u1", T, (row(1, 1),)), Succeeded())
        m.apply(Update("u1", T, (("n", 2),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        assert changes(m)[-1][2]["_deleted"] is True

    def test_routing_by_scope_and_table_type(self):
        m = world(table(), table(TableType.SHARED, name="sh"))
        sub(m)
        shared = Subscribe("u2", "s2", TableId(NS, "sh"))
        m.apply(shared, Succeeded())
        m.apply(Insert("u2", T, (row(1),)), Succeeded())
        m.apply(Insert(SERVICE, T, (row(2),), as_user="u1"), Succeeded())
        m.apply(Insert(SERVICE, TableId(NS, "sh"), (row(3),)), Succeeded())
        assert [c[1]["id"] for c in changes(m)] == [2]
        assert [c[1]["id"] for c in changes(m, "s2")] == [3]

    def test_stream_delete_uses_row_id(self):
        from strategies import at_ms

        m = world(table(TableType.STREAM))
        m.apply(Subscribe("u1", "s1", T), Succeeded(), at=at_ms(0))
        m.apply(Subscribe("u1", "p", T, projection=("id",)), Succeeded(), at=at_ms(0))
        m.apply(Insert("u1", T, (row(1),)), Succeeded(), at=at_ms(1))
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded(), at=at_ms(2))
        assert changes(m)[-1] == ("delete", None, {"row_id": f"u1:{seq_for(1)}"})
        assert changes(m, "p")[-1] == ("delete", None, {})
        assert changes(m)[0][1]["_deleted"] is False  # a STREAM insert carries it too

    def test_ddl_and_unsubscribe_stop_predictions(self):
        m = world()
        sub(m)
        sub(m, "s2")
        sub(m, "s3")
        m.apply(Unsubscribe("s2"), Succeeded())
        m.apply(Unsubscribe("nope"), Succeeded())
        assert not m.state.subs["s2"].active
        m.apply(AlterAddColumn("root", T, Column("c", ColType.INT)), Succeeded())
        assert not m.state.subs["s1"].active
        m.apply(DropTable("root", T), Succeeded())
        assert not m.state.subs["s3"].active


class TestReconstruction:
    def test_client_rules(self):
        state = {}
        apply_change(state, "id", "insert", [{"id": 1, "a": 1, "b": 2}], [])
        apply_change(state, "id", "update", [{"id": 1, "a": 5}], [{"id": 1, "a": 1, "b": 2}])
        assert state == {1: {"id": 1, "a": 5, "b": None}}
        apply_change(state, "id", "update", [{"id": 2, "a": 1}], [])
        apply_change(state, "id", "delete", [], [{"id": 1}])
        assert state == {2: {"id": 2, "a": 1}}
        assert ChangeType("delete") is ChangeType.DELETE

    def test_a_row_updated_into_the_filter_is_complete_and_live(self):
        # The delta omits NULL columns and _deleted; a client still knows the whole row.
        state: dict = {}
        apply_change(state, "id", "update", [{"id": 8, "s": "a"}], [{"id": 8, "s": ""}])
        assert state == {8: {"id": 8, "s": "a"}}
        columns = ("id", "n", "s", "_deleted")
        apply_change(state, "id", "update", [{"id": 9, "s": "a"}], [{"id": 9}], columns=columns)
        assert state[9] == {"id": 9, "n": None, "s": "a", "_deleted": False}

    def test_view_matches_snapshot_plus_changes(self):
        m = world()
        m.apply(Insert("u1", T, (row(1, 1), row(2, 2))), Succeeded())
        s = sub(m, where=Cmp("<", Col("n"), Lit(3)))
        m.apply(Update("u1", T, (("n", 9),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Insert("u1", T, (row(3, 0),)), Succeeded())
        view = {}
        for r in s.snapshot:
            view[r.key] = Echo.resolve(r)
        for kind, rows, old in changes(m):
            apply_change(view, "id", kind, [rows] if rows else [], [old] if old else [])
        expected = {r.key: Echo.resolve(r) for r in subscription_view(m.state, m.state.subs["s1"])}
        assert view == expected and sorted(view) == [2, 3]
