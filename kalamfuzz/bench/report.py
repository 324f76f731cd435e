"""The benchmark's outputs: ``bench.json`` (every run's numbers), ``bench.md`` (the tables, each
target met or not) and the plots (``fuzzer.png``, ``growth.png``, ``detection.png``)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from kalamfuzz.bench.ceiling import Ceiling
from kalamfuzz.bench.detection import Detection
from kalamfuzz.bench.growth import Growth
from kalamfuzz.bench.measure import PARTS, Measured

#: The issue's targets.
CEILING_RATIO = 0.5
CHECKING_SHARE = 0.10
FLAT_GROWTH = 1.25  # the check at the largest size over the smallest (noise allowed)
DETECT_S = 60.0


@frozen
class MachineBench:
    machine: str
    runs: tuple[Measured, ...]
    ceilings: tuple[Ceiling, ...]

    def median(self, value: Callable[[Measured], float]) -> float:
        return statistics.median(value(r) for r in self.runs)

    @property
    def ceiling_per_s(self) -> float:
        return statistics.median(c.per_s for c in self.ceilings) if self.ceilings else 0.0

    @property
    def ratio(self) -> float:
        """The fuzzer's operations per second over the ceiling's (median of the runs' ratios)."""
        pairs = zip(self.runs, self.ceilings, strict=False)
        ratios = [r.statements_per_s / c.per_s for r, c in pairs if c.per_s]
        return statistics.median(ratios) if ratios else 0.0

    def shares(self) -> dict[str, float]:
        """Each part's share of a step's time (median run)."""
        return {p: statistics.median(r.split.shares()[p] for r in self.runs) for p in PARTS}

    def parts_ms(self) -> dict[str, float]:
        """Milliseconds per step in each part (median run)."""
        return {
            p: statistics.median(1000 * r.split.as_dict()[p] / max(1, r.steps) for r in self.runs)
            for p in PARTS
        }


@frozen
class BenchReport:
    target: str
    server: str
    fuzzer: tuple[MachineBench, ...] = ()
    growth: tuple[Growth, ...] = ()
    detection: tuple[Detection, ...] = ()


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _num(x: float | None, fmt: str = ".1f") -> str:
    if x is None:
        return "not found"
    return "inf" if math.isinf(x) else format(x, fmt)


def markdown(r: BenchReport) -> str:
    out = [f"# kalamfuzz bench: {r.server or r.target}", ""]
    if r.fuzzer:
        out += _fuzzer_table(r.fuzzer)
    if r.growth:
        out += _growth_table(r.growth)
    if r.detection:
        out += _detection_table(r.detection)
    return "\n".join(out) + "\n"


#: Columns that hold names or text, not numbers.
TEXT = ("machine", "items")


def _section(
    title: str, text: str, target: str, header: Sequence[str], rows: list[list[str]]
) -> list[str]:
    """A titled markdown table: numbers right-aligned, names and text (``TEXT``) left."""
    align = ["---" if i == 0 or h in TEXT else "---:" for i, h in enumerate(header)]
    return [
        f"## {title}",
        "",
        text,
        "",
        target,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def _fuzzer_table(machines: Sequence[MachineBench]) -> list[str]:
    ratio_ok = all(m.ratio >= CEILING_RATIO for m in machines)
    share_ok = all(m.median(lambda r: r.checking_share) <= CHECKING_SHARE for m in machines)
    rows = [
        [
            m.machine,
            f"{m.median(lambda r: r.steps_per_s):.1f}",
            f"{m.median(lambda r: r.statements_per_s):.1f}",
            f"{m.ceiling_per_s:.1f}",
            f"{m.ratio:.0%}",
            f"{m.median(lambda r: r.operation_share):.0%}",
            *(f"{m.shares()[p]:.0%}" for p in PARTS),
        ]
        for m in machines
    ]
    return _section(
        "The fuzzer against the ceiling",
        f"Medians of {len(machines[0].runs)} runs. ops/s: the steps' own statements (checking reads "
        "not counted) per second of the campaign; ceiling: the same statements sent again by a "
        "plain client loop to a fresh target. ops share: the operations among all server "
        "calls. The split: where a step's time went (generation = Hypothesis and the rules' code).",
        f"Targets: ratio >= {CEILING_RATIO:.0%}: {_met(ratio_ok)}; model + invariants <= "
        f"{CHECKING_SHARE:.0%} of a step: {_met(share_ok)}.",
        ["machine", "steps/s", "ops/s", "ceiling ops/s", "ratio", "ops share", *PARTS],
        rows,
    )


def _growth_table(growth: Sequence[Growth]) -> list[str]:
    base, step = growth[0].check_ms, growth[0].ms_per_step
    flat = all(g.check_ms <= FLAT_GROWTH * base for g in growth) if base else False
    rows = [
        [
            f"{g.rows:,}",
            f"{g.check_ms:.1f}",
            f"{g.check_ms / base if base else 0:.2f}",
            f"{g.check_server_ms:.1f}",
            f"{1000 / g.ms_per_step if g.ms_per_step else 0:.1f}",
            f"{g.ms_per_step:.1f}",
            f"{g.ms_per_step / step if step else 0:.2f}",
            *(f"{g.parts_ms()[p]:.1f}" for p in PARTS),
            f"{g.model_bytes / 2**20:.1f}",
        ]
        for g in growth
    ]
    return _section(
        "Growth with table size",
        "Rows in each scope of every table before the rules run (setting them up not counted). "
        "check ms: a step's checking of what it did (read-backs, job polls, the sweep: server, "
        "model and invariants), of which check server ms is the target answering; ms/step and "
        "its parts: the whole step, its operation included (an UPDATE whose WHERE matches "
        "every row costs every row); model MB: the model alone, built to that size.",
        f"Target: flat cost of the check after a step (largest <= {FLAT_GROWTH:g} x smallest): "
        f"{_met(flat)}.",
        ["rows", "check ms", "x smallest", "check server ms", "steps/s", "ms/step", "x smallest"]
        + [f"{p} ms" for p in PARTS]
        + ["model MB"],
        rows,
    )


def _detection_table(detection: Sequence[Detection]) -> list[str]:
    seconds = [d.median("seconds") for d in detection]
    ok = all(s is not None and s < DETECT_S for s in seconds)
    rows = [
        [
            d.bug,
            d.machine,
            f"{d.found}/{len(d.hunts)}",
            _num(d.median("examples"), ".0f"),
            _num(s),
            _num(d.median("shrunk_steps"), ".0f"),
            ", ".join(sorted({i for h in d.hunts for i in h.items})),
        ]
        for d, s in zip(detection, seconds, strict=True)
    ]
    return _section(
        "Time to detect each planted bug",
        f"Median over {len(detection[0].hunts)} seeds of the bug's machine at the smoke budget "
        "(a seed that found nothing counts as slowest); seconds from the campaign's start, the "
        "server's too.",
        f"Target: every planted bug under {DETECT_S:g} s median: {_met(ok)}.",
        ["bug", "machine", "found", "examples", "seconds", "shrunk steps", "items"],
        rows,
    )


def write(r: BenchReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.md"]
    paths[0].write_text(json.dumps(_jsonable(r), indent=1), encoding="utf-8")
    paths[1].write_text(markdown(r), encoding="utf-8")
    return paths + _plots(r, out)


def _jsonable(r: BenchReport) -> dict[str, Any]:
    def derived(obj: Any) -> dict[str, Any]:
        d = attrs.asdict(obj, recurse=False)
        for k, v in d.items():
            if attrs.has(type(v)):
                d[k] = derived(v)
            elif isinstance(v, tuple):
                d[k] = [derived(x) if attrs.has(type(x)) else x for x in v]
        names = [n for n, a in vars(type(obj)).items() if isinstance(a, property)]
        return d | {n: getattr(obj, n) for n in names}

    return derived(r)


def _plots(r: BenchReport, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    if r.fuzzer:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        names = [m.machine for m in r.fuzzer]
        bottom = [0.0] * len(names)
        for p in PARTS:
            ms = [m.parts_ms()[p] for m in r.fuzzer]
            ax.bar(names, ms, bottom=bottom, label=p)
            bottom = [b + v for b, v in zip(bottom, ms, strict=True)]
        for i, m in enumerate(r.fuzzer):
            ax.annotate(f"{m.ratio:.0%} of ceiling", (i, bottom[i]), ha="center", va="bottom")
        ax.set_ylabel("ms per step (median run)")
        ax.set_title("Where a step's time goes, and the fuzzer's operation rate over the ceiling's")
        ax.legend(fontsize=8)
        paths.append(_save(fig, out / "fuzzer.png"))
    if r.growth:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        rows = [g.rows for g in r.growth]
        for p in PARTS:
            ax.plot(rows, [g.parts_ms()[p] for g in r.growth], marker="o", label=p)
        ax.plot(rows, [g.ms_per_step for g in r.growth], marker="s", color="k", label="step")
        ax.plot(rows, [g.check_ms for g in r.growth], marker="^", color="0.5", label="check")
        ax.plot(
            rows, [g.check_server_ms for g in r.growth], "^:", color="0.5", label="check: server"
        )
        ax.set_xscale("log")
        ax.set_xlabel("rows per scope")
        ax.set_ylabel("ms per step")
        mem = ax.twinx()
        mem.plot(rows, [g.model_bytes / 2**20 for g in r.growth], "k--", label="model MB")
        mem.set_ylabel("model MB (dashed)")
        ax.legend(fontsize=8, loc="upper left")
        ax.set_title("A step's cost and the model's size against table size")
        paths.append(_save(fig, out / "growth.png"))
    if r.detection:
        fig, ax = plt.subplots(figsize=(9, 0.3 * len(r.detection) + 1.5))
        names = [d.bug for d in r.detection]
        med = [d.median("seconds") for d in r.detection]
        shown = [DETECT_S * 2 if s is None or math.isinf(s) else s for s in med]
        colors = ["tab:red" if s is None or s >= DETECT_S else "tab:blue" for s in med]
        ax.barh(names, shown, color=colors)
        ax.axvline(DETECT_S, color="tab:red", ls="--", lw=1)
        ax.set_xlabel("median seconds to the first failure (red: not under 60 s)")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        paths.append(_save(fig, out / "detection.png"))
    return paths


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
