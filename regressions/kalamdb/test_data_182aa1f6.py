"""kalamfuzz regression data_182aa1f6: violation in machine 'data'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine data
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_data_182aa1f6.transcript.jsonl. Report: test_data_182aa1f6.md
Run it: pytest test_data_182aa1f6.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import And, Cmp, Col, Lit

MACHINE = 'data'
TABLES = ('notes', 'board', 'events')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after SELECT id, n, s, b FROM kf_29fc47_1.board WHERE (id >= 2 AND n <> -3) ORDER BY s DESC, id ASC LIMIT 2:
#   [2 correct before/during/after flush] table kf_29fc47_1.board scope shared: SELECT rows out of ORDER BY order
#     expected: ORDER BY s DESC, id ASC
#     row 1 is out of ORDER BY order: '' before None


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_29fc47_1.board (b, s, n, id) VALUES (FALSE, NULL, NULL, 8), (TRUE, '', 1, 9), (TRUE, NULL, 0, 10)
    # root: SELECT * FROM kf_29fc47_1.board
    d.insert('dba', 'board', [{'b': False, 's': None, 'n': None, 'id': 8}, {'s': '', 'b': True, 'id': 9, 'n': 1}, {'n': 0, 'id': 10, 's': None, 'b': True}])
    # svc: SELECT id, n, s, b FROM kf_29fc47_1.board WHERE (id >= 2 AND n <> -3) ORDER BY s DESC, id ASC LIMIT 2
    d.select('svc', 'board', projection=['id', 'n', 's', 'b'], where=And(Cmp('>=', Col('id'), Lit(2)), Cmp('<>', Col('n'), Lit(-3))), order_by=[('s', True), ('id', False)], limit=2)
    d.sweep()


def test_data_182aa1f6() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
