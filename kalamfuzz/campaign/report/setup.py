"""The setup a report starts from: only the users, storages, namespaces and tables its steps use.

A maintainer pastes it into a fresh server as ``root``; everything else the run made would only
hide what matters.
"""

from __future__ import annotations

import re

from attrs import define

from kalamfuzz.campaign.report.names import DATA
from kalamfuzz.campaign.report.story import _EXEC_AS, _TABLE_REF, Story


@define
class _Used:
    """What the shown steps use, each in the order the run made it."""

    tables: list[str]
    users: list[str]
    storages: list[str]


def _used(story: Story) -> _Used:
    texts = [story.n(story.tx[i]) for i in story.shown]
    texts.append(story.where)
    refs = {".".join(r) for t in texts for r in _TABLE_REF.findall(t)}
    tables = [t for t in story.tables if t in refs]
    users: list[str] = []
    for i in story.shown:
        e = story.tx[i]
        for who in (story.names(e.actor), *_EXEC_AS.findall(story.n(e))):
            if who != "root" and who not in users:
                users.append(who)
    storages = [story.tables[t].storage for t in tables]
    storages += [str(args[0]) for _, rule, args in story.silent if rule.endswith("_storage")]
    words = {w for t in texts for w in re.findall(r"\w+", t)}
    for e in story.failure.setup:
        m = re.match(r"CREATE STORAGE (\S+)", story.n(e))
        if m and m.group(1) in words:
            storages.append(m.group(1))
    return _Used(tables, users, [s for s in dict.fromkeys(storages) if s != "local"])


def placeholder(user: str) -> str:
    """The password a report gives a user: the real one was random and is redacted; this one
    is no secret, and a maintainer can paste it (8+ characters, mixed, not a common one)."""
    return f"{user}-Passw0rd!"


def _setup(story: Story) -> list[str]:
    used = _used(story)
    lines: list[str] = []
    for e in story.failure.setup:
        sql = story.n(e)
        m = re.match(r"CREATE USER (\S+) ", sql)
        if m and m.group(1) in used.users:
            lines.append(
                sql.replace("PASSWORD '***'", f"PASSWORD '{placeholder(m.group(1))}'") + ";"
            )
        m = re.match(r"CREATE STORAGE (\S+) ", sql)
        if m and m.group(1) in used.storages:
            lines.append(sql + ";")
    namespaces = {t.split(".", 1)[0] for t in used.tables}
    texts = " ".join(story.n(story.tx[i]) for i in story.shown)
    for i in story.world:
        sql = story.n(story.tx[i])
        m = re.match(r"CREATE NAMESPACE (\S+)", sql)
        if m:
            if m.group(1) in namespaces or re.search(rf"\b{re.escape(m.group(1))}\.", texts):
                lines.append(sql + ";")
            continue
        refs = {".".join(r) for r in _TABLE_REF.findall(sql)}
        if refs & set(used.tables):
            lines.append(sql + ";")
    return lines


def _setup_section(story: Story) -> list[str]:
    """The setup as the start of "Steps to reproduce", with what ``/data`` stands for when a
    statement or a step names the data directory."""
    setup = _setup(story)
    data = any(DATA + "/" in line for line in setup) or any(
        rule.endswith("_storage") for _, rule, _ in story.silent
    )
    out = ["On a fresh server, as `root`:", ""]
    out += ["```sql", *setup, "```", ""] if setup else []
    if data:
        out.append(
            f"`{DATA}` stands for the server's data directory (`data_path` under `[storage]` in "
            f"its config); the `local` storage keeps its files in `{DATA}/storage`."
        )
        out.append("")
    return out
