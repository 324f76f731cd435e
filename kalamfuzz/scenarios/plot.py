"""The suite's resource plot: the server's RSS and CPU over the run and each SELECT's latency,
with the seed's thresholds drawn (RSS +10% in steady load and back within 5% of the baseline,
CPU 80%, query p95 500 ms)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kalamfuzz.scenarios.suite import SuiteReport

CPU_LIMIT_PCT = 80.0
P95_LIMIT_MS = 500.0
RSS_GROWTH = 0.10
RSS_RELEASE = 0.05


def plot(report: SuiteReport, path: Path) -> Path | None:
    """Write the PNG; None when nothing was sampled (a ``url:`` target)."""
    if not any(o.samples for o in report.outcomes):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_cpu, ax_lat) = plt.subplots(3, 1, figsize=(14, 9), sharex=True)
    t0 = report.started
    for o in report.outcomes:
        if not o.samples:
            continue
        xs = [s.at - t0 for s in o.samples]
        ax_rss.plot(xs, [s.rss_mb for s in o.samples], lw=1, color="tab:blue")
        ax_cpu.plot(xs, [s.cpu_pct for s in o.samples], lw=1, color="tab:orange")
        start, end = xs[0], xs[-1]
        for ax in (ax_rss, ax_cpu, ax_lat):
            ax.axvline(start, color="0.85", lw=0.8)
        ax_rss.annotate(
            o.id,
            (start, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=6,
            rotation=90,
            va="top",
            color="0.4",
        )
        base = o.measures.get("rss_baseline_mb")
        if base:
            ax_rss.hlines(
                base * (1 + RSS_GROWTH), start, end, colors="tab:red", linestyles="--", lw=1
            )
            ax_rss.hlines(
                base * (1 + RSS_RELEASE), start, end, colors="tab:green", linestyles=":", lw=1
            )
        if o.latencies:
            ax_lat.scatter(
                [at / 1000 - t0 for at, _ in o.latencies],
                [ms for _, ms in o.latencies],
                s=2,
                color="tab:purple",
            )
    ax_cpu.axhline(CPU_LIMIT_PCT, color="tab:red", ls="--", lw=1)
    ax_lat.axhline(P95_LIMIT_MS, color="tab:red", ls="--", lw=1)
    ax_rss.set_ylabel("server RSS (MiB)")
    ax_cpu.set_ylabel("server CPU (% of machine)")
    ax_lat.set_ylabel("SELECT latency (ms)")
    ax_lat.set_yscale("log")
    ax_lat.set_xlabel("seconds since the suite started")
    ax_rss.set_title(
        f"{report.server or report.target}, scale {report.scale}: red dashed = RSS +10% of the "
        "scenario's baseline / CPU 80% / p95 500 ms; green dotted = baseline +5%",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
