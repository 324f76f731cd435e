"""The role matrix of HTTP_SQL.md §2.6 and WEBSOCKET.md §9, as predicates.

Every function answers "may this role do this?"; the engine turns a ``False`` into the documented
error. Keeping the matrix in one place lets the RBAC self-tests enumerate it.
"""

from __future__ import annotations

from kalamfuzz.model.catalog import AccessLevel, Role, Table, TableType

_SHARED_READERS = {
    AccessLevel.PUBLIC: frozenset(Role),
    AccessLevel.PRIVATE: frozenset({Role.SERVICE, Role.DBA, Role.SYSTEM}),
    AccessLevel.RESTRICTED: frozenset({Role.SERVICE, Role.DBA, Role.SYSTEM}),
    AccessLevel.DBA: frozenset({Role.DBA, Role.SYSTEM}),
}
# A plain user never writes SHARED tables, whatever the level (test_shared_access.rs).
_SHARED_WRITERS = {
    AccessLevel.PUBLIC: frozenset({Role.SERVICE, Role.DBA, Role.SYSTEM}),
    AccessLevel.PRIVATE: frozenset({Role.SERVICE, Role.DBA, Role.SYSTEM}),
    AccessLevel.RESTRICTED: frozenset({Role.SERVICE, Role.DBA, Role.SYSTEM}),
    AccessLevel.DBA: frozenset({Role.DBA, Role.SYSTEM}),
}
_IMPERSONATES = {
    Role.SYSTEM: frozenset(Role),
    Role.DBA: frozenset({Role.DBA, Role.SERVICE, Role.USER}),
    Role.SERVICE: frozenset({Role.SERVICE, Role.USER}),
    Role.USER: frozenset(),
}


def can_read(role: Role, table: Table) -> bool:
    """USER/STREAM reads are always allowed: they only ever see the caller's own scope."""
    if table.type is TableType.SHARED:
        return role in _SHARED_READERS[table.effective_access]
    return True


def can_write(role: Role, table: Table) -> bool:
    if table.type is TableType.SHARED:
        return role in _SHARED_WRITERS[table.effective_access]
    return True


def can_create_table(role: Role, table_type: TableType) -> bool:
    return table_type is not TableType.SHARED or role is not Role.USER


def can_alter_table(role: Role, table: Table, actor: str) -> bool:
    """A plain user alters only the USER and STREAM tables it created: KalamDB's
    ``can_alter_table(role, table_type, _is_owner)`` takes the owner and ignores it (and its
    caller passes "is a USER table" for it), so any user can drop a column of a table every
    user's rows live in. An access check that takes the owner means to use it."""
    if role is Role.USER:
        return can_create_table(role, table.type) and table.owner == actor
    return can_create_table(role, table.type)


def can_drop_table(role: Role) -> bool:
    return role.is_admin


def can_flush(role: Role) -> bool:
    return role is not Role.USER


def can_manage(role: Role) -> bool:
    """Namespaces, users and storages are admin-only."""
    return role.is_admin


def can_impersonate(actor: Role, actor_id: str, target: Role, target_id: str) -> bool:
    """``EXECUTE AS USER``; a user may only "impersonate" itself, which is a no-op."""
    if actor_id == target_id:
        return True
    return target in _IMPERSONATES[actor]


def can_subscribe(role: Role, table: Table) -> bool:
    return can_read(role, table)
