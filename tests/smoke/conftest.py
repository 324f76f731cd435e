"""The smoke budget: small, fixed-seed campaigns, so CI is repeatable and under five minutes.
The detection budget is ``kalamfuzz bench``'s (``kalamfuzz.bench.detection``): what the bench
measures over several seeds is what CI relies on with one."""

from __future__ import annotations

from kalamfuzz.bench import detection
from kalamfuzz.campaign.engine import CampaignConfig

#: Examples per planted bug (the campaign stops at its first failure).
SMOKE_EXAMPLES = detection.EXAMPLES
#: With no bug on, this many examples (ten times the typical detection) run on the machine with
#: every rule, in NO_BUG_SHARDS shards (distinct seeds) so the workers share it.
NO_BUG_EXAMPLES = 600
#: Examples per machine on the plain sim (each machine runs its rules and finds nothing).
CLEAN_EXAMPLES = 20
NO_BUG_SHARDS = 6
SEED = 0


def smoke_config(
    machine: str, bugs: tuple[str, ...] = (), examples: int = SMOKE_EXAMPLES, seed: int = SEED
) -> CampaignConfig:
    return detection.config(machine, bugs, examples, seed)
