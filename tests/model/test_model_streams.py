"""STREAM tables: events, hard deletes, TTL visibility windows."""

from __future__ import annotations

import pytest
from strategies import BASE_MS, NS, at_ms, seq_for, table, world

from kalamfuzz.model import (
    Delete,
    Insert,
    ModelError,
    Ok,
    Select,
    Succeeded,
    TableId,
    TableType,
    Window,
)
from kalamfuzz.model.rows import Version
from kalamfuzz.model.streams import SEQ_EPOCH_MS, Seen, make_seq, seq_ms, visibility
from kalamfuzz.model.where import Cmp, Col, Lit

T = TableId(NS, "t")
TTL_MS = 10_000


def row(i):
    return {"id": i, "n": None, "s": None, "f": None, "b": None}


def stream_world():
    return world(table(TableType.STREAM))


class TestTtlWindow:
    def test_seq_time_roundtrip(self):
        assert seq_ms(make_seq(SEQ_EPOCH_MS + 5, worker=3, counter=7)) == SEQ_EPOCH_MS + 5

    @pytest.mark.parametrize(
        "read,expected",
        [
            ((TTL_MS - 2, 1), Seen.YES),  # answered before the earliest expiry
            ((TTL_MS - 1, 1), Seen.MAYBE),
            ((TTL_MS, 0), Seen.MAYBE),
            ((TTL_MS + 5, 0), Seen.NO),  # sent after the latest expiry
            ((TTL_MS + 4, 0), Seen.MAYBE),
        ],
    )
    def test_window_brackets(self, read, expected):
        v = Version(1, 1, {}, 1, written=Window(BASE_MS, BASE_MS + 5))
        sent, width = read
        assert visibility(v, None, 10, at_ms(sent, width)) is expected

    def test_known_seq_narrows_the_window(self):
        v = Version(1, 1, {}, 1, written=Window(BASE_MS, BASE_MS + 5))
        assert visibility(v, make_seq(BASE_MS), 10, at_ms(TTL_MS + 1)) is Seen.NO
        assert visibility(v, make_seq(BASE_MS), 10, at_ms(TTL_MS - 1)) is Seen.YES

    def test_needs_a_window(self):
        with pytest.raises(ModelError):
            visibility(Version(1, 1, {}, 1), None, 10, at_ms(0))


class TestStreamStatements:
    def test_rows_expire_by_window(self):
        m = stream_world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded(), at=at_ms(0, 5))
        m.apply(Insert("u1", T, (row(2),)), Succeeded(), at=at_ms(3000, 5))
        pred = m.predict(Select("u1", T), at=at_ms(TTL_MS + 100, 10))
        assert [(r.key, r.optional) for r in pred.rows] == [(2, False)]
        pred = m.predict(Select("u1", T), at=at_ms(TTL_MS, 1))
        assert [(r.key, r.optional) for r in pred.rows] == [(1, True), (2, False)]
        assert pred.columns[-2:] == ("_seq", "_deleted")
        assert all(r.values["_deleted"] is False for r in pred.rows)
        with pytest.raises(ModelError):
            m.predict(Select("u1", T))

    def test_keys_are_not_unique(self):
        # an event log keyed by _seq: KalamDB checks no key on STREAM inserts
        m = stream_world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded(), at=at_ms(0))
        assert m.predict(Insert("u1", T, (row(1),)), at=at_ms(1)) == Ok(1)
        assert m.predict(Insert("u1", T, (row(2), row(2))), at=at_ms(1)) == Ok(2)
        m.apply(Insert("u1", T, (row(1),)), Succeeded(row_count=1), at=at_ms(1))
        assert len(m.predict(Select("u1", T), at=at_ms(2)).rows) == 2

    def test_delete_is_hard_and_counts_boundary_rows_as_a_range(self):
        m = stream_world()
        m.apply(Insert("u1", T, (row(1), row(2))), Succeeded(), at=at_ms(0, 5))
        m.apply(Insert("u1", T, (row(3),)), Succeeded(), at=at_ms(5000))
        everything = Cmp(">", Col("id"), Lit(0))
        assert m.predict(Delete("u1", T, everything), at=at_ms(TTL_MS)) == Ok(1, 3)
        assert m.predict(Delete("u1", T, everything), at=at_ms(100)) == Ok(3)
        with pytest.raises(ModelError):
            m.predict(Delete("u1", T, everything))
        m.apply(Delete("u1", T, everything), Succeeded(row_count=2), at=at_ms(TTL_MS))
        assert m.state.scope(T, "u1").hot == ()

    def test_expired_rows_are_skipped_by_delete(self):
        m = stream_world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded(), at=at_ms(0))
        m.learn({1: seq_for(1)})
        assert m.predict(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), at=at_ms(TTL_MS + 50)) == Ok(
            0
        )
