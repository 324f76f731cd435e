"""Detection self-test: the smoke budget finds every planted bug of the sim, reports it under the
contract item it breaks and shrinks it to at most ten steps; with no bug on, 600 examples of every
rule find nothing (DESIGN.md, self-measurement)."""

from __future__ import annotations

import pytest

from kalamfuzz.bench.detection import HUNTER
from kalamfuzz.campaign.engine import Campaign
from kalamfuzz.machines import MACHINES, machine
from kalamfuzz.machines.combined import CombinedMachine
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.sim.bugs import BUGS

from .conftest import NO_BUG_EXAMPLES, NO_BUG_SHARDS, SMOKE_EXAMPLES, smoke_config


def test_every_planted_bug_has_a_hunter_and_a_contract_item() -> None:
    assert set(HUNTER) == {b.name for b in BUGS}
    assert set(HUNTER.values()) <= set(MACHINES)
    assert {b.item for b in BUGS} <= {i.value for i in ContractItem}


class _CombinedWithoutWaits(CombinedMachine):
    """Every rule but the two that sleep (a crash restart, a TTL pause: a second each; the jobs
    and ttl machines run them with no bug on in test_machines), so that the no-bug
    budget fits in the smoke run."""

    crash = None  # type: ignore[assignment]
    crash_during_flush = None  # type: ignore[assignment]
    crash_during_burst = None  # type: ignore[assignment]
    pause = None  # type: ignore[assignment]


@pytest.mark.parametrize("shard", range(NO_BUG_SHARDS))
def test_no_bug_no_violation_in_many_examples(shard: int) -> None:
    # Registered here, not at import: test_machines runs every registered machine.
    machine("combined-without-waits")(_CombinedWithoutWaits)
    examples = NO_BUG_EXAMPLES // NO_BUG_SHARDS
    config = smoke_config("combined-without-waits", examples=examples, seed=1000 * (shard + 1))
    finished = Campaign(config).run()
    assert not finished.failures, (
        finished.failures[0].message + "\n" + "\n".join(finished.failures[0].program)
    )
    assert finished.examples >= examples


@pytest.mark.parametrize("bug", sorted(HUNTER))
def test_smoke_budget_finds_and_shrinks(bug: str) -> None:
    finished = Campaign(smoke_config(HUNTER[bug], (bug,))).run()
    assert finished.failures, f"{bug}: not found in {SMOKE_EXAMPLES} examples of {HUNTER[bug]}"
    failure = finished.failures[0]
    assert failure.kind == "violation", failure.message
    # Reported under the item the bug breaks, so that the report sends its reader to the
    # right promise.
    item = next(b.item for b in BUGS if b.name == bug)
    assert item in failure.items, f"{bug}: reported under {failure.items}, breaks {item}"
    assert failure.steps <= 10, f"{bug}: shrunk to {failure.steps} steps:\n" + "\n".join(
        failure.program
    )
