"""Item 10: the answer to a hostile request, judged."""

from __future__ import annotations

from kalamfuzz.invariants.hostile import check_health, check_login, check_reply
from kalamfuzz.model.hostile import for_body, for_non_finite, for_statement, for_token
from kalamfuzz.observations import HostileObservation


def _summaries(verdict: object) -> list[str]:
    return [v.summary for v in verdict.violations]  # type: ignore[attr-defined]


def test_a_clear_4xx_passes_and_anything_else_does_not() -> None:
    token = for_token("expired", ())
    assert check_reply("r", token, HostileObservation(401, "TOKEN_EXPIRED")).ok
    assert _summaries(check_reply("r", token, HostileObservation(200))) == [
        "accepted a credential: expired"
    ]
    assert _summaries(check_reply("r", token, HostileObservation(500))) == [
        "server error on a credential: expired"
    ]
    assert _summaries(check_reply("r", token, HostileObservation(0, lost=True))) == [
        "no answer to a credential: expired"
    ]
    wrong = check_reply("r", token, HostileObservation(403, "PERMISSION_DENIED"))
    assert not wrong.ok and not wrong.violations[0].diverged


def test_a_broken_statement_may_still_run_unless_nothing_of_it_can() -> None:
    cut = for_statement("truncate", hidden=())
    assert check_reply("r", cut, HostileObservation(200)).ok
    stacked = for_statement("stacked_garbage", hidden=())
    assert not check_reply("r", stacked, HostileObservation(200)).ok
    assert check_reply("r", for_body("too_long", ()), HostileObservation(413)).ok


def test_an_answer_carrying_another_users_row_or_a_secret_fails() -> None:
    expect = for_body("not_json", ("kf-private-bob-1234",))
    leaked = HostileObservation(400, "INVALID_INPUT", text='{"error": "near kf-private-bob-1234"}')
    (v,) = check_reply("r", expect, leaked).violations
    assert "may not see" in v.summary and "kf-private-bob-1234" not in str(v)


def test_health_and_logins() -> None:
    assert check_health("s", "x", None).ok
    assert not check_health("s", "x", "the server process exited (status 101)").ok
    assert check_login("u", "x", logged_in=False).ok
    assert not check_login("u", "x", logged_in=True).ok


def test_what_the_server_stored_it_must_read_back() -> None:
    store, read = for_non_finite("nan")
    assert check_reply("r", store, HostileObservation(200)).ok
    assert check_reply("r", store, HostileObservation(400, "SQL_EXECUTION_ERROR")).ok
    assert check_reply("r", read, HostileObservation(200)).ok
    assert _summaries(check_reply("r", read, HostileObservation(0, lost=True))) == [
        "no answer to a read of a DOUBLE that is not finite"
    ]
    assert _summaries(check_reply("r", read, HostileObservation(400))) == [
        "refused a read of a DOUBLE that is not finite"
    ]
