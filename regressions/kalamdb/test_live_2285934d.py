"""kalamfuzz regression live_2285934d: violation in machine 'live'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine live
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_live_2285934d.transcript.jsonl. Report: test_live_2285934d.md
Run it: pytest test_live_2285934d.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver

MACHINE = 'live'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after subscribe s2-3: SELECT id, n, s, b FROM kf_d95156_1.board:
#   [4 subscriptions] subscription s2-3: snapshot page 2 is malformed
#     an empty final page after full pages (has_more was wrong)
#   [4 subscriptions] subscription s2-3: snapshot differs from the model's query result
#     expected: 5 row(s)
#     observed: 6 row(s)
#     - missing    {_seq=386035437839159297, b=None, id=9, n=None, s='b%'}
#     + unexpected {_seq=386035437885296640, b=None, id=0, n=-1, s=''}
#     + unexpected {_seq=386035437885296641, b=None, id=1, n=-3, s='bb'}
#   [4 subscriptions] subscription s2-3: snapshot is not ordered by _seq
#     _seq order [386035437885296640, 386035437885296641, 386035437839159296, 386035437885296640, 386035437885296641, 386035437885296642]


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_d95156_1.board (id, s, n, b) VALUES (8, NULL, NULL, NULL), (9, 'b%', NULL, NULL)
    # root: SELECT * FROM kf_d95156_1.board
    d.insert('dba', 'board', [{'id': 8, 's': None, 'n': None, 'b': None}, {'id': 9, 's': 'b%', 'n': None, 'b': None}])
    # dba: INSERT INTO kf_d95156_1.board (id, n, s, b) VALUES (0, -1, '', NULL), (1, -3, 'bb', NULL), (2, NULL, 'a', TRUE)
    # root: SELECT * FROM kf_d95156_1.board
    d.insert('dba', 'board', [{'id': 0, 'n': -1, 's': '', 'b': None}, {'id': 1, 's': 'bb', 'n': -3, 'b': None}, {'b': True, 's': 'a', 'n': None, 'id': 2}])
    # svc: ws {"type":"subscribe","subscription":{"id":"s2-3","sql":"SELECT id, n, s, b FROM kf_d95156_1.board","options":{"batch_size":3}}}
    # svc: ws {"type":"next_batch","subscription_id":"s2-3","last_seq_id":386035437839159296}
    # svc: ws {"type":"next_batch","subscription_id":"s2-3","last_seq_id":386035437885296642}
    d.subscribe('svc', 's2', 'board', projection=['id', 'n', 's', 'b'], batch_size=3)
    d.sweep()


def test_live_2285934d() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
