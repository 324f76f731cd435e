"""What a subscription received, counted from the transcript: for a lost-changes finding, which
keys the INSERTs wrote, which changes arrived and which never did, as numbers a maintainer can
check against the steps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kalamfuzz.campaign.report.inserts import _tuples
from kalamfuzz.campaign.report.story import Story
from kalamfuzz.campaign.report.violations import _Violation
from kalamfuzz.machines.driver import Exchange


def _keys(rows: Iterable[Any]) -> list[Any]:
    out = []
    for r in rows:
        if isinstance(r, Mapping) and "id" in r:
            out.append(r["id"])
    return out


def _change_keys(changes: Iterable[Exchange]) -> list[Any]:
    """The keys of the rows change messages carry (a delete's in its old values)."""
    return [
        k for e in changes for k in _keys(e.reply.get("rows") or e.reply.get("old_values") or [])
    ]


def ranges(keys: Iterable[Any]) -> str:
    """``1-128, 130, 132-140``: integer keys as runs (others as they are)."""
    ints = sorted({k for k in keys if isinstance(k, int) and not isinstance(k, bool)})
    others = [str(k) for k in keys if not (isinstance(k, int) and not isinstance(k, bool))]
    runs: list[str] = []
    start = prev = None
    for k in ints:
        if prev is not None and k == prev + 1:
            prev = k
            continue
        if start is not None:
            runs.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = k
    if start is not None:
        runs.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(runs + others)


def _subscribe(story: Story, sub: str) -> tuple[Exchange | None, str, dict[str, Any]]:
    """The ``subscribe`` message of a subscription: the exchange, its SQL and its options."""
    for e in story.tx:
        if e.kind != "ws-send":
            continue
        try:
            msg = json.loads(e.request)
        except ValueError:
            continue
        s = msg.get("subscription") if isinstance(msg, dict) else None
        if isinstance(s, dict) and s.get("id") == sub:
            return e, story.names(str(s.get("sql", ""))), dict(s.get("options") or {})
    return None, "", {}


def _sub_sql(story: Story, sub: str) -> tuple[str, dict[str, Any]]:
    _, sql, options = _subscribe(story, sub)
    return sql, options


def _changes(story: Story, sub: str) -> list[Exchange]:
    """The change messages a subscription received."""
    return [
        e
        for e in story.tx
        if e.kind == "ws-recv" and e.request == sub and e.reply.get("type") == "change"
    ]


def _numbers(story: Story, violations: Sequence[_Violation], more: int) -> list[str]:
    """What the transcript counts, for the violations whose size matters (lost changes)."""
    out: list[str] = []
    lost = [v for v in violations if "never arrived" in v.summary]
    if not lost:
        return out
    sub = lost[0].subscription
    got = _changes(story, sub)
    keys = _change_keys(got)
    n_lost = len(lost) + more
    written = _written_keys(story, sub)
    missing = [k for k in written if k not in set(keys)]
    if written and len(missing) == n_lost:
        out.append(
            f"The INSERTs after subscribing wrote {len(written)} rows into the subscribed "
            f"partition; the subscriber received {len(got)} change messages (keys "
            f"{ranges(keys) or 'none'}); {n_lost} never arrived (keys {ranges(missing)})."
        )
        return out
    out.append(
        f"The subscriber received {len(got)} change messages for `{sub}` (keys "
        f"{ranges(keys) or 'none'}); {n_lost} change(s) never arrived (keys "
        f"{ranges(_lost_keys(lost))}{', …' if more else ''})."
    )
    return out


def _written_keys(story: Story, sub: str) -> list[Any]:
    """The keys plain INSERTs wrote into the partition a subscription without WHERE watches,
    after it subscribed (empty when that cannot be told from the transcript)."""
    sent, sql, _ = _subscribe(story, sub)
    m = re.match(r"SELECT .* FROM (\S+)$", sql)
    if m is None or sent is None or " WHERE " in sql:
        return []
    table = story.tables.get(m.group(1))
    subscriber = story.names(sent.actor)
    out: list[Any] = []
    for e in story.tx:
        if e.kind != "sql" or e.sent_ms < sent.sent_ms or e.reply.get("code"):
            continue
        inner = re.sub(r"^EXECUTE AS USER '[^']+' \((.*)\)$", r"\1", story.n(e))
        ins = re.match(rf"INSERT INTO {re.escape(m.group(1))} \(([^)]*)\) VALUES (.*)$", inner)
        if ins is None:
            continue
        if table is not None and table.type != "SHARED" and story.user_of(e) != subscriber:
            continue
        columns = [c.strip() for c in ins.group(1).split(",")]
        rows = _tuples(ins.group(2))
        if "id" not in columns or rows is None:
            return []
        at = columns.index("id")
        for r in rows:
            try:
                out.append(int(r[at]))
            except ValueError:
                return []
    return out


def _lost_keys(lost: Sequence[_Violation]) -> list[Any]:
    out: list[Any] = []
    for v in lost:
        m = re.search(r"for key (\S+) never arrived", v.summary)
        if m:
            try:
                out.append(int(m.group(1)))
            except ValueError:
                out.append(m.group(1))
    return out
