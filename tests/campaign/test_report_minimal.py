"""A report is the upstream issue, minimal (issue 23 item 1): only the users, storages and
tables its steps use; only the checking reads that show the departure and the state before it;
every fault in shell terms; numbers from the transcript; a title in KalamDB's words with KalamDB's
own source for the expectation; no path of the machine that found it; and it can be rendered
again offline from the saved files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest

from kalamfuzz.campaign import regressions
from kalamfuzz.campaign.events import Failure
from kalamfuzz.campaign.report import compact_insert, render_report, scrub_paths, title
from kalamfuzz.campaign.sources import KALAMDB_COMMIT, sources_for
from kalamfuzz.cli import main
from kalamfuzz.machines.driver import Exchange

T = "5e7a9c"
NS = f"kf_{T}_1"
COLS = "(id INT PRIMARY KEY, n BIGINT, s TEXT, b BOOLEAN)"
FINDER = "/home/finder/work/kalamfuzz-run-3"


def ex(
    step: int,
    actor: str,
    kind: str,
    request: str,
    reply: dict[str, object] | None = None,
    ms: int = 0,
    check: bool = False,
) -> Exchange:
    return Exchange(step, actor, kind, request, reply or {"status": 200}, ms, ms + 1, check=check)


def rows(*keys: int) -> dict[str, object]:
    return {
        "status": 200,
        "columns": ["id", "n", "s", "b", "_seq", "_deleted"],
        "rows": [[k, None, None, None, str(1000 + k), False] for k in keys],
    }


SETUP = (
    *(
        ex(0, "root", "sql", f"CREATE USER kf_{T}_{u} WITH PASSWORD '***' ROLE {r}")
        for u, r in (("alice", "user"), ("bob", "user"), ("svc", "service"), ("dba", "dba"))
    ),
    *(
        ex(
            0,
            "root",
            "sql",
            f"CREATE STORAGE kf_{T}_{s} TYPE 'filesystem' BASE_DIRECTORY "
            f"'{FINDER}/data/storage-{s}-{T}' SHARED_TABLES_TEMPLATE '{{namespace}}/{{tableName}}' "
            "USER_TABLES_TEMPLATE '{namespace}/{tableName}/{userId}'",
        )
        for s in ("second", "spare")
    ),
)

WORLD = (
    ex(0, "root", "sql", f"CREATE NAMESPACE {NS}"),
    ex(
        0,
        "root",
        "sql",
        f"CREATE TABLE {NS}.notes {COLS} WITH (TYPE = 'USER', STORAGE_ID = 'local')",
    ),
    ex(
        0,
        "root",
        "sql",
        f"CREATE TABLE {NS}.board {COLS} WITH (TYPE = 'SHARED', STORAGE_ID = 'local', "
        "ACCESS_LEVEL = 'PUBLIC')",
    ),
    ex(
        0,
        "root",
        "sql",
        f"CREATE TABLE {NS}.routed {COLS} WITH (TYPE = 'USER', STORAGE_ID = 'kf_{T}_second')",
    ),
    ex(
        0,
        "root",
        "sql",
        f"CREATE TABLE {NS}.fragile {COLS} WITH (TYPE = 'SHARED', STORAGE_ID = 'kf_{T}_spare', "
        "ACCESS_LEVEL = 'PUBLIC')",
    ),
)


def failure(
    transcript: tuple[Exchange, ...], message: str, program: tuple[str, ...], **kw: object
) -> Failure:
    fields: dict[str, object] = {
        "machine": "flush",
        "kind": "violation",
        "signature": "x",
        "message": message,
        "items": tuple(dict.fromkeys(re.findall(r"^\[([^\]]+)\]", message, re.MULTILINE))),
        "program": program,
        "imports": (),
        "tables": ("notes",),
        "transcript": (*WORLD, *transcript),
        "seed": 1,
        "seconds_to_failure": 1.0,
        "bugs": (),
        "server": "kalamdb-server 0.4.3-rc.4 (built 2026-12-01)",
        "setup": SETUP,
    }
    fields.update(kw)
    return Failure(**fields)  # type: ignore[arg-type]


# One user (alice) and one table (notes) in the steps; bob's read-back of his own partition,
# the read-back after the INSERT, and the other three tables have no place in the report.
TOMBSTONE = failure(
    (
        ex(1, "alice", "sql", f"INSERT INTO {NS}.notes (id, n) VALUES (1, 5), (2, 6)", ms=10),
        ex(1, "alice", "sql", f"SELECT * FROM {NS}.notes", rows(1, 2), ms=12, check=True),
        ex(1, "bob", "sql", f"SELECT * FROM {NS}.notes", rows(), ms=13, check=True),
        ex(2, "root", "sql", f"STORAGE FLUSH TABLE {NS}.notes", {"status": 200}, ms=20),
        ex(3, "alice", "sql", f"DELETE FROM {NS}.notes WHERE id = 1", {"status": 200}, ms=30),
        ex(3, "alice", "sql", f"SELECT * FROM {NS}.notes", rows(2), ms=32, check=True),
        ex(4, "root", "sql", f"STORAGE FLUSH TABLE {NS}.notes", {"status": 200}, ms=40),
        ex(5, "alice", "sql", f"SELECT * FROM {NS}.notes WHERE id < 5", rows(1, 2), ms=50),
    ),
    f"after SELECT * FROM {NS}.notes WHERE id < 5:\n"
    f"[2 correct before/during/after flush] table {NS}.notes scope kf_{T}_alice: a deleted row "
    "is visible again\n  expected: the rows deleted stay deleted\n  observed: 1 deleted row(s)",
    (
        "d.insert('alice', 'notes', [{'id': 1, 'n': 5}, {'id': 2, 'n': 6}])",
        "d.flush('root', 'notes', wait=True)",
        "d.delete('alice', 'notes', where=Cmp('=', Col('id'), Lit(1)))",
        "d.flush('root', 'notes', wait=True)",
        "d.select('alice', 'notes', where=Cmp('<', Col('id'), Lit(5)))",
    ),
)


def setup_block(text: str) -> str:
    return text.split("```sql", 1)[1].split("```", 1)[0]


def test_the_setup_creates_only_what_the_steps_use() -> None:
    text = render_report(TOMBSTONE, "deterministic", "kalamfuzz run --machine flush")
    setup = setup_block(text)
    assert "CREATE USER alice WITH PASSWORD" in setup
    assert "CREATE NAMESPACE app;" in setup and "CREATE TABLE app.notes" in setup
    for unused in ("bob", "svc", "dba", "CREATE STORAGE", "app.board", "app.routed", "fragile"):
        assert unused not in setup, unused
    assert "`bob`" not in text, "another user's read-back is not one of the steps"


def test_only_the_read_before_the_departure_and_the_departure_are_shown() -> None:
    text = render_report(TOMBSTONE)
    steps = [line for line in text.splitlines() if re.match(r"\d+\. ", line)]
    assert len(steps) == 6  # insert, flush, delete, its read-back, flush, the SELECT
    assert "(the state before)" in steps[3] and "`SELECT * FROM app.notes` →" in steps[3]
    assert "**departs from what KalamDB promises**" in steps[-1]
    assert "WHERE id < 5" in steps[-1]


def test_the_title_is_in_kalamdbs_words_and_the_source_is_kalamdbs() -> None:
    heading = title(TOMBSTONE)
    assert "DELETE" in heading and "STORAGE FLUSH" in heading
    assert "(2 correct" not in heading and "before/during/after" not in heading
    text = render_report(TOMBSTONE)
    assert text.startswith(f"# {heading}\n")
    source = sources_for("2 correct before/during/after flush", "a deleted row is visible again")
    assert source and source[0].kind == "test"
    assert source[0].url in text and KALAMDB_COMMIT in source[0].url
    assert "delete should persist after flush" in text
    # the contract item stays, as the secondary line
    assert 'kalamfuzz\'s contract, item "2 correct before/during/after flush"' in text
    assert "KalamDB: kalamdb-server 0.4.3-rc.4" in text


UNWRITABLE = failure(
    (
        ex(1, "dba", "sql", f"INSERT INTO {NS}.fragile (id, n) VALUES (8, 1)", ms=10),
        # step 2, break_storage, reads the INSERT back first (a check), then acts silently:
        # only the program says what it did
        ex(2, "root", "sql", f"SELECT * FROM {NS}.fragile", rows(8), ms=12, check=True),
        ex(
            3,
            "dba",
            "sql",
            f"STORAGE FLUSH TABLE {NS}.fragile",
            {"status": 200, "job_id": "FL-1", "message": "Storage flush started. Job ID: FL-1"},
            ms=30,
        ),
        ex(
            3,
            "root",
            "sql",
            "SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-1'",
            {
                "status": 200,
                "columns": ["job_id", "status", "message"],
                "rows": [
                    [
                        "FL-1",
                        "failed",
                        f"Unable to open file {FINDER}/data/storage-spare-{T}/{NS}/fragile/"
                        "batch-0.parquet.tmp#1: Not a directory (os error 20)",
                    ]
                ],
            },
            ms=31,
            check=True,
        ),
        ex(
            4,
            "dba",
            "sql",
            f"STORAGE FLUSH TABLE {NS}.fragile",
            {
                "status": 200,
                "message": f"Storage flush skipped: no pending writes for {NS}.fragile",
            },
            ms=40,
        ),
    ),
    f"after STORAGE FLUSH TABLE {NS}.fragile:\n[3 cold artifacts] Flush by kf_{T}_dba on "
    f"{NS}.fragile: flush skipped although rows are pending after a failed flush\n"
    "  expected: a flush job is started\n  observed: HTTP 200 success, 0 row(s)",
    (
        "d.insert('dba', 'fragile', [{'id': 8, 'n': 1}])",
        "d.break_storage('spare')",
        "d.flush('dba', 'fragile', wait=True)",
        "d.flush('dba', 'fragile', wait=True)",
    ),
    machine="jobs",
)


def test_the_storage_made_unwritable_is_a_step_in_shell_terms_where_it_happened() -> None:
    text = render_report(UNWRITABLE, "deterministic", "kalamfuzz run --machine jobs")
    shell = "mv /data/storage-spare/app /data/storage-spare/app.aside 2>/dev/null; "
    shell += "echo blocked > /data/storage-spare/app"
    assert shell in text
    insert = text.index("INSERT INTO app.fragile")
    assert insert < text.index(shell) < text.index("STORAGE FLUSH TABLE app.fragile")
    setup = setup_block(text)
    assert "CREATE STORAGE spare" in setup and "BASE_DIRECTORY '/data/storage-spare'" in setup
    assert "second" not in setup
    # the job's end, with the server's own message, and where the data directory is
    assert "`failed`: Unable to open file /data/storage-spare/app/fragile/" in text
    assert "`/data` stands for the server's data directory" in text
    assert "adr-006-flush-execution.md" in text and "retry next flush" in text


def test_kills_and_network_faults_are_shell_steps_too() -> None:
    crash = failure(
        (
            ex(1, "root", "sql", f"STORAGE FLUSH TABLE {NS}.notes", {"status": 200}, ms=10),
            ex(1, "root", "fault", "SIGKILL 40 ms into a flush; restart", {}, ms=60),
            ex(2, "alice", "fault", "network: reset_response", {}, ms=70),
            ex(2, "alice", "sql", f"INSERT INTO {NS}.notes (id) VALUES (3)", {"lost": True}, ms=70),
            ex(3, "root", "fault", "SIGINT; restart", {}, ms=80),
            ex(4, "alice", "sql", f"SELECT * FROM {NS}.notes", rows(3, 3), ms=90),
        ),
        f"after SELECT * FROM {NS}.notes:\n[6 idempotency and safety] table {NS}.notes scope "
        f"kf_{T}_alice: primary key(s) [3] returned more than once",
        (
            "d.crash_during_flush('notes', 40)",
            "d.insert('alice', 'notes', [{'id': 3}], fault='reset_response')",
            "d.graceful_restart()",
            "d.select('alice', 'notes')",
        ),
    )
    text = render_report(crash)
    assert "40 ms after the STORAGE FLUSH reply, kill the server: `kill -KILL <server pid>`" in text
    assert "drops the reply and resets the client's connection" in text
    assert "`kill -INT <server pid>`" in text
    assert text.index("drops the reply") < text.index("INSERT INTO app.notes (id) VALUES (3)")


def burst(lost: set[int], total: int = 30) -> Failure:
    sub = {"id": "feed-1", "sql": f"SELECT * FROM {NS}.notes", "options": {"batch_size": 1000}}
    values = ", ".join(f"({i}, {i}, 'row {i}', NULL)" for i in range(1, total + 1))
    changes = tuple(
        ex(
            2,
            "alice",
            "ws-recv",
            "feed-1",
            {
                "type": "change",
                "change_type": "insert",
                "rows": [{"id": i, "n": str(i), "s": f"row {i}", "b": None}],
            },
            ms=30 + i,
        )
        for i in range(1, total + 1)
        if i not in lost
    )
    missing = sorted(lost)
    shown = missing[:2]
    message = (
        "after subscription feed-1: SELECT * FROM "
        + NS
        + ".notes:\n"
        + "\n".join(
            f"[4 subscriptions] subscription feed-1: 1 change(s) for key {k} never arrived\n"
            f"  - insert rows={{id={k}}}"
            for k in shown
        )
    )
    if len(missing) > len(shown):
        message += f"\n... and {len(missing) - len(shown)} more violations like these"
    return failure(
        (
            ex(1, "alice", "ws-send", json.dumps({"type": "subscribe", "subscription": sub}), ms=1),
            ex(1, "alice", "ws-recv", "feed-1", {"type": "subscription_ack", "schema": []}, ms=2),
            ex(
                2,
                "alice",
                "sql",
                f"INSERT INTO {NS}.notes (id, n, s, b) VALUES {values}",
                {"status": 200, "message": f"Inserted {total} row(s)", "row_count": total},
                ms=20,
            ),
            ex(2, "alice", "sql", f"SELECT * FROM {NS}.notes", rows(1), ms=80, check=True),
            *changes,
        ),
        message,
        (
            "d.subscribe('alice', 'feed', 'notes', batch_size=1000)",
            "d.insert('alice', 'notes', [...])",
        ),
        machine="live",
    )


def test_the_numbers_are_counted_from_the_transcript() -> None:
    found = burst({7, 20, 21, 22})
    received = [e for e in found.transcript if e.kind == "ws-recv" and e.reply["type"] == "change"]
    text = render_report(found)
    assert len(received) == 26
    assert "receives 26 `insert` change messages for `feed-1` (keys 1-6, 8-19, 23-30)" in text
    assert "wrote 30 rows" in text and "4 never arrived (keys 7, 20-22)" in text
    assert "receives 26 changes and silently misses 4 more" in title(found)
    # the burst itself, shortened: its rows follow one pattern
    assert "its 30 rows are `(i, i, 'row i', NULL)` for i = 1 to 30" in text
    assert "(1, 1, 'row 1', NULL), (2, 2, 'row 2', NULL), …, (30, 30, 'row 30', NULL)" in text
    assert "row 17" not in text


def test_only_a_regular_many_row_insert_is_shortened() -> None:
    assert compact_insert("INSERT INTO t (id, s) VALUES (1, 'x'), (2, 'y')") is None
    irregular = ", ".join(f"({i}, {i % 3})" for i in range(30))
    assert compact_insert(f"INSERT INTO t (id, n) VALUES {irregular}") is None
    wrapped = ", ".join(f"({i}, 'r{i}')" for i in range(5, 40))
    short = compact_insert(f"EXECUTE AS USER 'bob' (INSERT INTO t (id, s) VALUES {wrapped})")
    assert short is not None
    assert (
        short[0]
        == "EXECUTE AS USER 'bob' (INSERT INTO t (id, s) VALUES (5, 'r5'), (6, 'r6'), …, (39, 'r39'))"
    )


def test_no_path_of_the_finders_machine_survives(tmp_path: Path) -> None:
    command = f"kalamfuzz run --target binary:{FINDER}/target/release/kalamdb-server --regressions {FINDER}/out"
    found = attrs.evolve(UNWRITABLE, setup=(*SETUP,))
    text = render_report(found, "deterministic", command)
    assert "/home/finder" not in text and FINDER not in text
    path = regressions.write(found, tmp_path, "deterministic", command)
    for f in path.parent.iterdir():
        assert "/home/finder" not in f.read_text(), f.name
    assert scrub_paths("see /opt/x/bin/server and /v1/api/sql") == "see PATH and /v1/api/sql"
    assert scrub_paths("<data>/storage/app") == "/data/storage/app"


def test_a_report_is_rendered_again_offline_from_the_saved_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = regressions.write(UNWRITABLE, tmp_path, "deterministic", "kalamfuzz run --machine jobs")
    md = path.with_suffix(".md")
    first = md.read_text()
    md.write_text("stale")
    assert main(["report", "--write", "--dir", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert md.read_text() == first, "the saved files hold everything the report needs"
    # hand-written notes are merged in
    path.with_name(path.stem + regressions.NOTES_SUFFIX).write_text(
        "# A failed flush leaves its rows behind for good\n\n"
        "## Where it comes from\n\n`mark_syncing` is never undone.\n"
    )
    assert main(["report", path.stem[-8:], "--write", "--dir", str(tmp_path)]) == 0
    again = md.read_text()
    assert again.startswith("# A failed flush leaves its rows behind for good\n")
    assert "## Where it comes from\n\n`mark_syncing` is never undone." in again
    assert "echo blocked > /data/storage-spare/app" in again


def test_a_transcript_saved_without_check_flags_reads_its_read_backs_as_checks(
    tmp_path: Path,
) -> None:
    path = regressions.write(TOMBSTONE, tmp_path, "deterministic", "kalamfuzz run")
    transcript = path.with_name(path.stem + regressions.TRANSCRIPT_SUFFIX)
    old = []
    for line in transcript.read_text().splitlines():
        data = json.loads(line)
        if data.get("setup"):
            continue  # saved before the setup was
        data.pop("check", None)
        old.append(json.dumps(data))
    transcript.write_text("\n".join(old) + "\n")
    saved = regressions.load_saved(path)
    checks = [e.request for e in saved.failure.transcript if e.check]
    assert checks == [f"SELECT * FROM {NS}.notes"] * 3  # not the SELECT step's own query
    text = render_report(saved.failure, saved.label, saved.command)
    assert "CREATE USER alice WITH PASSWORD 'alice-Passw0rd!' ROLE user;" in text
    assert "`bob`" not in text and "(the state before)" in text


def test_every_saved_report_is_what_its_files_render() -> None:
    # a change to the renderer regenerates the saved reports (`kalamfuzz report --write`), so
    # that what a maintainer is sent is what the code makes
    from kalamfuzz.campaign.regressions import load_saved
    from kalamfuzz.campaign.report import render_report

    root = Path(__file__).resolve().parents[2] / "regressions"
    paths = sorted(root.rglob("test_*.py"))
    assert paths
    for path in paths:
        saved = load_saved(path)
        rendered = render_report(saved.failure, saved.label, saved.command, saved.notes)
        assert path.with_suffix(".md").read_text(encoding="utf-8") == rendered, (
            f"{path.name}: run kalamfuzz report --write {path.stem}"
        )
