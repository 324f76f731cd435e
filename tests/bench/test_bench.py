"""kalamfuzz bench: its arithmetic, and each part run small on the sim (the numbers' size is the
bench's business; here, that each is measured from what really happened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalamfuzz import bench
from kalamfuzz.adapters.target import Target
from kalamfuzz.bench.detection import Detection, Hunt
from kalamfuzz.bench.measure import Split
from kalamfuzz.campaign.events import RuleStats
from kalamfuzz.machines.driver import Driver


def test_a_split_is_the_wall_time_by_part_with_generation_the_rest() -> None:
    rules = {
        "insert": RuleStats(10, 2.0, 1.0, model_seconds=0.5, invariants_seconds=0.25),
        "setup": RuleStats(2, 4.0, 3.0),
    }
    split = Split.of(10.0, rules, skip=("setup",))
    assert split.as_dict() == {
        "generation": 4.0,  # 10 s, less setup's 4 s, less the steps' 2 s
        "server": 1.0,
        "model": 0.5,
        "invariants": 0.25,
        "waiting": 0.0,
        "driver": 0.25,
    }
    assert split.total == pytest.approx(6.0)


def _hunts(*seconds: float | None) -> Detection:
    return Detection(
        "bug",
        "data",
        tuple(Hunt("bug", i, None if s is None else 1, s, None, ()) for i, s in enumerate(seconds)),
    )


def test_a_seed_that_found_nothing_counts_as_slowest() -> None:
    assert _hunts(1.0, 3.0, None).median("seconds") == 3.0
    assert _hunts(1.0, 2.0, 4.0, None, None).median("seconds") == 4.0
    assert _hunts(1.0, None).median("seconds") is None
    assert _hunts(2.0, 3.0, 5.0).found == 3


def test_the_fuzzer_part_measures_a_campaign_and_replays_its_statements(tmp_path: Path) -> None:
    cfg = bench.BenchConfig(parts=("fuzzer",), machines=("data",), examples=3, runs=1)
    report = bench.run(cfg, say=lambda _: None)
    (m,) = report.fuzzer
    run, ceiling = m.runs[0], m.ceilings[0]
    assert run.steps > 0 and run.statements > 0 and run.checks > 0
    assert ceiling.operations == run.statements and ceiling.per_s > 0
    assert m.ratio > 0 and 0 < run.operation_share < 1
    assert run.split.total == pytest.approx(run.elapsed_s)
    paths = bench.write(report, tmp_path)
    assert {p.name for p in paths} == {"bench.json", "bench.md", "fuzzer.png"}
    assert json.loads((tmp_path / "bench.json").read_text())["fuzzer"][0]["machine"] == "data"
    assert "| data |" in (tmp_path / "bench.md").read_text()


def test_past_what_one_read_returns_a_write_is_read_back_by_its_keys() -> None:
    with Target.parse("sim") as t:
        driver = Driver(t, background_rows=1500)
        try:
            driver.begin(("notes",))
            driver.insert("alice", "notes", [{"id": 1, "n": 1, "s": "a", "b": True}])
            driver.wait_jobs()  # a step that is not a plain write reads the write back
            reads = [e.request for e in driver.transcript if e.request.startswith("SELECT")]
            assert reads and all("WHERE" in r and "id" in r for r in reads), reads
            assert all(e.check for e in driver.transcript if e.request.startswith("SELECT"))
        finally:
            driver.close()


def _reads(driver: Driver) -> list[str]:
    return [e.request for e in driver.transcript if e.request.startswith("SELECT")]


def test_unambiguous_writes_are_read_back_once_by_the_next_step_that_reads() -> None:
    with Target.parse("sim") as t:
        driver = Driver(t)
        try:
            driver.begin(("notes", "board"))
            driver.insert("alice", "notes", [{"id": 1, "n": 1}])
            driver.update("alice", "notes", {"n": 2})
            driver.insert("dba", "board", [{"id": 2}])
            assert _reads(driver) == []
            # A SELECT first reads back its own table's writes (one read for both), and only
            # those: the SHARED table's insert waits for a later step.
            driver.select("alice", "notes", where=None)
            assert len(_reads(driver)) == 2, _reads(driver)
            driver.wait_jobs()
            assert len(_reads(driver)) == 3, _reads(driver)
            driver.wait_jobs()
            assert len(_reads(driver)) == 3, "a scope is read back once"
        finally:
            driver.close()


def test_a_write_as_another_user_is_read_back_at_once_in_both_partitions() -> None:
    # Bob writes into alice's partition by EXECUTE AS: his own partition is read back at once
    # (a row landing there is a row of another user in it), and so is alice's.
    with Target.parse("sim") as t:
        driver = Driver(t)
        try:
            driver.begin(("notes",))
            driver.insert("svc", "notes", [{"id": 1}], as_user="alice")
            assert len(_reads(driver)) == 2, _reads(driver)
        finally:
            driver.close()


def test_the_sweep_reads_each_readers_scopes_in_one_request() -> None:
    with Target.parse("sim") as t:
        driver = Driver(t)
        try:
            driver.begin(("notes", "events", "board"))
            driver.insert("bob", "notes", [{"id": 1}])
            driver.sweep()
            reads = [e for e in driver.transcript if e.request.startswith("SELECT")]
            # two per-user tables for each of the cast, and root's SHARED table
            assert len(reads) == 2 * len(driver.cast) + 1
            # reads of one request share its window: one window per reader
            windows = {(e.actor, e.sent_ms, e.recv_ms) for e in reads}
            assert sorted(a for a, _, _ in windows) == sorted([*driver.cast, "root"])
            # the scope written first, and each result judged and recorded as its own read
            assert reads[0].actor == "bob" and "notes" in reads[0].request
            assert all(";" not in e.request for e in reads)
        finally:
            driver.close()


def test_growth_and_detection_run_small(tmp_path: Path) -> None:
    cfg = bench.BenchConfig(
        parts=("growth", "detection"),
        growth_examples=2,
        runs=1,
        sizes=(100, 1500),
        bugs=("select_scope_leak",),
        seeds=1,
        jobs=1,
    )
    report = bench.run(cfg, say=lambda _: None)
    small, large = report.growth
    assert small.model_bytes < large.model_bytes
    assert all(g.check_ms > 0 and g.ms_per_step > 0 for g in report.growth)
    (d,) = report.detection
    assert d.found == 1 and d.hunts[0].items and d.hunts[0].shrunk_steps
    text = bench.markdown(report)
    assert "| 1,500 |" in text and "| select_scope_leak | data | 1/1 |" in text
