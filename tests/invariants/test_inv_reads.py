"""SELECT checks: tiers (item 2), isolation (1), STREAM TTL, duplicates (6), schema evolution (7).

Each test starts from the observation a correct server gives (which must pass) and breaks one
thing, which must be reported under the right item and only there.
"""

from __future__ import annotations

from inv_helpers import T, items, put, row, with_rows
from strategies import SERVICE, Echo, at_ms, seq_for, table, world

from kalamfuzz.invariants import QueryObservation, check_query
from kalamfuzz.model import (
    AlterAddColumn,
    AlterDropColumn,
    ColType,
    Column,
    ContractItem,
    Flush,
    JobFinished,
    JobStatus,
    Select,
    Succeeded,
    TableType,
    Update,
)
from kalamfuzz.model.where import Cmp, Col, Lit


def flushed_world():
    m = world()
    put(m, "u1", row(1, 10, "a"), row(2, 20, "b"))
    put(m, "u2", row(1, 99, "secret"))
    m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
    m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.COMPLETED))
    put(m, "u1", row(3, 30, "c"))
    return m


class TestTiers:
    def test_accepts_hot_plus_cold_result(self):
        m = flushed_world()
        op = Select("u1", T)
        verdict = check_query(m, op, Echo.query(m, op))
        assert verdict.ok and str(verdict) == "ok"
        assert verdict.learned == {1: seq_for(1), 2: seq_for(2), 4: seq_for(4)}

    def test_flags_a_lost_cold_row(self):
        m = flushed_world()
        op = Select("u1", T, ("id", "n"))
        good = Echo.query(m, op)
        verdict = check_query(m, op, with_rows(good, good.rows[1:]))
        assert items(verdict) == [ContractItem.TIERS]
        text = str(verdict.violations[0])
        assert "- missing" in text and "table app.t scope u1" in text

    def test_flags_a_wrong_value_as_a_paired_diff(self):
        m = flushed_world()
        op = Select("u1", T, ("id", "s"))
        good = Echo.query(m, op)
        bad = [good.rows[0], (2, "stale"), good.rows[2]]
        verdict = check_query(m, op, with_rows(good, bad))
        assert items(verdict) == [ContractItem.TIERS]
        assert "~ wrong      id=2: s: 'b' -> 'stale'" in verdict.violations[0].diff

    def test_flags_order_and_limit_problems(self):
        m = flushed_world()
        op = Select("u1", T, ("id", "n"), order_by=(("n", True),), limit=2)
        good = Echo.query(m, op)
        assert check_query(m, op, good).ok
        swapped = check_query(m, op, with_rows(good, good.rows[::-1]))
        assert items(swapped) == [ContractItem.TIERS]
        assert "out of ORDER BY order" in str(swapped)
        short = check_query(m, op, with_rows(good, good.rows[:1]))
        assert "LIMIT requires exactly 2" in str(short)

    def test_flags_wrong_columns_and_seq_order(self):
        m = flushed_world()
        op = Select("u1", T, ("id", "n"))
        good = Echo.query(m, op)
        renamed = QueryObservation(200, ("id", "x"), good.rows)
        assert "columns" in str(check_query(m, op, renamed))
        m.learn({1: seq_for(1)})
        star = Select("u1", T)
        obs = Echo.query(m, star)
        seq_col = obs.columns.index("_seq")
        rows = [list(r) for r in obs.rows]
        # row 3, written by a later statement than row 1, with a smaller _seq
        rows[2][seq_col] = str(seq_for(1) - 5)
        verdict = check_query(m, star, with_rows(obs, [tuple(r) for r in rows]))
        assert "_seq out of commit order" in str(verdict)

    def test_rows_of_one_statement_take_their_seq_in_any_order(self):
        # KalamDB promises no order among the rows of one INSERT (docs/contract.md)
        m = flushed_world()
        star = Select("u1", T)
        obs = Echo.query(m, star)
        seq_col = obs.columns.index("_seq")
        rows = [list(r) for r in obs.rows]
        rows[0][seq_col], rows[1][seq_col] = rows[1][seq_col], rows[0][seq_col]
        verdict = check_query(m, star, with_rows(obs, [tuple(r) for r in rows]))
        assert verdict.ok, str(verdict)
        rows[1][seq_col] = rows[0][seq_col]  # but two rows never share one
        assert "_seq out of commit order" in str(
            check_query(m, star, with_rows(obs, [tuple(r) for r in rows]))
        )

    def test_resurrected_key_after_flushed_tombstone(self):
        from kalamfuzz.model import Delete
        from kalamfuzz.model.where import Cmp, Col, Lit

        m = flushed_world()
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded(row_count=1))
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-2"))
        m.apply(JobFinished("FL-2"), Succeeded(job_status=JobStatus.COMPLETED))
        op = Select("u1", T, ("id", "s"))
        good = Echo.query(m, op)
        verdict = check_query(m, op, with_rows(good, [(1, "a"), *good.rows]))
        assert items(verdict) == [ContractItem.TIERS]

    def test_error_reply_goes_through_statement_check(self):
        m = flushed_world()
        verdict = check_query(m, Select("u1", T), QueryObservation(400, code="SQL_EXECUTION_ERROR"))
        assert items(verdict) == [ContractItem.TIERS]
        assert "refused what must succeed" in str(verdict)


class TestIsolation:
    def test_flags_another_users_row(self):
        m = flushed_world()
        op = Select("u1", T, ("id", "n", "s"))
        good = Echo.query(m, op)
        verdict = check_query(m, op, with_rows(good, [*good.rows, (1, "99", "secret")]))
        assert items(verdict) == [ContractItem.ISOLATION]
        assert "u2's row" in str(verdict)

    def test_a_stale_own_row_that_looks_like_a_neighbours_is_a_tier_fault(self):
        # u1's old version of row 1 equals u2's row: serving it is a wrong read, not a leak.
        m = flushed_world()
        put(m, "u2", row(5, 50, "x"))
        put(m, "u1", row(5, 50, "x"))
        m.apply(Update("u1", T, (("n", 51),), Cmp("=", Col("id"), Lit(5))), Succeeded())
        op = Select("u1", T, ("id", "n", "s"))
        good = Echo.query(m, op)
        stale = [r if r[0] != 5 else (5, "50", "x") for r in good.rows]
        assert items(check_query(m, op, with_rows(good, stale))) == [ContractItem.TIERS]

    def test_an_own_row_read_wrong_is_no_leak_though_it_looks_like_a_neighbours(self):
        # u1's row 5 comes back with u2's values (a re-added column carrying dropped values):
        # by values alone it is u2's row, but u1's own row 5 is what the answer lacks.
        m = flushed_world()
        put(m, "u2", row(5, 50, "x"))
        put(m, "u1", row(5, 51, "y"))
        op = Select("u1", T, ("id", "n", "s"))
        good = Echo.query(m, op)
        wrong = [r if r[0] != 5 else (5, "50", "x") for r in good.rows]
        assert items(check_query(m, op, with_rows(good, wrong))) == [ContractItem.TIERS]
        # as an extra row beside u1's own, the same values are u2's row
        extra = check_query(m, op, with_rows(good, [*good.rows, (5, "50", "x")]))
        assert ContractItem.ISOLATION in items(extra)

    def test_execute_as_reads_the_target_scope(self):
        m = flushed_world()
        put(m, SERVICE, row(7), as_user="u2")
        op = Select(SERVICE, T, ("id",), as_user="u2")
        good = Echo.query(m, op)
        assert sorted(r[0] for r in good.rows) == [1, 7]
        assert check_query(m, op, good).ok
        leaked = check_query(m, Select(SERVICE, T, ("id",)), with_rows(good, [(7,)]))
        assert items(leaked) == [ContractItem.ISOLATION]


class TestStreamTtl:
    def test_flags_rows_past_ttl_but_not_boundary_rows(self):
        m = world(table(TableType.STREAM))
        put(m, "u1", row(1, s="old"), at=at_ms(0, 2))
        put(m, "u1", row(2, s="new"), at=at_ms(8000, 2))
        op = Select("u1", T, ("id", "s"))
        late = at_ms(10_100, 5)
        good = Echo.query(m, op, late)
        assert good.rows == ((2, "new"),)
        assert check_query(m, op, good, late).ok
        verdict = check_query(m, op, with_rows(good, [(1, "old"), *good.rows]), late)
        assert items(verdict) == [ContractItem.STREAM_TTL]
        boundary = at_ms(9_999, 5)
        assert check_query(m, op, with_rows(good, [(1, "old"), *good.rows]), boundary).ok
        assert check_query(m, op, good, boundary).ok


class TestDuplicates:
    def test_flags_a_key_returned_twice(self):
        m = flushed_world()
        op = Select("u1", T, ("id", "s"))
        good = Echo.query(m, op)
        verdict = check_query(m, op, with_rows(good, [*good.rows, (1, "a")]))
        assert items(verdict) == [ContractItem.IDEMPOTENCY]
        assert "returned more than once" in str(verdict)
        dup_stale = check_query(m, op, with_rows(good, [*good.rows, (1, "older")]))
        assert items(dup_stale) == [ContractItem.IDEMPOTENCY]


class TestSchemaEvolution:
    def test_added_column_reads_null_for_old_rows_hot_and_cold(self):
        # KalamDB applies a DEFAULT to new rows only (smoke_test_alter_with_data.rs)
        m = flushed_world()
        m.apply(AlterAddColumn("root", T, Column("c", ColType.INT, default=7)), Succeeded())
        op = Select("u1", T, ("id", "c"))
        good = Echo.query(m, op)
        assert {r[1] for r in good.rows} == {None}
        assert check_query(m, op, good).ok
        bad = [(good.rows[0][0], 7), *good.rows[1:]]
        verdict = check_query(m, op, with_rows(good, bad))
        assert items(verdict) == [ContractItem.SCHEMA_EVOLUTION]
        assert "c: None -> 7" in str(verdict)

    def test_a_column_added_again_must_not_show_the_dropped_values(self):
        m = flushed_world()
        m.apply(AlterDropColumn("root", T, "n"), Succeeded())
        m.apply(AlterAddColumn("root", T, Column("n", ColType.INT)), Succeeded())
        op = Select("u1", T, ("id", "n"))
        good = Echo.query(m, op)
        old = [(r[0], 10 * r[0]) for r in good.rows]  # the values n had before the DROP
        verdict = check_query(m, op, with_rows(good, old))
        assert "a column added again shows the dropped column's old values" in str(verdict)

    def test_dropped_column_must_vanish_and_fail_when_named(self):
        m = flushed_world()
        m.apply(AlterDropColumn("root", T, "s"), Succeeded())
        star = Select("u1", T)
        good = Echo.query(m, star)
        assert "s" not in good.columns and check_query(m, star, good).ok
        named = Select("root", T, ("id", "s"))
        refused = QueryObservation(400, code="SQL_EXECUTION_ERROR", message="No field named s")
        assert check_query(m, named, refused).ok
        served = check_query(m, named, QueryObservation(200, ("id", "s"), ((1, "a"),)))
        assert items(served) == [ContractItem.SCHEMA_EVOLUTION]
        unclear = check_query(
            m, named, QueryObservation(400, code="SQL_EXECUTION_ERROR", message="bad")
        )
        assert "unclear error" in str(unclear)
