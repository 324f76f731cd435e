"""Users and storages: CREATE/ALTER/DROP USER, CREATE/DROP STORAGE."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from . import parse as P
from .access import require_admin
from .auth import hash_password, password_problem
from .bugs import WEAK_PASSWORD_ACCEPTED
from .catalog import Storage, User
from .errors import denied, exec_error, invalid_sql
from .session import Plan, Result, Session, now_ms

if TYPE_CHECKING:
    from .engine import Engine

# The role words CREATE/ALTER USER accept, and the role each one means.
ROLE_WORDS = {
    "dba": "dba",
    "admin": "dba",
    "service": "service",
    "developer": "service",
    "analyst": "service",
    "user": "user",
    "viewer": "user",
    "readonly": "user",
    "system": "system",
}
_NAME = r"('[^']+'|\"[^\"]+\"|[A-Za-z0-9_]+)"


def plan_user(engine: Engine, session: Session, sql: str) -> Plan:
    verb = sql.split(None, 1)[0].upper()
    if verb == "CREATE":
        return _plan_create_user(engine, session, sql)
    if verb == "DROP":
        return _plan_drop_user(engine, session, sql)
    return _plan_alter_user(engine, session, sql)


def _password_problem(engine: Engine, password: str) -> str | None:
    """What KalamDB's policy has against ``password`` (CREATE USER and ALTER USER alike)."""
    return None if engine.has(WEAK_PASSWORD_ACCEPTED) else password_problem(password)


def _plan_create_user(engine: Engine, session: Session, sql: str) -> Plan:
    require_admin(session, "user management")
    m = re.match(rf"^CREATE\s+USER\s+{_NAME}\s+WITH\s+(.*)$", sql, re.IGNORECASE | re.DOTALL)
    if not m:
        raise invalid_sql(
            "Invalid CREATE USER statement: CREATE USER name WITH PASSWORD 'pw' ROLE role"
        )
    name = P._unquote(m.group(1))
    clauses = P.parse_kv_clauses(m.group(2), {"PASSWORD", "ROLE", "EMAIL"})
    config, users = engine.config, engine.catalog.users

    def create() -> Result:
        role = ROLE_WORDS.get(clauses.get("ROLE", "user").lower())
        if role is None:
            raise invalid_sql(f"Invalid role '{clauses.get('ROLE')}'")
        if role == "system" and session.role != "system":
            raise denied("Only system users may create system users")
        pw = clauses.get("PASSWORD", "")
        problem = _password_problem(engine, pw)
        if problem:
            raise exec_error(f"Invalid operation: {problem}")
        existing = users.get(name)
        if existing is not None and existing.deleted_at is None:
            raise exec_error(f"Already exists: User '{name}' already exists")
        ts = now_ms()
        users[name] = User(
            name, hash_password(pw, config.bcrypt_cost), role, clauses.get("EMAIL"), ts, ts
        )
        engine.record("users", name)
        return Result(0, session.user_id, f"User '{name}' created")

    return create


def _plan_drop_user(engine: Engine, session: Session, sql: str) -> Plan:
    require_admin(session, "user management")
    m = re.match(rf"^DROP\s+USER\s+(IF\s+EXISTS\s+)?{_NAME}\s*$", sql, re.IGNORECASE)
    if not m:
        raise invalid_sql("Invalid DROP USER statement")
    guarded, name = bool(m.group(1)), P._unquote(m.group(2))

    def drop() -> Result:
        user = engine.catalog.users.get(name)
        if user is None or user.deleted_at is not None:
            if guarded:
                return Result(0, session.user_id, f"User '{name}' does not exist")
            raise exec_error(f"Not found: User '{name}' not found")
        if name == "root":
            raise exec_error("Invalid operation: cannot drop root")
        user.deleted_at = now_ms()
        engine.record("users", name)
        return Result(0, session.user_id, f"User '{name}' dropped (soft delete)")

    return drop


def _plan_alter_user(engine: Engine, session: Session, sql: str) -> Plan:
    m = re.match(
        rf"^ALTER\s+USER\s+{_NAME}\s+SET\s+(PASSWORD|ROLE|EMAIL)\s+(.*)$",
        sql,
        re.IGNORECASE | re.DOTALL,
    )
    if not m:
        raise invalid_sql("Invalid ALTER USER statement")
    name, what, value = P._unquote(m.group(1)), m.group(2).upper(), P._unquote(m.group(3))

    def alter() -> Result:
        if not session.admin and (name != session.user_id or what == "ROLE"):
            raise denied("Access denied: only DBA or System users may alter other users or roles")
        user = engine.catalog.users.get(name)
        if user is None or user.deleted_at is not None:
            raise exec_error(f"Not found: User '{name}' not found")
        if what == "PASSWORD":
            problem = _password_problem(engine, value)
            if problem:
                raise exec_error(f"Invalid operation: {problem}")
            user.password_hash = hash_password(value, engine.config.bcrypt_cost)
        elif what == "ROLE":
            role = ROLE_WORDS.get(value.lower())
            if role is None:
                raise invalid_sql(f"Invalid role '{value}'")
            user.role = role
        else:
            user.email = value
        user.updated_at = now_ms()
        engine.record("users", name)
        return Result(0, session.user_id, f"User '{name}' updated")

    return alter


def plan_storage(engine: Engine, session: Session, sql: str) -> Plan:
    require_admin(session, "storage management")
    dropped = re.match(
        r"^DROP\s+STORAGE\s+(IF\s+EXISTS\s+)?([A-Za-z0-9_-]+)\s*$", sql, re.IGNORECASE
    )
    if dropped:
        return _plan_drop_storage(engine, session, dropped.group(2), bool(dropped.group(1)))
    m = re.match(r"^CREATE\s+STORAGE\s+([A-Za-z0-9_-]+)\s+(.*)$", sql, re.IGNORECASE | re.DOTALL)
    if not m:
        raise invalid_sql("Invalid CREATE STORAGE statement")
    sid = m.group(1)
    clauses = P.parse_kv_clauses(
        m.group(2),
        {
            "TYPE",
            "NAME",
            "DESCRIPTION",
            "PATH",
            "BASE_DIRECTORY",
            "SHARED_TABLES_TEMPLATE",
            "USER_TABLES_TEMPLATE",
            "CREDENTIALS",
            "CONFIG",
        },
    )
    storages = engine.catalog.storages

    def create() -> Result:
        if clauses.get("TYPE", "").lower() != "filesystem":
            raise exec_error(
                "Invalid operation: kalamfuzz.sim supports TYPE 'filesystem' storages only"
            )
        base = clauses.get("BASE_DIRECTORY") or clauses.get("PATH")
        if not base:
            raise invalid_sql("CREATE STORAGE needs BASE_DIRECTORY '/dir' (or PATH)")
        if sid in storages:
            raise exec_error(f"Already exists: Storage '{sid}' already exists")
        try:
            Path(base).mkdir(parents=True, exist_ok=True)
            probe = Path(base) / ".kalam_health_check"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise exec_error(
                f"Invalid operation: storage health check failed for '{base}': {exc}"
            ) from None
        ts = now_ms()
        storages[sid] = Storage(
            sid,
            clauses.get("NAME", sid),
            clauses.get("DESCRIPTION", ""),
            "filesystem",
            base,
            clauses.get("SHARED_TABLES_TEMPLATE", ""),
            clauses.get("USER_TABLES_TEMPLATE", ""),
            ts,
            ts,
        )
        engine.record("storages", sid)
        return Result(0, session.user_id, f"Storage '{sid}' created successfully")

    return create


def _plan_drop_storage(engine: Engine, session: Session, sid: str, guarded: bool) -> Plan:
    catalog = engine.catalog

    def drop() -> Result:
        if sid not in catalog.storages:
            if guarded:
                return Result(0, session.user_id, f"Storage '{sid}' does not exist")
            raise exec_error(f"Not found: Storage '{sid}' not found")
        if sid == "local":
            raise exec_error("Invalid operation: the default storage 'local' cannot be dropped")
        used = [t.table_id for t in catalog.tables.values() if t.storage_id == sid]
        if used:
            raise exec_error(f"Invalid operation: Storage '{sid}' is used by {', '.join(used)}")
        del catalog.storages[sid]
        engine.record("storages", sid)
        return Result(0, session.user_id, f"Storage '{sid}' dropped successfully")

    return drop
