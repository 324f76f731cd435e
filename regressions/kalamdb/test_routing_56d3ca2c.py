"""kalamfuzz regression routing_56d3ca2c: violation in machine 'routing'.

Found by: kalamfuzz run --target binary:PATH/TO/kalamdb-server --machine all --seed 1 --budget 45m
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 10:30:16 UTC)
Reproduced on rerun: flaky (0/2 reruns failed). Transcript: test_routing_56d3ca2c.transcript.jsonl. Report: test_routing_56d3ca2c.md
Run it: pytest test_routing_56d3ca2c.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, IsNull, Lit, Or

MACHINE = 'routing'
TABLES = ('routed', 'notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after STORAGE FLUSH TABLE kf_1c18fb_211.notes:
#   [3 cold artifacts] Flush by kf_1c18fb_dba on kf_1c18fb_211.notes: flush skipped although rows are pending (written while a flush ran)
#     expected: a flush job is started
#     observed: HTTP 200 success, 0 row(s)


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: INSERT INTO kf_1c18fb_211.routed (b, n, s, id) VALUES (NULL, NULL, '', 8), (FALSE, 1, NULL, 9), (TRUE, 0, NULL, 10)
    # alice: SELECT * FROM kf_1c18fb_211.routed
    d.insert('alice', 'routed', [{'b': None, 'n': None, 's': '', 'id': 8}, {'n': 1, 'b': False, 'id': 9, 's': None}, {'n': 0, 's': None, 'id': 10, 'b': True}])
    # dba: STORAGE FLUSH TABLE kf_1c18fb_211.routed
    d.flush('dba', 'routed')
    # alice: INSERT INTO kf_1c18fb_211.board (id, n, s, b) VALUES (3, -1, NULL, NULL), (7, 2, NULL, TRUE), (5, NULL, 'bb', NULL)  -> PERMISSION_DENIED
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-30a9ee8e9a62'
    d.insert('alice', 'board', [{'id': 3, 'n': -1, 's': None, 'b': None}, {'id': 7, 's': None, 'b': True, 'n': 2}, {'s': 'bb', 'id': 5, 'b': None, 'n': None}])
    # dba: STORAGE FLUSH TABLE kf_1c18fb_211.routed
    d.flush('dba', 'routed', wait=True)
    # bob: INSERT INTO kf_1c18fb_211.routed (b, n, s, id) VALUES (NULL, 2, NULL, 6)
    # bob: SELECT * FROM kf_1c18fb_211.routed
    d.insert('bob', 'routed', [{'b': None, 'n': 2, 's': None, 'id': 6}])
    # dba: SELECT id, s FROM kf_1c18fb_211.notes WHERE (n IS NOT NULL OR n <= -3) ORDER BY id DESC LIMIT 2
    d.select('dba', 'notes', projection=['id', 's'], where=Or(IsNull(Col('n'), True), Cmp('<=', Col('n'), Lit(-3))), order_by=[('id', True)], limit=2)
    # alice: INSERT INTO kf_1c18fb_211.notes (n, s, id, b) VALUES (-3, 'bb', 4, NULL), (NULL, NULL, 3, TRUE), (NULL, '%a', 7, FALSE)
    # alice: SELECT * FROM kf_1c18fb_211.notes
    d.insert('alice', 'notes', [{'n': -3, 's': 'bb', 'id': 4, 'b': None}, {'b': True, 's': None, 'id': 3, 'n': None}, {'n': None, 's': '%a', 'id': 7, 'b': False}])
    # svc: STORAGE FLUSH TABLE kf_1c18fb_211.notes
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-cf52146a6691'
    d.flush('svc', 'notes')
    # bob: INSERT INTO kf_1c18fb_211.notes (id, s, n, b) VALUES (7, 'a', 2, TRUE), (0, NULL, NULL, TRUE), (3, NULL, NULL, TRUE)
    # bob: SELECT * FROM kf_1c18fb_211.notes
    d.insert('bob', 'notes', [{'id': 7, 's': 'a', 'n': 2, 'b': True}, {'n': None, 'b': True, 's': None, 'id': 0}, {'id': 3, 's': None, 'b': True, 'n': None}])
    # dba: INSERT INTO kf_1c18fb_211.notes (b, id, n, s) VALUES (TRUE, 2, -1, NULL), (NULL, 0, -1, NULL), (NULL, 1, NULL, 'ba')
    # dba: SELECT * FROM kf_1c18fb_211.notes
    d.insert('dba', 'notes', [{'b': True, 'id': 2, 'n': -1, 's': None}, {'id': 0, 's': None, 'b': None, 'n': -1}, {'n': None, 'b': None, 'id': 1, 's': 'ba'}])
    # dba: STORAGE FLUSH TABLE kf_1c18fb_211.notes
    d.flush('dba', 'notes')
    # dba: INSERT INTO kf_1c18fb_211.notes (id, s, n, b) VALUES (5, NULL, NULL, NULL)
    # dba: SELECT * FROM kf_1c18fb_211.notes
    # root: SELECT job_id, status, message FROM system.jobs WHERE job_id = 'FL-0a547e287ab9'
    d.insert('dba', 'notes', [{'id': 5, 's': None, 'n': None, 'b': None}])
    d.wait_jobs()
    # dba: STORAGE FLUSH TABLE kf_1c18fb_211.notes
    d.flush('dba', 'notes', wait=True)
    d.sweep()


def test_routing_56d3ca2c() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
