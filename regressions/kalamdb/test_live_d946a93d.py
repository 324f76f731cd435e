"""kalamfuzz regression live_d946a93d: violation in machine 'live'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine live
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_live_d946a93d.transcript.jsonl. Report: test_live_d946a93d.md
Run it: pytest test_live_d946a93d.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Col, Like, Not

MACHINE = 'live'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after subscription s1-1: SELECT id, n, s, b FROM kf_5f8a7b_1.notes WHERE s LIKE 'a':
#   [4 subscriptions] subscription s1-1: no delete for key 5 when an UPDATE made it leave the filter
#     - expected delete old={_seq=386035459880226816, b=None, id=5, n=None, s='a'}


def program(d: Driver) -> None:
    d.begin(TABLES)
    # svc: ws {"type":"subscribe","subscription":{"id":"s1-1","sql":"SELECT id, n, s, b FROM kf_5f8a7b_1.notes WHERE s LIKE 'a'","options":{"batch_size":2}}}
    d.subscribe('svc', 's1', 'notes', projection=['id', 'n', 's', 'b'], where=Like(Col('s'), 'a'), batch_size=2, paged=True)
    # svc: INSERT INTO kf_5f8a7b_1.notes (b, s, id, n) VALUES (FALSE, NULL, 0, 0), (NULL, 'a', 5, NULL), (NULL, NULL, 4, NULL)
    # svc: SELECT * FROM kf_5f8a7b_1.notes
    d.insert('svc', 'notes', [{'b': False, 's': None, 'id': 0, 'n': 0}, {'s': 'a', 'id': 5, 'b': None, 'n': None}, {'id': 4, 's': None, 'b': None, 'n': None}])
    # svc: UPDATE kf_5f8a7b_1.notes SET n = 3, s = '' WHERE (NOT s LIKE '')
    # svc: SELECT * FROM kf_5f8a7b_1.notes
    # alice: SELECT * FROM kf_5f8a7b_1.notes
    # ... 4 more request(s)
    d.update('svc', 'notes', {'n': 3, 's': ''}, where=Not(Like(Col('s'), '')))
    d.sweep()


def test_live_d946a93d() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
