"""The cold-tier reader and the scope observation, on files written in KalamDB's format."""

from __future__ import annotations

from pathlib import Path

import pytest
from kalamdb_files import seq, write_batch, write_manifest

from kalamfuzz.adapters import (
    list_scopes,
    observe,
    read_batch,
    read_manifest,
    scope_rows,
)
from kalamfuzz.errors import ColdArtifactError


def user_scope(base: Path) -> Path:
    scope = base / "app" / "notes" / "alice"
    s0 = write_batch(
        scope, 0, [{"id": 1, "body": "a", "_seq": seq(10)}, {"id": 2, "body": "b", "_seq": seq(11)}]
    )
    s1 = write_batch(scope, 1, [{"id": 1, "body": "a2", "_seq": seq(20)}])
    write_manifest(scope, "app.notes", "alice", [s0, s1])
    return scope


def shared_scope(base: Path) -> Path:
    scope = base / "app" / "config"
    write_manifest(scope, "app.config", None, [write_batch(scope, 0, [{"id": 7, "_seq": seq(5)}])])
    return scope


def test_list_scopes_finds_user_and_shared_scopes(tmp_path: Path) -> None:
    user_scope(tmp_path)
    shared_scope(tmp_path)
    scopes = list_scopes(tmp_path)
    assert [s.parts for s in scopes] == [("app", "config"), ("app", "notes", "alice")]
    assert scopes[0].user_id is None and scopes[0].table_id == "app.config"
    assert scopes[1].user_id == "alice" and scopes[1].table == "notes"
    assert list_scopes(tmp_path / "missing") == []


def test_read_manifest_into_attrs(tmp_path: Path) -> None:
    m = read_manifest(user_scope(tmp_path))
    assert (m.table_id, m.user_id, m.version, m.last_sequence_number) == (
        "app.notes",
        "alice",
        2,
        1,
    )
    assert [s.path for s in m.committed] == ["batch-0.parquet", "batch-1.parquet"]
    seg = m.segments[0]
    assert (seg.min_seq, seg.max_seq, seg.row_count, seg.batch_number) == (seq(10), seq(11), 2, 0)
    assert seg.column_stats["1"].min_value == 1 and seg.column_stats["1"].max_value == 2


def test_read_batch_and_scope_rows(tmp_path: Path) -> None:
    scope = user_scope(tmp_path)
    rows = read_batch(scope / "batch-0.parquet")
    assert rows == [
        {"id": 1, "body": "a", "_seq": seq(10), "_deleted": False},
        {"id": 2, "body": "b", "_seq": seq(11), "_deleted": False},
    ]
    assert [r["body"] for r in scope_rows(list_scopes(tmp_path)[0])] == ["a", "b", "a2"]


def test_cold_scope_observes_what_is_on_disk(tmp_path: Path) -> None:
    scope = user_scope(tmp_path)
    obs = observe.cold_scope(scope)
    assert obs.manifest is not None and obs.manifest_error is None
    assert (obs.manifest.table_id, obs.manifest.user_id) == ("app.notes", "alice")
    assert [s.path for s in obs.manifest.segments] == ["batch-0.parquet", "batch-1.parquet"]
    assert [p.name for p in obs.parquet] == ["batch-0.parquet", "batch-1.parquet"]
    first = obs.parquet[0]
    assert first.size_bytes == (scope / "batch-0.parquet").stat().st_size
    assert first.rows is not None and [r["body"] for r in first.rows] == ["a", "b"]
    assert obs.other_files == ()


def test_cold_scope_observes_stray_empty_and_unreadable_files(tmp_path: Path) -> None:
    scope = tmp_path / "ns" / "t"
    write_manifest(scope, "ns.t", None, [write_batch(scope, 0, [{"id": 1, "_seq": seq(1)}])])
    (scope / "batch-1.parquet.tmp").write_bytes(b"partial")
    (scope / "batch-2.parquet").write_bytes(b"")
    (scope / "batch-3.parquet").write_bytes(b"PAR1garbage")
    obs = observe.cold_scope(scope)
    assert obs.other_files == ("batch-1.parquet.tmp",)
    files = {p.name: p for p in obs.parquet}
    assert files["batch-2.parquet"].size_bytes == 0 and files["batch-2.parquet"].rows is None
    assert files["batch-3.parquet"].rows is None and files["batch-3.parquet"].error


def test_cold_scope_observes_a_corrupt_manifest(tmp_path: Path) -> None:
    scope = tmp_path / "ns" / "a"
    write_batch(scope, 0, [{"id": 1, "_seq": seq(1)}])
    (scope / "manifest.json").write_text("{not json")
    obs = observe.cold_scope(scope)
    assert obs.manifest is None and obs.manifest_error and "cannot read" in obs.manifest_error
    with pytest.raises(ColdArtifactError, match="cannot read"):
        read_manifest(scope)


def test_a_file_deleted_while_the_scope_is_read_is_not_unreadable(tmp_path: Path) -> None:
    # KalamDB's SHARED cleanup deletes files asynchronously: one listed a moment ago may be
    # gone when it is opened; that is not an unreadable file (a real-server false alarm).
    scope = shared_scope(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_batch(scope / "batch-9.parquet")

    def vanished(path: Path) -> list[dict[str, object]]:
        raise FileNotFoundError(path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(observe, "read_batch", vanished)
        obs = observe.cold_scope(scope)
    assert obs.parquet == () and obs.manifest is not None


def test_unreadable_parquet_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    scope = tmp_path / "ns" / "b"
    scope.mkdir(parents=True)
    (scope / "batch-0.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(ColdArtifactError, match=r"batch-0\.parquet"):
        read_batch(scope / "batch-0.parquet")
