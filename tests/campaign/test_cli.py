"""The command line: bad input gets one line naming the fix and exit 2; replay statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalamfuzz.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--budget", "soon"], "bad budget"),
        (["run", "--sim-bugs", "no_such_bug"], "kalamfuzz sim --list-bugs"),
        (["run", "--target", "binary:/nonexistent/kalamdb-server"], "not found"),
        (["run", "--target", "url:http://127.0.0.1:9"], "KALAMFUZZ_PASSWORD"),
        (["replay", "zzzz"], "no regression matches"),
        (["scenarios", "--only", "E99"], "kalamfuzz scenarios --list"),
        (["scenarios", "--sim-bugs", "no_such_bug"], "kalamfuzz sim --list-bugs"),
        (["scenarios", "--target", "binary:/nonexistent/kalamdb-server"], "not found"),
        (["bench", "--parts", "speed"], "use some of: fuzzer,growth,detection"),
        (["bench", "--bugs", "no_such_bug"], "kalamfuzz sim --list-bugs"),
        (["bench", "--machines", "nope"], "use one of"),
        (["bench", "--sizes", "lots"], "--sizes 100,5000"),
        (["bench", "--target", "url:http://127.0.0.1:9"], "detection needs the sim"),
        (
            ["bench", "--parts", "fuzzer", "--target", "binary:/nonexistent/kalamdb-server"],
            "not found",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KALAMFUZZ_PASSWORD", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_unreachable_target_is_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALAMFUZZ_PASSWORD", "x")
    assert main(["run", "--target", "url:http://127.0.0.1:9", "--budget", "1"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_replay_with_nothing_saved_is_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--dir", str(tmp_path)]) == 0
    assert "nothing to replay" in capsys.readouterr().out


def test_replay_of_a_broken_file_is_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "test_data_deadbeef.py").write_text("x = 1\n")
    assert main(["replay", "--dir", str(tmp_path)]) == 2
    assert "ERROR" in capsys.readouterr().out


def test_sim_subcommand_lists_bugs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--list-bugs"]) == 0
    assert "cold_shadows_hot" in capsys.readouterr().out


def test_a_run_says_which_known_issues_it_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repository: no default known-issues file
    args = ["run", "--machine", "data", "--budget", "1", "--seed", "1", "--regressions", "r"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "known issues: none (no regressions/known-issues.toml in this directory" in out


def test_scenarios_list_names_each_and_its_planted_bugs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "--list", "--only", "E11", "live"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11
    assert (
        lines[0].startswith("E11  Multi-storage routing") and "flush_ignores_storage_id" in lines[0]
    )
