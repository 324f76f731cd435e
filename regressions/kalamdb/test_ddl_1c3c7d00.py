"""kalamfuzz regression ddl_1c3c7d00: violation in machine 'ddl'.

Found by: kalamfuzz run --target binary:PATH --machine ddl
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 10:30:16 UTC)
Reproduced on rerun: deterministic. Transcript: test_ddl_1c3c7d00.transcript.jsonl. Report: test_ddl_1c3c7d00.md
Run it: pytest test_ddl_1c3c7d00.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.where import Cmp, Col, Lit

MACHINE = 'ddl'
TABLES = ('board',)
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after subscription s1-3: SELECT * FROM kf_9b6b57_1.board:
#   [7 schema evolution] subscription s1-3: a live change carries a dropped column
#     expected: the table's columns
#     observed: key 8 with b
#     + update rows={_seq=386114793357807616, b=True, id=8, n=5, s='x'} old={_seq=386114792850296832, id=8, n=1}


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_9b6b57_1.board (id, n, s, b) VALUES (8, 1, 'x', TRUE)
    # root: SELECT * FROM kf_9b6b57_1.board
    d.insert('dba', 'board', [{'id': 8, 'n': 1, 's': 'x', 'b': True}])
    # dba: ALTER TABLE kf_9b6b57_1.board DROP COLUMN b
    # root: SELECT * FROM kf_9b6b57_1.board
    d.drop_column('dba', 'board', 'b')
    # dba: ws {"type":"subscribe","subscription":{"id":"s1-3","sql":"SELECT * FROM kf_9b6b57_1.board","options":{"batch_size":1000}}}
    d.subscribe('dba', 's1', 'board', batch_size=1000)
    # dba: UPDATE kf_9b6b57_1.board SET n = 5 WHERE id = 8
    # root: SELECT * FROM kf_9b6b57_1.board
    d.update('dba', 'board', {'n': 5}, where=Cmp('=', Col('id'), Lit(8)))
    d.sweep()


def test_ddl_1c3c7d00() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
