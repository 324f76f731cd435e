"""``kalamfuzz run | replay | report | scenarios | sim | bench``.

Exit status: ``run`` 0 no new finding (known ones are counted, not failed), 1 new findings,
2 could not start; ``scenarios`` 0 all passed, 1 one failed, 2 one could not run; ``replay`` 0 all FIXED (or needing a real server on the sim), 1 some FAILED,
2 some ERROR; ``report`` 0, or 2 when there is none; ``bench`` 0 (or 2 on a bad target).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from kalamfuzz.campaign import known, regressions, workers
from kalamfuzz.campaign.engine import Budget, Campaign, CampaignConfig, Handler
from kalamfuzz.campaign.handlers import Console, Jsonl, Junit
from kalamfuzz.errors import ConfigError, KalamError
from kalamfuzz.machines import MACHINES, Driver
from kalamfuzz.machines.base import get_machine
from kalamfuzz.sim.bugs import BUGS

ENV_BUGS = "KALAMFUZZ_SIM_BUGS"
ENV_WORKER_INDEX = "KALAMFUZZ_WORKER_INDEX"
ENV_RUN_ID = "KALAMFUZZ_RUN_ID"


def _bugs(text: str | None) -> tuple[str, ...]:
    names = tuple(b.strip() for b in (text or "").split(",") if b.strip())
    known = {b.name for b in BUGS}
    unknown = [b for b in names if b not in known]
    if unknown:
        raise ConfigError(
            f"unknown planted bug(s): {', '.join(unknown)}",
            hint="kalamfuzz sim --list-bugs shows them all",
        )
    return names


def _target_and_bugs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        default=os.environ.get("KALAMFUZZ_TARGET") or "sim",
        help="sim | binary:PATH | url:URL (default: $KALAMFUZZ_TARGET or sim)",
    )
    p.add_argument(
        "--sim-bugs",
        default=os.environ.get(ENV_BUGS),
        metavar="A,B",
        help="planted sim bugs to switch on (kalamfuzz sim --list-bugs)",
    )


def _known_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--known-issues",
        default=None,
        metavar="FILE",
        help="known findings to count and go past instead of failing on (default "
        f"{known.DEFAULT_FILE} if it exists; 'none' for none)",
    )


def _run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a fuzzing campaign")
    _target_and_bugs(p)
    p.add_argument("--budget", default="10m", help="time (90s, 10m, 1h) or examples (200)")
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the first round (default random)"
    )
    p.add_argument(
        "--machine",
        default="combined",
        choices=[*sorted(MACHINES), "all"],
        metavar="NAME",
        help="one of: "
        + ", ".join(MACHINES)
        + ", or all (each machine in turn, an equal share of the budget; default combined)",
    )
    _known_option(p)
    p.add_argument("--steps", type=int, default=25, help="steps per example (default 25)")
    p.add_argument(
        "--shrink-runs",
        type=int,
        default=100,
        help="work bound on shrinking one failure: examples run (default 100)",
    )
    p.add_argument(
        "--shrink-seconds",
        type=float,
        default=300.0,
        help="time bound on shrinking one failure, on top of --shrink-runs (default 300)",
    )
    p.add_argument(
        "--regressions",
        type=Path,
        default=regressions.DEFAULT_DIR,
        help="where failures are saved (default regressions/)",
    )
    p.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    p.add_argument("--history", type=Path, help="write every request and response (JSONL) here")
    p.add_argument(
        "--database",
        default=None,
        metavar="DIR|redis://HOST:PORT/N",
        help="Hypothesis example database: failing examples are saved there and replayed "
        "first by the next run (default: none; with --workers, a temporary directory)",
    )
    p.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="campaigns at once, each against its own target, sharing the example database "
        "and the findings (default 1; see docs/workers.md)",
    )
    p.add_argument(
        "--worker-index",
        default=os.environ.get(ENV_WORKER_INDEX) or None,
        metavar="I",
        help=f"run only worker I of --workers N (0 to N-1; default ${ENV_WORKER_INDEX}): one "
        "machine's part of a campaign spread over many",
    )
    p.add_argument(
        "--run-id",
        default=os.environ.get(ENV_RUN_ID) or "",
        metavar="ID",
        help="the campaign every --worker-index of it shares, so they share their findings "
        f"(default ${ENV_RUN_ID})",
    )


def _count(option: str, text: str, hint: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"bad {option} {text!r}", hint=hint) from None


def _run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    bugs = _bugs(args.sim_bugs)
    command = (
        f"kalamfuzz run --target {args.target} --machine {args.machine} --seed {seed} "
        f"--budget {args.budget}" + (f" --sim-bugs {','.join(bugs)}" if bugs else "")
    )
    config = CampaignConfig(
        target=args.target,
        machine=args.machine,
        budget=Budget.parse(args.budget),
        seed=seed,
        bugs=bugs,
        steps=args.steps,
        shrink_runs=args.shrink_runs,
        shrink_seconds=args.shrink_seconds,
        regressions_dir=args.regressions,
        command=command,
        known_issues=_known_issues(args.known_issues),
        database=args.database or None,
        workers=_count("--workers", args.workers, "give a number of workers >= 1"),
        run_id=args.run_id,
    )
    index = (
        None
        if args.worker_index is None
        else _count("--worker-index", args.worker_index, "give a worker index from 0 to N-1")
    )
    workers.check(config, index)
    handlers: list[Handler] = [Console()]
    if args.junit:
        handlers.append(Junit(args.junit))
    if args.history:
        handlers.append(Jsonl(args.history))
    if index is not None:
        # One machine's part of a campaign spread over many (a CI matrix, an Indexed Job).
        return Campaign(workers.worker_config(config, index), handlers).run().exit_code
    return workers.run(config, handlers, exchanges=args.history is not None).exit_code


def _known_issues(option: str | None) -> known.KnownIssues:
    """The known-issues file: the one named, none for ``none``, else the default if present."""
    if option is not None and option.lower() == "none":
        return known.KnownIssues(source="--known-issues none")
    if option is None:
        if not known.DEFAULT_FILE.is_file():
            # Said at the start of the run: a run outside the repository would otherwise
            # report every known KalamDB bug as new without a word.
            return known.KnownIssues(
                source=f"no {known.DEFAULT_FILE} in this directory; pass --known-issues PATH"
            )
        return known.KnownIssues.load(known.DEFAULT_FILE)
    return known.KnownIssues.load(Path(option))


def _scenarios_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("scenarios", help="run the seed scenario suite (E2E, live, stress)")
    _target_and_bugs(p)
    p.add_argument(
        "--scale",
        default="smoke",
        choices=["smoke", "full"],
        help="smoke: shrunk sizes for CI (default); full: the seed's numbers",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="ID",
        help="scenario ids or stories (e2e, live, stress)",
    )
    _known_option(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("scenario-results"),
        help="where the JSON report, summary, plot and failures go (default scenario-results/)",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")


def _scenarios(args: argparse.Namespace) -> int:
    from kalamfuzz import scenarios

    chosen = scenarios.select(args.only)
    if args.list:
        for sc in chosen:
            covers = f"  [{', '.join(sc.covers)}]" if sc.covers else ""
            print(f"{sc.id}  {sc.title}{covers}")
        return 0
    issues = _known_issues(args.known_issues)
    print(
        f"known issues: {len(issues.issues)} from {issues.source}"
        if issues.issues
        else f"known issues: none ({issues.source})"
    )
    report = scenarios.run_suite(
        args.target,
        scenarios.SCALES[args.scale],
        chosen,
        bugs=_bugs(args.sim_bugs),
        out=args.out,
        known=issues,
    )
    print()
    print(scenarios.summary(report))
    for path in scenarios.write(report, args.out):
        print(f"wrote {path}")
    return report.exit_code


def _replay_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="rerun saved regressions: FIXED / FAILED / ERROR")
    p.add_argument("which", nargs="*", help="short ids, names or paths (default: all)")
    p.add_argument(
        "--dir",
        type=Path,
        default=regressions.DEFAULT_DIR,
        help="the regressions directory (default regressions/)",
    )
    p.add_argument("--target", default=None, help="default: $KALAMFUZZ_TARGET or the plain sim")
    p.add_argument(
        "--with-bugs",
        action="store_true",
        help="switch on the planted bugs each regression records (sim only)",
    )


def _replay(args: argparse.Namespace) -> int:
    paths = regressions.resolve(args.which, args.dir)
    if not paths:
        print(f"no regressions saved in {args.dir}: nothing to replay")
        return 0

    def open_driver(recorded: Sequence[str], tolerate: Sequence[str] = ()):  # type: ignore[no-untyped-def]
        bugs = tuple(recorded) if args.with_bugs else ()
        return Driver.open(args.target, bugs=bugs, tolerate=tolerate)

    kind = regressions.target_kind(args.target)
    counts = dict.fromkeys(regressions.Status, 0)
    for path in paths:
        result = regressions.replay_one(path, open_driver, kind)
        counts[result.status] += 1
        print(f"{result.status.value:<6} {path}")
        for line in result.detail.splitlines()[:8]:
            print(f"         {line}")
    print(", ".join(f"{n} {s.value}" for s, n in counts.items()))
    if counts[regressions.Status.ERROR]:
        return 2
    return 1 if counts[regressions.Status.FAILED] else 0


def _report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="print the upstream-ready report of a saved finding")
    p.add_argument(
        "which",
        nargs="*",
        help="regressions' short ids, names or paths (with --write, default: all of them)",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=regressions.DEFAULT_DIR,
        help="the regressions directory (default regressions/)",
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="render each report again from its regression file, transcript and notes "
        "(offline, no server) and write it beside them",
    )


def _report(args: argparse.Namespace) -> int:
    if not args.which and not args.write:
        raise ConfigError(
            "which report?", hint="give a short id, a name or a path (kalamfuzz replay lists them)"
        )
    paths = regressions.resolve(args.which, args.dir)
    if args.write:
        for path in paths:
            md = regressions.rewrite_report(path)
            words = len(md.read_text(encoding="utf-8").split())
            print(f"wrote {md} ({words} words)")
        return 0
    for path in paths:
        md = path.with_suffix(".md")
        if not md.is_file():
            raise ConfigError(
                f"{path} has no report beside it ({md.name})",
                hint="reports are written with each regression by kalamfuzz run",
            )
        print(md.read_text(encoding="utf-8"), end="")
    return 0


def _bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from kalamfuzz.bench import PARTS_OF_BENCH, BenchConfig

    d = BenchConfig()
    p = sub.add_parser(
        "bench",
        help="the fuzzer against the target's ceiling, a step's cost by part and by table size, "
        "time to detect each planted bug",
    )
    p.add_argument("--target", default="sim", help="sim (default), binary:PATH or url:URL")
    p.add_argument(
        "--parts",
        default=",".join(PARTS_OF_BENCH),
        help=f"comma-separated, of {','.join(PARTS_OF_BENCH)} (default all; detection: sim only)",
    )
    p.add_argument("--machines", default=",".join(d.machines), help="comma-separated machines")
    p.add_argument("--examples", type=int, default=d.examples, help="examples per run (default 40)")
    p.add_argument(
        "--runs", type=int, default=d.runs, help="runs per measurement, medians reported (3)"
    )
    p.add_argument("--growth-machine", default=d.growth_machine, help="default data")
    p.add_argument(
        "--growth-examples",
        type=int,
        default=d.growth_examples,
        help="examples per growth run (10)",
    )
    p.add_argument(
        "--sizes",
        default=",".join(map(str, d.sizes)),
        help="rows per table scope for growth (default 100,5000,50000)",
    )
    p.add_argument("--bugs", default="", help="planted bugs to detect (default: every one)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="seeds per bug (default 5)")
    p.add_argument("--jobs", type=int, default=d.jobs, help="detection campaigns at once (2)")
    p.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="where bench.json/.md and plots go"
    )


def _bench(args: argparse.Namespace) -> int:
    from kalamfuzz import bench

    def listed(text: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in text.split(",") if x.strip())

    try:
        sizes = tuple(int(x) for x in listed(args.sizes))
    except ValueError:
        raise ConfigError(f"bad --sizes {args.sizes!r}", hint="e.g. --sizes 100,5000") from None
    machines = listed(args.machines)
    for name in machines:
        get_machine(name)
    cfg = bench.BenchConfig(
        target=args.target,
        parts=listed(args.parts),
        machines=machines,
        examples=args.examples,
        runs=args.runs,
        growth_machine=get_machine(args.growth_machine).name,
        growth_examples=args.growth_examples,
        sizes=sizes,
        bugs=listed(args.bugs) or bench.BenchConfig().bugs,
        seeds=args.seeds,
        jobs=args.jobs,
    )
    report = bench.run(cfg)
    print()
    print(bench.markdown(report))
    for path in bench.write(report, args.out):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        from kalamfuzz.sim.cli import main as sim_main

        return sim_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="kalamfuzz", description="Model-based stateful fuzzing of KalamDB."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="run|replay|report|scenarios|sim|bench"
    )
    _run_parser(sub)
    _scenarios_parser(sub)
    _replay_parser(sub)
    _report_parser(sub)
    sub.add_parser("sim", help="run the embedded target (kalamfuzz sim --help)")
    _bench_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "report":
            return _report(args)
        if args.command == "scenarios":
            return _scenarios(args)
        return _bench(args)
    except KalamError as exc:
        print(f"kalamfuzz {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kalamfuzz {args.command}: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
