"""column_present: every column the spec names is in the file or table (the same text for both
paths: it depends on the header only)."""

from __future__ import annotations

import difflib


def require(table, wanted: list[tuple[str, str]], problems) -> None:
    """column_present: one problem per missing column, naming the spec key to change."""
    cols = [str(c) for c in table.columns]
    have = set(table.columns)
    # the header is quoted only when the file is recognisably the study's extract (it holds at
    # least one of the columns the spec names): never echo a line of some other file
    accepted = any(col in have for _, col in wanted)
    shown = ", ".join(repr(c) for c in cols[:30]) + (f" ... ({len(cols) - 30} more)" if len(cols) > 30 else "")
    sep = ""
    if len(cols) == 1:
        for mark, name in ((";", "';'"), ("\t", "'\\t'"), ("|", "'|'"), (",", "','")):
            if mark in cols[0] and mark != table.dialect_delimiter:
                sep = (f" The file seems to use {name} as separator: add delimiter: {name} to "
                       f"{table.role}: in the spec.")
                break
    seen = set()
    for key, col in wanted:
        if col in have:
            table.ok_cols.add(col)
            continue
        if col in seen:
            continue
        seen.add(col)
        if accepted:
            close = difflib.get_close_matches(col, cols, n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            fix = f"{key} names column {col!r}, which {table.label} does not have; columns are: {shown}.{hint}"
        else:
            fix = (f"{key} names column {col!r}, which {table.label} does not have: its header has "
                   f"{len(cols)} column{'s' * (len(cols) != 1)}, none of them a column the spec names "
                   f"for {table.role}. Check that {table.role}.path names the right file.")
        problems.add(table.label, col, "column_present", fix + sep)
