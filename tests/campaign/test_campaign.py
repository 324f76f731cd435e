"""A campaign against the sim: finds a planted bug, shrinks it, saves a regression that fails
with the bug and passes without it, and reports through every handler."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from kalamfuzz.campaign import engine, regressions
from kalamfuzz.campaign.engine import Budget, Campaign, CampaignConfig
from kalamfuzz.campaign.events import CampaignFinished, RegressionSaved
from kalamfuzz.campaign.handlers import Console, Jsonl, Junit
from kalamfuzz.campaign.report import placeholder
from kalamfuzz.errors import KalamError
from kalamfuzz.machines import Driver
from kalamfuzz.machines.world import USERS

BUG = "cold_shadows_hot"


@pytest.fixture(scope="module")
def found(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[CampaignFinished, Path, list[object], str]:
    out = tmp_path_factory.mktemp("campaign")
    events: list[object] = []
    console = io.StringIO()
    config = CampaignConfig(
        machine="flush",
        budget=Budget(examples=60),
        seed=1,
        bugs=(BUG,),
        steps=15,
        shrink_seconds=20,
        regressions_dir=out / "regressions",
        stop_on_failure=True,
        command="kalamfuzz run --machine flush --seed 1",
    )
    handlers = [
        events.append,
        Console(console),
        Junit(out / "junit.xml"),
        Jsonl(out / "history.jsonl"),
    ]
    finished = Campaign(config, handlers).run()
    return finished, out, events, console.getvalue()


def test_the_bug_is_found_shrunk_and_exit_is_1(
    found: tuple[CampaignFinished, Path, list[object], str],
) -> None:
    finished, _, _, console = found
    assert finished.exit_code == 1
    (failure,) = finished.failures
    assert failure.kind == "violation"
    assert 1 <= failure.steps <= 10
    # when it was found, not when shrinking ended
    assert 1 <= failure.examples_to_failure <= finished.examples
    assert 0 < failure.seconds_to_failure < finished.elapsed_s
    # which contract item a planted bug surfaces as depends on the read that saw it first
    assert failure.items and failure.message.count("[") >= 1
    assert "FAILURE (violation)" in console and "new finding(s): exit 1" in console


def test_regression_fails_with_the_bug_and_passes_without(
    found: tuple[CampaignFinished, Path, list[object], str],
) -> None:
    _, out, events, _ = found
    (saved,) = [e for e in events if isinstance(e, RegressionSaved)]
    assert saved.label == "deterministic (2 of 2 reruns on a fresh server)"
    path = Path(saved.path)
    source = path.read_text()
    assert f"PLANTED_BUGS = ('{BUG}',)" in source
    assert (out / "regressions" / f"{path.stem}.transcript.jsonl").exists()

    def opener(bugs: tuple[str, ...]):  # type: ignore[no-untyped-def]
        return Driver.open("sim", bugs=bugs)

    assert (
        regressions.replay_one(path, lambda recorded, tolerate: opener(())).status
        is regressions.Status.FIXED
    )
    again = regressions.replay_one(path, lambda recorded, tolerate: opener(tuple(recorded)))
    assert again.status is regressions.Status.FAILED
    (failure,) = found[0].failures
    assert any(f"[{item}]" in again.detail for item in failure.items)


def test_reports_are_machine_readable_and_hold_no_secret(
    found: tuple[CampaignFinished, Path, list[object], str],
) -> None:
    _, out, _, _ = found
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("failures") == "1"
    assert suite.find("testcase/failure") is not None
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    kinds = {row["event"] for row in lines}
    assert {"exchange", "failure", "finished"} <= kinds
    text = (out / "history.jsonl").read_text() + "".join(
        p.read_text() for p in (out / "regressions").iterdir() if p.is_file()
    )
    for user in USERS:  # a report gives each user a published placeholder, no secret
        text = text.replace(f"PASSWORD '{placeholder(user)}'", "")
    assert "PASSWORD '" not in text.replace("PASSWORD '***'", "")


def test_a_clean_target_gives_exit_0(tmp_path: Path) -> None:
    config = CampaignConfig(
        machine="data", budget=Budget(examples=5), seed=3, regressions_dir=tmp_path
    )
    finished = Campaign(config).run()
    assert finished.exit_code == 0 and not finished.failures
    assert finished.steps > 0 and finished.rules
    assert list(tmp_path.iterdir()) == []


def test_a_url_target_reports_the_crash_rules_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALAMFUZZ_PASSWORD", "x")
    out = io.StringIO()
    config = CampaignConfig(
        machine="jobs", target="url:http://127.0.0.1:9", budget=Budget(examples=1)
    )
    with pytest.raises(KalamError):  # nothing listens there
        Campaign(config, [Console(out)]).run()
    assert "skipped: crash and restart rules: a url target is not a process" in out.getvalue()


@pytest.mark.parametrize(
    ("fresh", "campaigns", "label"),
    [
        (2, 0, "deterministic (2 of 2 reruns on a fresh server)"),
        (1, 0, "fails 1 of 2 reruns on a fresh server"),
        (
            0,
            2,
            "needs the server's history: 0 of 2 reruns failed on a fresh server, 2 of 2 on the campaign's",
        ),
        (0, 0, "fails 0 of 2 reruns on a fresh server"),
    ],
)
def test_a_finding_is_labelled_from_a_fresh_server_then_the_campaigns(
    monkeypatch: pytest.MonkeyPatch, fresh: int, campaigns: int, label: str
) -> None:
    campaign_driver = SimpleNamespace(target=SimpleNamespace(kind="sim"))
    fresh_driver = object()
    opened: list[tuple[str, tuple[str, ...]]] = []

    @contextlib.contextmanager
    def open_fresh(target: str, **kwargs: object):  # type: ignore[no-untyped-def]
        opened.append((target, kwargs["tolerate"]))  # type: ignore[arg-type]
        yield fresh_driver

    monkeypatch.setattr(engine.Driver, "open", open_fresh)
    monkeypatch.setattr(engine.regressions, "load", lambda path: None)
    camp = Campaign(CampaignConfig(bugs=(BUG,)))
    monkeypatch.setattr(
        camp,
        "_rerun_on",
        lambda driver, module, failure, runs: fresh if driver is fresh_driver else campaigns,
    )
    failure = SimpleNamespace(race=False, tolerated=("known one",))
    assert camp._rerun(Path("x.py"), campaign_driver, failure) == label  # type: ignore[arg-type]
    assert opened == [("sim", ("known one",))]
