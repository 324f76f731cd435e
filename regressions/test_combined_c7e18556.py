"""kalamfuzz regression combined_c7e18556: violation in machine 'combined'.

Found by: kalamfuzz run --target sim --machine combined --seed 0 --budget 40
Reproduced on rerun: deterministic. Transcript: test_combined_c7e18556.transcript.jsonl
Run it: pytest test_combined_c7e18556.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.catalog import Column
from kalamfuzz.model.values import ColType
from kalamfuzz.model.where import Between, Cmp, Col, Lit, Or

MACHINE = 'combined'
TABLES = ('notes', 'board', 'vault', 'events', 'routed', 'fragile')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()

# Violated:
#   after SELECT * FROM kf_4a9901_65.vault:
#   [7 schema evolution] table kf_4a9901_65.vault scope shared: rows read wrong after ADD/DROP COLUMN
#     expected: schema version 2: added columns read their default
#     observed: 1 row(s) differ
#     ~ id=0: x: True -> None


def program(d: Driver) -> None:
    d.begin(TABLES)
    # dba: INSERT INTO kf_4a9901_65.vault (n, b, s, id) VALUES (3, TRUE, '', 0)
    # root: SELECT * FROM kf_4a9901_65.vault
    d.insert('dba', 'vault', [{'n': 3, 'b': True, 's': '', 'id': 0}])
    # root: STORAGE FLUSH TABLE kf_4a9901_65.vault
    # root: SELECT * FROM system.jobs WHERE job_id = 'FL-2862d7ef6d7f'
    d.flush('root', 'vault', wait=True)
    # root: ALTER TABLE kf_4a9901_65.vault ADD COLUMN x BOOLEAN DEFAULT TRUE
    # root: SELECT * FROM kf_4a9901_65.vault
    d.add_column('root', 'vault', Column('x', ColType.BOOLEAN, default=True))
    # root: SIGKILL; restart
    # alice: SELECT * FROM kf_4a9901_65.notes
    # bob: SELECT * FROM kf_4a9901_65.notes
    # ... 4 more request(s)
    d.crash()
    d.sweep()


def test_combined_c7e18556() -> None:
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS)) as d:
        program(d)
