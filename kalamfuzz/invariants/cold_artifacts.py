"""Item 3 (and the cold half of item 6): after a flush, each flushed scope has a manifest and
non-empty, readable ``batch-N.parquet`` files holding exactly the model's rows, and the manifest
agrees with the files; a failed or retried flush leaves no stray, empty or duplicated data."""

from __future__ import annotations

from collections import Counter

from kalamfuzz.invariants.coerce import model_row
from kalamfuzz.invariants.violation import Finding, Violation, row_diff_lines, seq_conflicts
from kalamfuzz.model.catalog import TableId
from kalamfuzz.model.outcomes import ContractItem
from kalamfuzz.model.results import ExpectedRow, match_rows
from kalamfuzz.model.rows import ScopeKey
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.values import SEQ, freeze
from kalamfuzz.observations import ColdScopeObservation


def check_cold_scope(
    state: ModelState, table_id: TableId, scope: ScopeKey, obs: ColdScopeObservation
) -> Finding:
    subj = f"table {table_id} scope {'shared' if scope is None else scope} ({obs.directory})"
    if state.scope(table_id, scope).relearned:
        return check_readable(subj, obs), {}
    table = state.catalog.table(table_id)
    exp = state.expected_cold(table_id, scope)
    failed_before = bool(state.failed_flushes(table_id))
    safety = ContractItem.IDEMPOTENCY if failed_before else ContractItem.COLD_ARTIFACTS
    out: list[Violation] = []
    learned: dict[int, int] = {}

    def v(
        item: ContractItem, summary: str, *diff: str, expected: str = "", observed: str = ""
    ) -> None:
        out.append(Violation(item, subj, summary, expected, observed, tuple(diff)))

    if obs.other_files:
        v(safety, "stray files in the scope directory", *(f"+ {f}" for f in obs.other_files))
    seen_files = {p.name for p in obs.parquet}
    emptied = obs.manifest is not None and not obs.manifest.segments and not seen_files
    if exp.clearable and emptied and not obs.other_files:
        # KalamDB's SHARED cold cleanup ran (it may, after the table lost its last live row).
        return out, learned
    if not exp.segments:
        if exp.cleared and not emptied:
            v(
                ContractItem.COLD_ARTIFACTS,
                "a scope the SHARED cleanup emptied is not empty",
                *(f"+ {f}" for f in sorted(seen_files)),
                expected="manifest.json without segments",
            )
        elif not exp.cleared and (obs.manifest is not None or obs.manifest_error or seen_files):
            v(
                ContractItem.COLD_ARTIFACTS,
                "cold artifacts for a scope the model never flushed",
                *(f"+ {f}" for f in sorted(seen_files)),
            )
        return out, learned
    if obs.manifest is None:
        why = f"corrupt: {obs.manifest_error}" if obs.manifest_error else "missing"
        v(safety if obs.manifest_error else ContractItem.COLD_ARTIFACTS, f"manifest.json {why}")
        return out, learned
    manifest = obs.manifest
    if manifest.table_id and (manifest.table_id, manifest.user_id) != (str(table_id), scope):
        v(
            ContractItem.STORAGE_ROUTING,
            "manifest.json names another scope",
            expected=f"{table_id} {scope or '(shared)'}",
            observed=f"{manifest.table_id} {manifest.user_id or '(shared)'}",
        )
    want = [s.path for s in exp.segments]
    got = [s.path for s in manifest.segments]
    if got != want:
        v(
            ContractItem.COLD_ARTIFACTS,
            "manifest segments differ",
            expected=str(want),
            observed=str(got),
        )
    if manifest.last_sequence_number != exp.last_sequence_number:
        v(
            ContractItem.COLD_ARTIFACTS,
            "manifest last_sequence_number is wrong",
            expected=str(exp.last_sequence_number),
            observed=str(manifest.last_sequence_number),
        )
    files = {p.name: p for p in obs.parquet}
    for extra in sorted(seen_files - set(want)):
        v(safety, f"{extra} is not a segment the model expects", f"+ {extra}")
    segs = {s.path: s for s in manifest.segments}
    seen_rows: Counter[tuple[object, ...]] = Counter()
    for es in exp.segments:
        f = files.get(es.path)
        if f is None:
            v(ContractItem.COLD_ARTIFACTS, f"{es.path} is missing")
            continue
        if f.rows is None or f.size_bytes == 0 or not f.rows:
            why = f.error or ("empty file" if f.size_bytes == 0 else "no rows")
            v(safety, f"{es.path} is unreadable or empty: {why}")
            continue
        # A job that took its rows before an ALTER may write them with the schema it took: a
        # column added or dropped while the job ran is compared only where both sides have it.
        in_file = {k for r in f.rows for k in r}
        absent = es.unsettled - in_file
        expected_rows = [
            ExpectedRow({k: val for k, val in row.items() if k not in absent}, ordinal, scope, None)
            for row, ordinal in exp.files[es.path]
        ]
        stale = es.unsettled - {k for e in expected_rows for k in e.values}
        rows = [
            {k: val for k, val in model_row(table, r).items() if k not in stale} for r in f.rows
        ]
        diff = match_rows(expected_rows, rows, state.seqs)
        learned.update(diff.learned)
        if not diff.ok:
            v(
                ContractItem.COLD_ARTIFACTS,
                f"{es.path} does not hold the expected rows",
                *row_diff_lines(diff.missing, diff.unexpected, table.pk.name),
                expected=f"{es.row_count} row(s)",
                observed=f"{len(rows)} row(s)",
            )
        for r in rows:
            seen_rows[freeze(r)] += 1
        seqs = [s for r in rows if isinstance(s := r.get(SEQ), int)]
        m = segs.get(es.path)
        if m is None:
            continue
        problems = []
        if m.row_count != len(rows):
            problems.append(f"row_count {m.row_count}, file has {len(rows)}")
        if m.size_bytes is not None and m.size_bytes != f.size_bytes:
            problems.append(f"size_bytes {m.size_bytes}, file has {f.size_bytes} bytes")
        if seqs and (m.min_seq, m.max_seq) != (min(seqs), max(seqs)):
            problems.append(
                f"seq range {m.min_seq}..{m.max_seq}, file has {min(seqs)}..{max(seqs)}"
            )
        if m.status != "committed":
            problems.append(f"status {m.status!r}, expected 'committed'")
        if problems:
            v(ContractItem.COLD_ARTIFACTS, f"manifest entry for {es.path} disagrees", *problems)
    dups = [r for r, n in seen_rows.items() if n > 1]
    if dups:
        v(
            ContractItem.IDEMPOTENCY,
            "rows duplicated across Parquet files",
            *(f"= {r}" for r in dups[:5]),
        )
    out += seq_conflicts(state.seqs, learned, subj)
    return out, learned


def check_readable(subject: str, obs: ColdScopeObservation) -> list[Violation]:
    """What holds of a scope's files whatever the model knows of their rows (after a crash
    stopped a flush job, or a known finding): a readable manifest whose committed segments are
    whole Parquet files with the rows it counts. A file the manifest does not name is left
    alone: a crash may leave one behind, and reads show whether it is taken for data."""
    out: list[Violation] = []

    def v(summary: str, *diff: str) -> None:
        out.append(Violation(ContractItem.COLD_ARTIFACTS, subject, summary, "", "", diff))

    if obs.manifest is None:
        if obs.manifest_error:
            v(f"manifest.json corrupt: {obs.manifest_error}")
        return out
    files = {p.name: p for p in obs.parquet}
    for seg in obs.manifest.segments:
        if seg.status != "committed":
            continue
        f = files.get(seg.path)
        if f is None:
            v(f"manifest.json names {seg.path}, which is missing")
        elif f.rows is None or f.size_bytes == 0:
            v(f"manifest.json names {seg.path}, which is unreadable: {f.error or 'empty file'}")
        elif seg.row_count >= 0 and seg.row_count != len(f.rows):
            v(
                f"manifest entry for {seg.path} disagrees",
                f"row_count {seg.row_count}, file has {len(f.rows)}",
            )
    return out
