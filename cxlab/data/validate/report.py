"""What validation gives back: :class:`ValidationReport` (the problems table, the summary, the
typed tables) and :class:`StudyData`, plus the collector the rules add problem rows to."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxlab.errors import DataContractError

#: columns of :attr:`ValidationReport.problems`
PROBLEM_COLUMNS = ["file", "column", "rule", "rows", "examples", "fix"]
SUMMARY_COLUMNS = ["file", "role", "column", "rows", "columns", "missing_codes", "empty"]
N_EXAMPLES = 5
ROLE_ORDER = ("customers", "surveys", "complaints")


@dataclass
class StudyData:
    """The study's tables in canonical form (validated, typed, original row order).

    customers: ``customer_id`` (str), ``start``, ``end`` (datetime64[ns]; NaT = active),
    ``value`` (float64; NaN when the spec has no value), each covariate under its own name
    (pandas "string"), ``source_row`` (1-based data row in the file).

    surveys: ``customer_id``, ``date``, every construct item, the self_status item and every
    outcome column under their own names as float64 (declared missing codes -> NaN),
    ``source_row``.

    complaints (None when the study has none): ``customer_id``, ``opened``, ``closed`` (NaT =
    still open), ``compensated`` (float 0/1, NaN when not given), ``source_row``.
    """

    customers: pd.DataFrame
    surveys: pd.DataFrame
    complaints: pd.DataFrame | None = None


@dataclass(repr=False)
class ValidationReport:
    """Everything :func:`validate_study` found.

    Attributes
    ----------
    problems : DataFrame
        One row per rule x column that fails: file, column, rule, rows, examples, fix.
    summary : DataFrame
        Per file (``column`` is NA): rows and columns; per survey item / outcome: rows, the
        count of declared missing codes and of empty cells.
    data : StudyData or None
        The typed tables, when every check passed (pandas; for a ``source:`` study validated by
        :func:`~cxlab.data.validate.validate_study`, collected from :attr:`engine`).
    engine : cxlab.data.tables.EngineData or None
        For a study validated on its engine (:func:`~cxlab.data.validate.validate_engine`), the
        typed tables as ibis expressions on that backend, when every check passed.
    """

    problems: pd.DataFrame
    summary: pd.DataFrame
    data: StudyData | None = None
    files: dict[str, int | None] = field(default_factory=dict)  # file label -> data rows
    engine: object = None

    @property
    def ok(self) -> bool:
        return self.problems.empty

    def _headline(self) -> str:
        if self.ok:
            counts = ", ".join(f"{label} {n:,} rows" for label, n in self.files.items())
            return f"All checks passed: {counts}."
        n, n_files = len(self.problems), self.problems["file"].nunique()
        return f"{n} problem{'s' * (n != 1)} in {n_files} file{'s' * (n_files != 1)}"

    def to_text(self) -> str:
        """A plain-text table of the problems (or one line saying all checks passed)."""
        head = self._headline()
        if self.ok:
            return head
        table = self.problems.astype({"rows": str}).astype(str)
        widths = {c: max(len(c), table[c].str.len().max()) for c in PROBLEM_COLUMNS[:-1]}
        lines = [head, ""]
        lines.append("  ".join(c.ljust(widths[c]) if c != "rows" else c.rjust(widths[c])
                               for c in PROBLEM_COLUMNS[:-1]) + "  fix")
        for rec in table.to_dict("records"):
            cells = [rec[c].rjust(widths[c]) if c == "rows" else rec[c].ljust(widths[c])
                     for c in PROBLEM_COLUMNS[:-1]]
            lines.append("  ".join(cells) + "  " + rec["fix"])
        lines += ["", "rows: number of offending rows; examples: data row numbers "
                      "(1 = first row under the header)."]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<ValidationReport: {self._headline()}>"

    def raise_if_failed(self) -> None:
        """Raise :class:`cxlab.errors.DataContractError` (message = :meth:`to_text`) if not ok."""
        if not self.ok:
            raise DataContractError(self.to_text(), self.problems.copy())

    def _repr_html_(self) -> str:
        esc = html.escape
        if self.ok:
            return f"<p>{esc(self._headline())}</p>"
        head = "".join(f"<th>{esc(c)}</th>" for c in PROBLEM_COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(str(rec[c]))}</td>" for c in PROBLEM_COLUMNS) + "</tr>"
            for rec in self.problems.to_dict("records"))
        return (f"<p><b>{esc(self._headline())}</b> (rows: offending rows; "
                f"examples: data row numbers, 1 = first row under the header)</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


class Problems:
    """Problem rows in the order they are found (one per file x column x rule)."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, file: str, column: str, rule: str, fix: str, row_index=None,
            n_rows: int | None = None) -> None:
        """``row_index``: 0-based offending rows (all of them, or the first few with ``n_rows``)."""
        if row_index is None:
            n, examples = 0, ""
        else:
            idx = np.unique(np.asarray(row_index, dtype="int64"))
            n = len(idx) if n_rows is None else n_rows
            if n == 0:
                return
            examples = ", ".join(str(i + 1) for i in idx[:N_EXAMPLES])
        self.rows.append(dict(file=file, column=column, rule=rule, rows=int(n), examples=examples,
                              fix=fix))

    def add_mask(self, file: str, column: str, rule: str, fix: str, bad: np.ndarray) -> None:
        if bad.any():
            self.add(file, column, rule, fix, np.flatnonzero(bad))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=PROBLEM_COLUMNS).astype({"rows": "int64"})
