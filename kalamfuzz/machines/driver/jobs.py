"""Flush jobs, the cold tier they leave, and a storage that cannot be written."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from functools import partial
from pathlib import Path

from kalamfuzz import invariants as inv
from kalamfuzz.adapters import observe
from kalamfuzz.adapters.faults import BlockedDirectory
from kalamfuzz.adapters.system import Job
from kalamfuzz.errors import JobTimeout
from kalamfuzz.invariants.violation import Verdict
from kalamfuzz.machines.driver.core import CLEANUP_S, JOB_TIMEOUT_S, checks
from kalamfuzz.machines.driver.subscriptions import SubscriptionSteps
from kalamfuzz.machines.driver.transcript import (
    InvariantViolation,
    now_ms,
)
from kalamfuzz.model import (
    Flush,
    JobFinished,
    Select,
    SetStorageWritable,
    Succeeded,
    TableId,
)
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.rows import ScopeKey, Window
from kalamfuzz.observations import StatementObservation


class JobSteps(SubscriptionSteps):
    def flush_requested(self, table: str) -> bool:
        """Whether this example asked to flush ``table`` (whatever became of it)."""
        return table in self._flushed

    def broken_storages(self) -> set[str]:
        return set(self._blocked)

    def flush(self, actor: str, table: str, wait: bool = False) -> None:
        """Start a flush job; with ``wait`` block until it ends, else it is checked when it
        ends (at ``wait_jobs`` or a later step)."""
        with self._step("flush", actor, table, wait=wait or None):
            self._request_flush(actor, table)
            self._poll_jobs(wait=wait)

    def _request_flush(self, actor: str, table: str) -> StatementObservation:
        """STORAGE FLUSH TABLE, checked; the reply names the job it started, if any."""
        self._flushed.add(table)
        table_id = self.table_id(table)
        if self._tombstone_over_cold(table_id):
            self.events.add("flush-over-tombstone")
        try:
            return self._statement(actor, Flush(self.user_id(actor), table_id))
        except InvariantViolation:
            # A flush skipped although rows are pending may only show that they are gone:
            # the reads say so (item 2), which comes before its consequence here.
            self._read_tables([table_id])
            raise

    def _tombstone_over_cold(self, table_id: TableId) -> bool:
        """Whether a tombstone in the hot tier hides a cold row of the table (what a flush must
        keep, and KalamDB drops when the flush also writes live rows)."""
        for state in self.model.states:
            for scope in state.scopes(table_id).values():
                cold = scope.cold_keys()
                if any(v.deleted and v.key in cold for v in scope.hot):
                    return True
        return False

    def _pending_jobs(self) -> list[str]:
        ids: list[str] = []
        for state in self.model.states:
            # (a lost table's jobs are no longer followed: one may never end)
            ids += [
                j
                for j, job in state.jobs.items()
                if not job.status.finished and not self.model.lost(job.table_id)
            ]
        return list(dict.fromkeys(ids))

    @checks
    def _poll_jobs(self, wait: bool = False) -> None:
        """Look up every job the model has running (one query), and settle the ended ones: the
        job's verdict, then its table's cold files."""
        pending = self._pending_jobs()
        if not pending:
            return
        admin = self._admin()
        if wait:
            try:
                rows = self._call(admin.wait_jobs, pending, timeout=JOB_TIMEOUT_S, poll=0.005)
            except JobTimeout:
                rows = self._call(admin.jobs_by_id, pending)
                if not self._stuck(pending, rows):
                    raise
        else:
            rows = self._call(admin.jobs_by_id, pending)
        ended = [j for j in pending if j in rows and JobStatus(rows[j].status or "new").finished]
        tables: list[TableId] = []
        for job_id in ended:
            obs = observe.job(rows[job_id])
            self.ended_jobs.append(obs)
            now = now_ms()
            self._exchange(
                "root",
                "sql",
                f"SELECT job_id, status, message FROM system.jobs WHERE job_id = '{job_id}'",
                {
                    "status": 200,
                    "columns": ["job_id", "status", "message"],
                    "rows": [[job_id, obs.status, obs.message]],
                },
                Window(now, now),
            )
            op = JobFinished(job_id)
            table_id = self.model.states[0].jobs[job_id].table_id
            forks = self.model.run(op)
            passed = self._judge(inv.check_job(forks, op, obs), f"job {job_id} of {table_id}")
            # Known or not, the model follows the status the server reports.
            self.model.apply(op, inv.outcome(obs), forks=forks)
            if not passed:
                # A job that ended otherwise than predicted may have flushed some scopes.
                self._relearn_table(table_id)
            tables += [table_id] if table_id not in tables else []
        # The files once every ended job is settled: with one still marked running, the
        # listing (where the files landed) would wait, and a scope's check come first.
        if tables:
            self._check_cold(tables)
        for table_id in tables:
            self._read_kept(table_id)

    def _stuck(self, pending: list[str], rows: Mapping[str, Job]) -> bool:
        """Judge the jobs still running after the wait, if a restart interrupted each (a finding;
        the model then gives their tables up: nothing can be flushed there any more). False when
        one was not: then the timeout stands."""
        stuck = [j for j in pending if j in rows and not JobStatus(rows[j].status).finished]
        verdicts = [
            inv.check_job_running(self.model, observe.job(rows[j]), JOB_TIMEOUT_S) for j in stuck
        ]
        if not stuck or any(v.ok for v in verdicts):
            return False
        for job_id, verdict in zip(stuck, verdicts, strict=True):
            table_id = self.model.states[0].jobs[job_id].table_id
            self._judge(verdict, f"job {job_id} of {table_id}")
            self.model.abandon(table_id)
        return True

    @checks
    def _read_kept(self, table_id: TableId) -> None:
        """Read the scopes where a tombstone hides a cold row: a flush must keep it there (KalamDB
        drops it when the flush also writes live rows, and the row comes back)."""
        table = self.model.table(table_id)
        if table is None:
            return
        for key, scope in self.model.states[0].scopes(table_id).items():
            if scope.kept and scope.cold:
                reader = self._logical(key) if key is not None else "root"
                self._query(reader, Select(self.user_id(reader), table_id))

    def wait_jobs(self) -> None:
        """Wait until every flush job started so far has ended, and check what it left."""
        with self._step("wait_jobs"):
            self._poll_jobs(wait=True)

    @checks
    def _check_cold(self, tables: Collection[TableId] | None = None) -> None:
        """The listing of every storage (nothing landed in the wrong place), then the files of
        each flushed scope of ``tables`` (default: all)."""
        if self.target.skip_reason("data_dir"):
            return
        # A job still running may be writing files right now: its table's scopes are checked
        # once the model has seen it end, and its directories are left out of the listing.
        busy = frozenset(
            job.table_id
            for state in self.model.states
            for job in state.jobs.values()
            if not job.status.finished
        )
        # Where the files landed first: files under the wrong storage are a routing finding
        # (item 8), of which the scope's missing manifest is only the consequence.
        bases = {s.base_directory for s in self.model.states[0].catalog.storages.values()}
        namespaces = sorted(n for n in self.model.states[0].catalog.namespaces if self._ours(n))
        dirs = [Path(b) / ns for b in sorted(bases) for ns in namespaces]
        verdict = self._settled(
            lambda: self._judging(
                inv.check_storage, self.model, self._call(observe.storage_listing, dirs), busy
            ),
            any(
                sc.clearable
                for st in self.model.states
                for t in st.data.values()
                for sc in t.values()
            ),
        )
        if self._judge(verdict, "storage listing"):
            self.model.narrow(verdict.consistent, verdict.learned)
        scopes: list[tuple[TableId, str | None]] = []
        for state in self.model.states:
            scopes += [s for s in state.flushed_scopes() if s not in scopes]
        for tid, key in scopes:
            if (tables is not None and tid not in tables) or tid in busy:
                continue
            directory = self.model.states[0].expected_cold(tid, key).directory
            verdict = self._settled(
                partial(self._check_scope, tid, key, directory),
                any(st.scope(tid, key).clearable for st in self.model.states),
            )
            if self._judge(verdict, f"cold files of {tid} scope {key or 'shared'}"):
                self.model.narrow(verdict.consistent, verdict.learned)
            else:
                self._relearn_scope(tid, key or "root")

    def _check_scope(self, table_id: TableId, key: ScopeKey, directory: str) -> Verdict:
        listing = self._call(observe.cold_scope, directory)
        return self._judging(inv.check_cold, self.model, table_id, key, listing)

    def _settled(self, check: Callable[[], Verdict], cleanup_may_run: bool) -> Verdict:
        """``check()`` of files on disk; when it fails while KalamDB's SHARED cleanup may be
        deleting files right now, again once the cleanup has had the time to finish."""
        verdict = check()
        if not verdict.ok and cleanup_may_run:
            self._wait(time.sleep, CLEANUP_S)
            verdict = check()
        return verdict

    def break_storage(self, storage: str) -> None:
        """Make the storage's directory for this namespace unwritable (flushes to it fail)."""
        with self._step("break_storage", storage):
            if storage in self._blocked:
                return
            base = self._storage_base(storage)
            blocked = BlockedDirectory(base / self.namespace)
            self._call(blocked.block)
            self._blocked[storage] = blocked
            self.model.apply(SetStorageWritable(self._storage_id(storage), False), Succeeded())

    def repair_storage(self, storage: str) -> None:
        with self._step("repair_storage", storage):
            blocked = self._blocked.pop(storage, None)
            if blocked is None:
                return
            self._call(blocked.restore)
            self.model.apply(SetStorageWritable(self._storage_id(storage), True), Succeeded())

    def _storage_base(self, storage: str) -> Path:
        sid = self._storage_id(storage)
        return Path(self.model.states[0].catalog.storages[sid].base_directory)

    def pause(self, seconds: float) -> None:
        """Let time pass (STREAM rows expire)."""
        with self._step("pause", seconds):
            self._wait(time.sleep, seconds)
            self._check_live(None)
            self._poll_jobs()
