"""The driver as machines and regression files use it: the campaign's world, an example's
start and end, and the final sweep."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kalamfuzz.adapters.target import Target
from kalamfuzz.adapters.values import redact_sql
from kalamfuzz.errors import LiveError
from kalamfuzz.machines.driver.core import QUIET_S, checks
from kalamfuzz.machines.driver.hostile import HostileSteps
from kalamfuzz.machines.driver.transcript import (
    Exchange,
    now_ms,
    tolerating,
)
from kalamfuzz.machines.world import COLUMNS, STORAGES, TABLES, TENANTS, USERS, background
from kalamfuzz.model import (
    CreateNamespace,
    CreateStorage,
    CreateTable,
    Insert,
    Model,
    Role,
    Succeeded,
    Table,
)
from kalamfuzz.model.catalog import User


class Driver(HostileSteps):
    """Runs steps against ``target`` in lock-step with the model (see the package docstring)."""

    @classmethod
    @contextlib.contextmanager
    def open(
        cls,
        target: str | None = None,
        *,
        bugs: Sequence[str] = (),
        config: Any = None,
        tolerate: Sequence[str] = (),
        cast: Mapping[str, Role] | None = None,
        storages: Sequence[str] | None = None,
    ) -> Iterator[Driver]:
        """Start ``target`` (default ``$KALAMFUZZ_TARGET`` or the sim) and drive it.

        Regression files use this; planted ``bugs`` apply to the sim only. ``tolerate``: the
        signatures of known findings to count and go past (those the saved example went past).
        """
        with Target.parse(target, bugs=bugs, config=config) as t:
            driver = cls(
                t,
                triage=tolerating(frozenset(tolerate)) if tolerate else None,
                cast=dict(cast) if cast is not None else dict(USERS),
                storages=tuple(storages) if storages is not None else STORAGES,
            )
            try:
                yield driver
            finally:
                driver.close()

    def close(self) -> None:
        self._end_example()
        for c in [*self._clients.values(), *self._proxied.values(), *self._lanes.values()]:
            c.close()
        self._clients.clear()
        self._proxied.clear()
        self._lanes.clear()
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None

    def setup_world(self) -> None:
        """Users and storages, once per driver (they are global on the server)."""
        admin = self._admin()
        for name, role in self.cast.items():
            user_id = f"kf_{self.tag}_{name}"
            password = secrets.token_urlsafe(12)
            admin.create_user(user_id, password, role=role.value)
            self._users[name] = user_id
            self._clients[name] = admin.login_as(user_id, password)
            self._setup_exchange(
                f"CREATE USER {user_id} WITH PASSWORD '{password}' ROLE {role.value}"
            )
        for name in self.storages:
            base = self._storage_base(name)
            base.mkdir(parents=True, exist_ok=True)
            storage_id = f"kf_{self.tag}_{name}"
            sql = CreateStorage("root", storage_id, str(base)).to_sql()
            admin.sql(sql)
            self._storages[name] = storage_id
            self._setup_exchange(sql)

    def _storage_base(self, name: str) -> Path:
        return self.target.data_dir / f"storage-{name}-{self.tag}"

    def _setup_exchange(self, sql: str) -> None:
        now = now_ms()
        self.setup.append(Exchange(0, "root", "sql", redact_sql(sql), {"status": 200}, now, now))

    def begin(self, tables: Sequence[str] = tuple(TABLES)) -> None:
        """Start an example: a fresh namespace with ``tables`` and a fresh model."""
        with self.ledger.accounted(self.stats, "setup"):
            self._begin(tables)

    def _begin(self, tables: Sequence[str]) -> None:
        self._end_example()
        process = self.target.process
        if process is not None and not process.alive:
            # An example before this one took the server down (a finding of its own): this
            # one, a shrinking or relabelling rerun of it included, starts on a server that is
            # up. The one place a campaign starts its server again.
            self.target.start()
        if not self._users:
            self.setup_world()
        self._examples += 1
        self._step_no = 0
        self.failed = False
        self.findings = []
        self.events = set()
        self._markers = {}
        self._flushed = set()
        self._unread = {}
        self.ended_jobs = []
        self.program = []
        self.transcript = []
        self.namespace = f"kf_{self.tag}_{self._examples}"
        model = Model.initial(
            str(self.target.storage_dir),
            users=[User(self._users[n], role) for n, role in self.cast.items()],
        )
        for name, storage_id in self._storages.items():
            base = self._storage_base(name)
            model.apply(CreateStorage("root", storage_id, str(base)), Succeeded())
        self.model = model
        self._recording = False
        try:
            self._statement("root", CreateNamespace("root", self.namespace))
            for name in tables:
                spec = TABLES[name]
                table = Table(
                    self.table_id(name),
                    spec.type,
                    COLUMNS,
                    storage_id=self._storage_id(spec.storage),
                    access_level=spec.access,
                    ttl_seconds=spec.ttl_seconds,
                )
                self._statement("root", CreateTable("root", table))
                self._background(table)
            self._baseline = self.model.clock
        finally:
            self._recording = True

    def _background(self, table: Table) -> None:
        """``background_rows`` rows in each scope rules write, each reply checked as usual."""
        tenants = [t for t in TENANTS if t in self.cast]
        for owner, rows in background(table.type, self.background_rows, tenants):
            self._statement(owner, Insert(self.user_id(owner), table.id, rows))

    def _end_example(self) -> None:
        for blocked in self._blocked.values():
            blocked.restore()
        self._blocked.clear()
        for live in self._lives.values():
            live.close()
        self._lives.clear()
        self._ws_sent.clear()
        self._subs.clear()

    def _decide(self) -> None:
        # Found on a real server (routing machine, three background flushes): 80 possible
        # states, and the next step refused to go on.
        self._poll_jobs(wait=True)
        self._read_every_scope()
        self._check_cold()

    @checks
    def sweep(self) -> None:
        """Check everything at the end of an example: jobs, every scope, cold files, streams."""
        with self._step("sweep"):
            self._poll_jobs(wait=True)
            for name, s in list(self._subs.items()):
                if s.paged:
                    self._page_rest(name, s)
            self._read_every_scope()
            self._check_cold()
            for s in self._subs.values():
                with contextlib.suppress(LiveError):
                    self._wait(s.sub.wait_quiet, QUIET_S, timeout=5.0)
            for name in list(self._subs):
                self._check_sub(name, quiescent=True)
