"""Titles in KalamDB's words: what a user of the server sees, from the violation and the
statements; kalamfuzz's contract item stays in the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kalamfuzz.campaign.events import Failure
from kalamfuzz.campaign.report.changes import _changes, _sub_sql
from kalamfuzz.campaign.report.story import _EXEC_AS, Story, _verb
from kalamfuzz.campaign.report.violations import _plain, parse_violations


def _server_says(reply: Mapping[str, Any], limit: int = 90) -> str:
    text = str(reply.get("message") or "")
    text = re.sub(r"^Statement \d+ failed: ", "", text)
    # the innermost error is the one a user recognises
    for marker in ("Already exists: ", "Not found: ", "Permission denied: ", "Invalid operation: "):
        if marker in text:
            text = text[text.rindex(marker) + len(marker) :]
            break
    text = re.sub(r"^(?:[A-Z][a-z]+ error: )+", "", text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _faults_before(story: Story) -> list[str]:
    out = []
    for e in story.before_departure():
        if e.kind == "fault" and not e.request.startswith("network"):
            out.append("SIGINT" if e.request.startswith("SIGINT") else "SIGKILL")
    return out


def _dropped(statements: Sequence[str]) -> str:
    """The column the last ``DROP COLUMN`` of ``statements`` dropped."""
    drops = [re.search(r"DROP COLUMN (\w+)", s) for s in statements]
    return next((d.group(1) for d in reversed(drops) if d), "")


def _live_where(story: Story, sub: str) -> str:
    """The WHERE of a subscription's query, quoted for a title."""
    sub_sql, _ = _sub_sql(story, sub)
    m = re.search(r" WHERE (.*)$", sub_sql)
    return f"`WHERE {m.group(1)}`" if m else "its WHERE"


def title(failure: Failure) -> str:
    """The finding in KalamDB's words: what a user of the server sees, from the violation and
    the statements (kalamfuzz's contract item stays in the body)."""
    return _title(Story.of(failure))


def _title(story: Story) -> str:
    violations, more = parse_violations(story.failure.message)
    if not violations:
        return story.names(story.failure.signature)
    v = violations[0]
    summary = story.names(v.summary)
    dep = story.tx[story.departure[-1]] if story.departure else None
    about_sql = not story.where.startswith(("subscription ", "subscribe ", "job ", "calls "))
    sql = story.n(dep) if dep is not None and dep.kind == "sql" else story.where
    verb = _verb(sql) if sql and (about_sql or (dep is not None and dep.kind == "sql")) else ""
    table = story.table()
    kind = f"{table.type} table" if table else "table"
    before = [story.n(e) for e in story.before_departure() if e.kind == "sql"]
    restarts = _faults_before(story)
    after_restart = f"after a {restarts[-1]} and restart, " if restarts else ""
    kill = restarts[-1] if restarts else "a restart"
    says = story.names(_server_says(dep.reply)) if dep is not None else ""

    def text(t: str) -> str:
        return t[:1].upper() + t[1:]

    if "a deleted row is visible again" in summary:
        flushes = [i for i, s in enumerate(before) if s.startswith("STORAGE FLUSH")]
        deletes = [i for i, s in enumerate(before) if _verb(s) == "DELETE"]
        if flushes and deletes and flushes[0] < deletes[-1] < flushes[-1]:
            return (
                f"DELETE of a row already flushed to Parquet is undone by the next STORAGE FLUSH "
                f"TABLE: the row is back in SELECT ({kind})"
            )
        return text(
            f"{after_restart}a deleted row is returned again by {verb or 'SELECT'} ({kind})"
        )
    if "INSERT of a deleted key refused" in summary:
        return f'INSERT of a key deleted after its row was flushed to Parquet fails: "{says}"'
    if "out of ORDER BY order" in summary:
        m = re.search(r"ORDER BY (.*?)(?: LIMIT (\d+))?$", sql)
        order = (
            f"`ORDER BY {m.group(1)}{' LIMIT ' + m.group(2) if m.group(2) else ''}`"
            if m
            else "ORDER BY"
        )
        return f"SELECT with {order} returns its rows in another order ({kind})"
    if re.search(r"refused an UPDATE or DELETE whose WHERE", summary):
        m = re.search(r" WHERE (.*)$", sql)
        cond = f" (`WHERE {m.group(1)}`)" if m else ""
        return f'{verb} whose WHERE is never true{cond} is refused: "{says}" instead of 0 rows'
    m = re.search(
        r"answered, not refused, when the WHERE is never true: (\w+) may not read (\S+)", summary
    )
    if m:
        access = f"{table.access} " if table and table.access else ""
        return (
            f"A `{m.group(1)}`-role SELECT on {access}SHARED table {m.group(2)} answers 200 with no "
            "rows instead of 403 when its WHERE is never true"
        )
    if "a live change carries a dropped column" in summary:
        col = _dropped(before)
        return f"After ALTER TABLE ... DROP COLUMN {col}, live changes still carry `{col}`"
    if "a column added again shows the dropped column's old values" in summary:
        col = _dropped(before)
        return f"A column dropped and added again (`{col}`) shows the dropped column's old values"
    if "never arrived" in summary:
        sub = v.subscription
        sub_sql, _ = _sub_sql(story, sub)
        lost = len([x for x in violations if "never arrived" in x.summary]) + more
        got = len(_changes(story, sub))
        query = f" (`{sub_sql}`)" if sub_sql else ""
        if lost == 1 and got == 0:
            wrapped = any(_EXEC_AS.search(s) for s in before)
            how = " written with EXECUTE AS USER" if wrapped else ""
            return f"A live query{query} never receives the change of a matching row{how}"
        return f"A live query{query} receives {got} changes and silently misses {lost} more, with no error"
    if re.search(
        r"snapshot page \d+ is malformed|snapshot differs|snapshot is not ordered", summary
    ):
        sub = v.subscription
        sub_sql, options = _sub_sql(story, sub)
        size = options.get("batch_size")
        paged = f" paged by batch_size {size}" if size else ""
        return f"A subscription snapshot{paged} repeats and loses rows (`{sub_sql}`)"
    if "that does not match the subscription" in summary:
        cond = _live_where(story, v.subscription)
        return f"A live query with {cond} receives a change for a row that does not match it"
    if "when an UPDATE made it leave the filter" in summary:
        cond = _live_where(story, v.subscription)
        return f"No live notification when an UPDATE makes a row leave a live query's {cond}"
    if "flush skipped although rows are pending after a failed flush" in summary:
        return (
            f'After a flush job fails (storage unwritable), STORAGE FLUSH TABLE answers "{says}" '
            "and the rows never reach Parquet"
        )
    if "written while a flush ran" in summary:
        return f'A row written while a flush job runs is never flushed: STORAGE FLUSH TABLE answers "{says}"'
    if "a flush job a restart interrupted never ends" in summary:
        observed = v.line("observed")
        return f"A flush job interrupted by {kill} stays `running` in system.jobs ({observed})"
    if "refused what must succeed" in summary and says:
        return text(f'{after_restart}{verb} on a {kind} fails: "{says}"')
    m = re.search(r"(UPDATE|DELETE) affected another number of rows", summary)
    if m and dep is not None:
        got_n = dep.reply.get("row_count")
        exp = re.search(r"(\d+) row", v.line("expected"))
        match = f" where {exp.group(1)} match" if exp else ""
        return text(f"{after_restart}{m.group(1)} on a {kind} reports {got_n} row(s){match}")
    if "acknowledged rows lost across a restart" in summary:
        return f"Rows acknowledged before a {kill} are gone after the restart ({kind})"
    if re.search(r"primary key\(s\) .* returned more than once", summary):
        return text(f"{after_restart}SELECT returns one primary key more than once ({kind})")
    m = re.search(r"rows of other users visible in (.*)", summary)
    if m:
        return f"A user sees another user's rows in {m.group(1)} ({kind})"
    if "returned rows older than TTL_SECONDS" in summary:
        return f"STREAM rows older than the table's TTL_SECONDS are still returned ({kind})"
    if "SELECT result differs from the model" in summary:
        return text(f"{after_restart}SELECT on a {kind} returns other rows than were written")
    m = re.search(r"no order of the calls sent at once explains (.*)", summary)
    if m:
        what = m.group(1).replace("the read after them", "").strip(", ")
        calls = re.match(r"(\d+) calls sent at once", v.subject)
        if calls and calls.group(1) == "1" and what:
            return text(f"{what}, alone, answers what running it alone cannot")
        return (
            f"{calls.group(0) if calls else 'Calls sent at once'}"
            f"{' (' + what + ')' if what else ''}: no order of them explains what the server "
            "answered"
        )
    if "another password logs in after a weak password" in summary:
        return (
            "CREATE USER accepts a password longer than bcrypt's 72 bytes, and then any other "
            "password with the same first 72 bytes logs in as that user"
        )
    if summary == "accepted a weak password":
        return "CREATE USER accepts a password KalamDB's own policy refuses (too short, common or too long)"
    m = re.search(r"^(accepted|server error on|no answer to) (a .*)$", summary)
    if m:
        outcome = {
            "accepted": "is accepted",
            "server error on": "gets a 5xx",
            "no answer to": "gets no answer in time",
        }[m.group(1)]
        request = m.group(2).replace("a credential: ", "a bearer token: ")
        wanted = "a 2xx answer" if v.line("expected") == "HTTP 200" else "a 4xx error"
        return text(f"{request} {outcome} instead of {wanted}")
    if summary.startswith("the server went down after "):
        return text(
            f"the server process dies on {summary.removeprefix('the server went down after ')}"
        )
    if v.subject.startswith("subscription "):
        sub_sql, _ = _sub_sql(story, v.subscription)
        return text(f"a live query{f' (`{sub_sql}`)' if sub_sql else ''} receives a {summary}")
    return text(f"{verb + ' on a ' + kind + ': ' if verb else ''}{_plain(summary)}")
