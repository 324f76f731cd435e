"""Fixtures: one server for the whole adapter suite.

The server is the target named by ``KALAMFUZZ_TARGET`` (default: a sim launched through
:class:`ServerProcess`), so the same suite runs against a real ``kalamdb-server`` with
``KALAMFUZZ_TARGET=binary:PATH`` or ``url:URL``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from kalamfuzz.adapters import SqlClient, Target


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    t = Target.parse()
    t.start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture(scope="session")
def admin(target: Target) -> Iterator[SqlClient]:
    with target.client() as c:
        yield c


@pytest.fixture
def ns(admin: SqlClient) -> Iterator[str]:
    name = admin.fresh_namespace("kfa")
    yield name
    admin.drop_namespace(name)


@pytest.fixture(scope="session")
def alice(admin: SqlClient) -> Iterator[tuple[str, SqlClient]]:
    """A user-role account (name, logged-in client)."""
    name = f"alice_{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_hex(8)}"
    admin.create_user(name, password, role="user")
    with admin.login_as(name, password) as c:
        yield name, c


@pytest.fixture(scope="session")
def bob(admin: SqlClient) -> Iterator[tuple[str, SqlClient]]:
    name = f"bob_{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_hex(8)}"
    admin.create_user(name, password, role="user")
    with admin.login_as(name, password) as c:
        yield name, c
