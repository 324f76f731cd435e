"""The seed scenario suite: KalamDB's 13 end-to-end scenarios and the 10 tests of each of its
live-query and stress stories, as fixed programs on the driver (``kalamfuzz scenarios``)."""

from kalamfuzz.scenarios.registry import SCENARIOS, STORIES, Scenario
from kalamfuzz.scenarios.scale import FULL, SCALES, SMOKE, Scale
from kalamfuzz.scenarios.suite import Outcome, SuiteReport, run_suite, select, summary, write

__all__ = [
    "FULL",
    "SCALES",
    "SCENARIOS",
    "SMOKE",
    "STORIES",
    "Outcome",
    "Scale",
    "Scenario",
    "SuiteReport",
    "run_suite",
    "select",
    "summary",
    "write",
]
