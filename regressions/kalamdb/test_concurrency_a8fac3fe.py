"""kalamfuzz regression concurrency_a8fac3fe: violation in machine 'concurrency'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine concurrency --seed 1 --budget 10m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: fails 13 of 20 reruns. Transcript: test_concurrency_a8fac3fe.transcript.jsonl. Report: test_concurrency_a8fac3fe.md
Run it: pytest test_concurrency_a8fac3fe.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'concurrency'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()
#: Runs of the program: it sends calls at once, so it counts as fixed only when no run fails.
REPEAT = 20

# Violated:
#   after calls sent at once:
#   [9 concurrency and transactions] 2 calls sent at once: no order of the calls sent at once explains DELETE, DELETE
#     calls sent at once (time runs right; * no order explains these replies):
#       * #1 svc#2       [---]          EXECUTE AS USER 'kf_8093e9_bob' (DELETE FROM kf_8093e9_115.notes WHERE id = 9) -> ok, 1 rows
#       * #2 bob#1         [---]        DELETE FROM kf_8093e9_115.notes WHERE id = 9 -> ok, 1 rows
#         #3 bob (after)         [-]    SELECT * FROM kf_8093e9_115.notes ORDER BY id ASC LIMIT 1000 -> 2 rows [[8, '2', 'a%', None, '388309157442064384', False], [10, None, None, True, '388309157442064386', False]]
#     the longest order that explains a prefix: #1 takes its snapshot then #1 then #2 takes its snapshot
#       #2 cannot come next: the model expected ok, 0 rows; the server said: ok, 1 rows


def program(d: Driver) -> None:
    d.begin(TABLES)
    # bob: INSERT INTO kf_8093e9_115.notes (id, s, n, b) VALUES (8, 'a%', 2, NULL), (9, NULL, NULL, FALSE), (10, NULL, NULL, TRUE)
    # bob: SELECT * FROM kf_8093e9_115.notes
    d.insert('bob', 'notes', [{'id': 8, 's': 'a%', 'n': 2, 'b': None}, {'id': 9, 'b': False, 'n': None, 's': None}, {'id': 10, 'n': None, 's': None, 'b': True}])
    # dba: INSERT INTO kf_8093e9_115.board (id, n, s, b) VALUES (8, NULL, NULL, NULL), (9, NULL, NULL, NULL), (10, NULL, NULL, NULL)
    # root: SELECT * FROM kf_8093e9_115.board
    d.insert('dba', 'board', [{'id': 8, 'n': None, 's': None, 'b': None}, {'id': 9, 'n': None, 's': None, 'b': None}, {'id': 10, 'n': None, 's': None, 'b': None}])
    # alice: DELETE FROM kf_8093e9_115.notes WHERE id = 8
    # alice: SELECT * FROM kf_8093e9_115.notes
    d.delete('alice', 'notes', where=Cmp('=', Col('id'), Lit(8)))
    # svc: EXECUTE AS USER 'kf_8093e9_bob' (DELETE FROM kf_8093e9_115.notes WHERE id = 9)
    # bob: DELETE FROM kf_8093e9_115.notes WHERE id = 9
    # bob: SELECT * FROM kf_8093e9_115.notes ORDER BY id ASC LIMIT 1000
    d.concurrently([Write('bob', 'notes', where=Cmp('=', Col('id'), Lit(9)), delete=True), Write('svc', 'notes', where=Cmp('=', Col('id'), Lit(9)), as_user='bob', delete=True)])
    d.sweep()


def test_concurrency_a8fac3fe() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
