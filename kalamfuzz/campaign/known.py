"""Known findings: the KalamDB bugs already reported, and the triage that keeps them from ending
an example.

A campaign that stopped at every known bug would never test what lies behind it. The driver asks
a :class:`Triage` about each violation; a known one is counted and the model re-learns what it
got wrong, a new one ends the example and is shrunk and saved. Known issues live in a TOML file
(``regressions/known-issues.toml`` by default)::

    [[issue]]
    id = "order-by-limit-resorted"
    title = "ORDER BY ... LIMIT n returns the right rows re-sorted by primary key"
    status = "open"                       # open: still in KalamDB; fixed: a recurrence is new
    signature = "2 correct before/during/after flush: SELECT rows out of ORDER BY order"
                                          # (or a list: one bug, several symptoms)
    symptom = "rows out of ORDER BY order"  # optional, or a list: regexes searched in a
                                          # signature's summary under ANY contract item (the
                                          # cause shows up where the model first meets it)
    where = "LIMIT"                       # optional: regex searched in the check's statement
    after = ["crash"]                     # optional: events earlier in the same example
    report = "regressions/kalamdb/test_data_1a2b3c4d.md"   # optional: its report
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attrs import define, field, frozen

from kalamfuzz.errors import ConfigError
from kalamfuzz.invariants.violation import Violation

DEFAULT_FILE = Path("regressions/known-issues.toml")
STATUSES = ("open", "fixed")
#: What happened earlier in an example that a known bug may need: a SIGKILL and restart, an
#: ADD COLUMN of a name dropped before, a flush while a tombstone hid a cold row, a second
#: event with a key a STREAM scope already held.
EVENTS = (
    "crash",
    "column-readded",
    "flush-over-tombstone",
    "tombstone-over-cold",
    "stream-key-repeated",
)
_KEYS = {"id", "title", "status", "signature", "symptom", "where", "after", "report"}


@frozen
class KnownIssue:
    id: str
    title: str
    status: str
    #: ``Violation.signature`` of each symptom: contract item and masked summary.
    signatures: tuple[str, ...]
    #: Regexes searched in a signature's summary whatever its contract item: one cause met
    #: first by another check (a read, a reply's count, a subscriber) is still this issue.
    symptoms: tuple[re.Pattern[str], ...] = ()
    #: Regex searched in the check's statement (its SQL, or the subscription's query).
    where: re.Pattern[str] | None = None
    #: Events that must have happened earlier in the example (the bug needs them).
    after: frozenset[str] = frozenset()
    #: The upstream-ready report, relative to the repository.
    report: str = ""

    @property
    def open(self) -> bool:
        return self.status == "open"

    def matches(self, signature: str, where: str, events: frozenset[str]) -> bool:
        return (
            self.open
            and (
                signature in self.signatures
                or any(p.search(signature.partition(": ")[2]) for p in self.symptoms)
            )
            and (self.where is None or self.where.search(where) is not None)
            and self.after <= events
        )


@frozen
class KnownIssues:
    issues: tuple[KnownIssue, ...] = ()
    source: str = ""

    @classmethod
    def load(cls, path: Path) -> KnownIssues:
        """Read a known-issues file; a bad one is a :class:`ConfigError` naming the fix."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"known-issues file {path} not found",
                hint="pass an existing file to --known-issues, or --known-issues none",
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path} is not valid TOML: {exc}",
                hint="fix the file (see kalamfuzz.campaign.known)",
            ) from None
        return cls.parse(data.get("issue", []), str(path))

    @classmethod
    def parse(cls, entries: Iterable[Mapping[str, Any]], source: str = "") -> KnownIssues:
        issues = []
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            issues.append(_issue(entry, f"{source or 'known issues'} entry {i + 1}"))
            if issues[-1].id in seen:
                raise ConfigError(
                    f"{source}: two issues have id {issues[-1].id!r}", hint="ids must be unique"
                )
            seen.add(issues[-1].id)
        return cls(tuple(issues), source)

    def find(self, signature: str, where: str, events: frozenset[str]) -> KnownIssue | None:
        return next((k for k in self.issues if k.matches(signature, where, events)), None)

    def by_id(self, issue_id: str) -> KnownIssue | None:
        return next((k for k in self.issues if k.id == issue_id), None)


def _issue(entry: Mapping[str, Any], where_from: str) -> KnownIssue:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where_from}: unknown key(s) {', '.join(unknown)}",
            hint="use " + ", ".join(sorted(_KEYS)),
        )
    for key in ("id", "title", "status"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ConfigError(f"{where_from}: {key!r} is missing", hint=f"give {key} as a string")
    signatures, symptoms = _strings(entry, "signature"), _strings(entry, "symptom")
    if signatures is None or symptoms is None or not (signatures or symptoms):
        raise ConfigError(
            f"{where_from}: 'signature' is missing",
            hint="give the finding's signature as a string, or a list of them "
            "(or 'symptom': regexes of its summary under any contract item)",
        )
    if entry["status"] not in STATUSES:
        raise ConfigError(
            f"{where_from}: status {entry['status']!r} is not one of {', '.join(STATUSES)}",
            hint="open: still in KalamDB (tolerated); fixed: a recurrence is a new finding",
        )
    pattern = _regex(str(entry["where"]), where_from, "where") if "where" in entry else None
    after = entry.get("after", [])
    if not isinstance(after, list) or any(a not in EVENTS for a in after):
        raise ConfigError(
            f"{where_from}: 'after' must list events among {', '.join(EVENTS)}",
            hint='after = ["crash"]',
        )
    return KnownIssue(
        id=entry["id"],
        title=entry["title"],
        status=entry["status"],
        signatures=tuple(signatures),
        symptoms=tuple(_regex(x, where_from, "symptom") for x in symptoms),
        where=pattern,
        after=frozenset(after),
        report=str(entry.get("report", "")),
    )


def _strings(entry: Mapping[str, Any], key: str) -> list[str] | None:
    """``key`` as a list of non-empty strings (one string is a list of one); None if malformed."""
    value = entry.get(key, [])
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(x, str) and x for x in values):
        return None
    return values


def _regex(text: str, where_from: str, key: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(
            f"{where_from}: {key!r} is not a regex: {exc}", hint="escape it or drop it"
        ) from None


@define
class Triage:
    """Whether a violation is a known finding: listed in the known-issues file, or found earlier
    in this campaign (then it is shrunk and saved once, and counted after that).

    Called by the driver with the violation, the statement the check was about and the events
    of the example so far; returns the label it is counted under, or None for a new finding.
    """

    known: KnownIssues = field(factory=KnownIssues)
    #: Signatures of the new findings this campaign has already saved.
    seen: set[str] = field(factory=set)

    def __call__(self, violation: Violation, where: str, events: frozenset[str]) -> str | None:
        issue = self.known.find(violation.signature, where, events)
        if issue is not None:
            return issue.id
        if violation.signature in self.seen:
            return violation.signature
        return None
