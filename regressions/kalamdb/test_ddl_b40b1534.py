"""kalamfuzz regression ddl_b40b1534: violation in machine 'ddl'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine ddl
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_ddl_b40b1534.transcript.jsonl. Report: test_ddl_b40b1534.md
Run it: pytest test_ddl_b40b1534.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'ddl'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after subscription s1-1: SELECT id, n, s, b FROM kf_6dcec9_1.notes WHERE n <= -2:
#   [4 subscriptions] subscription s1-1: 1 change(s) for key 0 never arrived
#     - insert rows={_seq=386035397661921280, b=False, id=0, n=-2, s='_a'}


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: ws {"type":"subscribe","subscription":{"id":"s1-1","sql":"SELECT id, n, s, b FROM kf_6dcec9_1.notes WHERE n <= -2","options":{"batch_size":1}}}
    d.subscribe('alice', 's1', 'notes', projection=['id', 'n', 's', 'b'], where=Cmp('<=', Col('n'), Lit(-2)), batch_size=1, paged=True)
    # svc: EXECUTE AS USER 'kf_6dcec9_alice' (INSERT INTO kf_6dcec9_1.notes (n, s, id, b) VALUES (-2, '_a', 0, FALSE))
    # alice: SELECT * FROM kf_6dcec9_1.notes
    # alice: SELECT * FROM kf_6dcec9_1.notes
    # ... 4 more request(s)
    d.insert('svc', 'notes', [{'n': -2, 's': '_a', 'id': 0, 'b': False}], as_user='alice')
    d.sweep()


def test_ddl_b40b1534() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
