"""kalamfuzz regression combined_ed38aa5e: violation in machine 'combined'.

Found by: kalamfuzz run --target sim --machine combined --seed 0 --budget 30
Reproduced on rerun: deterministic. Transcript: test_combined_ed38aa5e.transcript.jsonl
Run it: pytest test_combined_ed38aa5e.py   (KALAMFUZZ_TARGET picks the server; default the plain sim)
"""

from kalamfuzz.campaign.regressions import replay_bugs
from kalamfuzz.machines.driver import Driver
from kalamfuzz.model.catalog import Column
from kalamfuzz.model.values import ColType

MACHINE = 'combined'
TABLES = ('notes', 'board', 'vault', 'events', 'routed', 'fragile')
#: Planted sim bugs on when it was found (switched on only with KALAMFUZZ_REPLAY_BUGS=1).
PLANTED_BUGS = ()

# Violated:
#   after SELECT * FROM kf_b36086_77.events:
#   [7 schema evolution] table kf_b36086_77.events scope kf_b36086_alice: rows read wrong after ADD/DROP COLUMN
#     expected: schema version 2: added columns read their default
#     observed: 2 row(s) differ
#     ~ id=100: y: False -> None
#     ~ id=101: y: False -> None


def program(d: Driver) -> None:
    d.begin(TABLES)
    # alice: INSERT INTO kf_b36086_77.events (b, s, n, id) VALUES (TRUE, NULL, -1, 100), (FALSE, 'b', -2, 101)
    # alice: SELECT * FROM kf_b36086_77.events
    d.insert('alice', 'events', [{'b': True, 's': None, 'n': -1, 'id': 100}, {'s': 'b', 'b': False, 'id': 101, 'n': -2}])
    # alice: ALTER TABLE kf_b36086_77.events ADD COLUMN y BOOLEAN DEFAULT FALSE
    # alice: SELECT * FROM kf_b36086_77.events
    d.add_column('alice', 'events', Column('y', ColType.BOOLEAN, default=False))
    # root: SIGKILL; restart
    # alice: SELECT * FROM kf_b36086_77.notes
    # bob: SELECT * FROM kf_b36086_77.notes
    # ... 5 more request(s)
    d.crash()
    d.sweep()


def test_combined_ed38aa5e() -> None:
    with Driver.open(bugs=replay_bugs(PLANTED_BUGS)) as d:
        program(d)
