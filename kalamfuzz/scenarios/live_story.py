"""User Story 11: the 10 tests of ``test_live_query_changes.rs``, as driver programs.

Each change a subscription is owed is awaited and compared with the model (content, old values,
``_deleted``, order per row); a reconnect resumes from the last ``_seq`` seen.
"""

from __future__ import annotations

from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.catalog import TableType
from kalamfuzz.scenarios.registry import scenario
from kalamfuzz.scenarios.run import Run
from kalamfuzz.scenarios.shapes import MESSAGES, chunks, eq, message

USER = TableType.USER


def _messages(r: Run, subscriber: str = "u1", where_conversation: int | None = None) -> None:
    r.d.create_table("root", "messages", USER, columns=MESSAGES)
    where = eq("conversation_id", where_conversation) if where_conversation is not None else None
    r.d.subscribe(subscriber, "listener", "messages", where=where)


@scenario("L01", "Live query detects inserts", "live", covers=("live_multi_insert_first_only",))
def detects_inserts(r: Run) -> None:
    """N messages inserted one by one and N more in one statement: every INSERT notified."""
    n = r.scale.live_messages
    with r.item("subscription acknowledged on an empty table"):
        _messages(r)
    with r.item(f"{n} single-row INSERTs, each notified with its row"):
        for i in range(1, n + 1):
            r.d.insert("u1", "messages", [message(i, 1)])
    with r.item(f"one INSERT of {n} rows: {n} rows notified"):
        r.d.insert("u1", "messages", [message(i, 1) for i in range(n + 1, 2 * n + 1)])
        r.d.check_live()
        r.d.read_all("u1", "messages", expect=2 * n)


@scenario(
    "L02",
    "Live query detects updates (old and new values)",
    "live",
    covers=("live_update_old_values",),
)
def detects_updates(r: Run) -> None:
    """UPDATE notifications carry the new row and the old values."""
    with r.item("rows, then a subscription"):
        r.d.create_table("root", "messages", USER, columns=MESSAGES)
        r.d.insert("u1", "messages", [message(i, 1) for i in range(1, 21)])
        r.d.subscribe("u1", "listener", "messages")
    with r.item("20 UPDATEs: each notified with new row and old values"):
        for i in range(1, 21):
            r.d.update("u1", "messages", {"content": f"edited {i}"}, where=eq("id", i))
        r.d.update("u1", "messages", {"role_id": "reviewed"}, where=eq("conversation_id", 1))
        r.d.check_live()


@scenario(
    "L03", "Live query detects deletes (_deleted)", "live", covers=("live_delete_cold_missing",)
)
def detects_deletes(r: Run) -> None:
    """Soft deletes notified with ``_deleted``, for hot and flushed rows alike."""
    with r.item("rows (half flushed), then a subscription"):
        r.d.create_table("root", "messages", USER, columns=MESSAGES)
        r.d.insert("u1", "messages", [message(i, 1) for i in range(1, 11)])
        r.d.flush("root", "messages", wait=True)
        r.d.insert("u1", "messages", [message(i, 1) for i in range(11, 21)])
        r.d.subscribe("u1", "listener", "messages")
    with r.item("20 DELETEs notified (cold and hot rows), reads exclude them"):
        for i in range(1, 21):
            r.d.delete("u1", "messages", where=eq("id", i))
        r.d.check_live()
        r.d.read_all("u1", "messages", expect=0)
        r.d.read_all("u1", "messages", where=eq("_deleted", True), expect=20)


@scenario("L04", "Concurrent writers, no message loss", "live")
def concurrent_writers(r: Run) -> None:
    """W writers x M messages at once into one conversation; the listener gets all of them."""
    writers, each = r.scale.live_writers
    actors = ["u1", *(["svc"] * (writers - 1))]
    with r.item("listener on the conversation"):
        _messages(r, where_conversation=1)
    with r.item(f"{writers} writers x {each} messages, sent at once, none lost"):
        for k in range(each):
            d_writes = [
                Write(
                    a,
                    "messages",
                    [message(k * writers + w + 1, 1)],
                    as_user=None if a == "u1" else "u1",
                )
                for w, a in enumerate(actors)
            ]
            r.d.parallel(d_writes)
        r.d.check_live()
        r.d.read_all("u1", "messages", expect=writers * each)


@scenario(
    "L05",
    "AI message scenario: agent writes, human client filters",
    "live",
    covers=("execute_as_wrong_scope", "live_cross_user"),
)
def ai_messages(r: Run) -> None:
    """An AI service writes assistant messages AS USER; the human's subscription on the
    assistant's replies gets exactly those, and the other user nothing."""
    d = r.d
    with r.item("u1 subscribes to assistant messages, u2 to everything of theirs"):
        d.create_table("root", "messages", USER, columns=MESSAGES)
        d.subscribe("u1", "assistant", "messages", where=eq("role_id", "assistant"))
        d.subscribe("u2", "u2-all", "messages")
    with r.item("human and agent turns alternate; only the agent's reach the filter"):
        for turn in range(1, 11):
            d.insert("u1", "messages", [message(2 * turn - 1, 1, "user")])
            d.insert(
                "svc",
                "messages",
                [message(2 * turn, 1, "assistant", f"reply {turn}")],
                as_user="u1",
            )
        d.check_live()
        d.read_all("u1", "messages", where=eq("role_id", "assistant"), expect=10)
        d.read_all("u2", "messages", expect=0)


@scenario(
    "L06",
    "Mixed operations ordering",
    "live",
    covers=("held_changes_reversed", "live_filter_leave_silent"),
)
def mixed_ordering(r: Run) -> None:
    """INSERT, UPDATE, DELETE and re-INSERT of the same keys: notified in commit order."""
    d = r.d
    with r.item("subscriptions: all rows, and conversation 1 only"):
        d.create_table("root", "messages", USER, columns=MESSAGES)
        d.insert("u1", "messages", [message(i, 1) for i in range(1, 31)])
        d.subscribe("u1", "all", "messages")
        d.subscribe(
            "u1", "conv1", "messages", where=eq("conversation_id", 1), batch_size=10, paged=True
        )
    with r.item("a sequence of mixed operations on the same keys, in order"):
        for i in range(1, 6):
            d.update("u1", "messages", {"content": f"v2 of {i}"}, where=eq("id", i))
            d.update("u1", "messages", {"conversation_id": 2}, where=eq("id", i))
            d.delete("u1", "messages", where=eq("id", i))
            d.insert("u1", "messages", [message(100 + i, 1)])
        d.next_pages("conv1")
        d.check_live()


@scenario("L07", "system.live changes counter accuracy", "live")
def changes_counter(r: Run) -> None:
    """After a known number of notifications, ``system.live`` counts exactly that many."""
    d = r.d
    with r.item("two subscriptions with different filters"):
        d.create_table("root", "messages", USER, columns=MESSAGES)
        d.subscribe("u1", "conv1", "messages", where=eq("conversation_id", 1))
        d.subscribe("u1", "conv2", "messages", where=eq("conversation_id", 2))
    with r.item("inserts, updates and deletes; changes counted per subscription"):
        for i in range(1, 16):
            d.insert("u1", "messages", [message(i, 1 + i % 2)])
        d.update("u1", "messages", {"content": "x"}, where=eq("id", 2))
        d.delete("u1", "messages", where=eq("id", 3))
        d.live_registry()
    with r.item("an unsubscribed query leaves system.live"):
        d.unsubscribe("conv2")
        d.insert("u1", "messages", [message(16, 1)])
        d.live_registry()


@scenario(
    "L08",
    "Multiple listeners on the same table",
    "live",
    covers=("live_filter_unsupported",),
)
def multiple_listeners(r: Run) -> None:
    """Three independent subscriptions of one table (all, a conversation, an IN list), each
    getting exactly its own changes."""
    d = r.d
    from kalamfuzz.model.where import Col, InList, Lit

    with r.item("three subscriptions on one table"):
        d.create_table("root", "messages", USER, columns=MESSAGES)
        d.subscribe("u1", "all", "messages")
        d.subscribe("u1", "conv1", "messages", where=eq("conversation_id", 1))
        d.subscribe(
            "u1", "some", "messages", where=InList(Col("conversation_id"), (Lit(2), Lit(3)))
        )
    with r.item("writes to three conversations, each listener gets its own"):
        for i in range(1, 31):
            d.insert("u1", "messages", [message(i, 1 + i % 4)])
        d.update("u1", "messages", {"conversation_id": 3}, where=eq("id", 4))
        d.check_live()


@scenario("L09", "Listener reconnect without data loss", "live", covers=("resume_from_inclusive",))
def reconnect(r: Run) -> None:
    """The socket is reset under the client; it resumes each subscription from the last _seq
    it saw and gets exactly the changes since."""
    d = r.d
    with r.item("a listener with changes received"):
        _messages(r)
        for i in range(1, 11):
            d.insert("u1", "messages", [message(i, 1)])
    with r.item("reset, resume from the last _seq: no loss, no replay"):
        d.resume("u1")
        for i in range(11, 21):
            d.insert("u1", "messages", [message(i, 1)])
        d.update("u1", "messages", {"content": "after resume"}, where=eq("id", 5))
        d.resume("u1")
        d.delete("u1", "messages", where=eq("id", 6))
        d.check_live()


@scenario("L10", "High-frequency changes", "live")
def high_frequency(r: Run) -> None:
    """N messages as fast as 10 clients can send them; all N notified."""
    n = r.scale.live_high_frequency
    with r.item("a listener"):
        _messages(r)
    with r.item(f"{n} messages from 10 concurrent inserts at a time, all delivered"):
        for ids in chunks(range(1, n + 1), 10):
            r.d.parallel(
                [
                    Write(
                        "svc" if i % 2 else "u1",
                        "messages",
                        [message(i, 1)],
                        as_user="u1" if i % 2 else None,
                    )
                    for i in ids
                ]
            )
        r.d.check_live()
        r.d.read_all("u1", "messages", expect=n)
