"""What a hostile request must get (contract item 10): a clear 4xx that changes nothing, or,
for a broken statement a parser may still read as something, an answer the model cannot
predict (the driver then re-learns the table). Never a 5xx, a dropped connection or a hang;
never a secret or another user's row in what comes back."""

from __future__ import annotations

from attrs import frozen


@frozen
class Expectation:
    """``refused``: only a 4xx will do; otherwise a 2xx is an outcome the model does not know.
    ``status``: the one 4xx the documentation names, when it names one. ``hidden``: texts the
    answer must not carry (other users' marker rows, passwords, the server's secret).
    ``succeeds``: only a 2xx will do (a read of what the server accepted)."""

    what: str
    refused: bool
    status: int | None = None
    hidden: tuple[str, ...] = ()
    succeeds: bool = False


#: What each mutation (``adapters/hostile.py``) makes of a statement, as reports say it.
MUTATED = {
    "truncate": "a statement cut short",
    "quote": "a statement with an unbalanced quote",
    "nesting": "a condition nested deep in parentheses",
    "chain": "an expression of thousands of additions",
    "in_list": "an IN list of thousands of values",
    "nul": "a statement with a NUL character",
    "stacked_garbage": "a request whose second statement does not parse",
    "unclosed_comment": "a request ending in an unclosed comment",
}


#: Mutations after which no part of the request may run: a parse error in any statement of a
#: request aborts all of it before anything executes (HTTP_SQL.md §1.4).
MUST_REFUSE = frozenset({"stacked_garbage", "unclosed_comment"})


def for_statement(mutation: str, hidden: tuple[str, ...]) -> Expectation:
    """A statement broken by ``mutation``: cut short it may still parse (``DELETE FROM t
    WHERE id = 1`` cut to ``DELETE FROM t``), so only the mutations after which nothing can run
    must be refused."""
    return Expectation(MUTATED[mutation], mutation in MUST_REFUSE, None, hidden)


def for_body(kind: str, hidden: tuple[str, ...]) -> Expectation:
    """A request body that is not what ``POST /v1/api/sql`` takes: 400 INVALID_INPUT (HTTP_SQL.md
    §1.3), or 413 for one over the size limit; either way nothing in it runs. But for an array
    of the fields in their order (``["INSERT ..."]``): serde reads a struct from a sequence too,
    so KalamDB runs it as the object it stands for, which harms no one (decided in
    docs/contract.md, "Hostile clients")."""
    what = f"a request body: {kind.replace('_', ' ')}"
    if kind == "json_array":
        return Expectation(what, False, None, hidden)
    return Expectation(what, True, None if kind == "too_long" else 400, hidden)


def for_token(kind: str, hidden: tuple[str, ...]) -> Expectation:
    """A missing, malformed, forged or misused credential: 401 (HTTP_SQL.md §1.5), nothing runs."""
    return Expectation(f"a credential: {kind.replace('_', ' ')}", True, 401, hidden)


#: DOUBLE values that are not finite numbers, as SQL writes them.
NON_FINITE = {
    "nan": "CAST('NaN' AS DOUBLE)",
    "infinity": "CAST('Infinity' AS DOUBLE)",
    "minus_infinity": "CAST('-Infinity' AS DOUBLE)",
    "overflow": "1e309",
}


def for_non_finite(kind: str) -> tuple[Expectation, Expectation]:
    """Storing a DOUBLE that is not finite, then reading it: the server may refuse the value
    (JSON has no NaN) or keep it, but what it keeps it must be able to read back: the read
    gets a 2xx, whatever the value looks like on the wire."""
    # one cause, one signature: which of them it was, the statement shows
    what = "a DOUBLE that is not finite"
    return Expectation(what, False), Expectation(f"a read of {what}", False, succeeds=True)


def for_password() -> Expectation:
    """CREATE USER with a password KalamDB's policy refuses (at least 8 and at most 72 bytes,
    bcrypt reading only the first 72; not a common password: kalamdb-auth security/password.rs)."""
    return Expectation("a weak password", True)
