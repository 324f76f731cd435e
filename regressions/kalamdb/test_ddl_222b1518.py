"""kalamfuzz regression ddl_222b1518: violation in machine 'ddl'.

Found by: kalamfuzz run --target binary:/path/to/kalamdb-server --machine ddl
On: kalamdb-server 0.4.3-rc.4 (built 2026-12-01 04:30:46 UTC)
Reproduced on rerun: deterministic. Transcript: test_ddl_222b1518.transcript.jsonl. Report: test_ddl_222b1518.md
Run it: pytest test_ddl_222b1518.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs, skip_on_sim
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.catalog import Column
from kalamfuzz.model.values import ColType
from kalamfuzz.model.where import And, Cmp, Col, IsNull, Like, Lit, Or

MACHINE = 'ddl'
TABLES = ('notes', 'board')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()
#: Found on a real KalamDB server: on the sim it reports that it needs one.
NEEDS_REAL_SERVER = True
#: Known findings the example went past before this one (counted, not failed).
TOLERATED: tuple[str, ...] = ()

# Violated:
#   after SELECT * FROM kf_0ae929_1.notes:
#   [7 schema evolution] table kf_0ae929_1.notes scope kf_0ae929_bob: a column added again shows the dropped column's old values
#     expected: schema version 3: columns added later read NULL
#     observed: 1 row(s) differ
#     ~ id=8: n: None -> 2


def program(d: Driver) -> None:
    d.begin(TABLES)
    # bob: INSERT INTO kf_0ae929_1.notes (id, b, n, s) VALUES (8, NULL, 2, '_%'), (9, FALSE, NULL, NULL)
    # bob: SELECT * FROM kf_0ae929_1.notes
    d.insert('bob', 'notes', [{'id': 8, 'b': None, 'n': 2, 's': '_%'}, {'id': 9, 's': None, 'n': None, 'b': False}])
    # root: ALTER TABLE kf_0ae929_1.notes DROP COLUMN n
    # alice: SELECT * FROM kf_0ae929_1.notes
    d.drop_column('root', 'notes', 'n')
    # root: ALTER TABLE kf_0ae929_1.notes ADD COLUMN n INT
    # alice: SELECT * FROM kf_0ae929_1.notes
    d.add_column('root', 'notes', Column('n', ColType.INT))
    # bob: UPDATE kf_0ae929_1.notes SET s = NULL WHERE ((id = 8 AND n IS NOT NULL) OR s NOT LIKE '')
    # bob: SELECT * FROM kf_0ae929_1.notes
    d.update('bob', 'notes', {'s': None}, where=Or(And(Cmp('=', Col('id'), Lit(8)), IsNull(Col('n'), True)), Like(Col('s'), '', True)))
    d.sweep()


def test_ddl_222b1518() -> None:
    skip_on_sim(NEEDS_REAL_SERVER)
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS), tolerate=TOLERATED) as d:
        program(d)
