"""Hostile requests (contract item 10): a statement broken on purpose, a body the SQL endpoint
does not take, a credential that must not authenticate, a weak password. Each is judged for
its answer and the server's health; that it changed nothing is what the next reads check (the
model does not change), and a broken statement the server ran anyway is re-learned."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence

from kalamfuzz.adapters import hostile as wire
from kalamfuzz.adapters import observe
from kalamfuzz.adapters.values import printable
from kalamfuzz.errors import KalamError
from kalamfuzz.invariants import hostile as inv_hostile
from kalamfuzz.machines.driver.rounds import RoundSteps
from kalamfuzz.machines.driver.transcript import now_ms
from kalamfuzz.model import Delete, Insert
from kalamfuzz.model.hostile import (
    NON_FINITE,
    Expectation,
    for_body,
    for_non_finite,
    for_password,
    for_statement,
    for_token,
)
from kalamfuzz.model.rows import Window
from kalamfuzz.model.values import Value
from kalamfuzz.model.where import Pred
from kalamfuzz.observations import HostileObservation

#: The weak passwords ``weak_password`` tries, by what is wrong with them.
WEAK_PASSWORDS = {
    "short": "kf-7byt",
    "empty": "",
    "common": "password1",
    # 72 bytes are all bcrypt reads: a longer password would let in any other that starts
    # the same (kalamdb-auth security/password.rs: MAX_PASSWORD_LENGTH)
    "too_long": "k" * 72 + "-tail-1",
}


class HostileSteps(RoundSteps):
    @property
    def token_kinds(self) -> tuple[str, ...]:
        """The credentials ``forged_token`` can make here: those signed with the server's own
        secret only for a target kalamfuzz started (it knows the secret)."""
        forgeable = self.target.jwt_secret is not None
        return tuple(k for k in wire.TOKENS if forgeable or k not in wire.NEEDS_SECRET)

    def mark_scopes(self, table: str, key: int, tenants: Sequence[str]) -> None:
        """Give each tenant's scope of ``table`` a row whose text is theirs alone."""
        for tenant in tenants:
            marker = f"kf-private-{tenant}-{secrets.token_hex(4)}"
            self._markers[tenant] = marker
            self.insert(tenant, table, [{"id": key, "s": marker}])

    def _hidden(self, actor: str) -> tuple[str, ...]:
        """What no answer to ``actor`` may carry: other tenants' markers, other users'
        passwords, the server's secret."""
        hidden = [m for tenant, m in self._markers.items() if tenant != actor]
        hidden += [c.password for name, c in self._clients.items() if name not in (actor, "root")]
        if actor != "root":
            hidden.append(self.target.password)
        if self.target.jwt_secret:
            hidden.append(self.target.jwt_secret)
        return tuple(hidden)

    def _base(
        self,
        actor: str,
        table: str,
        rows: Sequence[Mapping[str, Value]] | None,
        where: Pred | None = None,
    ) -> str:
        """The ordinary statement a hostile request carries: an INSERT of ``rows``, else a
        DELETE ``where``."""
        tid = self.table_id(table)
        if rows is not None:
            return Insert(self.user_id(actor), tid, tuple(rows)).to_sql()
        return Delete(self.user_id(actor), tid, where).to_sql()

    def malformed_sql(
        self,
        actor: str,
        table: str,
        mutation: str,
        n: int,
        rows: Sequence[Mapping[str, Value]] | None = None,
        where: Pred | None = None,
    ) -> None:
        """Send an INSERT of ``rows`` (or a DELETE ``where``) broken by ``mutation``."""
        with self._step("malformed_sql", actor, table, mutation, n, rows=rows, where=where):
            sql = wire.mutate(self._base(actor, table, rows, where), mutation, n)
            expect = for_statement(mutation, self._hidden(actor))
            obs = self._hostile(actor, sql, wire.body("ok", sql), self._bearer(actor), expect)
            self._settle_hostile(actor, table, obs)

    def malformed_body(
        self, actor: str, table: str, kind: str, rows: Sequence[Mapping[str, Value]]
    ) -> None:
        """Send an INSERT of ``rows`` in a body of ``kind`` the SQL endpoint does not take."""
        with self._step("malformed_body", actor, table, kind, rows):
            sql = self._base(actor, table, rows)
            shown = f"POST /v1/api/sql ({kind.replace('_', ' ')}): {sql}"
            expect = for_body(kind, self._hidden(actor))
            obs = self._hostile(actor, shown, wire.body(kind, sql), self._bearer(actor), expect)
            self._settle_hostile(actor, table, obs)

    def forged_token(
        self, actor: str, table: str, kind: str, rows: Sequence[Mapping[str, Value]]
    ) -> None:
        """Send an INSERT of ``rows`` with a credential of ``kind`` that must not authenticate."""
        with self._step("forged_token", actor, table, kind, rows):
            client = self.client(actor)
            if kind == "refresh" and client.refresh_token is None:
                return  # the server gave this session no refresh token to misuse
            role = "system" if actor == "root" else self.cast[actor].value
            header = wire.authorization(
                kind,
                user_id=self.user_id(actor),
                role=role,
                password=client.password,
                refresh_token=client.refresh_token,
                secret=self.target.jwt_secret,
            )
            sql = self._base(actor, table, rows)
            shown = f"Authorization: {kind.replace('_', ' ')} token; {sql}"
            expect = for_token(kind, self._hidden(actor))
            obs = self._hostile(actor, shown, wire.body("ok", sql), header, expect)
            self._settle_hostile(actor, table, obs)

    def weak_password(self, kind: str) -> None:
        """CREATE USER with a password of ``kind`` the policy refuses; one accepted anyway is
        dropped again, after checking that no other password logs in as it."""
        with self._step("weak_password", kind):
            password = WEAK_PASSWORDS[kind]
            # a name of its own each time: a dropped user's name may stay taken
            user_id = f"kf_{self.tag}_weak_{kind}_{secrets.token_hex(3)}"
            shown = f"CREATE USER {user_id} WITH PASSWORD '{password}' ROLE user"
            expect = for_password()
            # not redacted: the weak password is the finding, on an account dropped again
            obs = self._as_root(shown, redact=False)
            accepted = 200 <= obs.status < 300
            try:
                if accepted and kind == "too_long":
                    other = password[:72] + "-tail-2"
                    sent = now_ms()
                    logged_in = self._logs_in(user_id, other)
                    login = {"user": user_id, "password": other}
                    self._record_hostile(
                        user_id,
                        f"POST /v1/api/auth/login {json.dumps(login)}",
                        HostileObservation(status=200 if logged_in else 401),
                        Window(sent, max(sent, now_ms())),
                        redact=False,
                    )
                    self._judge(
                        inv_hostile.check_login(f"user {user_id}", expect.what, logged_in), shown
                    )
                self._judge(inv_hostile.check_reply(f"user {user_id}", expect, obs), shown)
            finally:
                if accepted:
                    self._as_root(f"DROP USER {user_id}")
            self._check_alive(expect.what)

    def non_finite(self, kind: str) -> None:
        """Store a DOUBLE of ``kind`` (NaN, an infinity) in a table of its own, and read it
        back: JSON has no such number, and the answer must still come."""
        with self._step("non_finite", kind):
            tid = self.table_id("notes")
            table = f"{tid.namespace}.nonfinite_{secrets.token_hex(3)}"
            created = self._as_root(
                f"CREATE TABLE {table} (id INT PRIMARY KEY, d DOUBLE) WITH (TYPE = 'SHARED')"
            )
            if not 200 <= created.status < 300:
                raise KalamError(f"could not create {table}: {inv_hostile.answered(created)}")
            store, read = for_non_finite(kind)
            statements = (
                (f"INSERT INTO {table} (id, d) VALUES (1, {NON_FINITE[kind]})", store),
                (f"SELECT id, d FROM {table} WHERE id = 1", read),
            )
            for sql, expect in statements:
                self._hostile("root", sql, wire.body("ok", sql), self._bearer("root"), expect)
            self._as_root(f"DROP TABLE {table}")

    # --- the one way a hostile request flows ---------------------------------------------------

    def _bearer(self, actor: str) -> str:
        return f"Bearer {self.client(actor).token}"

    def _hostile(
        self,
        actor: str,
        shown: str,
        body: tuple[bytes, str],
        authorization: str | None,
        expect: Expectation,
    ) -> HostileObservation:
        """Send one hostile request (``body``: its content and type), record it, judge its
        answer and the server's health."""
        sent = now_ms()
        content, content_type = body
        obs: HostileObservation = self._call(
            wire.send,
            self.target.url,
            content,
            authorization=authorization,
            content_type=content_type,
        )
        self._record_hostile(actor, shown, obs, Window(sent, max(sent, now_ms())))
        # a server that went down is the finding, whatever the request got before it did
        if self._check_alive(expect.what, obs):
            subject = f"request by {self.user_id(actor)}"
            self._judge(inv_hostile.check_reply(subject, expect, obs), _short(shown))
        return obs

    def _as_root(self, sql: str, *, redact: bool = True) -> HostileObservation:
        """Run ``sql`` on the admin session (well-formed, with root's credential), recorded."""
        sent = now_ms()
        reply = self._call(observe.statement, self._admin(), sql)
        obs = HostileObservation(
            status=reply.status if not reply.lost else 0,
            code=reply.code,
            message=reply.message,
            text=reply.message or "",
            lost=reply.lost,
        )
        self._record_hostile("root", sql, obs, Window(sent, max(sent, now_ms())), redact=redact)
        return obs

    def _record_hostile(
        self,
        actor: str,
        shown: str,
        obs: HostileObservation,
        at: Window,
        *,
        redact: bool = True,
    ) -> None:
        reply: dict[str, object] = {"status": obs.status}
        for key in ("code", "message"):
            if getattr(obs, key):
                reply[key] = getattr(obs, key)
        if obs.lost:
            reply["lost"] = True
        self._exchange(actor, "sql", _short(shown, 2000), reply, at, redact=redact)

    def _check_alive(self, what: str, obs: HostileObservation | None = None) -> bool:
        """Whether the server is still up after ``what``. One that went down is a finding; a
        known one (or one this run already reported) is started again on the same data, as
        after a crash fault, and the example goes on."""
        process = self.target.process
        if process is not None and not process.alive:
            problem: str | None = f"the server process exited (status {process.returncode})"
        else:
            with self.checking():
                problem = self._call(wire.healthy, self.target.url)
        if problem is None:
            return True
        if obs is not None:
            problem += f"; the request got {inv_hostile.answered(obs)}"
        self._judge(inv_hostile.check_health("the server", what, problem), what)
        if process is not None:
            self._restart("the server went down; start it again", graceful=False)
        return False

    def _settle_hostile(self, actor: str, table: str, obs: HostileObservation) -> None:
        """What the model knows after a hostile request on ``table`` (judged, and a known
        finding if it was one): a refused one changed nothing, which the next step that reads
        the table checks; one the server ran anyway did what the model cannot tell, and is
        re-learned; one left without an answer may still be running and land at any time, so
        the table is given up for the rest of the example."""
        t = self.model.table(self.table_id(table))
        if t is None:
            return
        if obs.lost:
            self.model.abandon(t.id)
        elif 200 <= obs.status < 300:
            self._relearn_table(t.id)
        else:
            self._defer_read_back(t.id, self._scope_owner(t, actor, None), self._baseline)

    def _logs_in(self, user_id: str, password: str) -> bool:
        try:
            self.target.client(user_id, password).close()
        except KalamError:
            return False
        return True


def _short(text: str, limit: int = 300) -> str:
    """A hostile request as transcripts, reports and regression comments show it: control
    characters escaped (a NUL sent on purpose would make a regression file unloadable), and
    cut (20,000 parentheses or a mebibyte of padding help no one)."""
    text = printable(text)
    return text if len(text) <= limit else f"{text[:limit]} ... ({len(text):,} characters)"
