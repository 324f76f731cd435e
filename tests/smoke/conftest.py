"""The smoke budget: small, fixed-seed campaigns, so CI is repeatable and under five minutes."""

from __future__ import annotations

from kalamfuzz.campaign.engine import Budget, CampaignConfig

#: Examples per planted bug (a campaign stops at the first failure).
SMOKE_EXAMPLES = 120
#: Examples per machine on the plain sim; the combined clean run gets ten times as many.
CLEAN_EXAMPLES = 30
STEPS = 15
SEED = 0
SHRINK_SECONDS = 15.0


def smoke_config(
    machine: str, bugs: tuple[str, ...] = (), examples: int = SMOKE_EXAMPLES
) -> CampaignConfig:
    return CampaignConfig(
        machine=machine,
        budget=Budget(examples=examples),
        seed=SEED,
        bugs=bugs,
        steps=STEPS,
        shrink_seconds=SHRINK_SECONDS,
        regressions_dir=None,
        stop_on_failure=True,
    )
