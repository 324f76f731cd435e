"""Faults: the server killed (between steps, during a flush job, during a burst of writes,
during snapshot paging) or stopped gracefully, and started again on the same data.

Every write acknowledged before the fault must be there after it; one whose reply the fault cut
off is an unknown outcome, which the reads after the restart decide. A flush job the fault
interrupted may have written any part of its files: the rows stay predicted, the files must be
whole. Subscriptions resume from the last ``_seq`` they saw.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from kalamfuzz.adapters import observe
from kalamfuzz.errors import ConfigError
from kalamfuzz.machines.driver.data import DataSteps
from kalamfuzz.machines.driver.transcript import now_ms, reply_of
from kalamfuzz.model import Insert, Restart, Succeeded
from kalamfuzz.model.rows import Window
from kalamfuzz.model.values import Value
from kalamfuzz.observations import StatementObservation


class FaultSteps(DataSteps):
    def can_crash(self) -> bool:
        return self.target.skip_reason("kill") is None

    def can_fault_network(self) -> bool:
        return self.target.skip_reason("proxy") is None

    def crash(self) -> None:
        """SIGKILL the server between steps (its jobs ended) and start it on the same data."""
        with self._step("crash"):
            self._need_process()
            self._poll_jobs(wait=True)
            self._restart("SIGKILL; restart", graceful=False)

    def graceful_restart(self) -> None:
        """SIGINT (KalamDB waits for running jobs, up to a timeout) and start again."""
        with self._step("graceful_restart"):
            self._need_process()
            self._restart("SIGINT; restart", graceful=True)

    def crash_during_flush(self, table: str, delay_ms: int | None) -> None:
        """Start a flush job and SIGKILL the server ``delay_ms`` later (None: as soon as
        ``system.jobs`` shows the job running)."""
        with self._step("crash_during_flush", table, delay_ms):
            self._need_process()
            obs = self._request_flush("root", table)
            if delay_ms is not None:
                self._wait(time.sleep, delay_ms / 1000)
                when = f"{delay_ms} ms into a flush"
            else:
                self._until_running(obs.job_id)
                when = "once the flush job ran"
            self._restart(f"SIGKILL {when}; restart", graceful=False)

    def _until_running(self, job_id: str | None, timeout: float = 2.0) -> None:
        """Poll ``system.jobs`` (1 ms apart) until the job leaves the queue."""
        deadline = time.monotonic() + timeout
        while job_id is not None and time.monotonic() < deadline:
            job = self._call(self._admin().jobs_by_id, [job_id]).get(job_id)
            if job is None or job.status not in ("new", "queued"):
                return
            self._wait(time.sleep, 0.001)

    def crash_during_burst(
        self, actor: str, table: str, rows: Sequence[Mapping[str, Value]], delay_ms: int
    ) -> None:
        """Insert ``rows`` one by one from another thread and SIGKILL the server ``delay_ms``
        into the burst: what was acknowledged must stay, the insert in flight may or may not."""
        with self._step("crash_during_burst", actor, table, [dict(r) for r in rows], delay_ms):
            self._need_process()
            client = self.client(actor)
            ops = [Insert(self.user_id(actor), self.table_id(table), (dict(r),)) for r in rows]
            stop = threading.Event()
            replies: list[tuple[Insert, StatementObservation, Window]] = []

            def burst() -> None:
                for op in ops:
                    if stop.is_set():
                        return
                    sent = now_ms()
                    obs = observe.statement(client, op.to_sql())
                    replies.append((op, obs, Window(sent, max(sent, now_ms()))))
                    if obs.lost or obs.code == "UNREACHABLE":
                        return

            writer = threading.Thread(target=burst, name="kalamfuzz-burst", daemon=True)
            writer.start()
            self._wait(time.sleep, delay_ms / 1000)
            stop.set()

            def settle() -> None:
                for op, obs, at in replies:
                    if obs.code == "UNREACHABLE":
                        # Refused at connect: never ran. Only the transcript shows it.
                        self._exchange(actor, "sql", op.to_sql(), reply_of(obs), at)
                    else:
                        self._settle(actor, op, obs, at)

            self._restart(
                f"SIGKILL {delay_ms} ms into a burst of {len(ops)} inserts; restart",
                graceful=False,
                while_down=writer.join,
                before_restart=settle,
            )

    def _need_process(self) -> None:
        reason = self.target.skip_reason("kill")
        if reason is not None:
            raise ConfigError(f"a crash needs process control: {reason}")

    def _restart(
        self,
        what: str,
        *,
        graceful: bool,
        while_down: Callable[[], None] = lambda: None,
        before_restart: Callable[[], None] = lambda: None,
    ) -> None:
        """Stop the server (SIGKILL or SIGINT) and start it on the same data; then the model
        restarts too (``before_restart``: what happened before the fault, settled once the
        server is back), the interrupted jobs report their end, every scope is read, and each
        subscription resumes from its last ``_seq``."""
        for actor in list(self._lives):
            self._log_ws(actor)
        # The sockets die with the server: no check or read may re-subscribe these.
        held, self._subs = dict(self._subs), {}
        self.events.add("crash")
        if graceful:
            self._call(self.target.restart, graceful=True)
            while_down()
        else:
            self._call(self.target.kill)
            while_down()
            self._call(self.target.start)
        for live in self._lives.values():
            live.close()
        self._lives.clear()
        self._ws_sent.clear()
        now = now_ms()
        before_restart()
        # What each subscription got before the fault (a snapshot still paging is cut off as it
        # stands), once the model knows every write it may have seen.
        for s in held.values():
            if not s.paged:
                self._check_sub_handle(s, quiescent=False)
        self._exchange("root", "fault", what, {}, Window(now, now))
        self.model.apply(Restart(), Succeeded())
        self._poll_jobs(wait=True)
        self._read_every_scope()
        for actor in dict.fromkeys(s.actor for s in held.values()):
            mine = {k: s for k, s in held.items() if s.actor == actor}
            self._resume_subs(actor, mine, read=False)
