"""Cold artifacts (item 3), their safety after failures (item 6), storage routing (item 8) and jobs."""

from __future__ import annotations

from attrs import evolve
from inv_helpers import T, items, put, row
from strategies import NS, SERVICE, Echo, seq_for, table, world

from kalamfuzz.invariants import (
    ColdScopeObservation,
    JobObservation,
    ParquetFile,
    StorageListing,
    check_cold,
    check_job,
    check_job_running,
    check_storage,
)
from kalamfuzz.invariants.coerce import outcome
from kalamfuzz.model import (
    AlterAddColumn,
    AlterDropColumn,
    ColType,
    Column,
    ContractItem,
    CreateStorage,
    CreateTable,
    Flush,
    JobFinished,
    JobStatus,
    Restart,
    SetStorageWritable,
    Succeeded,
    TableId,
    TableType,
)


def flush(m, job):
    m.apply(Flush(SERVICE, T), Succeeded(job_id=job))
    m.apply(JobFinished(job), Succeeded(job_status=JobStatus.COMPLETED))


def flushed():
    m = world()
    put(m, "u1", row(1, s="a"), row(2, s="b"))
    flush(m, "FL-1")
    put(m, "u1", row(3, s="c"))
    flush(m, "FL-2")
    return m


def cold(m, scope="u1"):
    return Echo.cold(m.state, T, scope)


def replace_file(obs, name, **changes):
    files = tuple(evolve(p, **changes) if p.name == name else p for p in obs.parquet)
    return evolve(obs, parquet=files)


class TestColdArtifacts:
    def test_accepts_the_expected_files_and_learns_seqs(self):
        m = flushed()
        obs = cold(m)
        assert [p.name for p in obs.parquet] == ["batch-0.parquet", "batch-1.parquet"]
        verdict = check_cold(m, T, "u1", obs)
        assert verdict.ok and verdict.learned == {1: seq_for(1), 2: seq_for(2), 3: seq_for(3)}
        m.narrow(verdict.consistent, verdict.learned)
        assert m.state.seqs.get(3) == seq_for(3)
        assert check_cold(m, T, "u2", Echo.cold(m.state, T, "u2")).ok

    def test_after_an_interrupted_job_the_files_must_only_be_whole(self):
        m = flushed()
        put(m, "u1", row(4, s="d"))
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-3"))
        m.apply(Restart(), Succeeded())
        m.apply(JobFinished("FL-3"), Succeeded(job_status=JobStatus.FAILED))
        obs = cold(m)  # the two segments of before; whether FL-3 wrote a third is open
        assert check_cold(m, T, "u1", obs).ok
        orphan = evolve(obs, parquet=(*obs.parquet, evolve(obs.parquet[0], name="batch-2.parquet")))
        assert check_cold(m, T, "u1", orphan).ok  # a file the manifest does not name
        torn = replace_file(obs, "batch-1.parquet", rows=None, error="magic bytes not found")
        verdict = check_cold(m, T, "u1", torn)
        assert items(verdict) == [ContractItem.COLD_ARTIFACTS]
        assert "names batch-1.parquet, which is unreadable: magic bytes" in str(verdict)
        gone = evolve(obs, parquet=obs.parquet[:1])
        assert "names batch-1.parquet, which is missing" in str(check_cold(m, T, "u1", gone))

    def test_flags_wrong_rows_in_a_file(self):
        m = flushed()
        obs = cold(m)
        rows = obs.parquet[0].rows
        bad = replace_file(obs, "batch-0.parquet", rows=(rows[0], {**rows[1], "s": "zz"}))
        verdict = check_cold(m, T, "u1", bad)
        assert ContractItem.COLD_ARTIFACTS in items(verdict)
        assert "does not hold the expected rows" in str(verdict)

    def test_a_file_may_lack_a_column_added_while_its_job_ran(self):
        m = world()
        put(m, "u1", row(1, s="a"))
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(AlterAddColumn("root", T, Column("x", ColType.INT, default=3)), Succeeded())
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.COMPLETED))
        obs = cold(m)
        rows = obs.parquet[0].rows
        assert "x" in rows[0] and rows[0]["x"] is None  # the file may hold the column...
        without_x = tuple({k: v for k, v in r.items() if k != "x"} for r in rows)
        assert check_cold(m, T, "u1", replace_file(obs, "batch-0.parquet", rows=without_x)).ok
        # ...but not lack one the table had when the job was requested
        without_s = tuple({k: v for k, v in r.items() if k != "s"} for r in rows)
        lacks_s = check_cold(m, T, "u1", replace_file(obs, "batch-0.parquet", rows=without_s))
        assert "does not hold the expected rows" in str(lacks_s)
        # and a flush requested after the ADD must write it
        put(m, "u1", row(2, s="b"))
        flush(m, "FL-2")
        obs = cold(m)
        rows = obs.parquet[1].rows
        without_x = tuple({k: v for k, v in r.items() if k != "x"} for r in rows)
        assert not check_cold(m, T, "u1", replace_file(obs, "batch-1.parquet", rows=without_x)).ok

    def test_a_file_may_still_hold_a_column_dropped_while_its_job_ran(self):
        # Found by the smoke run's no-bug shard: a DROP COLUMN landed while the flush job ran,
        # whose file was written under the schema it took.
        m = world()
        put(m, "u1", row(1, s="a", n=4))
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        m.apply(AlterDropColumn("root", T, "n"), Succeeded())
        m.apply(JobFinished("FL-1"), Succeeded(job_status=JobStatus.COMPLETED))
        obs = cold(m)
        rows = obs.parquet[0].rows
        assert "n" not in rows[0]
        with_n = tuple({**r, "n": 4} for r in rows)
        assert check_cold(m, T, "u1", replace_file(obs, "batch-0.parquet", rows=with_n)).ok
        assert check_cold(m, T, "u1", obs).ok
        # the columns the table kept are still compared
        wrong_s = tuple({**r, "n": 4, "s": "zz"} for r in rows)
        assert not check_cold(m, T, "u1", replace_file(obs, "batch-0.parquet", rows=wrong_s)).ok

    def test_flags_a_manifest_of_another_scope_or_with_a_wrong_size(self):
        m = flushed()
        obs = cold(m)
        assert obs.manifest is not None
        named = evolve(obs, manifest=evolve(obs.manifest, table_id=str(T), user_id="u1"))
        assert check_cold(m, T, "u1", named).ok
        other = evolve(obs, manifest=evolve(obs.manifest, table_id=str(T), user_id="u2"))
        verdict = check_cold(m, T, "u1", other)
        assert ContractItem.STORAGE_ROUTING in items(verdict)
        assert "manifest.json names another scope" in str(verdict)
        first = obs.parquet[0]
        segs = obs.manifest.segments
        sized = (evolve(segs[0], size_bytes=first.size_bytes + 1), *segs[1:])
        wrong = evolve(obs, manifest=evolve(obs.manifest, segments=sized))
        assert "size_bytes" in str(check_cold(m, T, "u1", wrong))

    def test_flags_missing_empty_and_stray_files(self):
        m = flushed()
        obs = cold(m)
        missing = evolve(obs, parquet=obs.parquet[:1])
        assert "batch-1.parquet is missing" in str(check_cold(m, T, "u1", missing))
        empty = replace_file(obs, "batch-1.parquet", size_bytes=0)
        assert "unreadable or empty" in str(check_cold(m, T, "u1", empty))
        unreadable = replace_file(obs, "batch-1.parquet", rows=None, error="bad magic")
        assert "bad magic" in str(check_cold(m, T, "u1", unreadable))
        stray = evolve(obs, other_files=("batch-2.parquet.tmp",))
        assert items(check_cold(m, T, "u1", stray)) == [ContractItem.COLD_ARTIFACTS]
        extra = evolve(obs, parquet=(*obs.parquet, ParquetFile("batch-7.parquet", 10, ())))
        assert "batch-7.parquet is not a segment" in str(check_cold(m, T, "u1", extra))

    def test_flags_manifest_disagreements(self):
        m = flushed()
        obs = cold(m)
        seg = obs.manifest.segments[0]
        wrong = evolve(
            obs.manifest,
            segments=(
                evolve(seg, row_count=5, min_seq=1, status="in_progress"),
                *obs.manifest.segments[1:],
            ),
            last_sequence_number=4,
        )
        text = str(check_cold(m, T, "u1", evolve(obs, manifest=wrong)))
        assert "row_count 5, file has 2" in text and "status 'in_progress'" in text
        assert "seq range" in text and "last_sequence_number" in text
        reordered = evolve(obs.manifest, segments=obs.manifest.segments[::-1])
        assert "manifest segments differ" in str(
            check_cold(m, T, "u1", evolve(obs, manifest=reordered))
        )
        assert "manifest.json missing" in str(check_cold(m, T, "u1", evolve(obs, manifest=None)))
        corrupt = evolve(obs, manifest=None, manifest_error="Expecting value")
        assert "corrupt" in str(check_cold(m, T, "u1", corrupt))

    def test_flags_duplicated_rows_across_files(self):
        m = flushed()
        obs = cold(m)
        first = obs.parquet[0].rows
        dup = replace_file(obs, "batch-1.parquet", rows=(*obs.parquet[1].rows, first[0]))
        assert ContractItem.IDEMPOTENCY in items(check_cold(m, T, "u1", dup))

    def test_artifacts_for_an_unflushed_scope(self):
        m = flushed()
        obs = cold(m)
        assert "never flushed" in str(check_cold(m, T, "u2", obs))

    def test_failed_flush_leaves_nothing_and_retry_succeeds(self):
        m = world()
        put(m, "u1", row(1))
        m.apply(SetStorageWritable("local", False), Succeeded())
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        failed = JobObservation("FL-1", "failed", "Permission denied (os error 13)")
        assert check_job(m, JobFinished("FL-1"), failed).ok
        silent = JobObservation("FL-1", "failed")
        assert items(check_job(m, JobFinished("FL-1"), silent)) == [ContractItem.IDEMPOTENCY]
        done = JobObservation("FL-1", "completed")
        assert items(check_job(m, JobFinished("FL-1"), done)) == [ContractItem.COLD_ARTIFACTS]
        m.apply(JobFinished("FL-1"), outcome(failed))
        leftovers = ColdScopeObservation("/x", None, None, (), ("batch-0.parquet.tmp",))
        assert items(check_cold(m, T, "u1", leftovers)) == [ContractItem.IDEMPOTENCY]
        m.apply(SetStorageWritable("local", True), Succeeded())
        flush(m, "FL-2")
        assert check_cold(m, T, "u1", cold(m)).ok

    def test_a_job_a_restart_interrupted_must_end(self):
        m = world()
        put(m, "u1", row(1))
        m.apply(Flush(SERVICE, T), Succeeded(job_id="FL-1"))
        running = JobObservation("FL-1", "running")
        assert check_job_running(m, running, 30).ok  # slow, not wrong: the timeout stands
        m.apply(Restart(), Succeeded())
        verdict = check_job_running(m, running, 30)
        assert items(verdict) == [ContractItem.IDEMPOTENCY]
        assert "a flush job a restart interrupted never ends" in str(verdict)
        assert "running 30 s after the restart" in str(verdict)


class TestStorageRouting:
    def test_accepts_template_paths_on_the_tables_storage(self):
        m = world()
        m.apply(
            CreateStorage(
                "root", "arch", "/arch", user_template="{userId}/{namespace}/{tableName}"
            ),
            Succeeded(),
        )
        m.apply(CreateTable("root", table(name="a", storage_id="arch")), Succeeded())
        m.apply(
            CreateTable("root", table(TableType.SHARED, name="sh", storage_id="arch")), Succeeded()
        )
        for tid, actor in ((T, "u1"), (TableId(NS, "a"), "u1"), (TableId(NS, "sh"), SERVICE)):
            put(m, actor, row(1), table=tid)
            m.apply(Flush(SERVICE, tid), Succeeded(job_id=f"J-{tid.name}"))
            m.apply(JobFinished(f"J-{tid.name}"), Succeeded(job_status=JobStatus.COMPLETED))
        listing = Echo.listing(m.state)
        assert "/arch/u1/app/a/batch-0.parquet" in listing.files
        assert "/arch/app/sh/manifest.json" in listing.files
        assert "/data/storage/app/t/u1/manifest.json" in listing.files
        other_run = "/data/storage/otherns/t/u1/batch-0.parquet"
        assert check_storage(
            m, StorageListing((*listing.files, other_run, "/data/storage/app/readme"))
        ).ok
        moved = [f.replace("/arch/u1/app/a", "/data/storage/app/a/u1") for f in listing.files]
        verdict = check_storage(m, StorageListing(moved))
        assert items(verdict) == [ContractItem.STORAGE_ROUTING]
        text = str(verdict)
        assert "- missing /arch/u1/app/a/batch-0.parquet" in text
        assert "+ misplaced /data/storage/app/a/u1/batch-0.parquet" in text
