"""What makes the model's cost follow the rows a statement names, not the table's size (key
lookups, a scope's newest-version index, set lookups for IN), and that none of it changes an
answer: each shortcut against the plain computation it replaces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import at_ms, ints, predicates, row_values, table, world

from kalamfuzz.model import Delete, Insert, Select, Succeeded, Update
from kalamfuzz.model import state as model_state
from kalamfuzz.model.rows import Intervals, Scope, Segment, Version
from kalamfuzz.model.values import ColType, compare, or3
from kalamfuzz.model.where import And, Between, Cmp, Col, InList, Lit, pinned_keys

rows_by_key = st.dictionaries(st.integers(-5, 5), row_values(), max_size=8)


def _fill(rows: dict[int, dict[str, object]]):
    m = world()
    t = table()
    if rows:
        batch = tuple({"id": k, **v} for k, v in rows.items())
        m.apply(Insert("u1", t.id, batch), Succeeded(row_count=len(batch)), at_ms(0))
    return m, t


def _scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_state, "pinned_keys", lambda *_a: None)


@given(rows=rows_by_key, where=predicates())
def test_a_read_by_key_selects_what_a_scan_selects(rows, where):
    m, t = _fill(rows)
    looked_up = m.predict(Select("u1", t.id, where=where))
    with pytest.MonkeyPatch.context() as mp:
        _scanning(mp)
        scanned = m.predict(Select("u1", t.id, where=where))
    assert looked_up == scanned


@given(rows=rows_by_key, where=predicates(), n=ints, delete=st.booleans())
def test_a_write_by_key_writes_what_a_scan_writes(rows, where, n, delete):
    m, t = _fill(rows)
    op = Delete("u1", t.id, where) if delete else Update("u1", t.id, (("n", n),), where)
    looked_up = m.run(op)
    with pytest.MonkeyPatch.context() as mp:
        _scanning(mp)
        scanned = m.run(op)
    assert [f.prediction for f in looked_up] == [f.prediction for f in scanned]
    after = [dict(f.after.scope(t.id, "u1").latest()) for f in looked_up]
    assert after == [dict(f.after.scope(t.id, "u1").latest()) for f in scanned]


kinds = st.sampled_from([ints, st.text("ab", max_size=2)])


@given(data=st.data(), negated=st.booleans())
def test_in_by_set_lookup_agrees_with_comparing_each_literal(data, negated):
    kind = data.draw(kinds)
    x = data.draw(st.one_of(st.none(), kind))
    numeric = kind is ints
    literal = st.one_of(st.none(), kind, st.just(1.0)) if numeric else st.one_of(st.none(), kind)
    values = data.draw(st.lists(literal, min_size=1, max_size=4))
    pred = InList(Col("c"), tuple(Lit(v) for v in values), negated)
    plain = False
    for v in values:
        plain = or3(plain, compare("=", x, v))
    expected = (not plain if plain is not None else None) if negated else plain
    assert pred.evaluate({"c": x}) is expected


@pytest.mark.parametrize(
    ("where", "keys"),
    [
        (Cmp("=", Col("id"), Lit(3)), [3]),
        (Cmp("=", Lit(3), Col("id")), [3]),
        (InList(Col("id"), (Lit(1), Lit(2))), [1, 2]),
        (Between(Col("id"), Lit(2), Lit(4)), [2, 3, 4]),
        (And(Cmp(">", Col("n"), Lit(1)), Cmp("=", Col("id"), Lit(7))), [7]),
        # no shortcut: any row may match, or SQL and Python equality may differ
        (InList(Col("id"), (Lit(1),), negated=True), None),
        (Between(Col("id"), Lit(2), Lit(4), negated=True), None),
        (Cmp("<", Col("id"), Lit(3)), None),
        (Cmp("=", Col("id"), Lit(3.0)), None),
        (Cmp("=", Col("id"), Lit(None)), None),
        (Cmp("=", Col("n"), Lit(3)), None),
        (Between(Col("id"), Lit(0), Lit(10**6)), None),
    ],
)
def test_pinned_keys_only_where_the_keys_are_certain(where, keys):
    assert pinned_keys(where, "id", ColType.INT) == keys


def _v(ordinal: int, key: int, deleted: bool = False) -> Version:
    return Version(ordinal, key, {"id": key}, 1, deleted)


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=12), st.integers(1, 6))
def test_a_scopes_index_after_extend_is_the_one_computed_afresh(writes, cut):
    versions = [_v(i + 1, k, d) for i, (k, d) in enumerate(writes)]
    scope = Scope()
    scope.latest()  # the index exists before the writes: extend passes it on
    for i in range(0, len(versions), cut):
        scope = scope.extend(versions[i : i + cut])
    assert dict(scope.latest()) == dict(Scope(hot=scope.hot).latest())


def test_since_finds_the_newer_versions_in_the_hot_tier_and_the_newest_segments():
    old_segment = Segment(0, (_v(1, 1), _v(2, 2)), ("id",), ({"id": 1}, {"id": 2}), 1)
    new_segment = Segment(1, (_v(3, 3), _v(5, 5)), ("id",), ({"id": 3}, {"id": 5}), 1)
    scope = Scope(hot=(_v(4, 1, deleted=True), _v(6, 6)), cold=(old_segment, new_segment))
    assert sorted(v.ordinal for v in scope.since(2)) == [3, 4, 5, 6]
    assert sorted(v.ordinal for v in scope.since(4)) == [5, 6]
    assert scope.since(6) == []


spans_put = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 8)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=12,
)


@given(puts=spans_put)
def test_statement_ranges_answer_what_one_entry_per_ordinal_did(puts):
    ranges, per_ordinal = Intervals(), {}
    for first, last in puts:
        ranges = ranges.put(first, last, (first, last))
        per_ordinal.update(dict.fromkeys(range(first, last + 1), (first, last)))
    assert {o: ranges.get(o) for o in range(-1, 45)} == {
        o: per_ordinal.get(o) for o in range(-1, 45)
    }
