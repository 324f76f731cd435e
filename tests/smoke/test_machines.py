"""Each machine against the plain sim with the smoke budget: it runs its rules and finds nothing."""

from __future__ import annotations

import pytest

from kalamfuzz.campaign.engine import Campaign
from kalamfuzz.machines import MACHINES

from .conftest import CLEAN_EXAMPLES, smoke_config


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_machine_is_clean_on_the_plain_sim(name: str) -> None:
    finished = Campaign(smoke_config(name, examples=CLEAN_EXAMPLES)).run()
    assert not finished.failures, (
        finished.failures[0].message + "\n" + "\n".join(finished.failures[0].program)
    )
    own_rules = {r.function.__name__ for r in MACHINES[name].setup_state().rules}
    assert finished.steps > 0 and len(finished.rules) >= min(3, len(own_rules))
