"""Many workers (``kalamfuzz run --workers N``): N campaigns against a sim each, one example
database (a directory, or a real redis-server on loopback), each finding shrunk once, one
summary, one exit status. Small budgets: a few examples per worker."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.database import InMemoryExampleDatabase

from kalamfuzz.adapters.process import free_port
from kalamfuzz.campaign import workers
from kalamfuzz.campaign.database import (
    SIGNATURES_KEY,
    Claims,
    DatabaseError,
    Keyed,
    example_key,
    open_database,
)
from kalamfuzz.campaign.engine import Budget, CampaignConfig
from kalamfuzz.campaign.events import CampaignFinished, Failure, RegressionSaved
from kalamfuzz.campaign.handlers import Console
from kalamfuzz.cli import main

BUG = "execute_as_wrong_scope"  # the data machine finds it within a few examples


def _config(tmp: Path, database: str, **kw: object) -> CampaignConfig:
    base: dict[str, object] = {
        "machine": "data",
        "budget": Budget(examples=8),
        "seed": 1,
        "steps": 10,
        "shrink_runs": 10,
        "regressions_dir": tmp / "regressions",
        "database": database,
        "workers": 2,
        "command": "kalamfuzz run --machine data",
    }
    base.update(kw)
    return CampaignConfig(**base)  # type: ignore[arg-type]


def _run(config: CampaignConfig) -> tuple[CampaignFinished, list[object], str]:
    events: list[object] = []
    out = io.StringIO()
    finished = workers.run(config, [events.append, Console(out)])
    return finished, events, out.getvalue()


def _entries(db: Path) -> list[Path]:
    return [p for p in db.rglob("*") if p.is_file()]


# --- no server ---------------------------------------------------------------------------


def test_each_worker_gets_its_part_of_the_budget_and_its_own_seeds() -> None:
    config = CampaignConfig(budget=Budget(examples=7), seed=10, workers=3, command="kalamfuzz run")
    parts = [workers.worker_config(config, w) for w in range(3)]
    assert [p.budget.examples for p in parts] == [3, 2, 2]
    assert [p.worker for p in parts] == [0, 1, 2]
    assert parts[2].command == "kalamfuzz run --workers 3 --worker-index 2"
    timed = workers.worker_config(CampaignConfig(budget=Budget(seconds=60), workers=2), 1)
    assert timed.budget.seconds == 60  # a time budget is every worker's


def test_examples_are_filed_under_the_machine_and_what_changes_their_meaning() -> None:
    db = InMemoryExampleDatabase()
    key = example_key("data", 25, ("b", "a"), "sim")
    assert key == b"kalamfuzz:data:steps=25:bugs=a,b:target=sim"
    keyed = Keyed(db, key)
    digest = bytes(range(48))  # whatever Hypothesis' digest of the test is
    keyed.save(digest, b"x")
    keyed.move(digest, digest + b".secondary", b"x")
    assert list(db.fetch(key)) == [] and list(db.fetch(key + b".secondary")) == [b"x"]
    assert example_key("flush", 25, (), "sim") != example_key("data", 25, (), "sim")
    # an empty choice sequence (a dropped shrink candidate) is never a failure to replay
    keyed.save(digest, b"")
    db.save(key, b"")  # saved by an earlier version
    assert list(keyed.fetch(digest)) == []
    assert example_key("data", 10, (), "sim") != example_key("data", 25, (), "sim")


def test_the_lowest_worker_among_the_claims_owns_a_finding() -> None:
    db = InMemoryExampleDatabase()
    w0, w1 = Claims(db, "run", 0), Claims(db, "run", 1)
    assert w1.claim("sig A", ["part A"])  # first come
    assert not w0.claim("sig A")  # already claimed: known here
    assert w0.claim("sig B") and w0.claim("sig B")
    assert [e["parts"] for e in w0.others()] == [["part A"]]
    assert [e["sig"] for e in w1.others()] == ["sig B"]
    assert not Claims(db, "another run", 1).others()
    w0.clear()
    assert not w1.others()


def test_two_claims_at_the_same_moment_agree_on_the_owner() -> None:
    class Racing(InMemoryExampleDatabase):
        """Worker 1 claims "sig" just after worker 0 looked and saw no claim."""

        raced = False

        def fetch(self, key: bytes) -> Iterator[bytes]:
            seen = list(super().fetch(key))
            if not self.raced:
                self.raced = True
                self.save(key, b'{"sig": "sig", "worker": 1, "parts": []}')
            yield from seen

    db = Racing()
    assert Claims(db, "run", 0).claim("sig")  # saw both claims after its own: the lower wins
    assert not Claims(db, "run", 1).claim("sig")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--workers", "0"], "give a number of workers >= 1"),
        (["--workers", "-2"], "give a number of workers >= 1"),
        (["--workers", "two"], "bad --workers 'two'"),
        (["--workers", "2", "--worker-index", "2"], "worker indexes run from 0 to 1"),
        (["--workers", "2", "--worker-index", "0", "--database", "DB"], "--run-id"),
        (["--workers", "2", "--target", "url:http://127.0.0.1:9"], "or --workers 1"),
        (["--database", "FILE/examples"], "give --database a directory you can write"),
        pytest.param(
            ["--database", "redis://127.0.0.1:PORT/0"],
            "start redis-server there",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("redis") is None,
                reason="pip install 'kalamfuzz[redis]'",
            ),
        ),
    ],
)
def test_bad_worker_options_are_one_line_and_exit_2(
    argv: list[str],
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KALAMFUZZ_PASSWORD", "x")
    (tmp_path / "FILE").write_text("not a directory")
    argv = [a.replace("PORT", str(free_port())).replace("DB", str(tmp_path)) for a in argv]
    assert main(["run", "--budget", "1", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_a_redis_database_without_the_redis_package_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    monkeypatch.delitem(sys.modules, "hypothesis.extra.redis", raising=False)
    with pytest.raises(DatabaseError, match=r"pip install 'kalamfuzz\[redis\]'"):
        open_database("redis://127.0.0.1:6379/0")


# --- two workers against a sim each --------------------------------------------------------


def test_two_workers_without_a_bug_sum_their_examples_and_exit_0(tmp_path: Path) -> None:
    db = tmp_path / "examples"
    finished, _, console = _run(_config(tmp_path, str(db), budget=Budget(examples=6), steps=6))
    assert finished.exit_code == 0 and not finished.failures
    (machine,) = finished.machines
    # 3 examples each: 6 only if both ran
    assert machine.examples == 6 and finished.examples == 6
    assert console.count("no violations: exit 0") == 1  # one summary
    assert "workers: 2 at once" in console
    assert db.is_dir() and not _entries(db)  # nothing failed: nothing saved, no claim left


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CampaignFinished, list[object]]:
    tmp = tmp_path_factory.mktemp("workers")
    finished, events, _ = _run(_config(tmp, str(tmp / "examples"), bugs=(BUG,)))
    return tmp, finished, events


def test_a_finding_is_shrunk_once_and_reported_once(
    found: tuple[Path, CampaignFinished, list[object]],
) -> None:
    tmp, finished, events = found
    assert finished.exit_code == 1 and finished.failures
    signatures = [f.signature for f in finished.failures]
    assert len(signatures) == len(set(signatures))
    reported = [e for e in events if isinstance(e, Failure)]
    saved = [e for e in events if isinstance(e, RegressionSaved)]
    assert len(reported) == len(saved) == len(finished.failures)
    assert len(list((tmp / "regressions").glob("test_data_*.py"))) == len(finished.failures)
    assert "--workers 2 --worker-index" in Path(saved[0].path).read_text()
    # the failing examples are saved in the shared database; the run's claims are cleared
    assert _entries(tmp / "examples")


def test_the_next_run_replays_the_saved_failure_first(
    found: tuple[Path, CampaignFinished, list[object]],
) -> None:
    tmp, first, _ = found

    # One example per worker: seed 99 does not find the bug in them (the contrast below), so
    # only the replay of the saved failure can.
    def again(database: Path) -> CampaignFinished:
        return _run(
            _config(
                tmp,
                str(database),
                bugs=(BUG,),
                seed=99,
                budget=Budget(examples=2),
                regressions_dir=tmp / f"again-{database.name}",
            )
        )[0]

    replayed = again(tmp / "examples")
    assert replayed.exit_code == 1
    assert {f.signature for f in replayed.failures} >= {first.failures[0].signature}
    assert min(f.examples_to_failure for f in replayed.failures) == 1
    assert not again(tmp / "empty").failures


# --- a real redis-server on loopback -------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = pytest.importorskip("redis", reason="pip install 'kalamfuzz[redis]'")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_two_workers_share_a_redis_database(redis_url: str, tmp_path: Path) -> None:
    import redis

    finished, _, console = _run(_config(tmp_path, redis_url, bugs=(BUG,)))
    assert finished.exit_code == 1 and finished.failures
    assert len({f.signature for f in finished.failures}) == len(finished.failures)
    assert f"example database: {redis_url}" in console
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert b"hypothesis-example:" + example_key("data", 10, (BUG,), "sim") in keys
    assert not [k for k in keys if SIGNATURES_KEY in k]  # the run's claims are cleared
