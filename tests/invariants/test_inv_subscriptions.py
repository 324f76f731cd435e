"""Item 4: ACK, snapshot pages, exactly-once per-row-ordered changes, resume, reconstruction."""

from __future__ import annotations

from attrs import evolve
from inv_helpers import T, items, put, row
from strategies import NS, SERVICE, Echo, at_ms, seq_for, table, world

from kalamfuzz.invariants import (
    Change,
    SubscriptionObservation,
    check_subscribe,
    check_subscription,
)
from kalamfuzz.invariants.subscriptions import reconstruct
from kalamfuzz.model import (
    AccessLevel,
    AlterAddColumn,
    AlterDropColumn,
    ColType,
    Column,
    ContractItem,
    Delete,
    Subscribe,
    Succeeded,
    TableId,
    TableType,
    Unsubscribe,
    Update,
)
from kalamfuzz.model.where import Cmp, Col, Lit

IN = Cmp("=", Col("s"), Lit("in"))


def live_world(batch_size=2, where=None, projection=None):
    m = world()
    put(m, "u1", row(1, s="in"), row(2, s="in"), row(3, s="in"), row(4, s="out"))
    put(m, "u2", row(9, s="in"))
    op = Subscribe("u1", "s1", T, projection, where, batch_size)
    m.apply(op, Succeeded())
    put(m, "u1", row(5, s="in"))
    m.apply(Update("u1", T, (("n", 7),), Cmp("=", Col("id"), Lit(1))), Succeeded())
    m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(2))), Succeeded())
    return m, op


def obs_of(m):
    return Echo.subscription(m.state, "s1")


def check(m, obs):
    return check_subscription(m, "s1", obs)


class TestAccepts:
    def test_correct_stream_passes_and_teaches_seqs(self):
        m, op = live_world(where=IN)
        obs = obs_of(m)
        assert [len(b.rows) for b in obs.batches] == [2, 1]
        verdict = check_subscribe(m, op, obs)
        assert verdict.ok and verdict.learned[1] == seq_for(1)
        assert check(m, obs).ok

    def test_unsettled_stream_may_be_a_prefix(self):
        m, _ = live_world()
        obs = obs_of(m)
        partial = evolve(obs, changes=obs.changes[:1], quiescent=False)
        assert check(m, partial).ok
        assert not check(m, evolve(partial, quiescent=True)).ok

    def test_stops_predicting_after_unsubscribe(self):
        m, _ = live_world()
        obs = obs_of(m)
        m.apply(Unsubscribe("s1"), Succeeded())
        extra = Change("insert", ({"id": 77},), index=99)
        assert check(m, evolve(obs, changes=(*obs.changes, extra))).ok

    def test_unknown_subscription_is_not_judged(self):
        m, _ = live_world()
        assert check_subscription(m, "nope", obs_of(m)).ok


class TestSnapshot:
    def test_no_ack(self):
        m, _ = live_world()
        verdict = check(m, SubscriptionObservation("s1", acked=False))
        assert items(verdict) == [ContractItem.SUBSCRIPTIONS] and "no subscription_ack" in str(
            verdict
        )

    def test_page_shape_problems(self):
        m, _ = live_world(batch_size=2)
        obs = obs_of(m)
        b0, b1 = obs.batches
        merged = evolve(b0, rows=b0.rows + b1.rows[:1], has_more=False, status="ready")
        text = str(check(m, evolve(obs, batches=(merged,))))
        assert "exceed batch_size" in text
        short = evolve(b0, rows=b0.rows[:1])
        assert "non-final page" in str(check(m, evolve(obs, batches=(short, b1))))
        wrong = evolve(b1, status="loading_batch", batch_num=3)
        text = str(check(m, evolve(obs, batches=(b0, wrong))))
        assert "batch_num 3" in text and "status 'loading_batch'" in text
        early_end = evolve(b0, has_more=False, status="ready")
        assert "has_more false before the last page" in str(
            check(m, evolve(obs, batches=(early_end, b1)))
        )
        empty_tail = evolve(b1, rows=(), batch_num=2, index=2)
        three = (
            b0,
            evolve(b1, has_more=True, status="loading_batch", rows=(*b1.rows, b0.rows[0])),
            empty_tail,
        )
        assert "empty final page" in str(check(m, evolve(obs, batches=three)))
        assert "never reached status 'ready'" in str(check(m, evolve(obs, batches=(b0,))))

    def test_snapshot_rows(self):
        m, _ = live_world(batch_size=10)
        obs = obs_of(m)
        page = obs.batches[0]
        lost = evolve(page, rows=page.rows[1:])
        assert "snapshot differs" in str(check(m, evolve(obs, batches=(lost,))))
        swapped = evolve(page, rows=page.rows[::-1])
        assert "not ordered by _seq" in str(check(m, evolve(obs, batches=(swapped,))))
        foreign = {**page.rows[0], "id": 9, "_seq": seq_for(5)}
        leak = evolve(page, rows=(*page.rows, foreign))
        assert ContractItem.ISOLATION in items(check(m, evolve(obs, batches=(leak,))))

    def test_resume_without_replay(self):
        m, _ = live_world()
        m.learn({i: seq_for(i) for i in range(1, 10)})
        op = Subscribe("u1", "r1", T, None, None, 10, from_seq=seq_for(5))
        m.apply(op, Succeeded())
        obs = Echo.subscription(m.state, "r1")
        assert sorted(r["id"] for r in obs.batches[0].rows) == [1, 5]
        assert check_subscription(m, "r1", obs).ok
        old = {**obs.batches[0].rows[0], "id": 3, "_seq": seq_for(3), "s": "in", "n": None}
        replay = evolve(obs.batches[0], rows=(old, *obs.batches[0].rows))
        verdict = check_subscription(m, "r1", evolve(obs, batches=(replay,)))
        assert "replayed older rows" in str(verdict)


class TestAfterAlter:
    def test_rows_sent_before_a_column_changed_type_read_as_sent(self):
        m = world()
        put(m, "u1", row(1, n=5))
        m.apply(Subscribe("u1", "s1", T, None, None, 10), Succeeded())
        echo = obs_of(m)
        # BIGINT travels as a string (WEBSOCKET.md §4)
        wire = tuple(
            evolve(b, rows=tuple({**r, "n": str(r["n"])} for r in b.rows)) for b in echo.batches
        )
        obs = evolve(echo, batches=wire)
        assert check(m, obs).ok
        m.apply(AlterDropColumn("root", T, "n"), Succeeded())
        m.apply(AlterAddColumn("root", T, Column("n", ColType.TEXT)), Succeeded())
        assert check(m, obs).ok  # "5" is still the BIGINT 5 it was sent as, not TEXT


class TestChanges:
    def test_lost_duplicated_and_reordered(self):
        m, _ = live_world()
        obs = obs_of(m)
        ins, upd, dele = obs.changes
        assert "never arrived" in str(check(m, evolve(obs, changes=(ins, dele))))
        assert "delivered twice" in str(check(m, evolve(obs, changes=(ins, upd, upd, dele))))
        upd2 = Update("u1", T, (("n", 8),), Cmp("=", Col("id"), Lit(1)))
        m.apply(upd2, Succeeded())
        obs = obs_of(m)
        ins, u1, dele, u2 = obs.changes
        verdict = check(m, evolve(obs, changes=(ins, u2, dele, u1)))
        assert "out-of-order change for key 1" in str(verdict)

    def test_changes_of_different_keys_keep_commit_order(self):
        # One scope, one order (WEBSOCKET.md §3.3): held changes sent newest first break it.
        m, _ = live_world()
        obs = obs_of(m)
        ins, upd, dele = obs.changes
        verdict = check(m, evolve(obs, changes=(upd, ins, dele)))
        assert "out of commit order" in str(verdict)
        assert items(verdict) == [ContractItem.SUBSCRIPTIONS]

    def test_rows_of_one_statement_may_come_in_any_order(self):
        m, _ = live_world()
        put(m, "u1", row(6, s="in"), row(7, s="in"))
        obs = obs_of(m)
        *rest, six, seven = obs.changes
        assert check(m, evolve(obs, changes=(*rest, seven, six))).ok

    def test_change_before_ready(self):
        m, _ = live_world()
        obs = obs_of(m)
        early = evolve(obs.changes[0], index=0)
        verdict = check(m, evolve(obs, changes=(early, *obs.changes[1:])))
        assert "before the 'ready' page" in str(verdict)

    def test_non_matching_and_foreign_changes(self):
        m, _ = live_world(where=IN)
        obs = obs_of(m)
        stranger = Change(
            "insert",
            (
                {
                    "id": 4,
                    "s": "out",
                    "n": None,
                    "f": None,
                    "b": None,
                    "_deleted": False,
                    "_seq": "1",
                },
            ),
            index=50,
        )
        verdict = check(m, evolve(obs, changes=(*obs.changes, stranger)))
        assert "does not match the subscription" in str(verdict)
        foreign = Change(
            "insert",
            ({"id": 9, "s": "in", "n": None, "f": None, "b": None, "_deleted": False},),
            index=51,
        )
        assert items(check(m, evolve(obs, changes=(*obs.changes, foreign)))) == [
            ContractItem.ISOLATION
        ]

    def test_update_leaving_the_filter_must_be_sent(self):
        m, _ = live_world(where=IN)
        m.apply(Update("u1", T, (("s", "out"),), Cmp("=", Col("id"), Lit(3))), Succeeded())
        obs = obs_of(m)
        assert obs.changes[-1].change_type == "delete"
        assert check(m, obs).ok
        kalamdb = evolve(obs, changes=obs.changes[:-1])  # KalamDB evaluates only the new row
        verdict = check(m, kalamdb)
        assert items(verdict) == [ContractItem.SUBSCRIPTIONS]
        assert "no delete for key 3 when an UPDATE made it leave the filter" in str(verdict)
        # a later change of the key is then not reported as out of order: the delete is
        m.apply(Update("u1", T, (("s", "in"),), Cmp("=", Col("id"), Lit(3))), Succeeded())
        later = obs_of(m)
        skipped = evolve(later, changes=later.changes[:-2] + later.changes[-1:])
        text = str(check(m, skipped))
        assert "leave the filter" in text and "out-of-order" not in text

    def test_reconstruction_catches_a_wrong_delta(self):
        m, _ = live_world(projection=("id", "n"))
        obs = obs_of(m)
        ins, upd, dele = obs.changes
        bad = evolve(upd, rows=({**upd.rows[0], "n": 8},))
        # The wrong delta is itself a mismatch; reconstruction runs only on otherwise clean streams.
        assert "wrong or out-of-order" in str(check(m, evolve(obs, changes=(ins, bad, dele))))
        snapshot = [dict(r) for b in obs.batches for r in b.rows]
        table_ = m.state.catalog.table(T)
        sub = m.state.subs["s1"]
        changes = [
            (c, [dict(r) for r in c.rows], [dict(r) for r in c.old_values]) for c in obs.changes
        ]
        view = reconstruct(table_, sub, snapshot, changes)
        assert sorted(r["id"] for r in view) == [1, 3, 4, 5]


class TestStreams:
    def test_stream_subscription_with_ttl_and_hard_delete(self):
        m = world(table(TableType.STREAM))
        put(m, "u1", row(1, s="a"), at=at_ms(0))
        put(m, "u1", row(2, s="b"), at=at_ms(5_000))
        m.apply(Subscribe("u1", "s1", T), Succeeded(), at=at_ms(11_000))
        m.apply(Subscribe("u1", "p1", T, ("id", "s")), Succeeded(), at=at_ms(11_000))
        put(m, "u1", row(3, s="c"), at=at_ms(12_000))
        m.apply(
            Delete("u1", T, Cmp("=", Col("id"), Lit(3))), Succeeded(row_count=1), at=at_ms(12_001)
        )
        obs = obs_of(m)
        assert [r["id"] for r in obs.batches[0].rows] == [2]
        late = at_ms(11_000)
        assert check_subscription(m, "s1", obs, late).ok
        assert check_subscription(m, "p1", Echo.subscription(m.state, "p1"), late).ok
        expired = {"id": 1, "s": "a", "n": None, "f": None, "b": None, "_seq": seq_for(1)}
        page = evolve(obs.batches[0], rows=(expired, *obs.batches[0].rows))
        verdict = check_subscription(m, "s1", evolve(obs, batches=(page,)), late)
        assert items(verdict) == [ContractItem.STREAM_TTL]


class TestSubscribeReply:
    def test_refusals(self):
        m = world(table(TableType.SHARED, access_level=AccessLevel.PRIVATE))
        op = Subscribe("u1", "s1", T)
        refused = SubscriptionObservation("s1", acked=False, error_code="UNAUTHORIZED")
        assert check_subscribe(m, op, refused).ok
        verdict = check_subscribe(m, op, SubscriptionObservation("s1", acked=True))
        assert items(verdict) == [ContractItem.RBAC]
        svc = Subscribe(SERVICE, "s2", T)
        unexpected = SubscriptionObservation("s2", acked=False, error_code="UNAUTHORIZED")
        assert items(check_subscribe(m, svc, unexpected)) == [ContractItem.SUBSCRIPTIONS]
        m.apply(svc, Succeeded())
        assert items(check_subscribe(m, svc, unexpected)) == [ContractItem.RBAC]
        failed = SubscriptionObservation("s2", acked=False, error_code="SUBSCRIPTION_FAILED")
        assert items(check_subscribe(m, svc, failed)) == [ContractItem.SUBSCRIPTIONS]
        missing = Subscribe("u1", "s3", TableId(NS, "nope"))
        assert check_subscribe(
            m, missing, SubscriptionObservation("s3", False, error_code="NOT_FOUND")
        ).ok
