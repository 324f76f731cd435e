"""The role matrix, DDL rules, schema versions and storage paths."""

from __future__ import annotations

import pytest
from attrs import evolve
from strategies import COLUMNS, NS, SERVICE, table, world

from kalamfuzz.model import (
    AccessLevel,
    AlterAddColumn,
    AlterDropColumn,
    ColType,
    Column,
    ContractItem,
    CreateNamespace,
    CreateStorage,
    CreateTable,
    CreateUser,
    DropTable,
    Failed,
    ModelError,
    Ok,
    Rejected,
    Role,
    Select,
    Succeeded,
    Table,
    TableId,
    TableType,
)
from kalamfuzz.model import permissions as perm
from kalamfuzz.model.catalog import Catalog, Storage
from kalamfuzz.model.rows import Version, materialize


def shared(level: AccessLevel | None) -> Table:
    return Table(TableId(NS, "s"), TableType.SHARED, COLUMNS, access_level=level)


class TestMatrix:
    @pytest.mark.parametrize(
        "level,readers,writers",
        [
            (AccessLevel.PUBLIC, set(Role), {Role.SERVICE, Role.DBA, Role.SYSTEM}),
            (None, {Role.SERVICE, Role.DBA, Role.SYSTEM}, {Role.SERVICE, Role.DBA, Role.SYSTEM}),
            (
                AccessLevel.RESTRICTED,
                {Role.SERVICE, Role.DBA, Role.SYSTEM},
                {Role.SERVICE, Role.DBA, Role.SYSTEM},
            ),
            (AccessLevel.DBA, {Role.DBA, Role.SYSTEM}, {Role.DBA, Role.SYSTEM}),
        ],
    )
    def test_shared_access_levels(self, level, readers, writers):
        t = shared(level)
        assert {r for r in Role if perm.can_read(r, t)} == readers
        assert {r for r in Role if perm.can_write(r, t)} == writers
        assert {r for r in Role if perm.can_subscribe(r, t)} == readers

    def test_user_tables_open_to_every_role(self):
        t = table()
        assert all(perm.can_read(r, t) and perm.can_write(r, t) for r in Role)
        assert not perm.can_alter_table(Role.USER, t, "u1")  # created by nobody it knows
        assert perm.can_alter_table(Role.USER, evolve(t, owner="u1"), "u1")
        assert not perm.can_alter_table(Role.USER, shared(None), "u1")

    def test_admin_only_actions(self):
        assert {r for r in Role if perm.can_manage(r)} == {Role.DBA, Role.SYSTEM}
        assert {r for r in Role if perm.can_drop_table(r)} == {Role.DBA, Role.SYSTEM}
        assert {r for r in Role if perm.can_flush(r)} == {Role.SERVICE, Role.DBA, Role.SYSTEM}

    @pytest.mark.parametrize(
        "actor,targets",
        [
            (Role.SYSTEM, set(Role)),
            (Role.DBA, {Role.DBA, Role.SERVICE, Role.USER}),
            (Role.SERVICE, {Role.SERVICE, Role.USER}),
            (Role.USER, set()),
        ],
    )
    def test_impersonation(self, actor, targets):
        assert {t for t in Role if perm.can_impersonate(actor, "a", t, "b")} == targets
        assert perm.can_impersonate(actor, "a", Role.SYSTEM, "a")


class TestDDL:
    def test_admin_statements_denied_to_users(self):
        m = world()
        for op in (
            CreateNamespace("u1", "x"),
            CreateUser("u1", "x", Role.USER),
            CreateStorage("u1", "s2", "/x"),
            DropTable("u1", TableId(NS, "t")),
        ):
            pred = m.predict(op)
            assert isinstance(pred, Rejected) and pred.item is ContractItem.RBAC
            assert pred.codes == {"PERMISSION_DENIED"} and pred.status == 403

    def test_duplicates_fail(self):
        m = world()
        for op in (
            CreateNamespace("root", NS),
            CreateUser("root", "u1", Role.USER),
            CreateStorage("root", "local", "/x"),
            CreateTable("root", table()),
        ):
            pred = m.predict(op)
            assert isinstance(pred, Rejected) and "already exists" in pred.message_contains

    def test_which_table_is_missing_is_redacted_below_dba(self):
        m = world()
        gone = TableId(NS, "gone")
        pred = m.predict(Select("u1", gone))
        assert isinstance(pred, Rejected)
        assert pred.message_contains == (str(gone),) and not pred.kept

    def test_create_table_rules(self):
        m = world()
        assert isinstance(m.predict(CreateTable("u1", shared(None))), Rejected)
        assert m.predict(CreateTable("u1", table(name="mine"))) == Ok()
        bad = [
            Table(TableId("nope", "t"), TableType.USER, COLUMNS),
            table(name="x", storage_id="nowhere"),
            Table(TableId(NS, "x"), TableType.STREAM, COLUMNS),
            table(name="x", ttl_seconds=5),
            table(name="x", access_level=AccessLevel.PUBLIC),
        ]
        for t in bad:
            assert isinstance(m.predict(CreateTable("root", t)), Rejected), t
        with pytest.raises(ModelError):
            m.predict(CreateTable("root", Table(TableId(NS, "x"), TableType.USER, COLUMNS[1:])))

    def test_storage_creation_and_drop_table(self):
        m = world()
        m.apply(
            CreateStorage("root", "arch", "/arch", "{namespace_id}/{table_name}", ""), Succeeded()
        )
        assert m.state.catalog.storages["arch"].base_directory == "/arch"
        m.apply(DropTable("root", TableId(NS, "t")), Succeeded())
        assert TableId(NS, "t") not in m.state.catalog.tables
        assert isinstance(m.predict(Select("u1", TableId(NS, "t"))), Rejected)
        assert isinstance(m.predict(DropTable("root", TableId(NS, "t"))), Rejected)

    def test_a_plain_user_alters_only_the_tables_it_created(self):
        m = world()
        tid = TableId(NS, "t")  # created by root
        denied = m.predict(AlterAddColumn("u1", tid, Column("c", ColType.INT)))
        assert isinstance(denied, Rejected) and denied.status == 403
        assert "another account created" in denied.reason
        assert m.predict(AlterAddColumn(SERVICE, tid, Column("c", ColType.INT))) == Ok()
        own = table(name="mine")
        m.apply(CreateTable("u1", own), Succeeded())
        assert m.predict(AlterAddColumn("u1", own.id, Column("c", ColType.INT))) == Ok()
        assert isinstance(
            m.predict(AlterAddColumn("u2", own.id, Column("c", ColType.INT))), Rejected
        )

    def test_an_alter_the_server_made_although_denied_is_followed(self):
        # a known finding must not make every later read of the table one more finding
        m = world()
        tid = TableId(NS, "t")
        m.apply(AlterAddColumn("u1", tid, Column("c", ColType.INT)), Succeeded())
        assert m.state.catalog.table(tid).column("c") is not None
        m.apply(DropTable("u1", tid), Succeeded())  # a DROP TABLE alike
        assert tid not in m.state.catalog.tables

    def test_alter_add_and_drop(self):
        m = world()
        tid = TableId(NS, "t")
        add = AlterAddColumn("root", tid, Column("c", ColType.INT, default=7))
        assert m.predict(add) == Ok()
        m.apply(add, Succeeded())
        t = m.state.catalog.table(tid)
        assert t.schema_version == 2 and t.column("c").added_in == 2
        assert isinstance(m.predict(add), Rejected)
        assert isinstance(m.predict(AlterDropColumn("root", tid, "id")), Rejected)
        missing = m.predict(AlterDropColumn("root", tid, "zz"))
        assert isinstance(missing, Rejected) and missing.message_contains == ("zz",)
        m.apply(AlterDropColumn("root", tid, "c"), Succeeded())
        assert "c" in m.state.catalog.table(tid).dropped
        with pytest.raises(ModelError):
            m.predict(AlterAddColumn("root", tid, Column("d", ColType.INT, nullable=False)))
        denied = m.predict(AlterAddColumn("u1", TableId(NS, "sh"), Column("d", ColType.INT)))
        assert isinstance(denied, Rejected)  # no such table

    def test_failed_ddl_changes_nothing(self):
        m = world()
        before = m.states
        m.apply(CreateNamespace("u1", "x"), Failed("PERMISSION_DENIED", 403))
        assert m.states == before


class TestSchemaAndPaths:
    def test_readded_column_never_shows_old_values(self):
        t = table()
        v = Version(1, 1, {"id": 1, "n": 5, "s": None, "f": None, "b": None}, 1)
        t2 = t.drop_column("n").add_column(Column("n", ColType.BIGINT, default=9))
        # NULL, not the old 5, and not the DEFAULT either: KalamDB applies it to new rows only
        assert materialize(t2, v)["n"] is None
        assert t2.type_of("_seq") is ColType.BIGINT and t2.type_of("_deleted") is ColType.BOOLEAN
        with pytest.raises(ModelError):
            t2.type_of("zz")

    def test_star_columns_and_ddl(self):
        assert table(TableType.STREAM).star_columns[-2:] == ("_seq", "_deleted")
        assert table().star_columns[-2:] == ("_seq", "_deleted")
        sql = table(TableType.SHARED).create_sql()
        assert "ACCESS_LEVEL = 'PUBLIC'" in sql and "id INT PRIMARY KEY" in sql
        assert "TTL_SECONDS = 10" in table(TableType.STREAM).create_sql()
        assert (
            Column("c", ColType.TEXT, nullable=False, default="x").ddl()
            == "c TEXT NOT NULL DEFAULT 'x'"
        )

    def test_missing_primary_key_and_table(self):
        with pytest.raises(ModelError):
            Table(TableId(NS, "x"), TableType.USER, COLUMNS[1:]).pk  # noqa: B018
        with pytest.raises(ModelError):
            Catalog().table(TableId(NS, "x"))

    @pytest.mark.parametrize(
        "storage,user,expected",
        [
            (Storage("local", "/d/storage/"), "u1", "/d/storage/app/t/u1"),
            (
                Storage("a", "/a", user_template="{user_id}/{namespace_id}/{table_name}"),
                "u1",
                "/a/u1/app/t",
            ),
            (Storage("a", "/a", user_template=""), "u1", "/a/app/t/u1"),
        ],
    )
    def test_user_scope_directory(self, storage, user, expected):
        assert storage.scope_directory(table(), user) == expected

    def test_shared_scope_directory(self):
        assert (
            Storage("a", "/a", shared_template="").scope_directory(shared(None), None) == "/a/app/s"
        )
        assert (
            Storage("a", "/a", shared_template="x/{tableName}").scope_directory(shared(None), None)
            == "/a/x/s"
        )

    def test_unknown_user_acts_as_user_role(self):
        assert Catalog().role_of("ghost") is Role.USER
        m = world()
        assert m.state.catalog.role_of(SERVICE) is Role.SERVICE
