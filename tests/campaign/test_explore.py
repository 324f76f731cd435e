"""Exploration past known findings: a known bug is counted, the model re-learns what the bug
changed, and the example runs on to its last step; only new findings end examples."""

from __future__ import annotations

import statistics

from kalamfuzz.campaign.engine import Budget, Campaign, CampaignConfig
from kalamfuzz.campaign.known import KnownIssues
from kalamfuzz.machines.base import ALL_MACHINES

STEPS = 12
#: A user's INSERT into a PUBLIC SHARED table is accepted: a write the model refused, so the
#: scope diverges and must be re-learned for the example to go on without false findings.
BUG = "user_writes_public_shared"
KNOWN = KnownIssues.parse(
    [
        {
            "id": "user-writes-shared",
            "title": "a user may INSERT into a PUBLIC SHARED table",
            "status": "open",
            # one bug, three symptoms: the write goes through, meets the key check, or (an
            # UPDATE or DELETE whose WHERE is never true) answers instead of being refused
            "signature": [
                "5 RBAC: accepted what must fail: user may not write kf_#_#.board",
                "5 RBAC: refused with the wrong error",
                "5 RBAC: answered, not refused, when the WHERE is never true: user may not "
                "write kf_#_#.board",
            ],
        }
    ]
)


def _campaign(known: KnownIssues, examples: int = 12, bugs: tuple[str, ...] = (BUG,)) -> Campaign:
    config = CampaignConfig(
        machine="data",
        budget=Budget(examples=examples),
        seed=3,
        bugs=bugs,
        steps=STEPS,
        shrink_seconds=4,
        regressions_dir=None,
        known_issues=known,
    )
    return Campaign(config)


def test_a_known_finding_is_counted_and_explored_past() -> None:
    finished = _campaign(KNOWN).run()
    assert finished.exit_code == 0, [f.message for f in finished.failures]
    (known,) = finished.known
    assert known.label == "user-writes-shared" and known.count >= 3
    (data,) = finished.machines
    # Hypothesis ends some examples early by itself; the draws do not depend on the server's
    # answers, so the same seed without the bug ends exactly the same ones early: a known
    # finding ends none.
    (clean,) = _campaign(KNOWN, bugs=()).run().machines
    assert data.new == 0 and data.examples == clean.examples
    assert data.full_examples == clean.full_examples
    assert statistics.median([data.median_steps]) == STEPS


def test_unknown_the_same_bug_is_saved_once_then_counted() -> None:
    finished = _campaign(KnownIssues(), examples=60).run()
    assert finished.exit_code == 1
    accepted = [f for f in finished.failures if "accepted what must fail" in f.message]
    assert len(accepted) == 1, "saved once"
    counts = {k.label: k.count for k in finished.known}
    assert counts.get(accepted[0].signature, 0) >= 1, "then counted as known"


def test_machine_all_gives_every_machine_a_share_and_one_table() -> None:
    config = CampaignConfig(
        machine="all", budget=Budget(examples=9), seed=1, steps=4, regressions_dir=None
    )
    finished = Campaign(config).run()
    assert finished.exit_code == 0, [f.message for f in finished.failures]
    assert [m.machine for m in finished.machines] == list(ALL_MACHINES)
    assert all(m.examples >= 1 and 1 <= m.median_steps <= 4 for m in finished.machines)
    # each machine's rate is over its own share of the time, not up to the campaign's end
    assert sum(m.elapsed_s for m in finished.machines) <= finished.elapsed_s
