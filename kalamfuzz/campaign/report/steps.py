"""The steps to reproduce: each exchange, fault and silent step in plain SQL, WebSocket JSON and
shell terms, numbered in the order they happened, the departure marked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kalamfuzz.campaign.report.changes import _change_keys, ranges
from kalamfuzz.campaign.report.inserts import compact_insert
from kalamfuzz.campaign.report.names import DATA
from kalamfuzz.campaign.report.story import Story, _verb, is_job_poll
from kalamfuzz.campaign.report.violations import parse_violations
from kalamfuzz.machines.driver import Exchange

_DEPARTS = "  ← **departs from what KalamDB promises**"

# --- an answer in one line ---------------------------------------------------------------------


def _json_rows(rows: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(json.dumps(r, default=str, ensure_ascii=False) for r in rows[:limit])
    more = f", … {len(rows) - limit} more" if len(rows) > limit else ""
    return shown + more


def _answer(reply: Mapping[str, Any]) -> str:
    """The server's answer to a SQL request, in one line."""
    status = reply.get("status")
    if reply.get("lost"):
        return "no answer (connection lost)"
    if reply.get("code"):
        return f"HTTP {status} `{reply['code']}`: {reply.get('message') or ''}".rstrip(": ")
    parts = [f"HTTP {status}"] if status is not None else []
    if "counts" in reply:
        ins, upd, dele = ([*list(reply.get("counts") or []), 0, 0, 0])[:3]
        parts.append(f"Inserted {ins}, Updated {upd}, Deleted {dele} row(s)")
        for k, rows in enumerate(reply.get("selects") or [], start=1):
            parts.append(
                f"SELECT {k}: {len(rows)} row(s)" + (f" {_json_rows(rows)}" if rows else "")
            )
    elif "rows" in reply:
        rows = reply.get("rows") or []
        cols = reply.get("columns") or []
        text = f"{len(rows)} row(s)"
        if rows:
            text += f" ({', '.join(cols)}): {_json_rows(rows)}"
        parts.append(text)
    elif reply.get("message"):
        parts.append(str(reply["message"]))
    return ", ".join(parts)


def _job_end(reply: Mapping[str, Any]) -> str:
    rows = reply.get("rows") or []
    if not rows:
        return "no such job"
    _, status, message = ([*list(rows[0]), "", "", ""])[:3]
    text = str(message or "")
    try:
        inner = json.loads(text)
        if isinstance(inner, dict) and "message" in inner:
            text = str(inner["message"])
    except ValueError:
        pass
    return f"`{status}`" + (f": {text}" if text else "")


def _ws_text(reply: Mapping[str, Any]) -> str:
    shown = dict(reply)
    if "schema" in shown:
        shown["schema"] = "…"
    return json.dumps(shown, separators=(",", ":"), default=str, ensure_ascii=False)


# --- faults and steps that send nothing, in shell terms -----------------------------------------


def _storage_dir(storage: str) -> str:
    return f"{DATA}/storage" if storage == "local" else f"{DATA}/storage-{storage}"


_RESTART = "start the server again on the same data directory and wait for `GET /health`"


def _fault_text(what: str, flushed: bool = True) -> str:
    """A fault of the transcript in shell terms (``flushed``: a flush job may be running)."""
    if what.startswith("network: "):
        kind = what.split(": ", 1)[1]
        how = {
            "reset_request": "passes half of the request to the server, then resets both "
            "connections (the statement never runs; the client sees `connection reset`)",
            "reset_response": "passes the whole request to the server, drops the reply and "
            "resets the client's connection (the statement runs; the client sees "
            "`connection reset`)",
            "stall": "holds the reply back for 100 ms",
        }.get(kind, kind)
        return f"The next statement goes through a TCP proxy that {how}:"
    kill = "`kill -KILL <server pid>`" if what.startswith("SIGKILL") else None
    if what.startswith("SIGINT"):
        return (
            "Stop the server gracefully: `kill -INT <server pid>` (it waits for running jobs); "
            f"once it has exited, {_RESTART}."
        )
    if kill is None:
        return f"{what}."
    m = re.match(r"SIGKILL (\d+) ms into a burst of (\d+) inserts", what)
    if m:
        return (
            f"{m.group(1)} ms after the first of these {m.group(2)} single-row INSERTs was "
            f"sent (one after another, from a client of their own), kill the server: {kill}; "
            f"{_RESTART}."
        )
    m = re.match(r"SIGKILL (\d+) ms into a flush", what)
    if m:
        return (
            f"{m.group(1)} ms after the STORAGE FLUSH reply, kill the server: {kill}; {_RESTART}."
        )
    if what.startswith("SIGKILL once the flush job ran"):
        return (
            "As soon as `system.jobs` shows that job neither `new` nor `queued`, kill the "
            f"server: {kill}; {_RESTART}."
        )
    wait = "Once every flush job has ended, kill" if flushed else "Kill"
    return f"{wait} the server: {kill}; {_RESTART}."


def _silent_text(rule: str, args: Sequence[Any], namespace: str) -> str:
    if rule == "pause":
        return f"Wait {args[0] if args else '?'} s."
    storage = str(args[0]) if args else "local"
    where = f"{_storage_dir(storage)}/{namespace}"
    if rule == "break_storage":
        return (
            f"Make the `{storage}` storage unwritable for namespace `{namespace}`: replace its "
            "directory by a regular file, so that writing below it fails with ENOTDIR even as "
            f"root: `mv {where} {where}.aside 2>/dev/null; echo blocked > {where}`"
        )
    return f"Repair the `{storage}` storage: `rm {where}; mv {where}.aside {where} 2>/dev/null`"


# --- the numbered steps ------------------------------------------------------------------------


def _changes_line(story: Story, group: Sequence[Exchange]) -> str:
    """A run of change messages of one subscription, counted from the transcript."""
    first = group[0]
    kind = first.reply.get("change_type", "")
    keys = _change_keys(group)
    return (
        f"`{story.names(first.actor)}` receives {len(group)} `{kind}` change messages for "
        f"`{first.request}` (keys {ranges(keys)}), the first: `{story.names(_ws_text(first.reply))}`"
    )


def _exchange_text(story: Story, e: Exchange) -> tuple[str, str]:
    """The step's text and, for a long statement, its SQL as a block."""
    who = story.names(e.actor)
    if e.kind == "sql":
        sql = story.n(e)
        if is_job_poll(e):
            return (
                f"`{who}` polls `{sql}` until the job has ended: {story.names(_job_end(e.reply))}",
                "",
            )
        answer = story.names(_answer(e.reply))
        compact = compact_insert(sql)
        if compact is not None:
            return (f"`{who}` ({compact[1]}):", f"{compact[0]}\n→ {answer}")
        if len(sql) > 110:
            return (f"`{who}`:", f"{sql}\n→ {answer}")
        return (f"`{who}`: `{sql}` → {answer}", "")
    if e.kind == "ws-send":
        return (f"`{who}` sends over WebSocket: `{story.n(e)}`", "")
    if e.kind == "ws-recv":
        return (f"`{who}` receives: `{story.names(_ws_text(e.reply))}`", "")
    idx = story.tx.index(e)
    flushed = any(_verb(x.request) == "STORAGE FLUSH" for x in story.tx[:idx] if x.kind == "sql")
    return (story.names(_fault_text(e.request, flushed)), "")


def _at_once(story: Story) -> list[set[int]]:
    """Groups of shown statements sent at once (their request windows overlap)."""
    calls = [i for i in story.shown if story.tx[i].kind == "sql" and not is_job_poll(story.tx[i])]
    groups: list[set[int]] = []
    for i in calls:
        a = story.tx[i]
        near = [
            g
            for g in groups
            if any(a.sent_ms < story.tx[j].recv_ms and story.tx[j].sent_ms < a.recv_ms for j in g)
        ]
        merged = {i}.union(*near)
        groups = [g for g in groups if g not in near] + [merged]
    return [g for g in groups if len(g) > 1]


def _steps(story: Story) -> list[str]:
    tx = story.tx
    items: list[tuple[tuple[float, float], int | None, str]] = []
    for i in story.shown:
        items.append(((tx[i].sent_ms, float(i)), i, ""))
    for s, rule, args in story.silent:
        # break and repair read back earlier writes first; a pause checks after it has waited
        earlier = [i for i, e in enumerate(tx) if e.step < s or (e.step == s and rule != "pause")]
        key = (
            max((tx[i].sent_ms for i in earlier), default=0),
            (earlier[-1] if earlier else -1) + 0.5,
        )
        items.append((key, None, _silent_text(rule, args, story.namespace)))
    items.sort(key=lambda it: it[0])
    # one entry per list item: a run of change messages of one subscription is one, counted
    entries: list[tuple[list[int], str]] = []
    k = 0
    while k < len(items):
        _, at, text = items[k]
        if at is None:
            entries.append(([], text))
            k += 1
            continue
        i = at
        run = [i]
        e = tx[i]
        while (
            e.kind == "ws-recv"
            and e.reply.get("type") == "change"
            and k + len(run) < len(items)
            and (nxt := items[k + len(run)][1]) is not None
            and tx[nxt].kind == "ws-recv"
            and tx[nxt].request == e.request
            and tx[nxt].reply.get("type") == "change"
            and tx[nxt].reply.get("change_type") == e.reply.get("change_type")
        ):
            run.append(nxt)
        if len(run) > 3:
            entries.append((run, _changes_line(story, [tx[j] for j in run])))
            k += len(run)
        else:
            entries.append(([i], ""))
            k += 1
    # a flush and the poll that saw its job end, one after the other: one step
    merged: list[tuple[list[int], str]] = []
    for idx, text in entries:
        if (
            merged
            and len(idx) == 1
            and not text
            and is_job_poll(tx[idx[0]])
            and len(merged[-1][0]) == 1
            and not merged[-1][1]
            and (job := tx[merged[-1][0][0]].reply.get("job_id"))
            and f"'{job}'" in tx[idx[0]].request
        ):
            merged[-1] = ([*merged[-1][0], idx[0]], "")
        else:
            merged.append((idx, text))
    entries = merged
    number = {i: n for n, (idx, _) in enumerate(entries, start=1) for i in idx}
    together = {i: g for g in _at_once(story) for i in g}
    marked = set(story.marks)
    out: list[str] = []
    for n, (idx, text) in enumerate(entries, start=1):
        if not idx or text:
            out.append(f"{n}. {text}")
            continue
        i = idx[0]
        head, block = _exchange_text(story, tx[i])
        if len(idx) == 2:  # the flush and its job's end
            end = story.names(_job_end(tx[idx[1]].reply))
            job = f"; polled in `system.jobs` by its job_id, the job ends {end}"
            head, block = (head, f"{block}{job}") if block else (f"{head}{job}", "")
        if i in together:
            others = ", ".join(
                str(number[j]) for j in sorted(together[i], key=number.__getitem__) if j != i
            )
            head = f"sent at once with {others}, from its own connection, " + head
        mark = ""
        if i in marked:
            mark = _DEPARTS
        elif i == story.before:
            mark = "  (the state before)"
        if block:
            sql, _, answer = block.partition("\n")
            out += [f"{n}. {head}", "   ```sql", f"   {sql}", "   ```", f"   {answer}{mark}"]
        else:
            out.append(f"{n}. {head}{mark}")
    if story.absent and story.departure:
        last = tx[story.departure[-1]]
        out.append(
            f"{len(entries) + 1}. `{story.names(last.actor)}` keeps listening on "
            f"`{last.request}`: no further message arrives{_DEPARTS}"
        )
    job = re.match(r"job (\S+)", story.where)
    if job and not story.departure:
        violations, _ = parse_violations(story.failure.message)
        seen = next((v.line("observed") for v in violations if v.line("observed")), "")
        out.append(
            f"{len(entries) + 1}. `root` polls `SELECT job_id, status, message FROM system.jobs "
            f"WHERE job_id = '{job.group(1)}'`: {seen or 'it never ends'}{_DEPARTS}"
        )
    return out


def _steps_section(story: Story) -> list[str]:
    """How each step reaches the server, then the steps."""
    kinds = {story.tx[i].kind for i in story.shown}
    how = (
        'Each statement is `POST /v1/api/sql` with `{"sql": "..."}` and `Authorization: '
        'Bearer <token>`, the token from `POST /v1/api/auth/login` with `{"user": ..., '
        '"password": ...}`'
    )
    if kinds & {"ws-send", "ws-recv"}:
        how += "; WebSocket messages go over `GET /v1/ws` with the same header"
    return [how + ". In this order:", "", *_steps(story), ""]
