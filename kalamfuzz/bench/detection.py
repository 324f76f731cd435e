"""Time to detect: for every planted bug of the sim, the campaign of the machine whose domain it
belongs to, over several seeds; examples and seconds to the first failure and the shrunk length.

The budget is the smoke self-test's (tests/smoke imports it from here), so what the bench
measures is what CI relies on."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from attrs import frozen

from kalamfuzz.campaign.engine import Budget, Campaign, CampaignConfig

#: The machine whose domain each planted bug belongs to.
HUNTER = {
    "execute_as_wrong_scope": "data",
    "select_scope_leak": "data",
    "stream_ttl_unenforced": "ttl",
    "live_cross_user": "live",
    "snapshot_includes_deleted": "live",
    "batch_has_more_exact": "live",
    "live_multi_insert_first_only": "live",
    "live_update_old_values": "live",
    "live_delete_cold_missing": "live",
    "held_changes_reversed": "live",
    "resume_from_inclusive": "live",
    "flush_drops_concurrent_writes": "flush",
    "cold_shadows_hot": "flush",
    "flush_drops_tombstones": "flush",
    "manifest_row_count": "flush",
    "empty_batch_file": "flush",
    "dup_pk_cold": "flush",
    "user_writes_public_shared": "rbac",
    "failed_flush_drops_hot": "jobs",
    "wal_batched": "jobs",
    "drop_column_resurrects": "ddl",
    "flush_ignores_storage_id": "routing",
    # shaped like bugs a real KalamDB build has (regressions/known-issues.toml)
    "order_limit_resorted": "data",
    "failed_flush_clears_pending": "jobs",
    "flush_race_clears_pending": "flush",
    "dml_never_true_refused": "data",
    "restart_dml_blind": "jobs",
    "live_filter_leave_silent": "live",
    "live_filter_unsupported": "live",
    "pk_check_ignores_tombstones": "flush",
    "live_change_dropped_column": "ddl",
    # faults (issue 12)
    "partial_parquet_on_crash": "jobs",
    "retry_reinserts": "jobs",
    # concurrent clients and transactions (issue 22)
    "lost_update": "concurrency",
    "pk_insert_race": "concurrency",
    "dirty_read": "concurrency",
    "partial_commit": "concurrency",
    "live_before_commit": "concurrency",
    "weak_password_accepted": "hostile",
    "token_issuer_unchecked": "hostile",
    "role_claim_trusted": "hostile",
    "crash_on_sql_list": "hostile",
    "alter_ignores_owner": "ddl",
}

#: Examples per campaign: it stops at its first failure, most within 20.
EXAMPLES = 100
STEPS = 15
#: Shrinking is bounded by work, so a loaded machine shrinks as far as an idle one; the time
#: bound is only a safety net. A race's candidates get several tries each (minimize.races):
#: with 60 runs a CI run on a loaded machine stopped pk_insert_race at 12 steps.
SHRINK_RUNS = 100
SHRINK_SECONDS = 600.0


#: Bugs that need a write to land while a flush job runs. With the sim's usual 10 ms job, a
#: loaded machine often sends the write too late: shrinking then cannot make a short program
#: fail again (two CI runs sharing 2 cores with other work shrank them to 13 and 20 steps), and
#: a write that misses a 100 ms job makes the example fail later with another symptom, whose
#: shortest program is longer (CI at b6a5335: 18 steps). Their hunts give the job 300 ms, so
#: what is measured is kalamfuzz, not the machine's load (3 of 3 hunts, each beside two others
#: and a busy loop on 2 cores, shrank to at most 10 steps; 2 of 3 with 100 ms).
RACES = frozenset({"flush_drops_concurrent_writes", "flush_race_clears_pending"})
RACE_FLUSH_MS = 300


def config(
    machine: str, bugs: tuple[str, ...] = (), examples: int = EXAMPLES, seed: int = 0
) -> CampaignConfig:
    """The detection budget for ``machine`` with ``bugs`` on."""
    cfg = CampaignConfig(
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
    if RACES & set(bugs):
        cfg.sim_config = {"sim": {"flush_delay_ms": RACE_FLUSH_MS}}
    return cfg


@frozen
class Hunt:
    """One campaign after one bug: when it first failed (None: not within the budget)."""

    bug: str
    seed: int
    examples: int | None
    seconds: float | None
    shrunk_steps: int | None
    items: tuple[str, ...]


@frozen
class Detection:
    bug: str
    machine: str
    hunts: tuple[Hunt, ...]

    @property
    def found(self) -> int:
        return sum(h.seconds is not None for h in self.hunts)

    def median(self, attr: str) -> float | None:
        """The median over the seeds, a hunt that found nothing counting as slowest; None when
        half of them or more found nothing."""
        values = [getattr(h, attr) for h in self.hunts]
        found = sorted(v for v in values if v is not None)
        if len(found) * 2 <= len(values):
            return None
        ranked = found + [float("inf")] * (len(values) - len(found))
        return float(statistics.median(ranked))


def hunt(bug: str, seed: int) -> Hunt:
    finished = Campaign(config(HUNTER[bug], (bug,), seed=seed)).run()
    if not finished.failures:
        return Hunt(bug, seed, None, None, None, ())
    f = finished.failures[0]
    return Hunt(bug, seed, f.examples_to_failure, f.seconds_to_failure, f.steps, f.items)


def detect(
    bugs: Sequence[str], seeds: int, jobs: int, say: Callable[[str], None] = print
) -> list[Detection]:
    """Every bug over ``seeds`` seeds (0, 1000, 2000, ...), ``jobs`` campaigns at once; ``say``
    gets a line as each hunt ends (a full run takes an hour)."""
    tasks = [(bug, 1000 * s) for bug in bugs for s in range(seeds)]
    hunts = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for h in pool.map(hunt, *zip(*tasks, strict=True)):
            hunts.append(h)
            found = f"{h.seconds:.1f} s, {h.examples} examples" if h.seconds else "not found"
            say(f"detection {len(hunts)}/{len(tasks)} {h.bug} seed {h.seed}: {found}")
    return [Detection(bug, HUNTER[bug], tuple(h for h in hunts if h.bug == bug)) for bug in bugs]
