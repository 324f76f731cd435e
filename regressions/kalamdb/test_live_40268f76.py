"""kalamfuzz regression live_40268f76: violation in machine 'live'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine live
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_live_40268f76.transcript.jsonl. Report: test_live_40268f76.md
Run it: pytest test_live_40268f76.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import And, Cmp, Col, Like, Lit, Not

MACHINE = 'live'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after subscription s3-1: SELECT * FROM kf_59a805_1.notes WHERE (s NOT LIKE 'ab' AND (NOT b = TRUE)):
#   [4 subscriptions] subscription s3-1: change for key 2 that does not match the subscription
#     + insert rows={_deleted=False, _seq=386035447809019905, b=None, id=2, n=None, s='aa'}


def program(d: Driver) -> None:
    d.begin(TABLES)
    # svc: ws {"type":"subscribe","subscription":{"id":"s3-1","sql":"SELECT * FROM kf_59a805_1.notes WHERE (s NOT LIKE 'ab' AND (NOT b = TRUE))","options":{"batch_s
    d.subscribe('svc', 's3', 'notes', where=And(Like(Col('s'), 'ab', True), Not(Cmp('=', Col('b'), Lit(True)))), batch_size=1000)
    # svc: INSERT INTO kf_59a805_1.notes (n, id, b, s) VALUES (3, 1, TRUE, 'a_'), (NULL, 2, NULL, 'aa')
    # svc: SELECT * FROM kf_59a805_1.notes
    # alice: SELECT * FROM kf_59a805_1.notes
    # ... 4 more request(s)
    d.insert('svc', 'notes', [{'n': 3, 'id': 1, 'b': True, 's': 'a_'}, {'s': 'aa', 'b': None, 'id': 2, 'n': None}])
    d.sweep()


def test_live_40268f76() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
