"""Item 10: a hostile request gets a clear 4xx (the documented status where there is one),
nothing in it runs, nothing secret or of another user comes back, and the server stays up.
That nothing changed is what later reads check: the model did not change."""

from __future__ import annotations

from kalamfuzz.invariants.violation import Verdict, Violation
from kalamfuzz.model.hostile import Expectation
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.observations import HostileObservation

ITEM = ContractItem.HOSTILE


def answered(obs: HostileObservation) -> str:
    """The answer as a report line: status, code and message, or why none came."""
    if obs.lost:
        return f"no answer ({obs.message})"
    head = f"HTTP {obs.status}"
    if obs.code:
        head += f" {obs.code}"
    if obs.message:
        head += f": {obs.message[:200]}"
    return head


def check_reply(subject: str, expect: Expectation, obs: HostileObservation) -> Verdict:
    """Judge the answer to one hostile request against what it must get."""
    found: list[Violation] = []
    wanted = f"HTTP {expect.status}" if expect.status else "a 4xx error"
    if expect.succeeds:
        wanted = "HTTP 200"
    elif not expect.refused and not expect.status:
        wanted = "a 4xx error or a 2xx"
    if obs.lost:
        found.append(Violation(ITEM, subject, f"no answer to {expect.what}", wanted, answered(obs)))
    elif obs.status >= 500:
        found.append(
            Violation(ITEM, subject, f"server error on {expect.what}", wanted, answered(obs))
        )
    elif 200 <= obs.status < 300 and expect.refused:
        found.append(Violation(ITEM, subject, f"accepted {expect.what}", wanted, answered(obs)))
    elif expect.succeeds and not 200 <= obs.status < 300:
        found.append(Violation(ITEM, subject, f"refused {expect.what}", wanted, answered(obs)))
    elif 400 <= obs.status < 500 and expect.status and obs.status != expect.status:
        found.append(
            Violation(
                ITEM,
                subject,
                f"refused {expect.what} with another status",
                wanted,
                answered(obs),
                diverged=False,
            )
        )
    for text in expect.hidden:
        if text and text in obs.text:
            found.append(
                Violation(
                    ITEM,
                    subject,
                    f"the answer to {expect.what} carries what the caller may not see",
                    "nothing of other users, no secret",
                    f"{answered(obs)}; the body contains {text[:3]}... ({len(text)} chars)",
                )
            )
            break
    return Verdict(tuple(found))


def check_health(subject: str, what: str, problem: str | None) -> Verdict:
    """After a hostile request the server still answers; ``problem``: why it does not."""
    if problem is None:
        return Verdict()
    return Verdict(
        (Violation(ITEM, subject, f"the server went down after {what}", "healthy", problem),)
    )


def check_login(subject: str, what: str, logged_in: bool) -> Verdict:
    """A password the server was never given must not log in."""
    if not logged_in:
        return Verdict()
    return Verdict(
        (
            Violation(
                ITEM,
                subject,
                f"another password logs in after {what}",
                "HTTP 401 for a password that differs from the account's",
                "logged in",
            ),
        )
    )
