"""kalamfuzz.sim: the embedded target, a KalamDB-compatible server with switchable planted bugs.

Run it as ``python -m kalamfuzz.sim CONFIG.toml`` (or ``kalamfuzz sim CONFIG.toml``). It reads
kalamdb-server's config keys and KALAMDB_* overrides, speaks the same HTTP and WebSocket protocol
(../shared/kalamdb/), keeps real data on disk and runs as its own process, so the launcher can
measure, kill and restart it like the real server.

Why these internals:

- SQL evaluation: Apache DataFusion (the ``datafusion`` package), the engine KalamDB itself runs
  SELECT, UPDATE/DELETE predicates, joins and aggregates on, so three-valued logic, LIKE, casts,
  aggregate types and error classes match the real server. Each scope's visible rows are handed
  to it as Arrow tables (cached per scope version); a query over a thousand rows costs < 1 ms.
- Parsing: sqlglot for the standard statements (to resolve ``ns.table`` to the caller's rows and
  apply the 50/1000 row caps), and a small hand parser for KalamDB's own grammar (CREATE USER
  TABLE ... WITH, STORAGE FLUSH, EXECUTE AS USER, CREATE STORAGE), which no general parser knows.
- Hot tier: versions in memory plus an append-only write-ahead log written before a write is
  acknowledged; it survives SIGKILL exactly as KalamDB's RocksDB WAL with sync_writes=false does,
  and replaying a log of versions is simpler and faster than embedding a second database.
- Cold tier: pyarrow writes ``batch-N.parquet`` (``.tmp`` then rename) and ``manifest.json`` in
  KalamDB's format; start-up reads them back, so restarts exercise the real files.
- HTTP and WebSocket: aiohttp, one asyncio loop serving both, so a statement and the live-query
  fan-out it causes are atomic with respect to every other request, as commit order requires.

Planted bugs (``bugs.py``) are switched on with ``[sim] bugs = [...]`` or ``KALAMSIM_BUGS=a,b``;
with none on, the sim keeps the contract in docs/contract.md.
"""
