"""The smoke budget: small, fixed-seed campaigns, so CI is repeatable and under five minutes."""

from __future__ import annotations

from kalamfuzz.campaign.engine import Budget, CampaignConfig

#: The smoke budget: examples per planted bug (the campaign stops at its first failure, most
#: within 20; ``kalamfuzz bench`` measures examples to detection over several seeds).
SMOKE_EXAMPLES = 100
#: With no bug on, this many examples (ten times the typical detection) run on the machine with
#: every rule, in NO_BUG_SHARDS shards (distinct seeds) so the workers share it.
NO_BUG_EXAMPLES = 600
#: Examples per machine on the plain sim (each machine runs its rules and finds nothing).
CLEAN_EXAMPLES = 20
NO_BUG_SHARDS = 4
STEPS = 15
SEED = 0
#: Shrinking is bounded by work, so a loaded machine shrinks as far as an idle one; the time
#: bound is only a safety net.
SHRINK_RUNS = 60
SHRINK_SECONDS = 600.0


def smoke_config(
    machine: str, bugs: tuple[str, ...] = (), examples: int = SMOKE_EXAMPLES, seed: int = SEED
) -> CampaignConfig:
    return CampaignConfig(
        machine=machine,
        budget=Budget(examples=examples),
        seed=seed,
        bugs=bugs,
        steps=STEPS,
        shrink_runs=SHRINK_RUNS,
        shrink_seconds=SHRINK_SECONDS,
        regressions_dir=None,
        stop_on_failure=True,
    )
