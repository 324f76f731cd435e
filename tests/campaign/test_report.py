"""Upstream-ready reports: plain SQL and WebSocket JSON in the order things happened, short
stable names, the server's answers, the broken promise; nothing of kalamfuzz's API, no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalamfuzz.campaign.events import Failure
from kalamfuzz.campaign.regressions import render
from kalamfuzz.campaign.report import render_report
from kalamfuzz.cli import main
from kalamfuzz.machines.driver import Exchange

TAG = "3f9a1b"


def _ex(
    step: int, actor: str, kind: str, request: str, reply: dict[str, object], ms: int
) -> Exchange:
    return Exchange(step, actor, kind, request, reply, ms, ms)


FAILURE = Failure(
    machine="live",
    kind="violation",
    signature="4 subscriptions: wrong or out-of-order change for key #",
    message=(
        f"after subscription s1-2: SELECT id, n FROM kf_{TAG}_7.notes:\n"
        "[4 subscriptions] subscription s1-2: wrong or out-of-order change for key 2\n"
        "  - expected update rows={id=2, n=5}\n"
        "  + observed update rows={id=2, n=2}"
    ),
    items=("4 subscriptions",),
    program=("d.subscribe('bob', 's1', 'notes', ['id', 'n'])", "d.insert('bob', 'notes', [])"),
    imports=(),
    tables=("notes",),
    transcript=(
        _ex(0, "root", "sql", f"CREATE NAMESPACE kf_{TAG}_7", {"status": 200}, 1),
        _ex(
            1,
            f"kf_{TAG}_bob",
            "ws-send",
            f'{{"type":"subscribe","subscription":{{"id":"s1-2","sql":"SELECT id, n FROM kf_{TAG}_7.notes"}}}}',
            {},
            2,
        ),
        _ex(
            2,
            f"kf_{TAG}_bob",
            "sql",
            f"INSERT INTO kf_{TAG}_7.notes (id, n) VALUES (2, 5)",
            {"status": 200, "message": "Inserted 1 row(s)", "row_count": 1},
            3,
        ),
        # received before the read-back below, but copied to the transcript after it
        _ex(
            2,
            f"kf_{TAG}_bob",
            "sql",
            f"SELECT * FROM kf_{TAG}_7.notes",
            {"status": 200, "columns": ["id", "n"], "rows": [[2, "5"]]},
            5,
        ),
        _ex(
            2,
            f"kf_{TAG}_bob",
            "ws-recv",
            "s1-2",
            {"type": "change", "change_type": "insert", "rows": [{"id": 2, "n": "2"}]},
            4,
        ),
    ),
    seed=1,
    seconds_to_failure=1.0,
    bugs=(),
    server="kalamdb-server 0.4.3-rc.4 (built 2026-12-01)",
    setup=(
        _ex(0, "root", "sql", f"CREATE USER kf_{TAG}_bob WITH PASSWORD '***' ROLE user", {}, 0),
        _ex(
            0,
            "root",
            "sql",
            f"CREATE STORAGE kf_{TAG}_second TYPE 'filesystem' BASE_DIRECTORY "
            f"'/tmp/kalamfuzz-x/data/storage-second-{TAG}'",
            {},
            0,
        ),
    ),
)


def test_the_report_is_plain_sql_and_json_with_stable_names() -> None:
    text = render_report(FAILURE, "deterministic", f"kalamfuzz run --seed 1 # kf_{TAG}_7")
    assert TAG not in text, "generated names are replaced by short stable ones"
    assert "CREATE NAMESPACE app;" in text and "INSERT INTO app.notes (id, n) VALUES (2, 5)" in text
    # a password that works when pasted (the real one was random, and redacted)
    assert "CREATE USER bob WITH PASSWORD 'bob-Passw0rd!' ROLE user;" in text
    assert "CREATE STORAGE" not in text, "no step uses the second storage"
    assert '"sql":"SELECT id, n FROM app.notes"' in text
    assert "→ HTTP 200, Inserted 1 row(s)" in text
    assert "kalamdb-server 0.4.3-rc.4" in text
    assert "exactly once and in commit order" in text  # the promise, in words
    assert "d.subscribe" not in text and "kalamfuzz.machines" not in text


def test_no_file_a_finding_leaves_says_where_the_finder_kept_its_binary_or_data() -> None:
    command = (
        "kalamfuzz run --target binary:/home/me/kalamdb/target/release/kalamdb-server "
        "--regressions /srv/out/regressions --history=/srv/out/h.jsonl --seed 1"
    )
    for text in (render_report(FAILURE, "deterministic", command), render(FAILURE, "x", command)):
        assert "/home/me" not in text and "/srv/out" not in text
        assert "--target binary:PATH/TO/kalamdb-server --regressions PATH --history=PATH" in text


def test_messages_appear_in_the_order_they_happened() -> None:
    text = render_report(FAILURE)
    assert text.index('"change_type":"insert"') < text.index("SELECT * FROM app.notes")


def test_kalamfuzz_report_prints_the_saved_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kalamdb").mkdir()
    (tmp_path / "kalamdb" / "test_live_0badc0de.py").write_text("def program(d): pass\n")
    (tmp_path / "kalamdb" / "test_live_0badc0de.md").write_text(render_report(FAILURE))
    assert main(["report", "0badc0de", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(
        "# A live query (`SELECT id, n FROM app.notes`) receives a wrong or out-of-order change"
    )
    (tmp_path / "test_data_feedface.py").write_text("def program(d): pass\n")
    assert main(["report", "feedface", "--dir", str(tmp_path)]) == 2
    assert "no report beside it" in capsys.readouterr().err
