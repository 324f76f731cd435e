"""The 13 end-to-end scenarios of ``kalamdb-e2e-scenarios.md``, as fixed driver programs.

Every step is checked against the model as a fuzzed step is (reads row for row, live changes
awaited and compared, cold files read back); ``read_all(..., expect=N)`` adds the seed's own
count, which must be met exactly.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from typing import cast

from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.catalog import AccessLevel, Column, TableType
from kalamfuzz.model.values import ColType
from kalamfuzz.model.where import Or, Pred
from kalamfuzz.scenarios.load import warm_baseline
from kalamfuzz.scenarios.registry import scenario
from kalamfuzz.scenarios.run import Run, p95
from kalamfuzz.scenarios.shapes import (
    CONVERSATIONS,
    ITEMS,
    MESSAGES,
    SIMPLE,
    T0,
    TELEMETRY,
    TYPING,
    Row,
    both,
    chunks,
    cmp,
    eq,
    item,
    message,
    simple,
    telemetry,
)

USER, SHARED, STREAM = TableType.USER, TableType.SHARED, TableType.STREAM


def _typing(i: int, conversation: int, user: str) -> Row:
    return {
        "id": i,
        "conversation_id": conversation,
        "user_id": user,
        "event_type": "typing",
        "created_at": T0 + i,
    }


@scenario(
    "E01",
    "AI chat app: live + flush consistency",
    "e2e",
    covers=(
        "execute_as_wrong_scope",
        "select_scope_leak",
        "live_cross_user",
        "batch_has_more_exact",
        "cold_shadows_hot",
        "flush_drops_tombstones",
        "manifest_row_count",
        "snapshot_includes_deleted",
        "live_multi_insert_first_only",
        "live_update_old_values",
        "live_delete_cold_missing",
        "dup_pk_cold",
    ),
)
def chat(r: Run) -> None:
    """Per-user chat history with AI writes AS USER, live updates, and a flush while active."""
    d = r.d
    with r.item("users u1, u2 (user) and svc (service); tables created"):
        d.create_namespace("root", "chat")
        d.create_table("root", "chat.conversations", USER, columns=CONVERSATIONS)
        d.create_table("root", "chat.messages", USER, columns=MESSAGES)
        d.create_table("root", "chat.typing_events", STREAM, ttl_seconds=30, columns=TYPING)
    with r.item("u1: 2 conversations, 50 messages; u2: 1 conversation, 20 messages"):
        conv = [{"id": c, "title": f"chat {c}", "created_at": T0} for c in (1, 2)]
        d.insert("u1", "chat.conversations", conv)
        d.insert("u2", "chat.conversations", conv[:1])
        for ids in chunks(range(1, 51), 25):
            # even ids in conversation 1, odd in 2: 25 each
            d.insert("u1", "chat.messages", [message(i, 1 + i % 2) for i in ids])
        d.insert("u2", "chat.messages", [message(i, 1) for i in range(1, 21)])
        d.read_all("u1", "chat.conversations", expect=2)
        d.read_all("u2", "chat.conversations", expect=1)
    with r.item("service AS USER 'u1' inserts appear only in u1's partition"):
        d.insert(
            "svc",
            "chat.messages",
            [message(i, 1, "assistant") for i in range(51, 61)],
            as_user="u1",
        )
        d.read_all("u1", "chat.messages", expect=60)
        d.read_all("u1", "chat.messages", where=eq("role_id", "assistant"), expect=10)
        d.read_all("u2", "chat.messages", expect=20)
        d.read_all("svc", "chat.messages", expect=0)
    with r.item("USER isolation: u1 never sees u2's messages (also through OR)"):
        either = Or(eq("conversation_id", 1), eq("conversation_id", 2))
        d.read_all("u2", "chat.messages", where=either, expect=20)
        d.read_all("u1", "chat.messages", where=either, expect=60)
    with r.item("subscription ACK; initial snapshot of conversation 1 in batches of 5"):
        d.subscribe("u1", "msgs", "chat.messages", where=eq("conversation_id", 1), batch_size=5)
        d.subscribe("u1", "typing", "chat.typing_events", where=eq("conversation_id", 1))
        d.subscribe("u2", "msgs-u2", "chat.messages", where=eq("conversation_id", 1))
        msgs = d.live_state("msgs")
        r.expect(
            msgs.batches == (5,) * 7,
            f"35 rows in batches of 5 came as {msgs.batches}",
            explained=not msgs.trusted,
        )
    with r.item("live INSERT (one row and several), UPDATE and DELETE arrive"):
        d.insert("u1", "chat.messages", [message(61, 1)])
        d.insert("u1", "chat.messages", [message(62, 1), message(63, 2), message(64, 1)])
        d.insert("u2", "chat.messages", [message(61, 1)])
        # user_id holds the typist's id: KalamDB reads a STREAM table's user_id column as the
        # row's owner (stream_table_provider.rs), which a user's own event is.
        me = d.user_id("u1")
        d.insert("u1", "chat.typing_events", [_typing(1, 1, me), _typing(2, 2, me)])
        d.update("u1", "chat.messages", {"content": "edited"}, where=eq("id", 61))
        d.delete("u1", "chat.messages", where=eq("id", 2))
        d.check_live()
    with r.item("default queries exclude deleted rows; WHERE _deleted = true includes them"):
        d.read_all("u1", "chat.messages", expect=63)
        d.read_all("u1", "chat.messages", where=eq("_deleted", True), expect=1)
        d.subscribe("u1", "after-delete", "chat.messages", where=eq("conversation_id", 1))
    with r.item("during a flush: SELECT is the union of hot, cold and in-flight writes"):
        d.flush("root", "chat.messages")
        for i in range(65, 73):
            d.insert("u1", "chat.messages", [message(i, 1)])
        d.read_all("u1", "chat.messages", expect=71)
    with r.item("after the flush: manifest.json and batch-*.parquet written, reads unchanged"):
        d.wait_jobs()
        d.read_all("u1", "chat.messages", expect=71)
        d.read_all("u2", "chat.messages", expect=21)
    with r.item("changes to flushed rows: update and delete seen by reads and subscribers"):
        d.update("u1", "chat.messages", {"content": "edited after flush"}, where=eq("id", 10))
        d.delete("u1", "chat.messages", where=eq("id", 4))
        d.flush("root", "chat.messages", wait=True)
        d.read_all("u1", "chat.messages", expect=70)
        d.check_live()
    with r.item("no duplicates by primary key, hot and cold"):
        d.insert("u1", "chat.messages", [message(5, 2)])  # flushed: refused
        d.insert("u1", "chat.messages", [message(61, 1)])  # flushed since: refused
        d.read_all("u1", "chat.messages", expect=70)


@scenario(
    "E02",
    "Offline-first sync: batched snapshot + resume",
    "e2e",
    covers=(
        "held_changes_reversed",
        "resume_from_inclusive",
        "snapshot_includes_deleted",
        "retry_reinserts",
    ),
)
def offline_sync(r: Run) -> None:
    """N users preload items, drift offline, then open the app: paged snapshots with writes
    during loading, a disconnect and a resume from the last _seq seen."""
    d, users = r.d, r.users()
    n, (added, updated, deleted) = r.scale.sync_items, r.scale.sync_drift
    with r.item(f"{len(users)} users; sync.items (10 columns) and sync.client_state"):
        d.create_namespace("root", "sync")
        d.create_table("root", "sync.items", USER, columns=ITEMS)
        d.create_table(
            "root", "sync.client_state", USER, columns=(ITEMS[0], Column("cursor", ColType.BIGINT))
        )
    with r.item(f"preload {n} items per user, all users in parallel"):
        for ids in chunks(range(1, n + 1), 200):
            d.parallel([Write(u, "sync.items", [item(i, u) for i in ids]) for u in users])
        for u in users:
            d.read_all(u, "sync.items", expect=n)
    with r.item(f"offline drift: +{added} items, {updated} updated, {deleted} deleted"):
        new = range(n + 1, n + added + 1)
        d.parallel([Write(u, "sync.items", [item(i, u) for i in new]) for u in users])
        d.parallel(
            [
                Write(
                    u,
                    "sync.items",
                    assignments={"is_done": True, "title": "synced"},
                    where=cmp("id", "<=", updated),
                )
                for u in users
            ]
        )
        gone = cmp("id", ">", n + added - deleted)
        d.parallel([Write(u, "sync.items", where=gone, delete=True) for u in users])
    total = n + added - deleted
    with r.item("a retried upload (reply lost) does not duplicate rows"):
        if d.target.skip_reason("proxy") is None:
            d.insert(
                "u1",
                "sync.client_state",
                [{"id": 1, "cursor": total}],
                fault="reset_response",
                retry=True,
            )
            d.read_all("u1", "sync.client_state", expect=1)
        else:
            r.unsupported("retried upload", str(d.target.skip_reason("proxy")))
    with r.item("app open: each user subscribes with batch_size=100, first page only"):
        for u in users:
            d.subscribe(u, f"sync-{u}", "sync.items", batch_size=100, paged=True)
    with r.item("writes while the snapshots load: delivered after them, none lost or repeated"):
        late = range(n + added + 1, n + added + 6)
        d.parallel([Write(u, "sync.items", [item(i, u) for i in late]) for u in users])
        d.parallel(
            [Write(u, "sync.items", assignments={"priority": 9}, where=eq("id", 1)) for u in users]
        )
    with r.item("snapshot: pages of 100 until has_more=false, count excludes deleted"):
        for u in users:
            d.next_pages(f"sync-{u}")
            state = d.live_state(f"sync-{u}")
            want = (100,) * (total // 100) + ((total % 100,) if total % 100 else ())
            came = f"{u}: {total} rows in pages of 100 came as {state.batches}"
            r.expect(state.batches == want, came, explained=not state.trusted)
        d.check_live()
    with r.item("disconnect and resume from the last _seq: only newer changes"):
        for u in users:
            d.resume(u)
        newest = range(n + added + 6, n + added + 9)
        d.parallel([Write(u, "sync.items", [item(i, u) for i in newest]) for u in users])
        d.check_live()
    with r.item("ordering rule: newest first by updated_at, page of 50"):
        for u in users[:2]:
            d.select(u, "sync.items", order_by=[("updated_at", True)], limit=50)
    with r.item("per-user totals after sync"):
        for u in users:
            d.read_all(u, "sync.items", expect=total + 8)


@scenario(
    "E03",
    "Shopping cart: parallel users + notifications",
    "e2e",
    covers=("live_cross_user", "stream_ttl_unenforced", "user_writes_public_shared"),
)
def shopping_cart(r: Run) -> None:
    """Carts filled, changed and trimmed by all users at once; notifications with a TTL; a
    second flush that only the partitions written since have anything for."""
    d, users = r.d, r.users()
    items, updates, deletes = r.scale.cart
    ttl = r.scale.notification_ttl
    with r.item("shop.carts, shop.cart_items (USER), shop.notifications (STREAM)"):
        d.create_namespace("root", "shop")
        d.create_table("root", "shop.carts", USER, columns=SIMPLE)
        d.create_table("root", "shop.cart_items", USER, columns=SIMPLE)
        d.create_table("root", "shop.notifications", STREAM, ttl_seconds=ttl, columns=SIMPLE)
        d.create_table("root", "shop.catalog", SHARED, access=AccessLevel.PUBLIC, columns=SIMPLE)
    with r.item(
        f"in parallel per user: a cart, {items} items, {updates} updates, {deletes} deletes"
    ):
        d.parallel([Write(u, "shop.carts", [simple(1, body="open")]) for u in users])
        for ids in chunks(range(1, items + 1), 10):
            d.parallel(
                [Write(u, "shop.cart_items", [simple(i, grp=1) for i in ids]) for u in users]
            )
        for i in range(1, updates + 1):
            d.parallel(
                [
                    Write(u, "shop.cart_items", assignments={"qty": i + 1}, where=eq("id", i))
                    for u in users
                ]
            )
        for i in range(items - deletes + 1, items + 1):
            d.parallel([Write(u, "shop.cart_items", where=eq("id", i), delete=True) for u in users])
        for u in users:
            d.read_all(u, "shop.cart_items", expect=items - deletes)
    with r.item("users read the shared catalog and may not write it"):
        d.insert("svc", "shop.catalog", [simple(1, body="price list")])
        d.insert(users[0], "shop.catalog", [simple(2, body="not allowed")])
        d.read_all(users[-1], "shop.catalog", expect=1)
    with r.item("subscriptions: cart items by cart_id, notifications of the user"):
        for u in users:
            d.subscribe(u, f"cart-{u}", "shop.cart_items", where=eq("grp", 1))
            d.subscribe(u, f"note-{u}", "shop.notifications")
        r.unsupported(
            "notifications filtered by CURRENT_USER()",
            "the model's WHERE has no function calls; a STREAM table is per user, so the "
            "subscription is unfiltered and isolation is what is checked",
        )
    with r.item("service emits notifications AS USER each user; only the owner gets them"):
        d.parallel(
            [
                Write("svc", "shop.notifications", [simple(i, body="price drop")], as_user=u)
                for i, u in enumerate(users, 1)
            ]
        )
        d.parallel([Write(u, "shop.cart_items", [simple(100, grp=1)]) for u in users])
        d.check_live()
    with r.item(
        "flush: every partition; then only 2 users write, and a second flush writes theirs"
    ):
        d.flush("root", "shop.cart_items", wait=True)
        two, rest = users[:2], users[2:]
        d.parallel([Write(u, "shop.cart_items", [simple(101, grp=1)]) for u in two])
        d.flush("root", "shop.cart_items")
        if rest:
            d.parallel([Write(u, "shop.cart_items", [simple(102, grp=1)]) for u in rest])
        d.wait_jobs()
        for u in users:
            d.read_all(u, "shop.cart_items", expect=items - deletes + 2)
    with r.item(f"STREAM TTL: notifications gone after {ttl} s"):
        d.pause(ttl + 0.2)
        for u in users:
            d.read_all(u, "shop.notifications", expect=0)


@scenario(
    "E04",
    "IoT telemetry: wide rows, time filters, anomalies, flush",
    "e2e",
    covers=("cold_shadows_hot", "order_limit_resorted"),
)
def iot(r: Run) -> None:
    """A fleet's telemetry (SHARED, 10 columns): time, device and threshold filters before and
    after a flush, and a subscription to anomalies."""
    d, n = r.d, r.scale.iot_rows
    data = [telemetry(i) for i in range(1, n + 1)]
    with r.item("iot.telemetry (SHARED, 10 columns)"):
        d.create_namespace("root", "iot")
        d.create_table(
            "root", "iot.telemetry", SHARED, access=AccessLevel.PUBLIC, columns=TELEMETRY
        )
    with r.item(f"insert {n} rows"):
        for ids in chunks(range(1, n + 1), 500):
            d.insert("svc", "iot.telemetry", [data[i - 1] for i in ids])
        d.read_all("dba", "iot.telemetry", expect=n)
    lo, hi = T0 + (n // 4) * 1_000_000, T0 + (n // 2) * 1_000_000
    time_range = both(cmp("ts", ">=", lo, ColType.TIMESTAMP), cmp("ts", "<", hi, ColType.TIMESTAMP))
    # Each filter, and the same filter in Python over the rows sent: the seed's exact count.
    filters: list[tuple[Pred, Callable[[Row], bool]]] = [
        (time_range, lambda x: lo <= cast(int, x["ts"]) < hi),
        (eq("device_id", "dev-3"), lambda x: x["device_id"] == "dev-3"),
        (cmp("temp", ">", 30.0), lambda x: cast(float, x["temp"]) > 30.0),
    ]

    def run_queries() -> None:
        for where, keep in filters:
            d.read_all("u1", "iot.telemetry", where=where, expect=sum(map(keep, data)))
        d.select("u1", "iot.telemetry", order_by=[("temp", True)], limit=20)

    with r.item("time range, device and threshold filters return the exact counts"):
        run_queries()
    with r.item("subscription to anomalies (temp > 40 OR battery < 10) gets only anomaly inserts"):
        anomaly = Or(cmp("temp", ">", 40.0), cmp("battery", "<", 10.0))
        d.subscribe("dba", "anomalies", "iot.telemetry", where=anomaly, batch_size=100)
        d.subscribe("dba", "low-battery", "iot.telemetry", where=cmp("battery", "<", 10.0))
        fresh = [telemetry(i) for i in range(n + 1, n + 101)]
        d.insert("svc", "iot.telemetry", fresh)
        data += fresh
        d.check_live()
    with r.item("flush does not change query results; cold artifacts valid"):
        d.flush("root", "iot.telemetry", wait=True)
        run_queries()
        d.update("svc", "iot.telemetry", {"temp": 99.5}, where=eq("id", 7))
        d.read_all("dba", "iot.telemetry", where=cmp("temp", ">", 90.0), expect=1)
        d.read_all("dba", "iot.telemetry", expect=n + 100)


@scenario(
    "E05",
    "Dashboards: shared reference + RBAC + schema evolution",
    "e2e",
    covers=(
        "user_writes_public_shared",
        "drop_column_resurrects",
        "live_change_dropped_column",
        "select_scope_leak",
    ),
)
def dashboards(r: Run) -> None:
    """Per-user activity and billing next to a shared plans table; RBAC on shared tables;
    ADD and DROP COLUMN with old rows, hot and cold."""
    d, users = r.d, r.users()
    with r.item(
        "app.activity, app.billing_events (USER), app.plans (SHARED PUBLIC), app.internal (PRIVATE)"
    ):
        d.create_namespace("root", "app")
        d.create_table("root", "app.activity", USER, columns=SIMPLE)
        d.create_table("root", "app.billing_events", USER, columns=SIMPLE)
        d.create_table("root", "app.plans", SHARED, access=AccessLevel.PUBLIC, columns=SIMPLE)
        d.create_table("root", "app.internal", SHARED, access=AccessLevel.PRIVATE, columns=SIMPLE)
        d.insert("root", "app.plans", [simple(p, body=f"plan {p}") for p in (1, 2, 3)])
    with r.item("users insert activity and billing"):
        d.parallel(
            [
                Write(u, "app.activity", [simple(i, grp=1 + i % 3) for i in range(1, 21)])
                for u in users
            ]
        )
        d.parallel(
            [
                Write(u, "app.billing_events", [simple(i, grp=1 + i % 3) for i in range(1, 6)])
                for u in users
            ]
        )
    plan_of = (("l", "id"), ("l", "qty"), ("r", "body"))

    def joins() -> None:
        for u in users:
            d.join(u, "app.activity", "app.plans", ("grp", "id"), plan_of)
            d.join(u, "app.billing_events", "app.plans", ("grp", "id"), plan_of)

    with r.item("JOIN of each user's activity and billing with the shared plans"):
        joins()
    with r.item("RBAC: a user cannot write a shared table (clear error), reads the public one"):
        d.insert("u1", "app.plans", [simple(9, body="mine")])
        d.update("u1", "app.plans", {"body": "changed"}, where=eq("id", 1))
        d.insert("u1", "app.internal", [simple(1)])
        d.select("u1", "app.internal")
        d.read_all("u1", "app.plans", expect=3)
    with r.item("ADD COLUMN device_type: new rows carry it, old rows read NULL"):
        d.add_column("root", "app.activity", Column("device_type", ColType.TEXT))
        d.insert("u1", "app.activity", [simple(21, grp=1) | {"device_type": "tablet"}])
        d.read_all("u1", "app.activity", expect=21)
        d.read_all("u1", "app.activity", where=eq("device_type", "tablet"), expect=1)
    with r.item("DROP COLUMN body: the rest stays readable, statements naming it fail clearly"):
        d.subscribe("u1", "activity", "app.activity")
        d.drop_column("root", "app.activity", "body")
        d.read_all("u1", "app.activity", expect=21)
        d.insert("u1", "app.activity", [{"id": 22, "grp": 1, "body": "gone"}])
        d.update("u1", "app.activity", {"body": "gone"}, where=eq("id", 1))
        d.insert("u1", "app.activity", [{"id": 22, "grp": 1, "qty": 3}])
    with r.item("a subscription made after the DROP: changes without the dropped column"):
        d.subscribe("u1", "activity-after", "app.activity")
        d.update("u1", "app.activity", {"qty": 7}, where=eq("id", 2))
        d.delete("u1", "app.activity", where=eq("id", 20))
        d.insert("u1", "app.activity", [{"id": 20, "grp": 1, "qty": 1}])
        d.check_live()
    with r.item("flush, then every read again (no cross-user leakage)"):
        for t in ("app.activity", "app.billing_events", "app.plans"):
            d.flush("root", t, wait=True)
        for u in users:
            d.read_all(u, "app.activity", expect=22 if u == "u1" else 20)
            d.read_all(u, "app.billing_events", where=Or(eq("grp", 1), eq("grp", 2)), expect=3)
        d.read_all("u2", "app.plans", expect=3)
    with r.item("post-flush joins still correct"):
        joins()
    with r.item("a dropped column added again does not bring its old values back"):
        d.add_column("root", "app.activity", Column("body", ColType.TEXT))
        d.read_all("u1", "app.activity", where=cmp("id", "<=", 3), expect=3)


@scenario(
    "E06",
    "Jobs: fail, retry, no corruption",
    "e2e",
    covers=(
        "failed_flush_drops_hot",
        "failed_flush_clears_pending",
        "empty_batch_file",
        "dup_pk_cold",
        "pk_check_ignores_tombstones",
    ),
    storages=("spare",),
)
def jobs(r: Run) -> None:
    """A flush that fails on an unwritable storage, reported with its error; the retry once
    repaired writes whole files and duplicates nothing."""
    d = r.d
    with r.item("a table on its own storage, with rows"):
        d.create_table(
            "root", "ledger", SHARED, storage="spare", access=AccessLevel.PUBLIC, columns=SIMPLE
        )
        d.create_table("root", "wallet", USER, storage="spare", columns=SIMPLE)
        d.insert("svc", "ledger", [simple(i) for i in range(1, 41)])
        d.insert("u1", "wallet", [simple(i) for i in range(1, 6)])
    with r.item("forced failure: the storage directory is unwritable; the job ends failed"):
        d.break_storage("spare")
        d.flush("root", "ledger", wait=True)
    with r.item("the failed job's error text is surfaced"):
        ended = d.ended_jobs[-1] if d.ended_jobs else None
        r.expect(ended is not None and ended.status == "failed", f"the flush job ended {ended}")
        assert ended is not None
        message = ended.message or ""
        r.note(f"failed flush job's message: {message}")
        r.expect(
            re.search(r"(?i)os error \d+|\[errno \d+\]", message) is not None,
            f"the failed job's message does not name the OS error: {message!r}",
        )
    with r.item("rows stay readable after the failure"):
        d.read_all("u1", "ledger", expect=40)
    with r.item("retry after the repair succeeds; files whole, nothing duplicated"):
        d.repair_storage("spare")
        d.flush("root", "ledger", wait=True)
        d.read_all("u1", "ledger", expect=40)
        d.insert("svc", "ledger", [simple(3)])  # flushed key: refused
        d.insert("svc", "ledger", [simple(41)])
        d.read_all("u1", "ledger", expect=41)
    with r.item("a flush of only tombstones writes no empty Parquet file"):
        d.flush("root", "wallet", wait=True)
        d.delete("u1", "wallet", where=cmp("id", "<=", 5))
        d.insert("u1", "wallet", [simple(1, body="deleted key used again")])
        d.delete("u1", "wallet", where=eq("id", 1))
        d.flush("root", "wallet", wait=True)
        d.read_all("u1", "wallet", expect=0)


@scenario(
    "E07",
    "Collaborative editing: shared docs + presence stream",
    "e2e",
    covers=("stream_ttl_unenforced", "live_filter_leave_silent", "live_cross_user"),
)
def collaboration(r: Run) -> None:
    """Users watch one shared document while two writers edit at once; presence events expire."""
    d, users = r.d, r.users()
    ttl = r.scale.presence_ttl
    with r.item("docs.documents (SHARED), docs.presence (STREAM), docs.user_edits (USER)"):
        d.create_namespace("root", "docs")
        d.create_table("root", "docs.documents", SHARED, access=AccessLevel.PUBLIC, columns=SIMPLE)
        d.create_table("root", "docs.presence", STREAM, ttl_seconds=ttl, columns=SIMPLE)
        d.create_table("root", "docs.user_edits", USER, columns=SIMPLE)
        d.insert("svc", "docs.documents", [simple(i, grp=1 + i % 2) for i in range(1, 11)])
    with r.item("every user subscribes to document 1's rows and to their presence"):
        for u in users:
            d.subscribe(u, f"doc-{u}", "docs.documents", where=eq("grp", 1))
            d.subscribe(u, f"presence-{u}", "docs.presence")
    with r.item("concurrent updates to document rows; only doc_id 1 reaches its watchers"):
        for k in range(3):
            d.parallel(
                [
                    Write(
                        "svc",
                        "docs.documents",
                        assignments={"body": f"svc edit {k}"},
                        where=eq("id", 2),
                    ),
                    Write(
                        "dba",
                        "docs.documents",
                        assignments={"body": f"dba edit {k}"},
                        where=eq("id", 3),
                    ),
                ]
            )
        d.update("svc", "docs.documents", {"grp": 2}, where=eq("id", 4))
        d.check_live()
    with r.item("users cannot change the shared document"):
        d.update("u1", "docs.documents", {"body": "mine"}, where=eq("id", 2))
    with r.item("rapid presence writes (typing, cursor) per user, AS USER from the service"):
        for k in range(1, 6):
            d.parallel(
                [
                    Write("svc", "docs.presence", [simple(k, body="cursor")], as_user=u)
                    for u in users
                ]
            )
        d.check_live()
        for u in users:
            d.read_all(u, "docs.presence", expect=5)
    with r.item("user edits stay private, in reads and live"):
        for u in users:
            d.subscribe(u, f"edits-{u}", "docs.user_edits")
        d.parallel([Write(u, "docs.user_edits", [simple(1, body=f"draft of {u}")]) for u in users])
        for u in users:
            d.read_all(u, "docs.user_edits", expect=1)
        d.check_live()
    with r.item(f"presence expires after {ttl} s"):
        d.pause(ttl + 0.2)
        for u in users:
            d.read_all(u, "docs.presence", expect=0)


@scenario(
    "E08",
    "Burst + backpressure: subscription under a high change rate",
    "e2e",
    covers=("live_multi_insert_first_only",),
)
def burst(r: Run) -> None:
    """A filtered subscription with a snapshot while 4 clients insert quickly into one
    partition; every matching change arrives and the counts converge."""
    d, n = r.d, r.scale.burst_rows
    with r.item("a USER table; a filtered subscription with its snapshot"):
        d.create_table("root", "feed", USER, columns=SIMPLE)
        d.insert("u1", "feed", [simple(i, grp=i % 2) for i in range(1, 21)])
        d.subscribe("u1", "feed-even", "feed", where=eq("grp", 0), batch_size=5)
        d.subscribe("u1", "feed-all", "feed")
    with r.item(f"burst: {n} inserts from 4 clients at once"):
        for ids in chunks(range(21, 21 + n), 40):
            d.parallel(
                [
                    Write(
                        a,
                        "feed",
                        [simple(i, grp=i % 2) for i in ids[k::4]],
                        as_user="u1" if a != "u1" else None,
                    )
                    for k, a in enumerate(("u1", "svc", "svc", "dba"))
                ]
            )
    with r.item("the subscriptions stay active; no change missed; counts match"):
        d.check_live()
        for sub in ("feed-even", "feed-all"):
            state = d.live_state(sub)
            r.expect(state.active and state.error is None, f"{sub} dropped: {state.error}")
        d.read_all("u1", "feed", expect=20 + n)
        d.read_all("u1", "feed", where=eq("grp", 0), expect=(20 + n) // 2)


@scenario(
    "E09",
    "DDL while active: schema change safety",
    "e2e",
    covers=("live_change_dropped_column",),
)
def ddl_while_active(r: Run) -> None:
    """ADD and DROP COLUMN on a table with a live subscription and rows in both tiers."""
    d = r.d
    with r.item("a table with rows (some flushed) and a subscription"):
        d.create_table("root", "posts", USER, columns=SIMPLE)
        d.insert("u1", "posts", [simple(i) for i in range(1, 11)])
        d.flush("root", "posts", wait=True)
        d.insert("u1", "posts", [simple(i) for i in range(11, 16)])
        d.subscribe("u1", "posts", "posts")
    with r.item("ALTER TABLE ADD COLUMN succeeds; old rows readable, new rows carry the column"):
        d.add_column("root", "posts", Column("mood", ColType.TEXT))
        d.insert("u1", "posts", [simple(16) | {"mood": "happy"}])
        d.read_all("u1", "posts", expect=16)
        d.read_all("u1", "posts", where=eq("mood", "happy"), expect=1)
    with r.item("the subscription continues, or ends with a clear error"):
        state = d.live_state("posts")
        r.expect(state.active or bool(state.error), "the subscription stopped without a word")
        r.note(f"after ADD COLUMN the subscription is {'active' if state.active else state.error}")
    with r.item("DROP COLUMN qty: selects work; inserts and updates naming it fail clearly"):
        d.drop_column("root", "posts", "qty")
        d.read_all("u1", "posts", expect=16)
        d.insert("u1", "posts", [{"id": 17, "grp": 1, "qty": 2}])
        d.update("u1", "posts", {"qty": 3}, where=eq("id", 1))
        d.subscribe("u1", "posts-again", "posts")
        d.insert("u1", "posts", [{"id": 17, "grp": 1, "body": "after drop"}])
        d.update("u1", "posts", {"body": "edited after drop"}, where=eq("id", 3))
        d.delete("u1", "posts", where=eq("id", 12))
        d.check_live()
        d.flush("root", "posts", wait=True)
        d.read_all("u1", "posts", expect=16)


@scenario(
    "E10",
    "Multi-tenant namespaces: controlled sharing",
    "e2e",
    covers=("live_cross_user", "select_scope_leak"),
)
def multi_tenant(r: Run) -> None:
    """Two tenants' namespaces and one global shared table."""
    d = r.d
    with r.item("namespaces tenant_a, tenant_b, global; USER tables; global.feature_flags"):
        for ns in ("tenant_a", "tenant_b", "global"):
            d.create_namespace("root", ns)
        d.create_table("root", "tenant_a.orders", USER, columns=SIMPLE)
        d.create_table("root", "tenant_b.orders", USER, columns=SIMPLE)
        d.create_table(
            "root", "global.feature_flags", SHARED, access=AccessLevel.PUBLIC, columns=SIMPLE
        )
        d.insert("root", "global.feature_flags", [simple(1, body="dark_mode")])
    r.note(
        "KalamDB has no per-namespace grants: a namespace is not an access boundary. Tenants are "
        "kept apart by USER partitions, which is what is checked: u1 writes tenant_a, u2 tenant_b"
    )
    with r.item("each tenant writes its own namespace"):
        d.parallel(
            [
                Write("u1", "tenant_a.orders", [simple(i) for i in range(1, 11)]),
                Write("u2", "tenant_b.orders", [simple(i) for i in range(1, 6)]),
            ]
        )
    with r.item("cross-tenant reads see nothing of the other tenant"):
        d.read_all("u2", "tenant_a.orders", expect=0)
        d.read_all("u2", "tenant_a.orders", where=Or(eq("grp", 1), eq("id", 1)), expect=0)
        d.read_all("u1", "tenant_b.orders", expect=0)
        d.read_all("u1", "tenant_a.orders", expect=10)
    with r.item("the shared table is readable by both, writable by neither"):
        d.read_all("u1", "global.feature_flags", expect=1)
        d.read_all("u2", "global.feature_flags", expect=1)
        d.insert("u2", "global.feature_flags", [simple(2)])
    with r.item("subscriptions deliver only authorized data"):
        d.subscribe("u2", "spy", "tenant_a.orders")
        d.subscribe("u1", "mine", "tenant_a.orders")
        d.subscribe("u2", "flags", "global.feature_flags")
        d.insert("u1", "tenant_a.orders", [simple(11)])
        d.update("root", "global.feature_flags", {"body": "dark_mode_v2"}, where=eq("id", 1))
        d.check_live()


@scenario(
    "E11",
    "Multi-storage routing: flush writes to the right backend",
    "e2e",
    covers=("flush_ignores_storage_id",),
    storages=("archive_fs",),
)
def storage_routing(r: Run) -> None:
    """Tables on the default storage and on a second filesystem storage; each flush writes
    under its own table's base directory and nowhere else."""
    d = r.d
    with r.item(
        "stor.hot_messages (local), stor.archive_messages and stor.shared_config (archive_fs)"
    ):
        d.create_namespace("root", "stor")
        d.create_table("root", "stor.hot_messages", USER, columns=SIMPLE)
        d.create_table("root", "stor.archive_messages", USER, storage="archive_fs", columns=SIMPLE)
        d.create_table(
            "root",
            "stor.shared_config",
            SHARED,
            storage="archive_fs",
            access=AccessLevel.PUBLIC,
            columns=SIMPLE,
        )
    with r.item("rows in all three"):
        d.parallel(
            [
                Write("u1", "stor.hot_messages", [simple(i) for i in range(1, 21)]),
                Write("u2", "stor.archive_messages", [simple(i) for i in range(1, 21)]),
                Write("svc", "stor.shared_config", [simple(i) for i in range(1, 6)]),
            ]
        )
    with r.item("flush all three: manifest and non-empty Parquet under each table's storage only"):
        for t in ("stor.hot_messages", "stor.archive_messages", "stor.shared_config"):
            d.flush("root", t, wait=True)
    with r.item("reads correct after the flush (hot + cold)"):
        d.insert("u2", "stor.archive_messages", [simple(21)])
        d.read_all("u1", "stor.hot_messages", expect=20)
        d.read_all("u2", "stor.archive_messages", expect=21)
        d.read_all("u1", "stor.shared_config", expect=5)


#: The seed's "RSS increase within a budget for the dataset size (configurable threshold)".
INGEST_BUDGET_MB = 32.0
INGEST_MB_PER_1K = 4.0


@scenario("E12", "Performance and memory: growth trend", "e2e")
def trend(r: Run) -> None:
    """The same table at the seed's sizes: insert, full scan, filtered scan and snapshot times,
    RSS before, after the ingest and after flush and cleanup."""
    d = r.d
    per_row: dict[str, list[float]] = {"scan": [], "insert": []}
    warm_baseline(r)
    for size in r.scale.trend_sizes:
        table = f"trend_{size}"
        with r.item(f"{size} rows: ingest, scans and snapshot, checked"):
            d.create_table("root", table, USER, columns=TELEMETRY)
            before = r.rss_mb()
            # Server time: the requests' round trips, without kalamfuzz's checks between them.
            with r.server_time("INSERT") as inserting:
                for ids in chunks(range(1, size + 1), 1000):
                    d.insert("u1", table, [telemetry(i) for i in ids])
            after = r.rss_mb()
            with r.server_time("SELECT") as scanning:
                d.read_all("u1", table, expect=size)
            with r.server_time("SELECT") as filtering:
                d.read_all(
                    "u1", table, where=eq("device_id", "dev-3"), expect=len(range(3, size + 1, 10))
                )
            d.subscribe("u1", f"snap-{size}", table, batch_size=1000)
            snapshot_ms = r.snapshot_ms
            d.unsubscribe(f"snap-{size}")
            d.flush("root", table, wait=True)
            d.drop_table("root", table)
            cleaned = r.rss_mb()
        insert_s, scan_s = inserting[0] / 1000, scanning[0] / 1000
        r.measures |= {
            f"{size}.insert_ms_per_1k": 1000 * insert_s / size * 1000,
            f"{size}.scan_ms": 1000 * scan_s,
            f"{size}.filtered_ms": filtering[0],
            # subscribe sent to the last page received
            f"{size}.snapshot_ms": snapshot_ms if snapshot_ms is not None else -1.0,
        }
        if before is not None and after is not None and cleaned is not None:
            r.measures |= {
                f"{size}.rss_before_mb": before,
                f"{size}.rss_ingest_mb": after,
                f"{size}.rss_cleaned_mb": cleaned,
            }
            r.threshold(
                f"{size} rows: RSS growth of the ingest (budget {INGEST_BUDGET_MB:g} MiB + "
                f"{INGEST_MB_PER_1K:g} MiB per 1,000 rows)",
                after - before,
                INGEST_BUDGET_MB + INGEST_MB_PER_1K * size / 1000,
                "MiB",
            )
            r.threshold(
                f"{size} rows: RSS above the start after flush + drop",
                max(0.0, cleaned / before - 1) * 100,
                25.0,
                "%",
            )
        per_row["scan"].append(scan_s / size)
        per_row["insert"].append(insert_s / size)
    for what, costs in per_row.items():
        pairs = zip(itertools.pairwise(r.scale.trend_sizes), itertools.pairwise(costs), strict=True)
        for (a, b), (x, y) in pairs:
            r.threshold(
                f"{what} time per row, {a} -> {b} rows (no 10x cliff)",
                y / x if x else 0.0,
                10.0,
                "x",
            )


@scenario(
    "E13",
    "Production mixed workload: soak",
    "e2e",
    covers=("live_cross_user",),
)
def soak(r: Run) -> None:
    """Users write and watch, a service flushes and emits stream events, one ADD COLUMN half
    way: no error but the expected ones, subscriptions alive, jobs done, memory flat."""
    d, users = r.d, r.users()
    with r.item("tables: notes (USER), events (STREAM), prefs (USER)"):
        d.create_table("root", "notes", USER, columns=SIMPLE)
        d.create_table("root", "events", STREAM, ttl_seconds=600, columns=SIMPLE)
        d.create_table("root", "prefs", USER, columns=SIMPLE)
        for u in users:
            d.subscribe(u, f"notes-{u}", "notes")
            if int(u[1:]) % 2:
                d.subscribe(u, f"events-{u}", "events")
    base = warm_baseline(r)
    start_ms = int(time.time() * 1000)
    deadline = time.monotonic() + r.scale.soak_s
    key, altered, rounds = 0, False, 0
    with r.item(
        f"{r.scale.soak_s:g} s of mixed load: writes, reads, flushes, stream events, one ALTER"
    ):
        while time.monotonic() < deadline:
            rounds += 1
            key += 1
            kind = rounds % 4
            writes = []
            for u in users:
                if kind == 1 or key <= 2:
                    writes.append(Write(u, "notes", [simple(key, grp=rounds % 3)]))
                elif kind == 2:
                    writes.append(
                        Write(u, "notes", assignments={"qty": rounds % 9}, where=eq("id", key - 1))
                    )
                elif kind == 3:
                    writes.append(Write(u, "notes", where=eq("id", key - 2), delete=True))
                else:
                    writes.append(Write("svc", "events", [simple(key)], as_user=u))
            d.parallel(writes)
            if rounds % 10 == 0:
                d.flush("root", "notes")
            if rounds % 7 == 0:
                d.select(users[rounds % len(users)], "notes", order_by=[("id", True)], limit=10)
            if not altered and time.monotonic() > deadline - r.scale.soak_s / 2:
                d.add_column("root", "prefs", Column("theme", ColType.TEXT))
                altered = True
        d.wait_jobs()
        d.check_live()
    r.note(f"{rounds} rounds of {len(users)} writes")
    with r.item("subscriptions remain active"):
        for u in users:
            state = d.live_state(f"notes-{u}")
            r.expect(state.active and state.error is None, f"notes-{u} dropped: {state.error}")
    r.threshold("SELECT p95 during the soak", p95(r.select_latencies(start_ms)), 500.0, "ms")
    if base is not None and r.sampler is not None:
        samples = r.sampler.between(start_ms / 1000)
        half = samples[len(samples) // 2 :]
        if half:
            r.threshold(
                "RSS growth over the soak's second half",
                (half[-1].rss_mb / half[0].rss_mb - 1) * 100,
                10.0,
                "%",
            )
