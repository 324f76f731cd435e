"""Cold-artifact reader and validator on files written in KalamDB's format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kalamdb_files import seq, write_batch, write_manifest

from kalamfuzz.adapters import (
    list_scopes,
    read_batch,
    read_manifest,
    scope_rows,
    validate_scope,
    validate_storage,
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


def kinds(problems: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(p.kind for p in problems)


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


def test_consistent_storage_has_no_problems(tmp_path: Path) -> None:
    user_scope(tmp_path)
    shared_scope(tmp_path)
    assert validate_storage(tmp_path) == []


def test_row_count_and_seq_range_mismatches(tmp_path: Path) -> None:
    scope = tmp_path / "ns" / "t"
    seg = write_batch(scope, 0, [{"id": 1, "_seq": seq(1)}, {"id": 2, "_seq": seq(2)}])
    seg["row_count"] = 3
    seg["max_seq"] = seq(9)
    write_manifest(scope, "ns.t", None, [seg])
    assert kinds(validate_scope(list_scopes(tmp_path)[0])) == [
        "row_count_mismatch",
        "seq_range_mismatch",
    ]


def test_stray_tmp_empty_file_orphan_and_missing_file(tmp_path: Path) -> None:
    scope = tmp_path / "ns" / "t"
    seg0 = write_batch(scope, 0, [{"id": 1, "_seq": seq(1)}])
    missing = dict(seg0, id="batch-1.parquet", path="batch-1.parquet")
    write_manifest(scope, "ns.t", None, [seg0, missing])
    (scope / "batch-2.parquet.tmp").write_bytes(b"partial")
    (scope / "batch-3.parquet").write_bytes(b"")
    got = kinds(validate_storage(tmp_path))
    assert got == ["empty_file", "missing_file", "orphan_file", "stray_tmp"]


def test_corrupt_manifest_and_unreadable_parquet(tmp_path: Path) -> None:
    a = tmp_path / "ns" / "a"
    write_batch(a, 0, [{"id": 1, "_seq": seq(1)}])
    (a / "manifest.json").write_text("{not json")
    b = tmp_path / "ns" / "b"
    seg = write_batch(b, 0, [{"id": 1, "_seq": seq(1)}])
    (b / "batch-0.parquet").write_bytes(b"PAR1garbage")
    seg["size_bytes"] = 11
    write_manifest(b, "ns.b", None, [seg])
    got = kinds(validate_storage(tmp_path))
    assert got == ["bad_manifest", "unreadable_parquet"]
    with pytest.raises(ColdArtifactError, match="cannot read"):
        read_manifest(a)
    with pytest.raises(ColdArtifactError, match="Parquet"):
        read_batch(b / "batch-0.parquet")


def test_batch_files_without_manifest(tmp_path: Path) -> None:
    write_batch(tmp_path / "ns" / "t", 0, [{"id": 1, "_seq": seq(1)}])
    assert kinds(validate_storage(tmp_path)) == ["missing_manifest"]


def test_scope_mismatch_duplicate_seq_and_last_sequence(tmp_path: Path) -> None:
    scope = tmp_path / "ns" / "t" / "bob"
    s0 = write_batch(scope, 0, [{"id": 1, "_seq": seq(1)}])
    s1 = write_batch(scope, 1, [{"id": 2, "_seq": seq(1)}])
    write_manifest(scope, "ns.other", "alice", [s0, s1])
    raw = json.loads((scope / "manifest.json").read_text())
    raw["last_sequence_number"] = 0
    (scope / "manifest.json").write_text(json.dumps(raw))
    got = kinds(validate_storage(tmp_path))
    assert got == ["duplicate_seq", "last_sequence_mismatch", "scope_mismatch", "scope_mismatch"]


def test_empty_parquet_batch_is_reported(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    scope = tmp_path / "ns" / "t"
    scope.mkdir(parents=True)
    pq.write_table(
        pa.table({"id": pa.array([], pa.int32()), "_seq": pa.array([], pa.int64())}),
        scope / "batch-0.parquet",
    )
    write_manifest(
        scope,
        "ns.t",
        None,
        [
            {
                "id": "batch-0.parquet",
                "path": "batch-0.parquet",
                "min_seq": None,
                "max_seq": None,
                "row_count": 0,
                "size_bytes": 0,
                "status": "committed",
            }
        ],
    )
    assert kinds(validate_storage(tmp_path)) == ["empty_batch"]


def test_stray_tmp_outside_any_scope(tmp_path: Path) -> None:
    (tmp_path / "ns").mkdir()
    (tmp_path / "ns" / "x.tmp").write_text("x")
    assert kinds(validate_storage(tmp_path)) == ["stray_tmp"]
