"""The HTTP side: health, auth endpoints and POST /v1/api/sql, with KalamDB's status codes and shapes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import time
from typing import Any

from aiohttp import web

from .auth import TokenError, decode, hash_password, issue, password_problem, verify_password
from .bugs import CRASH_ON_SQL_LIST, ROLE_CLAIM_TRUSTED, TOKEN_ISSUER_UNCHECKED
from .catalog import User
from .config import SimConfig
from .engine import Engine
from .errors import SqlError
from .fanout import LiveManager
from .session import Session, now_ms
from .ws import LiveSocket

log = logging.getLogger("kalamfuzz.sim")
VERSION = "0.4.3-kalamsim"
ENGINE_KEY: web.AppKey[Engine] = web.AppKey("engine", Engine)
LIVE_KEY: web.AppKey[LiveManager] = web.AppKey("live", LiveManager)


def _local(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _sql_error(
    code: str, message: str, status: int, started: float, details: str | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    body = {
        "status": "error",
        "results": [],
        "took": round((time.perf_counter() - started) * 1000, 3),
        "error": error,
    }
    return web.json_response(body, status=status)


class RateWindow:
    """Fixed one-second windows per key, like KalamDB's per-user/per-IP limiters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._windows: dict[str, tuple[int, int]] = {}

    def allow(self, key: str) -> bool:
        second = int(time.monotonic())
        start, count = self._windows.get(key, (second, 0))
        if start != second:
            start, count = second, 0
        self._windows[key] = (start, count + 1)
        return count + 1 <= self.limit


class Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.config
        self.queries = RateWindow(self.config.max_queries_per_sec)
        self.auth_attempts = RateWindow(self.config.max_auth_requests_per_ip_per_sec)

    # ------------------------------------------------------------------ health
    async def health(self, request: web.Request) -> web.Response:
        if not _local(request):
            return web.json_response(
                {"error": "Access denied. Health endpoint is localhost-only."}, status=403
            )
        return web.json_response(
            {"status": "healthy", "version": VERSION, "api_version": "v1", "build_date": "sim"}
        )

    # ------------------------------------------------------------------ auth
    def _token_body(self, user: User) -> dict[str, Any]:
        c = self.config
        access, exp = issue(c.jwt_secret, user.user_id, user.role, c.jwt_expiry_hours, "access")
        refresh, rexp = issue(c.jwt_secret, user.user_id, user.role, c.jwt_expiry_hours, "refresh")

        def iso(ts: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

        return {
            "user": self._user_info(user),
            "admin_ui_access": user.role in ("dba", "system"),
            "expires_at": iso(exp),
            "access_token": access,
            "refresh_token": refresh,
            "refresh_expires_at": iso(rexp),
        }

    @staticmethod
    def _user_info(user: User) -> dict[str, Any]:
        def iso(ms: int) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))

        return {
            "id": user.user_id,
            "role": user.role,
            "email": user.email,
            "created_at": iso(user.created_at),
            "updated_at": iso(user.updated_at),
        }

    @staticmethod
    async def _json(request: web.Request) -> Any:
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError):
            return None

    async def login(self, request: web.Request) -> web.Response:
        if not self.auth_attempts.allow(request.remote or ""):
            return web.json_response(
                {"error": "rate_limited", "message": "Too many authentication attempts"}, status=429
            )
        body = await self._json(request)
        if not isinstance(body, dict) or set(body) - {"user", "username", "password"}:
            return web.json_response(
                {"error": "bad_request", "message": "Invalid login request body"}, status=400
            )
        name = body.get("user", body.get("username"))
        password = body.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            return web.json_response(
                {"error": "bad_request", "message": "user and password are required"}, status=400
            )
        user = self.engine.catalog.users.get(name)
        if user is not None and user.user_id == "root" and not user.password_hash:
            if password == "":
                return web.json_response(
                    {
                        "error": "setup_required",
                        "message": "Server requires initial setup. Root password is not configured.",
                    },
                    status=428,
                )
            if not _local(request):
                return web.json_response(
                    {
                        "error": "forbidden",
                        "message": "System users with empty passwords cannot authenticate remotely",
                    },
                    status=403,
                )
        if (
            user is None
            or user.deleted_at is not None
            or not verify_password(password, user.password_hash)
        ):
            return web.json_response(
                {"error": "unauthorized", "message": "Invalid credentials"}, status=401
            )
        user.last_login_at = now_ms()
        return web.json_response(self._token_body(user))

    def _bearer(
        self, request: web.Request
    ) -> tuple[User | None, str | None, dict[str, Any] | None]:
        header = request.headers.get("Authorization", "")
        if not header:
            return None, "MISSING_AUTHORIZATION", None
        if not header.startswith("Bearer "):
            return None, "INVALID_CREDENTIALS", None
        try:
            claims = decode(
                self.config.jwt_secret,
                header[7:].strip(),
                check_issuer=not self.engine.has(TOKEN_ISSUER_UNCHECKED),
            )
        except TokenError as exc:
            return None, exc.code, None
        user = self.engine.catalog.users.get(claims.get("sub", ""))
        if user is None or user.deleted_at is not None:
            return None, "INVALID_CREDENTIALS", None
        # kalamdb-auth bearer.rs: a role claim that is not the account's refuses the token
        # (an account demoted while its token lives, or a forged claim).
        mismatch = claims.get("role") is not None and claims["role"] != user.role
        if mismatch and not self.engine.has(ROLE_CLAIM_TRUSTED):
            return None, "INVALID_CREDENTIALS", None
        return user, None, claims

    async def refresh(self, request: web.Request) -> web.Response:
        user, _code, claims = self._bearer(request)
        if user is None or claims is None:
            return web.json_response(
                {"error": "unauthorized", "message": "Invalid credentials"}, status=401
            )
        if claims.get("token_type") != "refresh":
            return web.json_response(
                {"error": "unauthorized", "message": "Refresh endpoint requires a refresh token"},
                status=401,
            )
        return web.json_response(self._token_body(user))

    async def logout(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "Logged out successfully"})

    async def me(self, request: web.Request) -> web.Response:
        user, _, claims = self._bearer(request)
        if user is None or claims is None or claims.get("token_type") != "access":
            return web.json_response(
                {"error": "unauthorized", "message": "Invalid credentials"}, status=401
            )
        return web.json_response(
            {"user": self._user_info(user), "admin_ui_access": user.role in ("dba", "system")}
        )

    def _root_unset(self) -> bool:
        return not self.engine.catalog.users["root"].password_hash

    async def status(self, request: web.Request) -> web.Response:
        if not _local(request) and not self.config.allow_remote_setup:
            return web.json_response({"error": "forbidden", "message": "Access denied"}, status=403)
        if self._root_unset():
            return web.json_response(
                {
                    "needs_setup": True,
                    "message": "Server requires initial setup. Call POST /v1/api/auth/setup with user, password, root_password, and optional email.",
                }
            )
        return web.json_response(
            {"needs_setup": False, "message": "Server is configured and ready."}
        )

    async def setup(self, request: web.Request) -> web.Response:
        if not _local(request) and not self.config.allow_remote_setup:
            return web.json_response({"error": "forbidden", "message": "Access denied"}, status=403)
        body = await self._json(request)
        if not isinstance(body, dict) or set(body) - {"user", "password", "root_password", "email"}:
            return web.json_response(
                {"error": "bad_request", "message": "Invalid setup request body"}, status=400
            )
        if not self._root_unset():
            return web.json_response(
                {"error": "already_configured", "message": "Server is already configured"},
                status=409,
            )
        name, pw, root_pw = body.get("user"), body.get("password"), body.get("root_password")
        # spelled out rather than all(...) so that each value is narrowed to str below
        if (
            not isinstance(name, str)
            or not isinstance(pw, str)
            or not isinstance(root_pw, str)
            or name == "root"
        ):
            return web.json_response(
                {
                    "error": "invalid_user",
                    "message": "user, password and root_password are required; user may not be root",
                },
                status=400,
            )
        for candidate in (pw, root_pw):
            problem = password_problem(candidate)
            if problem:
                return web.json_response({"error": "weak_password", "message": problem}, status=400)
        cat = self.engine.catalog
        if name in cat.users and cat.users[name].deleted_at is None:
            return web.json_response(
                {"error": "user_exists", "message": f"User '{name}' already exists"}, status=409
            )
        cost = self.config.bcrypt_cost
        cat.users["root"].password_hash = hash_password(root_pw, cost)
        ts = now_ms()
        email = body.get("email") if isinstance(body.get("email"), str) else None
        cat.users[name] = User(name, hash_password(pw, cost), "dba", email, ts, ts)
        self.engine.save_catalog()
        return web.json_response(
            {
                "user": self._user_info(cat.users[name]),
                "message": f"Server setup complete. Root password configured and DBA user '{name}' created. Please login to continue.",
            }
        )

    # ------------------------------------------------------------------ SQL
    async def sql(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        user, code, claims = self._bearer(request)
        if user is None or claims is None:
            message = (
                "Authentication required"
                if code == "MISSING_AUTHORIZATION"
                else "Invalid credentials"
            )
            return _sql_error(code or "INVALID_CREDENTIALS", message, 401, started)
        if claims.get("token_type") != "access":
            return _sql_error("INVALID_CREDENTIALS", "Invalid credentials", 401, started)
        role = claims.get("role") if self.engine.has(ROLE_CLAIM_TRUSTED) else None
        session = Session(user.user_id, role if isinstance(role, str) else user.role)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                {"error": "BODY_TOO_LARGE", "message": "Request body too large"}, status=413
            )
        try:
            body = json.loads(raw)
            # serde_json refuses a lone surrogate (\ud800); Python's json reads it into a str
            # no UTF-8 can hold
            json.dumps(body, ensure_ascii=False).encode()
        except (ValueError, UnicodeError) as exc:
            return _sql_error("INVALID_INPUT", f"Invalid JSON payload: {exc}", 400, started)
        if (
            isinstance(body, dict)
            and isinstance(body.get("sql"), list)
            and self.engine.has(CRASH_ON_SQL_LIST)
        ):
            log.critical("panicked: sql is not a string")
            os._exit(101)  # what a Rust panic with panic = "abort" does
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
            return _sql_error(
                "INVALID_INPUT", "Invalid JSON payload: missing field `sql`", 400, started
            )
        params = body.get("params")
        namespace = body.get("namespace_id")
        if params is not None and not isinstance(params, list):
            return _sql_error(
                "INVALID_INPUT", "Invalid JSON payload: `params` must be an array", 400, started
            )
        if namespace is not None and not isinstance(namespace, str):
            return _sql_error(
                "INVALID_INPUT",
                "Invalid JSON payload: `namespace_id` must be a string",
                400,
                started,
            )
        if not self.queries.allow(user.user_id):
            return _sql_error(
                "RATE_LIMIT_EXCEEDED",
                "Too many queries per second. Please slow down.",
                429,
                started,
            )
        sql_text: str = body["sql"]
        try:
            results = await self.engine.execute(
                session, sql_text, params, namespace, request.headers.get("X-Request-ID")
            )
        except SqlError as exc:
            if session.admin:
                details = sql_text if exc.details else None
                return _sql_error(exc.code, exc.message, exc.status, started, details=details)
            # Redaction follows the actor's role, not an EXECUTE AS target's; no `details`.
            return _sql_error(exc.code, exc.public_message(), exc.status, started)
        except Exception as exc:  # never let a statement take the process down
            log.exception("internal error executing %r", sql_text[:200])
            internal = SqlError("INTERNAL_ERROR", f"Internal error: {type(exc).__name__}", 500)
            if session.admin:
                return _sql_error(internal.code, internal.message, 500, started, sql_text)
            return _sql_error(internal.code, internal.public_message(), 500, started)
        out: dict[str, Any] = {
            "status": "success",
            "results": [r.to_json() for r in results],
            "took": round((time.perf_counter() - started) * 1000, 3),
        }
        if len(results) == 1 and results[0].schema is not None:
            out["error"] = None
        return web.json_response(out)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPRequestEntityTooLarge:
        return web.json_response(
            {"error": "BODY_TOO_LARGE", "message": "Request body too large"}, status=413
        )


def build_app(config: SimConfig) -> web.Application:
    engine = Engine(config)
    engine.open()
    live = LiveManager(engine)
    socket = LiveSocket(live)
    api = Api(engine)
    app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[_errors])
    app[ENGINE_KEY] = engine
    app[LIVE_KEY] = live
    app.router.add_get("/health", api.health)
    app.router.add_get("/v1/api/healthcheck", api.health)
    app.router.add_post("/v1/api/auth/login", api.login)
    app.router.add_post("/v1/api/auth/refresh", api.refresh)
    app.router.add_post("/v1/api/auth/logout", api.logout)
    app.router.add_get("/v1/api/auth/me", api.me)
    app.router.add_get("/v1/api/auth/status", api.status)
    app.router.add_post("/v1/api/auth/setup", api.setup)
    app.router.add_post("/v1/api/sql", api.sql)
    app.router.add_get("/v1/ws", socket.handle)

    async def background(app: web.Application) -> Any:
        async def evict() -> None:
            while True:
                await asyncio.sleep(config.stream_eviction_interval_seconds)
                engine.evict_streams()

        task = asyncio.get_running_loop().create_task(evict())
        yield
        task.cancel()

    async def on_shutdown(app: web.Application) -> None:
        await socket.shutdown()
        for task in list(engine.tasks):
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout=30)
        engine.close()

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(on_shutdown)
    return app
