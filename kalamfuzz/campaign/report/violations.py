"""A failure's violations: read from its message, and told as "What goes wrong" and "What was
expected" in KalamDB's words rather than kalamfuzz's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attrs import define, field

from kalamfuzz.campaign.report.names import Names
from kalamfuzz.campaign.sources import Source, sources_for

_VIOLATION = re.compile(r"^\[([^\]]+)\] (.*?): (.*)$")
_MORE = re.compile(r"^\.\.\. and (\d+) more violations")


@define
class _Violation:
    item: str
    subject: str
    summary: str
    detail: list[str] = field(factory=list)

    def line(self, name: str) -> str:
        for d in self.detail:
            if d.strip().startswith(f"{name}:"):
                return d.strip()[len(name) + 1 :].strip()
        return ""

    @property
    def subscription(self) -> str:
        """The subscription a violation is about: its subject without ``subscription``."""
        return self.subject.removeprefix("subscription ").strip()


def parse_violations(message: str) -> tuple[list[_Violation], int]:
    """The violations of a failure's message, and how many more its text left out."""
    out: list[_Violation] = []
    more = 0
    for line in message.splitlines():
        head = _VIOLATION.match(line)
        if head:
            out.append(_Violation(head.group(1), head.group(2), head.group(3)))
        elif (m := _MORE.match(line)) is not None:
            more = int(m.group(1))
        elif out and line.startswith(" "):
            out[-1].detail.append(line)
    return out, more


def violation_lines(message: str, keep: int = 8) -> list[str]:
    """The first ``keep`` violations of a failure's message (each a ``[item]`` line and its
    indented detail), then how many more there are: a burst can lose hundreds of changes."""
    lines = message.strip().splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("[")]
    if len(heads) <= keep:
        return lines
    return [*lines[: heads[keep]], f"... and {len(heads) - keep} more violations like these"]


def _where_of(message: str) -> str:
    """What the failing check was about: the ``after ...:`` line of the message."""
    for line in message.splitlines():
        if line.startswith("after "):
            return line[len("after ") :].rstrip().removesuffix(":")
    return ""


# --- what goes wrong ------------------------------------------------------------------------

#: kalamfuzz's words in violation texts, and what a KalamDB reader calls the same thing.
_PLAIN = (
    ("the model's query result", "the query's result"),
    ("than the model", "than expected"),
    ("the model expected", "expected"),
    ("1 calls sent at once", "1 call sent at once"),
)


def _plain(text: str) -> str:
    for ours, theirs in _PLAIN:
        text = text.replace(ours, theirs)
    return text


def _violation_block(names: Names, message: str) -> list[str]:
    """The violations as a quoted block, without kalamfuzz's contract item (the expectation
    names it); a run of violations alike (a burst's lost changes) shows its first and a count."""
    from kalamfuzz.invariants.violation import masked

    violations, more = parse_violations(message)
    lines: list[str] = []
    k = 0
    while k < len(violations):
        v = violations[k]
        alike = 1
        while k + alike < len(violations) and masked(violations[k + alike].summary) == masked(
            v.summary
        ):
            alike += 1
        lines.append(f"{v.subject}: {v.summary}")
        lines += v.detail
        if k + alike == len(violations) and more:
            alike, more = alike + more, 0  # the message's own "... and N more like these"
        if alike > 1:
            lines.append(f"... and {alike - 1} more like it")
        k += alike
    if more:
        lines.append(f"... and {more} more violations")
    if not violations:
        lines = [line for line in violation_lines(message) if not line.startswith("after ")]
    text = _plain(names("\n".join(lines)))
    return ["```", *text.splitlines(), "```"]


# --- what was expected ----------------------------------------------------------------------

#: What each contract item promises, in words (DESIGN.md, "The promise being tested").
PROMISES = {
    "1 isolation": "A row written in one user's partition of a USER or STREAM table is never "
    "visible to another user, in SELECT, in a subscription snapshot or in a live change.",
    "2 correct before/during/after flush": "SELECT returns the same rows (and, with ORDER BY, "
    "the same order) whether they are in the hot tier, the cold tier or both, and while a "
    "flush runs; DML acts on exactly the rows its WHERE selects.",
    "3 cold artifacts": "After a flush job completes, each flushed scope has a manifest.json "
    "and non-empty batch-N.parquet files that hold exactly the flushed rows and agree with "
    "the manifest.",
    "4 subscriptions": "A subscription's snapshot equals the query's result, paged in "
    "batch_size batches; every later change that matches arrives exactly once and in commit "
    "order, nothing else arrives, and a client applying snapshot and changes holds the "
    "query's current result.",
    "5 RBAC": "Every forbidden action fails with a clear error (403 PERMISSION_DENIED or the "
    "documented code) and changes nothing; every allowed action succeeds.",
    "6 idempotency and safety": "No request duplicates a row; a duplicate primary key is "
    "rejected in the hot and the cold tier; a failed or retried flush leaves no empty file, "
    "corrupt manifest or duplicate, and loses no row.",
    "7 schema evolution": "ALTER TABLE ADD COLUMN keeps old rows readable with the new column "
    "NULL or its default, hot and cold; DROP COLUMN keeps the rest readable and statements "
    "naming the dropped column fail clearly.",
    "8 storage routing": "A flush writes under the base directory of the table's STORAGE_ID "
    "and its path template, and nowhere else.",
    "STREAM TTL": "A STREAM row older than its table's TTL_SECONDS is never returned.",
    "9 concurrency and transactions": "Calls sent at once by different clients are explained "
    "by some order of them that keeps real time: every reply, every later read and every "
    "subscriber agree with the statements run one by one in that order (an autocommit "
    "statement is atomic; two increments of one row add two). An explicit transaction "
    "(BEGIN ... COMMIT in one request) is all or nothing, reads its own writes, is never seen "
    "half done, and under the snapshot isolation KalamDB documents (specs/027-pg-transactions, "
    "research.md) a transaction whose rows another one changed after its snapshot does not "
    "commit over them: a committed write is never silently lost.",
    "10 hostile clients": "A malformed statement or request, a forged, expired or misused "
    "credential, or a weak password gets a clear 4xx error, changes nothing, echoes no other "
    "user's data and no secret, and leaves the server up.",
}


def _expected(items: Sequence[str], violations: Sequence[_Violation]) -> list[str]:
    out: list[str] = []
    items = list(items) or list(dict.fromkeys(v.item for v in violations))
    for item in items:
        summaries = " | ".join(v.summary for v in violations if v.item == item)
        found: list[Source] = sources_for(item, summaries)
        for s in found:
            out.append(f"- KalamDB's {s.kind}, [`{s.path}` line {s.line}]({s.url}):")
            out.append(f"  > {s.quote}")
        if found:
            out.append(f'- (kalamfuzz\'s contract, item "{item}".)')
        else:
            out.append(f'- kalamfuzz\'s contract, item "{item}": {PROMISES.get(item, "")}')
    return out
