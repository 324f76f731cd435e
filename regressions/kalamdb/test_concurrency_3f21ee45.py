"""kalamfuzz regression concurrency_3f21ee45: violation in machine 'concurrency'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine concurrency --seed 2 --budget 10m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-07 11:33:03 UTC)
Reproduced on rerun: fails 17 of 20 reruns. Transcript: test_concurrency_3f21ee45.transcript.jsonl. Report: test_concurrency_3f21ee45.md
Run it: pytest test_concurrency_3f21ee45.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.machines.driver.rounds import Tx
from kalamfuzz.machines.driver.workload import Write
from kalamfuzz.model.exprs import Case
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
#   after calls sent at once: UPDATE kf_0fddd6_522.notes SET b = CASE WHEN b = TRUE THEN FALSE ELSE TRUE END WHERE id = 2 | UPDATE kf_0fddd6_522.notes SET b = NULL WHERE id = 2 | BEGIN; UPDATE kf_0fddd6_522.notes SET b = CASE WHEN b = TRUE THEN FALSE ELSE TRUE END WHERE id = 2; COMMIT | SELECT * FROM kf_0fddd6_522.notes ORDER BY id ASC LIMIT 1000:
#   [9 concurrency and transactions] 3 calls sent at once: no order of the calls sent at once explains UPDATE, UPDATE (read-modify-write), a transaction (COMMIT), the read after them
#     calls sent at once (time runs right; * no order explains these replies):
#       * #1 bob#3       [-------]          UPDATE kf_0fddd6_522.notes SET b = CASE WHEN b = TRUE THEN FALSE ELSE TRUE END WHERE id = 2 -> ok, 1 rows
#       * #2 bob#2         [---]            UPDATE kf_0fddd6_522.notes SET b = NULL WHERE id = 2 -> ok, 0 rows
#       * #3 bob#1           [-----]        BEGIN; UPDATE kf_0fddd6_522.notes SET b = CASE WHEN b = TRUE THEN FALSE ELSE TRUE END WHERE id = 2; COMMIT -> ok, inserted 0, updated 1, deleted 0
#       * #4 bob (after)             [-]    SELECT * FROM kf_0fddd6_522.notes ORDER BY id ASC LIMIT 1000 -> 1 rows [[2, '2', 'a%', True, '388313325200314368', False]]
#     the longest order that explains a prefix: #1 takes its snapshot then #2 takes its snapshot then #1 then #2 then #3 takes its snapshot then #3
#       #4 cannot come next: the model expected 1 rows [{_deleted=False, b=False, id=2, n=2, s='a%'}]; the server said: 1 rows [[2, '2', 'a%', True, '388313325200314368', False]]


def program(d: Driver) -> None:
    d.begin(TABLES)
    # bob: INSERT INTO kf_0fddd6_522.notes (s, b, n, id) VALUES ('a%', NULL, 2, 2)
    # bob: SELECT * FROM kf_0fddd6_522.notes ORDER BY id ASC LIMIT 1000
    d.concurrently([Write('bob', 'notes', ({'s': 'a%', 'b': None, 'n': 2, 'id': 2},))])
    # bob: UPDATE kf_0fddd6_522.notes SET b = CASE WHEN b = TRUE THEN FALSE ELSE TRUE END WHERE id = 2
    # bob: UPDATE kf_0fddd6_522.notes SET b = NULL WHERE id = 2
    # bob: BEGIN; UPDATE kf_0fddd6_522.notes SET b = CASE WHEN b = TRUE THEN FALSE ELSE TRUE END WHERE id = 2; COMMIT
    # ... 1 more request(s)
    d.concurrently([Tx('bob', (Write('bob', 'notes', assignments={'b': Case(Cmp('=', Col('b'), Lit(True)), Lit(False), Lit(True))}, where=Cmp('=', Col('id'), Lit(2))),)), Write('bob', 'notes', assignments={'b': None}, where=Cmp('=', Col('id'), Lit(2))), Write('bob', 'notes', assignments={'b': Case(Cmp('=', Col('b'), Lit(True)), Lit(False), Lit(True))}, where=Cmp('=', Col('id'), Lit(2)))])
    d.sweep()


def test_concurrency_3f21ee45() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        for _ in range(REPEAT):
            program(d)
