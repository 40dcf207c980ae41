"""The file path's checks: one lazy pandera schema per file, built from precomputed masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from .report import N_EXAMPLES, Problems


class Schema:
    """One lazy pandera schema per file, built from vectorised checks.

    Each check gets its boolean mask precomputed (parsing is done once per column, not once
    per check). Pandera runs the checks lazily and reports its failure cases; cxlab keeps the
    first ``N_EXAMPLES`` of them (``n_failure_cases``: collecting a million failure cases
    would take pandera far longer than the check itself) and takes the row count from the mask.
    """

    def __init__(self, file: str):
        self.file = file
        self.columns: dict[str, list[pa.Check]] = {}
        self.registry: dict[str, tuple[int, str, str, str, int]] = {}  # name -> order, column, rule, fix, n

    def check(self, column: str, rule: str, ok: np.ndarray, fix: str) -> None:
        """``ok``: boolean mask over the file's rows (True = the row passes)."""
        name = f"cx{len(self.registry)}"
        ok = np.asarray(ok, dtype=bool)
        self.registry[name] = (len(self.registry), column, rule, fix, int(len(ok) - ok.sum()))
        ok_series = pd.Series(ok, copy=False)
        self.columns.setdefault(column, []).append(
            pa.Check(lambda obj, _ok=ok_series: _ok.set_axis(obj.index), name=name, ignore_na=False,
                     n_failure_cases=N_EXAMPLES))

    def not_empty(self, column: str, empty: np.ndarray, fix: str) -> None:
        self.check(column, "not_empty", ~np.asarray(empty, dtype=bool), fix)

    def run(self, frame: pd.DataFrame, problems: Problems) -> None:
        if not self.columns:
            return
        schema = pa.DataFrameSchema(
            {c: pa.Column(nullable=True, checks=checks, required=True) for c, checks in self.columns.items()},
            strict=False)
        try:
            schema.validate(frame, lazy=True, inplace=True)
            return
        except pa.errors.SchemaErrors as err:
            cases = err.failure_cases
        cases = cases.assign(_row=pd.to_numeric(cases["index"], errors="coerce"))
        found = []
        for name, grp in cases.groupby(cases["check"].astype(str), sort=False):
            rows = np.sort(grp["_row"].dropna().astype("int64").unique())[:N_EXAMPLES]
            if name in self.registry:
                order, column, rule, fix, n_bad = self.registry[name]
            else:  # a check cxlab did not declare (should not happen): still reported
                column = str(grp["column"].iloc[0])
                order, rule, fix, n_bad = len(self.registry), name, f"pandera check {name!r} failed", len(rows)
            found.append((order, column, rule, fix, n_bad, rows))
        for _, column, rule, fix, n_bad, rows in sorted(found, key=lambda t: t[0]):
            problems.add(self.file, column, rule, fix, rows, n_rows=n_bad)
