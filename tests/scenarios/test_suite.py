"""The scenario suite as a tool: what it holds, what a run writes, how it reports failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from kalamfuzz.campaign.known import KnownIssues
from kalamfuzz.errors import ConfigError, KalamError
from kalamfuzz.machines.driver.workload import ExpectationFailed, Write
from kalamfuzz.model.catalog import Role, TableType
from kalamfuzz.scenarios import FULL, SCENARIOS, SMOKE, Scenario, run_suite, select, write
from kalamfuzz.scenarios.registry import NOT_IN_ANY_SCENARIO
from kalamfuzz.scenarios.run import Run
from kalamfuzz.scenarios.shapes import SIMPLE, eq, simple
from kalamfuzz.sim.bugs import BUGS


def test_the_suite_holds_every_seed_test() -> None:
    select([])
    by_story = {
        s: sorted(x.id for x in SCENARIOS.values() if x.story == s)
        for s in ("e2e", "live", "stress")
    }
    assert by_story["e2e"] == [f"E{i:02}" for i in range(1, 14)]
    assert by_story["live"] == [f"L{i:02}" for i in range(1, 11)]
    assert by_story["stress"] == [f"S{i:02}" for i in range(1, 11)]
    assert all(s.doc and s.title for s in SCENARIOS.values())


def test_each_planted_bug_is_in_a_scenarios_domain_or_said_why_not() -> None:
    select([])
    covered = {b for s in SCENARIOS.values() for b in s.covers}
    names = {b.name for b in BUGS}
    assert covered <= names
    assert covered.isdisjoint(NOT_IN_ANY_SCENARIO)
    assert covered | set(NOT_IN_ANY_SCENARIO) == names
    assert all(NOT_IN_ANY_SCENARIO.values())


def test_select_takes_ids_and_stories_and_names_the_fix() -> None:
    assert [s.id for s in select(["live"])] == [f"L{i:02}" for i in range(1, 11)]
    assert [s.id for s in select(["S03", "E01"])] == ["S03", "E01"]
    with pytest.raises(ConfigError, match="no scenario 'E99'") as err:
        select(["E99"])
    assert "--list" in str(err.value.hint)


def _counting(r: Run) -> None:
    """Two rows in, and the seed's (wrong) count of three."""
    r.d.create_table("root", "t", TableType.USER, columns=SIMPLE)
    with r.item("two rows written"):
        r.d.insert("u1", "t", [simple(1), simple(2)])
    with r.item("the count"):
        r.d.read_all("u1", "t", expect=3)


def _tiny(r: Run) -> None:
    """A table, a subscription, a change: passes on a plain server."""
    r.d.create_table("root", "t", TableType.USER, columns=SIMPLE)
    with r.item("a change arrives"):
        r.d.subscribe("u1", "s", "t")
        r.d.insert("u1", "t", [simple(1)])
        r.d.check_live()
        r.d.live_registry()


def _misuse(r: Run) -> None:
    """Two UPDATEs of one scope by WHERE other than the key: they may not commute."""
    r.d.create_table("root", "t", TableType.USER, columns=SIMPLE)
    r.d.parallel(
        [
            Write("u1", "t", assignments={"qty": 1}, where=eq("grp", 1)),
            Write("u1", "t", assignments={"qty": 2}, where=eq("grp", 2)),
        ]
    )


def test_a_failed_expectation_saves_the_transcript_and_the_report(tmp_path: Path) -> None:
    sc = Scenario("X01", "counting", "e2e", _counting)
    report = run_suite("sim", SMOKE, [sc], out=tmp_path, echo=lambda _: None)
    (o,) = report.outcomes
    assert (o.status, report.exit_code) == ("FAIL", 1)
    assert "the scenario expects exactly 3" in o.finding
    assert [(i.name, i.status) for i in o.items] == [
        ("two rows written", "pass"),
        ("the count", "fail"),
    ]
    md, transcript = (Path(p) for p in o.artifacts)
    assert "expects exactly 3" in md.read_text() and "INSERT INTO" in md.read_text()
    assert any('"SELECT' in line for line in transcript.read_text().splitlines())


def _resurrecting_rows(r: Run) -> None:
    """A deleted row whose older version is cold, and a flush that writes live rows too."""
    r.d.create_table("root", "t", TableType.USER, columns=SIMPLE)
    with r.item("three rows, flushed; one deleted, one more, flushed"):
        r.d.insert("u1", "t", [simple(1), simple(2), simple(3)])
        r.d.flush("root", "t", wait=True)
        r.d.delete("u1", "t", eq("id", 2))
        r.d.insert("u1", "t", [simple(4)])
        r.d.flush("root", "t", wait=True)


def _resurrecting(r: Run) -> None:
    _resurrecting_rows(r)
    with r.item("the count"):
        r.d.read_all("u1", "t", expect=3)


def test_a_seed_count_the_known_issues_broke_is_known_not_failed(tmp_path: Path) -> None:
    known = KnownIssues.load(Path(__file__).parents[2] / "regressions" / "known-issues.toml")
    sc = Scenario("X03", "resurrecting", "e2e", _resurrecting)
    kw: dict[str, Any] = {"out": tmp_path, "echo": lambda _: None}
    plain = run_suite("sim", SMOKE, [sc], bugs=["flush_drops_tombstones"], **kw)
    assert plain.outcomes[0].status == "FAIL"  # no known issues: the deleted row is a finding
    report = run_suite("sim", SMOKE, [sc], bugs=["flush_drops_tombstones"], known=known, **kw)
    (o,) = report.outcomes
    assert (o.status, report.exit_code) == ("KNOWN", 0)
    assert o.known_findings == ["flush-drops-tombstones"]
    assert "expects exactly 3" in o.finding and "a known issue changed the data" in o.finding
    assert not o.artifacts


def _resurrecting_then_miscounting(r: Run) -> None:
    """The known bug in one table, then a wrong count of another the bug never touched."""
    _resurrecting_rows(r)
    r.d.create_table("root", "other", TableType.USER, columns=SIMPLE)
    r.d.insert("u1", "other", [simple(1), simple(2)])
    with r.item("the other table's count"):
        r.d.read_all("u1", "other", expect=3)


def test_a_count_no_known_issue_touched_still_fails_after_one(tmp_path: Path) -> None:
    known = KnownIssues.load(Path(__file__).parents[2] / "regressions" / "known-issues.toml")
    sc = Scenario("X04", "resurrecting, then miscounting", "e2e", _resurrecting_then_miscounting)
    report = run_suite(
        "sim",
        SMOKE,
        [sc],
        bugs=["flush_drops_tombstones"],
        known=known,
        out=tmp_path,
        echo=lambda _: None,
    )
    (o,) = report.outcomes
    assert (o.status, o.known_findings) == ("FAIL", ["flush-drops-tombstones"])
    assert "other; the scenario expects exactly 3" in o.finding


def test_a_misused_step_is_an_error_that_names_the_fix(tmp_path: Path) -> None:
    sc = Scenario("X02", "misuse", "e2e", _misuse)
    report = run_suite("sim", SMOKE, [sc], out=tmp_path, echo=lambda _: None)
    (o,) = report.outcomes
    assert (o.status, report.exit_code) == ("ERROR", 2)
    assert "may not commute" in o.finding and "distinct primary keys" in o.finding


def test_a_run_writes_json_summary_and_plot(tmp_path: Path) -> None:
    lines: list[str] = []
    sc = Scenario("X03", "tiny", "live", _tiny)
    report = run_suite("sim", SMOKE, [sc, sc], out=tmp_path, echo=lines.append)
    assert [o.status for o in report.outcomes] == ["PASS", "PASS"]
    assert lines[0].startswith("[ 1/2] X03 tiny") and "PASS" in lines[1]
    paths = {p.name for p in write(report, tmp_path)}
    assert paths == {"scenarios.json", "summary.md", "resources.png"}
    data = json.loads((tmp_path / "scenarios.json").read_text())
    first = data["scenarios"][0]
    assert first["status"] == "PASS" and first["samples"] and first["latencies"]
    assert "| X03 | tiny | PASS |" in (tmp_path / "summary.md").read_text()


def test_resource_limits_are_judged_at_full_scale_only() -> None:
    smoke = Run(cast(Any, None), SMOKE)
    smoke.threshold("p95", 600.0, 500.0, "ms")
    assert smoke.items[-1].status == "measured" and smoke.measures["p95"] == 600.0
    full = Run(cast(Any, None), FULL)
    full.threshold("p95", 400.0, 500.0, "ms")
    with pytest.raises(ExpectationFailed, match="p95"):
        full.threshold("p95", 600.0, 500.0, "ms")
    assert [i.status for i in full.items] == ["pass", "fail"]
    on_sim = Run(cast(Any, None), FULL, sim=True)
    on_sim.threshold("RSS growth", 40.0, 10.0, "%")
    assert on_sim.items[-1].status == "measured" and "on a real server" in on_sim.items[-1].detail


def test_an_unreachable_target_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALAMFUZZ_PASSWORD", "x")
    with pytest.raises(KalamError) as err:
        run_suite(
            "url:http://127.0.0.1:9", SMOKE, [Scenario("X03", "tiny", "live", _tiny)], out=tmp_path
        )
    assert "127.0.0.1:9" in str(err.value) and len(str(err.value).splitlines()) == 1


def test_a_join_is_the_pairs_of_what_each_side_reads() -> None:
    from attrs import evolve

    from kalamfuzz import invariants as inv
    from kalamfuzz.machines.driver import Driver
    from kalamfuzz.model import Join
    from kalamfuzz.model.catalog import AccessLevel
    from kalamfuzz.observations import QueryObservation

    with Driver.open("sim", cast={"u1": Role.USER, "u2": Role.USER}) as d:
        d.begin(tables=())
        d.create_table("root", "plans", TableType.SHARED, access=AccessLevel.PUBLIC, columns=SIMPLE)
        d.create_table("root", "activity", TableType.USER, columns=SIMPLE)
        d.insert("root", "plans", [simple(1, body="free"), simple(2, body="pro")])
        d.insert("u1", "activity", [simple(i, grp=1 + i % 3) for i in range(1, 7)])  # grp 3: none
        d.insert("u2", "activity", [simple(9, grp=1)])
        cols = (("l", "id"), ("r", "body"))
        d.join("u1", "activity", "plans", ("grp", "id"), cols)
        reply = d.transcript[-1].reply
        assert sorted(int(r[0]) for r in reply["rows"]) == [1, 3, 4, 6]  # u1's, grp 1 or 2
        op = Join(d.user_id("u1"), d.table_id("activity"), d.table_id("plans"), ("grp", "id"), cols)
        good = QueryObservation(200, tuple(reply["columns"]), tuple(map(tuple, reply["rows"])))
        assert inv.check_join(d.model.run(op), op, good).ok
        # a row lost, and one of u2's joined in: both are findings
        for rows in (good.rows[1:], (*good.rows, ("9", "free"))):
            verdict = inv.check_join(d.model.run(op), op, evolve(good, rows=rows))
            assert [v.summary for v in verdict.violations] == ["JOIN result differs from the model"]
