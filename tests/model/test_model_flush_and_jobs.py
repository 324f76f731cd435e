"""Flush placement, the tombstone rule, job statuses and the open start point of a job."""

from __future__ import annotations

import pytest
from strategies import NS, SERVICE, STORAGE, seq_for, table, world

from kalamfuzz.model import (
    Delete,
    Failed,
    Flush,
    FlushSkipped,
    FlushStarted,
    Insert,
    JobEnds,
    JobFinished,
    JobStatus,
    ModelError,
    OneOf,
    Rejected,
    Restart,
    Select,
    SetStorageWritable,
    Succeeded,
    TableId,
    TableType,
    Unknown,
    Update,
)
from kalamfuzz.model.where import Cmp, Col, Lit

T = TableId(NS, "t")


def row(i, s=None):
    return {"id": i, "n": None, "s": s, "f": None, "b": None}


def visible(m, user="u1"):
    return sorted((r.key, r.values["s"]) for r in m.predict(Select(user, T)).rows)


def flush(m, job="FL-1"):
    m.apply(Flush(SERVICE, T), Succeeded(job_id=job))
    m.apply(JobFinished(job), Succeeded(job_status=JobStatus.COMPLETED))


class TestFlush:
    def test_flush_moves_newest_version_and_keeps_reads(self):
        m = world()
        m.apply(Insert("u1", T, (row(1, "a"), row(2, "b"))), Succeeded())
        m.apply(Update("u1", T, (("s", "c"),), Cmp("=", Col("id"), Lit(1))), Succeeded())
        before = visible(m)
        assert m.predict(Flush(SERVICE, T)) == FlushStarted()
        flush(m)
        assert visible(m) == before
        scope = m.state.scope(T, "u1")
        assert scope.hot == ()
        assert [(v.key, v.values["s"]) for v in scope.cold[0].versions] == [(2, "b"), (1, "c")]
        cold = m.state.expected_cold(T, "u1")
        assert cold.directory == f"{STORAGE}/{NS}/t/u1"
        assert cold.paths == {"manifest.json", "batch-0.parquet"}
        assert cold.last_sequence_number == 0
        assert cold.segments[0].min_seq is None  # not learned yet
        m.learn({2: seq_for(2), 3: seq_for(3)})
        seg = m.state.expected_cold(T, "u1").segments[0]
        assert (seg.min_seq, seg.max_seq, seg.row_count) == (seq_for(2), seq_for(3), 2)

    def test_tombstones_never_reach_parquet_and_stay_hot_over_cold_data(self):
        # KalamDB writes only live rows to Parquet; a tombstone hiding a cold row stays hot
        m = world()
        m.apply(Insert("u1", T, (row(1), row(2))), Succeeded())
        flush(m, "FL-1")
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded())
        m.apply(Insert("u1", T, (row(3),)), Succeeded())
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(3))), Succeeded())
        flush(m, "FL-2")
        scope = m.state.scope(T, "u1")
        assert len(scope.cold) == 1, "nothing live to write: no second file"
        # with nothing to write KalamDB deletes nothing: both tombstones stay hot
        assert [(v.key, v.deleted) for v in scope.hot] == [(1, True), (3, True)]
        assert scope.kept == {v.ordinal for v in scope.hot}
        assert visible(m) == [(2, None)]
        assert isinstance(m.predict(Insert("u1", T, (row(2),))), Rejected)
        assert m.predict(Insert("u1", T, (row(1),))).row_count == 1
        # the kept tombstone is no write waiting: a flush may start (and write nothing) or not
        assert m.predict(Flush(SERVICE, T)) == OneOf((FlushSkipped(), FlushStarted()))
        m.apply(Insert("u1", T, (row(4),)), Succeeded())
        flush(m, "FL-3")
        scope = m.state.scope(T, "u1")
        assert [r["id"] for r in scope.cold[1].rows] == [4]
        # a flush that writes keeps only the tombstone that hides a cold row
        assert [(v.key, v.deleted) for v in scope.hot] == [(1, True)]
        assert all(r["_deleted"] is False for seg in scope.cold for r in seg.rows)
        assert visible(m) == [(2, None), (4, None)], "the deleted row stays deleted"

    def test_scope_with_only_dropped_tombstones_gets_no_file(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded())
        flush(m)
        scope = m.state.scope(T, "u1")
        assert scope.cold == () and scope.kept == {v.ordinal for v in scope.hot}
        assert m.state.expected_cold(T, "u1").paths == frozenset()

    def test_flush_predictions(self):
        m = world(table(), table(TableType.STREAM, name="st"))
        assert m.predict(Flush(SERVICE, T)) == FlushSkipped()
        assert isinstance(m.predict(Flush("u1", T)), Rejected)
        assert isinstance(m.predict(Flush(SERVICE, TableId(NS, "st"))), Rejected)
        assert isinstance(m.predict(Flush(SERVICE, TableId(NS, "zz"))), Rejected)
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        assert m.predict(Flush(SERVICE, T)) == OneOf((FlushStarted(), FlushSkipped()))
        m.apply(Flush(SERVICE, T), Succeeded())  # skipped: nothing changes
        assert list(m.state.jobs) == ["FL-1"]
        m.apply(Flush(SERVICE, T), Unknown())
        assert list(m.state.jobs) == ["FL-1"]

    def test_writes_during_a_job_leave_the_cut_open(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(Insert("u1", T, (row(2),)), Succeeded())
        assert m.predict(JobFinished("FL-1")) == JobEnds(JobStatus.COMPLETED)
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.COMPLETED))
        assert len(m.states) == 2
        cold_keys = sorted(
            tuple(v.key for v in s.scope(T, "u1").cold[0].versions) for s in m.states
        )
        assert cold_keys == [(1,), (1, 2)]
        m.keep(lambda s: len(s.scope(T, "u1").hot) == 0)
        assert m.certain and visible(m) == [(1, None), (2, None)]

    def test_a_job_takes_a_statement_whole(self):
        # KalamDB writes a statement's rows in one atomic batch: a 3-row INSERT made while the
        # job runs is in its files entirely or not at all.
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(Insert("u1", T, (row(2), row(3), row(4))), Succeeded())
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.COMPLETED))
        cold_keys = sorted(
            tuple(v.key for v in s.scope(T, "u1").cold[0].versions) for s in m.states
        )
        assert cold_keys == [(1,), (1, 2, 3, 4)]

    def test_job_statuses(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(SetStorageWritable("local", False), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        assert m.predict(JobFinished("FL-1")) == JobEnds(JobStatus.FAILED, message_required=True)
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.FAILED))
        assert m.state.scope(T, "u1").hot and m.state.jobs["FL-1"].status is JobStatus.FAILED
        m.apply(SetStorageWritable("local", True), Succeeded())
        assert m.predict(Flush(SERVICE, T)) == FlushStarted()
        with pytest.raises(ModelError):
            m.predict(JobFinished("FL-404"))

    def test_a_fault_during_the_job_may_or_may_not_meet_it(self):
        either = OneOf((JobEnds(JobStatus.FAILED, True), JobEnds(JobStatus.COMPLETED)))
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(SetStorageWritable("local", False), Succeeded())
        assert m.predict(JobFinished("FL-1")) == either  # it may have written before the fault
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(SetStorageWritable("local", False), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(SetStorageWritable("local", True), Succeeded())
        assert m.predict(JobFinished("FL-1")) == either  # it may have written after the repair

    @pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.COMPLETED])
    def test_a_job_a_restart_interrupted_keeps_the_rows_but_not_the_files(self, status):
        m = world()
        m.apply(Insert("u1", T, (row(1, "a"),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        before = visible(m)
        m.apply(Restart(), Succeeded())
        assert m.state.jobs["FL-1"].interrupted
        # KalamDB marks a job running at start-up failed; it may also have finished first.
        assert m.predict(JobFinished("FL-1")) == OneOf(
            (JobEnds(JobStatus.COMPLETED), JobEnds(JobStatus.FAILED))
        )
        m.apply(JobFinished("FL-1"), Succeeded(job_status=status))
        assert visible(m) == before  # every acknowledged row is still predicted
        scope = m.state.scope(T, "u1")
        assert scope.relearned  # its files are no longer predicted row by row
        assert (T, "u1") in m.state.flushed_scopes()  # but still checked (whole, readable)
        assert m.predict(Flush(SERVICE, T)) == OneOf((FlushStarted(), FlushSkipped()))

    def test_a_restart_leaves_finished_jobs_alone(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        flush(m)
        m.apply(Restart(), Succeeded())
        assert not m.state.jobs["FL-1"].interrupted

    def test_the_shared_cleanup_may_run_before_a_write_seen_later(self):
        """Found by the no-bug smoke: all rows deleted, a flush, an insert while its job ran;
        the job ended (and KalamDB's cleanup emptied the cold tier) before the insert."""
        m = world(table(TableType.SHARED))
        m.apply(Insert(SERVICE, T, (row(1),)), Succeeded())
        flush(m)
        m.apply(Delete(SERVICE, T, Cmp("=", Col("id"), Lit(1))), Succeeded(row_count=1))
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-2"))
        m.apply(Insert(SERVICE, T, (row(2),)), Succeeded())
        m.apply(JobFinished("FL-2"), Succeeded(job_status=JobStatus.COMPLETED))
        # The job took the tombstone only (no live row left at its cut): cleared or not.
        assert any(s.scope(T, None).clearable for s in m.states)

    def test_each_scope_has_a_cut_of_its_own(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Insert("u2", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(Insert("u1", T, (row(2),)), Succeeded())  # written while the job runs...
        m.apply(Insert("u2", T, (row(2),)), Succeeded())  # ...and later, in another scope
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.COMPLETED))

        def cold(s, user):
            return tuple(v.key for v in s.scope(T, user).cold[0].versions)

        combos = {(cold(s, "u1"), cold(s, "u2")) for s in m.states}
        # u1's later write missed while u2's later one made it: no single cut gives that
        assert ((1,), (1, 2)) in combos and len(combos) == 4

    def test_a_delete_after_the_request_does_not_rule_out_a_failure(self):
        # Found by the smoke run's no-bug shard: the job took the insert (and met the broken
        # storage) before the DELETE of the same key landed.
        m = world()
        m.apply(SetStorageWritable("local", False), Succeeded())
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(Delete("u1", T, Cmp("=", Col("id"), Lit(1))), Succeeded(row_count=1))
        outcomes = m.predict(JobFinished("FL-1"))
        assert isinstance(outcomes, OneOf)
        assert JobEnds(JobStatus.FAILED, True) in outcomes.options

    def test_job_seen_after_everything_was_flushed_elsewhere(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        flush(m, "FL-2")  # the model allows it: the first job may already be done
        assert m.predict(JobFinished("FL-1")) == JobEnds(JobStatus.SKIPPED)
        m.apply(Insert("u1", T, (row(2),)), Succeeded())
        assert m.predict(JobFinished("FL-1")) == OneOf(
            (JobEnds(JobStatus.COMPLETED), JobEnds(JobStatus.SKIPPED))
        )
        from kalamfuzz.model.ops import DropTable

        m.apply(DropTable("root", T), Succeeded())
        assert isinstance(m.predict(JobFinished("FL-1")), OneOf)
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.CANCELLED))
        assert m.state.jobs["FL-1"].status.finished

    def test_failed_statement_leaves_state(self):
        m = world()
        m.apply(Insert("u1", T, (row(1),)), Failed("SQL_EXECUTION_ERROR", 400))
        assert visible(m) == []
