"""kalamfuzz regression hostile_e6bbb93f: violation in machine 'hostile'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine hostile --seed 31 --budget 90
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: deterministic (2 of 2 reruns on a fresh server). Transcript: test_hostile_e6bbb93f.transcript.jsonl. Report: test_hostile_e6bbb93f.md
Run it: pytest test_hostile_e6bbb93f.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import And, Cmp, Col, IsNull, Like, Lit, Not, Or

MACHINE = 'hostile'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = (
    '2 correct before/during/after flush: SELECT rows out of ORDER BY order',
    '10 hostile clients: no answer to a read of a DOUBLE that is not finite',
    '10 hostile clients: accepted a weak password',
)
#: Runs of the program: it races, so it counts as fixed only when no run fails.
REPEAT = 1

# Violated:
#   after an expression of thousands of additions:
#   [10 hostile clients] the server: the server went down after an expression of thousands of additions
#     expected: healthy
#     observed: the health endpoint did not answer: ConnectError; the request got no answer (RemoteProtocolError: Server disconnected without sending a response.)


def program(d: Driver) -> None:
    d.begin(TABLES)
    # svc: EXECUTE AS USER 'kf_569513_bob' (UPDATE kf_569513_87.notes SET b = TRUE WHERE ((s LIKE 'ab' OR b = TRUE) AND (NOT b IS NULL)))
    # svc: SELECT * FROM kf_569513_87.notes
    # bob: SELECT * FROM kf_569513_87.notes
    d.update('svc', 'notes', {'b': True}, where=And(Or(Like(Col('s'), 'ab'), Cmp('=', Col('b'), Lit(True))), Not(IsNull(Col('b')))), as_user='bob')
    # alice: SELECT 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 
    d.malformed_sql('alice', 'notes', 'chain', 203, rows=[{'n': 2, 'id': 6, 'b': None, 's': 'a_'}])
    d.sweep()


def test_hostile_e6bbb93f() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
