"""The sim's catalog survives a restart from snapshot + journal, as it would from one snapshot."""

from __future__ import annotations

from pathlib import Path

from kalamfuzz.sim.catalog import Catalog, Column, Job, Namespace, TableDef


def _table(uid: int, name: str) -> TableDef:
    t = TableDef(uid, "ns", name, "user", [Column(1, "id", "INT", False, True)])
    t.snapshot_version()
    return t


def test_journal_replays_over_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    catalog = Catalog()
    catalog.namespaces["ns"] = Namespace("ns", 1)
    catalog.save(path)

    catalog.tables["ns.a"] = _table(1, "a")
    catalog.next_table_uid = 2
    catalog.record(path, "tables", "ns.a")
    catalog.tables["ns.a"].columns.append(Column(2, "x", "TEXT"))
    catalog.record(path, "tables", "ns.a")
    catalog.jobs["FL-1"] = Job("FL-1", "flush", "running", "{}", "k")
    catalog.record(path, "jobs", "FL-1")
    catalog.jobs["FL-1"].status = "completed"
    catalog.record(path, "jobs", "FL-1")
    del catalog.namespaces["ns"]
    catalog.record(path, "namespaces", "ns")

    assert Catalog.load(path) == catalog
    catalog.save(path)  # folds the journal in
    assert path.with_suffix(".log").read_text() == ""
    assert Catalog.load(path) == catalog


def test_a_record_cut_short_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    catalog = Catalog()
    catalog.save(path)
    before = Catalog.load(path)
    catalog.tables["ns.a"] = _table(1, "a")
    catalog.record(path, "tables", "ns.a")
    log = path.with_suffix(".log")
    log.write_text(log.read_text()[:-20])
    assert Catalog.load(path) == before
