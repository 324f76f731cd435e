"""``kalamfuzz bench``: how close a campaign comes to what the target allows.

Four measurements in one run, against the sim or any target: the ceiling (the campaign's own
statements sent again by a plain client loop), the fuzzer (each machine's rate as a ratio to the
ceiling, its server calls by purpose, a step's time by part), growth (a step's cost and the
model's size with 100 to 50,000 rows per table) and detection (every planted bug over several
seeds). Written as JSON, a markdown table and PNG plots (:mod:`kalamfuzz.bench.report`).
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import evolve, field, frozen

from kalamfuzz.bench.ceiling import replay
from kalamfuzz.bench.detection import HUNTER, detect
from kalamfuzz.bench.growth import SIZES, grow
from kalamfuzz.bench.measure import measure
from kalamfuzz.bench.report import BenchReport, MachineBench, markdown, write
from kalamfuzz.campaign.engine import Budget, CampaignConfig
from kalamfuzz.errors import ConfigError
from kalamfuzz.machines.base import ALL_MACHINES

__all__ = ["PARTS_OF_BENCH", "BenchConfig", "BenchReport", "markdown", "run", "write"]

PARTS_OF_BENCH = ("fuzzer", "growth", "detection")


@frozen
class BenchConfig:
    target: str = "sim"
    parts: tuple[str, ...] = PARTS_OF_BENCH
    machines: tuple[str, ...] = ALL_MACHINES
    examples: int = 40
    runs: int = 3
    growth_machine: str = "data"
    growth_examples: int = 10
    sizes: tuple[int, ...] = SIZES
    bugs: tuple[str, ...] = field(factory=lambda: tuple(HUNTER))
    seeds: int = 5
    jobs: int = 2

    def __attrs_post_init__(self) -> None:
        unknown = [p for p in self.parts if p not in PARTS_OF_BENCH]
        if unknown:
            raise ConfigError(
                f"no bench part {unknown[0]!r}", hint="use some of: " + ",".join(PARTS_OF_BENCH)
            )
        if "detection" in self.parts and self.target != "sim":
            raise ConfigError(
                "detection needs the sim's planted bugs",
                hint="leave detection out (--parts fuzzer,growth) or use --target sim",
            )
        bad = [b for b in self.bugs if b not in HUNTER]
        if bad:
            raise ConfigError(f"no planted bug {bad[0]!r}", hint="kalamfuzz sim --list-bugs")


def run(cfg: BenchConfig, say: Callable[[str], None] = print) -> BenchReport:
    """Run the parts ``cfg`` asks for; ``say`` gets a line as each measurement ends."""
    base = CampaignConfig(
        target=cfg.target, budget=Budget(examples=cfg.examples), regressions_dir=None
    )
    fuzzer: list[MachineBench] = []
    if "fuzzer" in cfg.parts:
        for name in cfg.machines:
            fuzzer.append(_machine(evolve(base, machine=name), cfg.runs, say))
    growth = []
    if "growth" in cfg.parts:
        config = evolve(
            base, machine=cfg.growth_machine, budget=Budget(examples=cfg.growth_examples)
        )
        for rows in cfg.sizes:
            growth.append(g := grow(config, rows, cfg.runs))
            say(
                f"growth {rows:>6,} rows: check {g.check_ms:.1f} ms "
                f"({g.check_server_ms:.1f} ms server), step {g.ms_per_step:.1f} ms, "
                f"model {g.model_bytes / 2**20:.1f} MB"
            )
    detection = detect(cfg.bugs, cfg.seeds, cfg.jobs, say) if "detection" in cfg.parts else []
    servers = [r.server for m in fuzzer for r in m.runs] + [
        r.server for g in growth for r in g.runs
    ]
    return BenchReport(
        cfg.target, servers[0] if servers else "", tuple(fuzzer), tuple(growth), tuple(detection)
    )


def _machine(config: CampaignConfig, runs: int, say: Callable[[str], None]) -> MachineBench:
    measured, ceilings = [], []
    for r in range(runs):
        m, recorder = measure(evolve(config, seed=r))
        tag = recorder.tag
        if tag is None:
            raise ConfigError(
                f"the {config.machine} campaign sent no statement to replay",
                hint="raise --examples",
            )
        sim_config = config.sim_config if config.target == "sim" else None
        ceilings.append(replay(recorder.operations, tag, config.target, sim_config))
        measured.append(m)
        say(
            f"{config.machine} run {r + 1}/{runs}: {m.steps_per_s:.1f} steps/s, "
            f"{m.statements_per_s:.1f} ops/s, ceiling {ceilings[-1].per_s:.1f} ops/s"
        )
    return MachineBench(config.machine, tuple(measured), tuple(ceilings))
