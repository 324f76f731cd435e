"""The driver runs steps, checks them against the model and records a replayable program."""

from __future__ import annotations

import pytest

from kalamfuzz.machines import Driver, InvariantViolation, codegen
from kalamfuzz.model.catalog import Column
from kalamfuzz.model.values import ColType
from kalamfuzz.model.where import Cmp, Col, Lit

ROW = {"id": 1, "n": 5, "s": "a", "b": None}


def test_steps_on_a_conforming_target_pass_and_are_recorded(driver: Driver) -> None:
    driver.begin(("notes", "board"))
    driver.insert("alice", "notes", [ROW])
    driver.insert("svc", "notes", [{**ROW, "id": 2}], as_user="bob")
    driver.update("alice", "notes", {"s": "b"}, Cmp("=", Col("id"), Lit(1)))
    driver.select("bob", "notes")
    driver.insert("alice", "board", [ROW])  # forbidden: the model predicts PERMISSION_DENIED
    driver.flush("root", "notes", wait=True)
    driver.delete("alice", "notes", Cmp("=", Col("id"), Lit(1)))
    driver.sweep()
    lines, imports = codegen.source(driver.program)
    assert lines[0] == "d.insert('alice', 'notes', [{'id': 1, 'n': 5, 's': 'a', 'b': None}])"
    assert lines[1].endswith("as_user='bob')")
    assert driver.steps == len(driver.program) == 7
    assert "kalamfuzz.model.where:Cmp" in imports
    assert not driver.failed


def test_forbidden_statement_is_in_the_transcript_with_its_code(driver: Driver) -> None:
    driver.begin(("board",))
    driver.insert("bob", "board", [ROW])
    codes = [e.reply.get("code") for e in driver.transcript if e.request.startswith("INSERT")]
    assert codes == ["PERMISSION_DENIED"]


def test_a_broken_tier_is_a_violation_naming_the_contract_item(buggy: Driver) -> None:
    buggy.begin(("notes",))
    buggy.insert("alice", "notes", [ROW])
    buggy.flush("root", "notes", wait=True)
    buggy.update("alice", "notes", {"s": "new"}, Cmp("=", Col("id"), Lit(1)))
    # The update's reply is right (one row); the next read of the table shows the cold row
    # shadowing it (the update's own read-back waits for it: its reply was unambiguous).
    with pytest.raises(InvariantViolation) as err:
        buggy.select("alice", "notes")
    assert "2 correct before/during/after flush" in str(err.value)
    assert buggy.failed and buggy.last_failure is not None
    assert buggy.last_failure.program[-1].name == "select"


def test_lost_live_changes_are_a_subscription_violation(buggy: Driver) -> None:
    buggy.begin(("notes",))
    buggy.subscribe("alice", "s1", "notes", batch_size=2)
    with pytest.raises(InvariantViolation) as err:
        buggy.insert("alice", "notes", [ROW, {**ROW, "id": 2}])
    assert "4 subscriptions" in str(err.value)


def test_schema_changes_paging_and_resume_pass_on_the_plain_sim(driver: Driver) -> None:
    driver.begin(("notes",))
    driver.insert("alice", "notes", [ROW, {**ROW, "id": 2}, {**ROW, "id": 3}])
    driver.subscribe("alice", "s1", "notes", batch_size=1, paged=True)
    driver.insert("alice", "notes", [{**ROW, "id": 4}])
    driver.next_pages("s1")
    driver.add_column("dba", "notes", Column("x", ColType.INT, default=7))
    driver.drop_column("root", "notes", "s")
    driver.resume("alice")
    driver.insert("alice", "notes", [{"id": 5, "n": 1, "b": True, "x": 1}])
    driver.sweep()


def test_failed_flush_on_a_broken_storage_then_retry(driver: Driver) -> None:
    driver.begin(("fragile",))
    driver.insert("root", "fragile", [ROW])
    driver.break_storage("spare")
    driver.flush("root", "fragile", wait=True)
    driver.repair_storage("spare")
    driver.flush("root", "fragile", wait=True)
    driver.crash()
    driver.sweep()


def test_secrets_never_reach_the_transcript(driver: Driver) -> None:
    driver.begin(("notes",))
    driver.insert("alice", "notes", [ROW])
    text = repr(driver.transcript) + repr(driver.program)
    assert driver.target.password not in text
    for client in driver._clients.values():
        assert client._password not in text


def test_restart_keeps_the_default_of_a_column_added_after_the_rows(driver: Driver) -> None:
    """Found by the combined machine on the plain sim (regressions/test_combined_ed38aa5e.py):
    the WAL did not record ADD COLUMN's backfill, so a restart read NULL for old rows."""
    driver.begin(("events", "notes"))
    driver.insert("alice", "events", [{**ROW, "id": 100}])
    driver.insert("alice", "notes", [ROW])
    driver.add_column("dba", "notes", Column("y", ColType.BOOLEAN, default=False))
    driver.add_column("alice", "events", Column("y", ColType.BOOLEAN, default=False))
    driver.crash()
    driver.sweep()


def test_a_step_executes_each_operation_once_per_possible_state(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pass: the checks judge the forks ``Model.run`` made, and ``Model.apply`` advances
    them; nothing executes the operation a second time."""
    import collections

    from kalamfuzz.invariants import check
    from kalamfuzz.model import uncertain

    calls: collections.Counter[str] = collections.Counter()
    execute = uncertain.execute

    def counted(state: object, op: object, at: object = None) -> object:
        calls[type(op).__name__] += 1
        return execute(state, op, at)  # type: ignore[arg-type]

    driver.begin(("notes",))
    # every module that executes operations (each imported the function by name)
    monkeypatch.setattr(uncertain, "execute", counted)
    monkeypatch.setattr(check, "execute", counted)
    driver.insert("alice", "notes", [ROW])  # the INSERT, then its read-back SELECT
    driver.flush("root", "notes", wait=True)  # the FLUSH, then the job's end
    states = len(driver.model.states)
    assert states == 1
    assert calls == {"Insert": 1, "Select": 1, "Flush": 1, "JobFinished": 1}


@pytest.mark.parametrize(
    ("fault", "ran"), [("reset_response", True), ("reset_request", False), ("stall", True)]
)
def test_a_lost_reply_is_decided_by_the_read_and_the_retry_writes_once(
    driver: Driver, fault: str, ran: bool
) -> None:
    driver.begin(("board",))
    driver.insert("dba", "board", [ROW], fault=fault)  # type: ignore[arg-type]
    # The read after the write decided what the lost reply could not tell.
    assert driver.model.certain
    (state,) = driver.model.states
    assert bool(state.visible_rows(driver.table_id("board"), None)) is ran
    replies = [e.reply for e in driver.transcript if e.request.startswith("INSERT")]
    assert [r.get("status") for r in replies] == [200 if fault == "stall" else 0]
    driver.insert("dba", "board", [{**ROW, "id": 2}], fault=fault, retry=True)  # type: ignore[arg-type]
    driver.sweep()
    assert codegen.source(driver.program)[0][-1].endswith(f"fault={fault!r}, retry=True)")


def test_a_retry_that_writes_a_key_twice_is_an_idempotency_violation() -> None:
    with Driver.open("sim", bugs=("retry_reinserts",)) as d:
        d.begin(("board",))
        with pytest.raises(InvariantViolation) as err:
            d.insert("dba", "board", [ROW], fault="reset_response", retry=True)
    assert "6 idempotency and safety" in str(err.value)
    assert "accepted what must fail" in str(err.value)


def test_crashes_mid_flush_and_mid_burst_keep_acknowledged_writes(driver: Driver) -> None:
    driver.begin(("notes", "board"))
    driver.insert("dba", "board", [ROW, {**ROW, "id": 2}])
    driver.subscribe("alice", "s1", "notes", batch_size=1, paged=True)
    driver.crash_during_flush("board", 0)
    driver.crash_during_burst("alice", "notes", [{**ROW, "id": i} for i in range(10, 16)], 10)
    driver.graceful_restart()
    driver.sweep()
    assert [e.request for e in driver.transcript if e.kind == "fault"] == [
        "SIGKILL 0 ms into a flush; restart",
        "SIGKILL 10 ms into a burst of 6 inserts; restart",
        "SIGINT; restart",
    ]
    assert driver.model.certain  # the reads after each restart decided the lost insert
    # The subscription came back after each restart, from where it was.
    assert driver.open_subscriptions() == {"s1"}


def test_a_second_event_with_a_stored_stream_key_is_an_event_known_bugs_need(
    driver: Driver,
) -> None:
    # regressions/known-issues.toml: stream-delete-by-key counts only after it
    driver.begin(("events",))
    driver.insert("alice", "events", [{**ROW, "id": 5}])
    driver.insert("bob", "events", [{**ROW, "id": 5}])  # another user's scope: not a repeat
    assert "stream-key-repeated" not in driver.events
    driver.insert("alice", "events", [{**ROW, "id": 5, "n": 6}])
    assert "stream-key-repeated" in driver.events
