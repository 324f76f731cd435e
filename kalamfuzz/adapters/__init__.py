"""Everything in kalamfuzz that touches a server.

Machines, scenarios and the CLI use only this API. The same code works against the embedded sim
and a real ``kalamdb-server`` (it follows ``shared/kalamdb/`` to the letter). All errors are
:class:`kalamfuzz.errors.KalamError` subclasses with ``status``, ``code``, ``message``, ``statement``.

A scenario in ten lines::

    from kalamfuzz.adapters import Target

    with Target.parse("sim") as target:             # or binary:PATH, url:URL, $KALAMFUZZ_TARGET
        admin = target.client()                     # SqlClient, logged in as root
        ns = admin.fresh_namespace()
        admin.create_table(f"{ns}.notes", "id INT PRIMARY KEY, body TEXT", table_type="USER")
        admin.create_user("alice", "alice-pass-1", role="user")
        alice = admin.login_as("alice", "alice-pass-1")
        with target.live(alice) as live:           # LiveClient, one socket
            sub = live.subscribe(f"SELECT * FROM {ns}.notes", batch_size=7)
            alice.sql(f"INSERT INTO {ns}.notes (id, body) VALUES (1, 'hi')")
            sub.wait_changes(1)
            assert sub.current_rows()[0]["body"] == "hi"
        job = admin.flush(f"{ns}.notes")            # system.jobs row, or None if nothing to flush

SQL (:mod:`.sql`)
    SqlClient(url, user, password)   login (first-run setup on 428, refresh on TOKEN_EXPIRED)
    .sql(stmt, params, namespace)    → SqlResponse (typed results; client send/receive times)
    .execute_as(user, stmt)          EXECUTE AS USER 'user' (stmt)
    .query_all(select, order_by)     every row, paged past the 50/1000 caps
    .create_namespace / fresh_namespace / drop_namespace / create_user / create_table / drop_table
    .login_as(user, password)        another user's client
    .start_flush(t) / .wait_job(id) / .flush(t)   flush jobs (job row with final status)
    .jobs() .job(id) .live_queries() .users() .storages() .tables()   system tables, typed
    .health() .auth_status() .me() .token
    SqlResponse / QueryResult        .results .result .rows .dicts() .scalar() .inserted ...
Live (:mod:`.websocket`)
    LiveClient(url, token|SqlClient) one WebSocket, many subscriptions; blocking facade
    .subscribe(sql, batch_size=, last_rows=, from_seq=, snapshot=) → Subscription
    .unsubscribe(sub) .reconnect() .drop() .close() .connected .close_code .errors
    Subscription                     .batches .snapshot_rows .changes .messages .current_rows()
                                     .max_seq .ready .error .dropped .wait_ready() .wait_changes(n)
                                     .wait_quiet() .wait_for(pred) .resume() .unsubscribe()
    AsyncLiveClient                  the async core
Process and target (:mod:`.process`, :mod:`.target`)
    ServerProcess(binary=None|PATH, bugs=, config=)   .start() .stop() .kill() .restart()
                                     .url .data_dir .storage_dir .pid .rss() .log_tail()
    Target.parse("sim"|"binary:PATH"|"url:URL")       .start() .stop() .client() .live()
                                     .capabilities .skip_reason(need) .kill() .restart()
Cold tier (:mod:`.cold`) and faults (:mod:`.faults`)
    list_scopes(base) read_manifest(dir) read_batch(path) scope_rows(scope)
    block_directory(path)            replace a directory with a file (writes fail), then restore
"""

from kalamfuzz.adapters.cold import (
    Manifest,
    Scope,
    Segment,
    list_scopes,
    read_batch,
    read_manifest,
    scope_rows,
)
from kalamfuzz.adapters.faults import BlockedDirectory, block_directory
from kalamfuzz.adapters.process import ServerProcess
from kalamfuzz.adapters.sql import (
    QueryResult,
    SqlClient,
    SqlResponse,
    quote_ident,
    quote_literal,
    wrap_execute_as,
)
from kalamfuzz.adapters.system import Job, LiveQueryRow, StorageRow, TableRow, UserRow
from kalamfuzz.adapters.target import Capabilities, Target
from kalamfuzz.adapters.values import Column
from kalamfuzz.adapters.websocket import (
    AsyncLiveClient,
    BatchControl,
    Change,
    LiveClient,
    Received,
    SnapshotBatch,
    Subscription,
)

__all__ = [
    "AsyncLiveClient",
    "BatchControl",
    "BlockedDirectory",
    "Capabilities",
    "Change",
    "Column",
    "Job",
    "LiveClient",
    "LiveQueryRow",
    "Manifest",
    "QueryResult",
    "Received",
    "Scope",
    "Segment",
    "ServerProcess",
    "SnapshotBatch",
    "SqlClient",
    "SqlResponse",
    "StorageRow",
    "Subscription",
    "TableRow",
    "Target",
    "UserRow",
    "block_directory",
    "list_scopes",
    "quote_ident",
    "quote_literal",
    "read_batch",
    "read_manifest",
    "scope_rows",
    "wrap_execute_as",
]
