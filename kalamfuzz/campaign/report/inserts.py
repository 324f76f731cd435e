"""The VALUES of an INSERT: read as rows, and a long generated one shortened to its pattern.

A burst of a thousand rows is one line of SQL no maintainer reads; its first rows, its last and
the rule that makes the others say the same.
"""

from __future__ import annotations

import re


def _tuples(values: str) -> list[list[str]] | None:
    """``(1, 'a'), (2, NULL)`` -> ``[["1", "'a'"], ["2", "NULL"]]``; None if it is not that."""
    out: list[list[str]] = []
    field_, row = "", []
    depth, quoted = 0, False
    for ch in values:
        if quoted:
            field_ += ch
            quoted = ch != "'"
        elif ch == "'":
            field_ += ch
            quoted = True
        elif ch == "(":
            depth += 1
            if depth > 1:
                field_ += ch
        elif ch == ")":
            depth -= 1
            if depth == 0:
                row.append(field_.strip())
                out.append(row)
                field_, row = "", []
            else:
                field_ += ch
        elif ch == "," and depth == 1:
            row.append(field_.strip())
            field_ = ""
        elif depth >= 1:
            field_ += ch
        elif ch not in " ,":
            return None
    return out if depth == 0 and not quoted else None


_INSERT = re.compile(r"^(INSERT INTO \S+ \([^)]*\) VALUES )(.*)$")


def compact_insert(sql: str, over: int = 20) -> tuple[str, str] | None:
    """A many-row INSERT whose rows follow one pattern in their first column's number ``i``
    (``(i, i, 'row i', NULL)``), shortened to its first two and last rows, and the pattern in
    words; None for any other statement."""
    wrapped = re.match(r"^(EXECUTE AS USER '[^']+' \()(.*)\)$", sql)
    prefix, inner, suffix = (wrapped.group(1), wrapped.group(2), ")") if wrapped else ("", sql, "")
    m = _INSERT.match(inner)
    rows = _tuples(m.group(2)) if m else None
    if m is None or rows is None or len(rows) <= over or len({len(r) for r in rows}) != 1:
        return None
    try:
        keys = [int(r[0]) for r in rows]
    except ValueError:
        return None
    if keys != list(range(keys[0], keys[0] + len(keys))):
        return None
    shape: list[str] = []
    for c in range(len(rows[0])):
        column = [r[c] for r in rows]
        if len(set(column)) == 1:
            shape.append(column[0])
            continue
        template = rows[0][c].replace(str(keys[0]), "{i}")
        if "{i}" not in template or any(
            template.replace("{i}", str(k)) != v for k, v in zip(keys, column, strict=True)
        ):
            return None
        shape.append(template)
    short = ", ".join(f"({', '.join(r)})" for r in rows[:2])
    short += f", …, ({', '.join(rows[-1])})"
    words = (
        f"its {len(rows)} rows are `({', '.join(shape).replace('{i}', 'i')})` for i = "
        f"{keys[0]} to {keys[-1]}"
    )
    return f"{prefix}{m.group(1)}{short}{suffix}", words
