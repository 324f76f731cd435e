"""Who may do what: shared-table access levels, admin-only statements and impersonation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .bugs import USER_WRITES_PUBLIC_SHARED
from .catalog import ADMIN_ROLES, TableDef
from .errors import denied, exec_error
from .session import Session

if TYPE_CHECKING:
    from .engine import Engine

# Whom each role may EXECUTE AS (kalamdb-session permissions.rs can_impersonate_role).
IMPERSONABLE: dict[str, tuple[str, ...]] = {
    "system": ("system", "dba", "service", "user"),
    "dba": ("dba", "service", "user"),
    "service": ("service", "user"),
    "user": (),
}


def can_read_shared(role: str, level: str | None) -> bool:
    level = level or "private"
    if level == "public":
        return True
    if level in ("private", "restricted"):
        return role in ("service", "dba", "system")
    return role in ADMIN_ROLES


def require_admin(session: Session, what: str) -> None:
    if not session.admin:
        raise denied(f"Admin privileges (DBA or System role) required for {what}")


def check_read(session: Session, table: TableDef) -> None:
    if table.table_type == "shared" and not can_read_shared(session.role, table.access_level):
        raise denied(
            f"Access denied: shared table '{table.table_id}' with access level "
            f"'{table.access_level or 'private'}' requires elevated privileges"
        )


def check_write(engine: Engine, session: Session, table: TableDef) -> None:
    if table.namespace == "system":
        raise exec_error(f"Cannot modify system table system.{table.name}")
    if table.table_type != "shared":
        return
    level = table.access_level or "private"
    role = session.role
    if role == "user":
        if not (level == "public" and engine.has(USER_WRITES_PUBLIC_SHARED)):
            raise denied(f"Access denied: role 'user' cannot write shared table '{table.table_id}'")
    elif role == "service" and level == "dba":
        raise denied(f"Access denied: shared table '{table.table_id}' requires DBA privileges")


def may_impersonate(actor: Session, target: str, target_role: str) -> bool:
    return target == actor.user_id or target_role in IMPERSONABLE[actor.role]
