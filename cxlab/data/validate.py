"""The data contract: check a study's files and report every problem at once.

:func:`validate_study` reads every data file the study spec names (CSV or Parquet), checks every
rule and returns a :class:`ValidationReport` whose ``problems`` table has one row per
rule x column that fails::

    file         column         rule            rows  examples  fix
    clients.csv  date d'entrée  date_parseable     2  3, 17     "date d'entrée" (customers.start) must ...

``rows`` counts the offending rows and ``examples`` gives up to five of them as 1-based data row
numbers (row 1 is the first row under the CSV header). Cell contents, and customer identifiers
in particular, never appear in a report. Problems about a whole file or column (a missing
file, a missing column) have ``rows = 0`` and no examples.

Per-column rules (parseability, ranges, uniqueness, nullability) and the within-file date order
run as one lazy pandera schema per file; the cross-file rules (ids known in the customer base,
dates inside the customer's relationship) are plain pandas and land in the same table.

Rules (the ``rule`` column):

=====================  ======================================================================
file_exists            the file named in the spec exists
file_readable          it can be read as CSV (in its encoding) or Parquet, and is not empty
has_rows               it holds at least one data row
column_present         every column the spec names is in the file
name_clash             a survey column is named like a column of cxlab's typed tables
not_empty              ids, ``customers.start``, ``surveys.date``, ``complaints.opened`` are filled
unique                 customer ids are unique in the customer file
date_parseable         dates are ISO dates or date-times, or follow ``date_format`` (empty allowed
                       for end / closed)
start_before_end       customers: ``start <= end`` (calendar days)
opened_before_closed   complaints: ``opened <= closed`` (calendar days)
numeric                ``value``, items and outcomes are numbers (empty allowed)
in_scale               items in ``surveys.scale``, outcomes in their scale, or a missing code
boolean                ``compensated`` is 0/1, true/false or yes/no (empty allowed)
id_in_customers        every survey / complaint id is in the customer file
inside_relationship    survey date / complaint opening between the customer's start and end
row_fields             every CSV row has as many fields as the header (a truncated last line is not)
header_unique          no column name appears twice in the header
not_identifier         a covariate is a category, not a customer identifier: it is not the id
                       column, has fewer than 20 distinct values or at most one per two filled
                       rows, and holds no customer id (5+ characters mixing letters and digits,
                       or 7+ digits)
label_slug_unique      a covariate's categories stay distinct as metric names (cxlab.study.slug)
=====================  ======================================================================

Files are read in the dialect their spec gives (``delimiter``, ``decimal``, ``encoding``,
``date_format``, ``missing_codes``: see :mod:`cxlab.study`). An empty, binary or undecodable
file is a ``file_readable`` problem (an undecodable one names the ``encoding`` key to set);
dates that are not ISO and parse with a common day-first or month-first format name the
``date_format`` to add. A file's header is quoted in a problem only when the file holds at least
one of the columns its spec names (it is then recognisably the study's extract).

Dates after ``snapshot_date`` are not errors: the panel cuts them. Date order and the
relationship are compared on calendar days (a survey answered at 14:00 on the day the customer
left is inside the relationship). Time-zone offsets are dropped, keeping the wall-clock time.

:func:`load_study_data` validates and returns the typed tables (:class:`StudyData`) or raises
:class:`cxlab.errors.DataContractError`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pa_compute

from cxlab.errors import DataContractError, StudyError
from cxlab.study import Study, TableReadError, read_table, slug

__all__ = ["validate_study", "load_study_data", "ValidationReport", "StudyData", "PROBLEM_COLUMNS"]

#: columns of :attr:`ValidationReport.problems`
PROBLEM_COLUMNS = ["file", "column", "rule", "rows", "examples", "fix"]
SUMMARY_COLUMNS = ["file", "role", "column", "rows", "columns", "missing_codes", "empty"]
_N_EXAMPLES = 5
_ROLE_ORDER = ("customers", "surveys", "complaints")
_DATE_FORMAT_HINT = ("ISO dates (YYYY-MM-DD) or date-times (YYYY-MM-DD HH:MM:SS) between the years "
                     "1678 and 2261")


# --------------------------------------------------------------------------------------------
# public results


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
        The typed tables, when every check passed.
    """

    problems: pd.DataFrame
    summary: pd.DataFrame
    data: StudyData | None = None
    files: dict[str, int | None] = field(default_factory=dict)  # file label -> data rows

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


# --------------------------------------------------------------------------------------------
# parsing helpers (vectorised; string columns are parsed once per distinct value)


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype))


def _distinct(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes (-1 = missing) and the distinct values as stripped strings."""
    codes, uniques = pd.factorize(s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s,
                                  use_na_sentinel=True)
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).str.strip()
    return codes, text


def _take(values: np.ndarray, codes: np.ndarray, fill) -> np.ndarray:
    """``values[codes]`` with ``fill`` where the code is -1."""
    if len(values) == 0:
        return np.full(len(codes), fill, dtype=values.dtype)
    out = values[np.where(codes < 0, 0, codes)]
    out[codes < 0] = fill
    return out


def _clean_ids(s: pd.Series) -> pd.Series:
    """Identifiers as stripped strings (object dtype, NaN when empty)."""
    if _is_text(s):
        s = s.astype(object)
        if pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
            s = s.where(s.isna(), s.astype(str))
        try:  # usual case: nothing to strip, no "" -> one fast pass in arrow, no copy
            arr = pa_arrow.array(s.to_numpy(), type=pa_arrow.string(), from_pandas=True)
            trimmed = pa_compute.utf8_trim_whitespace(arr)
            if not pa_compute.any(pa_compute.not_equal(trimmed, arr)).as_py() and \
                    not pa_compute.any(pa_compute.equal(trimmed, "")).as_py():
                return s
        except (pa_arrow.ArrowException, TypeError, ValueError):
            pass
        s = s.str.strip()
        return s.mask(s == "")
    if pd.api.types.is_float_dtype(s):
        finite = s.dropna()
        if (finite == np.floor(finite)).all():
            s = s.astype("Int64")
    out = s.astype(str).astype(object)
    out[s.isna().to_numpy()] = np.nan
    return out


@dataclass(frozen=True)
class _Dialect:
    """How a file writes numbers and dates, and which cell values mean "unknown"."""

    decimal: str = "."
    date_format: str | None = None
    numeric_codes: tuple = ()
    text_codes: tuple = ()

    @classmethod
    def of(cls, spec, codes: bool = True) -> "_Dialect":
        if spec is None:
            return cls()
        return cls(decimal=spec.decimal, date_format=spec.date_format,
                   numeric_codes=tuple(spec.numeric_codes) if codes else (),
                   text_codes=tuple(spec.text_codes) if codes else ())

    def without_codes(self) -> "_Dialect":
        return _Dialect(self.decimal, self.date_format)

    @property
    def has_codes(self) -> bool:
        return bool(self.numeric_codes or self.text_codes)


_PLAIN = _Dialect()


def _to_numbers(text: pd.Series, decimal: str) -> np.ndarray:
    """Stripped strings -> float64 (NaN when not a number), with the file's decimal mark."""
    if decimal == ",":
        has_point = text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
        text = text.str.replace(",", ".", regex=False)
        text = text.mask(has_point)
    return pd.to_numeric(text.mask(text == ""), errors="coerce").astype("float64").to_numpy()


def _coded_uniques(text: pd.Series, dialect: _Dialect) -> np.ndarray:
    """Which distinct (stripped) values are declared missing codes."""
    out = np.zeros(len(text), dtype=bool)
    if not dialect.has_codes:
        return out
    if dialect.text_codes:
        out |= text.isin(dialect.text_codes).to_numpy()
    if dialect.numeric_codes:
        out |= np.isin(_to_numbers(text, dialect.decimal), np.asarray(dialect.numeric_codes, "float64"))
    return out


def _parse_numbers(s: pd.Series, dialect: _Dialect = _PLAIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values, empty mask, coded mask). Non-numbers are NaN with ``empty`` False; cells
    holding a missing code are NaN with ``empty`` and ``coded`` True."""
    if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s) and not _is_text(s)):
        v = s.astype("float64").to_numpy(na_value=np.nan)
        coded = np.isin(v, np.asarray(dialect.numeric_codes, "float64")) if dialect.numeric_codes else \
            np.zeros(len(v), dtype=bool)
        v = np.where(coded, np.nan, v)
        return v, (np.isnan(v) & s.isna().to_numpy()) | coded, coded
    codes, text = _distinct(s)
    u_coded = _coded_uniques(text, dialect)
    u_empty = (text == "").to_numpy() | u_coded
    u_val = np.where(u_coded, np.nan, _to_numbers(text, dialect.decimal))
    return _take(u_val, codes, np.nan), _take(u_empty, codes, True), _take(u_coded, codes, False)


_NS_MIN, _NS_MAX = np.datetime64(pd.Timestamp.min.ceil("us")), np.datetime64(pd.Timestamp.max.floor("us"))


_TZ_SUFFIX = r"^(.+[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S")
#: formats tried, in this order, to suggest a ``date_format`` when dates are not ISO
_CANDIDATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y",
                      "%m/%d/%y", "%Y%m%d")


def _parse_with_format(text: pd.Series, fmt: str) -> pd.Series:
    """Parse stripped strings with ``fmt``, a time of day after it allowed (NaT when not)."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = text.notna() & (text != "")
    for suffix in _TIME_SUFFIXES:
        if not todo.any():
            break
        got = pd.to_datetime(text[todo], format=fmt + suffix, errors="coerce")
        out[todo] = got
        todo &= out.isna()
    return out


def _parse_dates(s: pd.Series, dialect: _Dialect = _PLAIN) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[ns] values, empty mask). Unparseable dates are NaT with ``empty`` False;
    missing codes count as empty.

    Without a ``date_format``: ISO dates or date-times. Time zones are dropped, keeping the
    wall-clock time as written ("2024-01-05T00:30+01:00" is 2024-01-05 00:30): relationship dates
    are calendar dates of the company's own zone.
    """
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s):
        a = s.to_numpy()
        empty = np.isnat(a)
        if a.dtype != "datetime64[ns]":
            inside = (a >= _NS_MIN) & (a <= _NS_MAX)
            a = np.where(inside, a, np.datetime64("NaT")).astype("datetime64[ns]")
        return a, empty
    codes, text = _distinct(s)
    u_coded = _coded_uniques(text, dialect)
    u_empty = (text == "").to_numpy() | u_coded
    text = text.mask(u_coded, "")
    if dialect.date_format:
        parsed = _parse_with_format(text, dialect.date_format)
        u_val = parsed.to_numpy(dtype="datetime64[ns]")
    else:
        text = text.str.replace(_TZ_SUFFIX, r"\1", regex=True)
        parsed = pd.to_datetime(text.mask(text == ""), format="ISO8601", errors="coerce", utc=True)
        u_val = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return _take(u_val, codes, np.datetime64("NaT")), _take(u_empty, codes, True)


def _suggest_date_format(values: pd.Series) -> list[str]:
    """The candidate formats that parse every one of these (distinct, non-ISO) date strings."""
    text = pd.Series(values.dropna().astype(str).str.strip().unique()[:500], dtype=object)
    text = text[text != ""]
    if text.empty:
        return []
    return [fmt for fmt in _CANDIDATE_FORMATS if _parse_with_format(text, fmt).notna().all()]


_TRUE, _FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


def _parse_flags(s: pd.Series, dialect: _Dialect = _PLAIN) -> tuple[np.ndarray, np.ndarray]:
    """(float 0/1 values, empty mask) for 0/1, true/false, yes/no."""
    if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s) and not _is_text(s)):
        v, empty, _ = _parse_numbers(s, dialect)
        return np.where(np.isin(v, (0.0, 1.0)), v, np.nan), empty
    codes, text = _distinct(s)
    u_coded = _coded_uniques(text, dialect)
    low = text.str.lower().mask(u_coded, "")
    num = pd.to_numeric(low.mask(low == ""), errors="coerce")
    u_val = np.where(low.isin(_TRUE) | (num == 1), 1.0, np.where(low.isin(_FALSE) | (num == 0), 0.0, np.nan))
    return _take(u_val, codes, np.nan), _take((low == "").to_numpy(), codes, True)


def _clean_text(s: pd.Series, dialect: _Dialect = _PLAIN) -> pd.Series:
    """Covariates as pandas "string" (stripped; empty or a missing code -> NA), parsed once per
    distinct value."""
    codes, text = _distinct(s)
    text = text.mask((text == "").to_numpy() | _coded_uniques(text, dialect))
    values = pd.array(text.to_numpy(dtype=object), dtype="string")
    return pd.Series(values.take(codes, allow_fill=True), index=s.index)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _fmt_list(xs) -> str:
    return "[" + ", ".join(_fmt(x) for x in xs) + "]"


def _fmt_codes(xs) -> str:
    return "[" + ", ".join(repr(x) if isinstance(x, str) else _fmt(x) for x in xs) + "]"


# --------------------------------------------------------------------------------------------
# problem collection


class _Problems:
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
            examples = ", ".join(str(i + 1) for i in idx[:_N_EXAMPLES])
        self.rows.append(dict(file=file, column=column, rule=rule, rows=int(n), examples=examples,
                              fix=fix))

    def add_mask(self, file: str, column: str, rule: str, fix: str, bad: np.ndarray) -> None:
        if bad.any():
            self.add(file, column, rule, fix, np.flatnonzero(bad))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=PROBLEM_COLUMNS).astype({"rows": "int64"})


class _Schema:
    """One lazy pandera schema per file, built from vectorised checks.

    Each check gets its boolean mask precomputed (parsing is done once per column, not once
    per check). Pandera runs the checks lazily and reports its failure cases; cxlab keeps the
    first ``_N_EXAMPLES`` of them (``n_failure_cases``: collecting a million failure cases
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
                     n_failure_cases=_N_EXAMPLES))

    def not_empty(self, column: str, empty: np.ndarray, fix: str) -> None:
        self.check(column, "not_empty", ~np.asarray(empty, dtype=bool), fix)

    def run(self, frame: pd.DataFrame, problems: _Problems) -> None:
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
            rows = np.sort(grp["_row"].dropna().astype("int64").unique())[:_N_EXAMPLES]
            if name in self.registry:
                order, column, rule, fix, n_bad = self.registry[name]
            else:  # a check cxlab did not declare (should not happen): still reported
                column = str(grp["column"].iloc[0])
                order, rule, fix, n_bad = len(self.registry), name, f"pandera check {name!r} failed", len(rows)
            found.append((order, column, rule, fix, n_bad, rows))
        for _, column, rule, fix, n_bad, rows in sorted(found, key=lambda t: t[0]):
            problems.add(self.file, column, rule, fix, rows, n_rows=n_bad)


# --------------------------------------------------------------------------------------------
# per-file work


@dataclass
class _Table:
    role: str
    label: str
    raw: pd.DataFrame | None = None
    ids: pd.Series | None = None               # cleaned ids (object, NaN = empty)
    dates: dict[str, np.ndarray] = field(default_factory=dict)
    empties: dict[str, np.ndarray] = field(default_factory=dict)
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    coded: dict[str, np.ndarray] = field(default_factory=dict)   # cells holding a missing code
    texts: dict[str, pd.Series] = field(default_factory=dict)    # cleaned label columns
    ok_cols: set = field(default_factory=set)  # columns present in the file
    dialect: _Dialect = _PLAIN                 # how the file writes numbers, dates, codes
    dialect_delimiter: str = ","
    id_index: pd.Index | None = None           # customers: distinct ids (first occurrence)
    id_rows: np.ndarray | None = None          # customers: row of each id_index entry

    @property
    def n(self) -> int:
        return 0 if self.raw is None else len(self.raw)


def _read(study: Study, role: str, problems: _Problems) -> _Table:
    if study.source is not None:        # a database table: collected whole (issue 11, first step)
        from cxlab.data.sources import read_table as read_source_table

        table = _Table(role, study.label(role))
        raw = read_source_table(study, role)      # StudyError (exit 2) names the table or variable
        table.raw = raw.reset_index(drop=True)
        table.dialect = _Dialect.of(getattr(study, role))
        if len(table.raw) == 0:
            problems.add(table.label, "", "has_rows", f"{table.label} has no rows; check source.tables.{role}.")
        return table
    label = getattr(study, role).path
    table = _Table(role, label)
    path = study.resolve(label)
    if not path.is_file():
        problems.add(label, "", "file_exists",
                     f"{role}.path names {label!r}, which does not exist (looked for {str(path)!r}; "
                     f"relative paths start from the spec's folder). Correct {role}.path in the spec.")
        return table
    try:
        raw = read_table(path, role, getattr(study, role))
    except TableReadError as exc:
        if exc.rows or exc.n_rows:
            problems.add(label, "", exc.rule, str(exc), exc.rows, n_rows=exc.n_rows)
        else:
            problems.add(label, "", exc.rule, str(exc))
        return table
    except StudyError as exc:
        problems.add(label, "", "file_readable", str(exc))
        return table
    except Exception as exc:  # noqa: BLE001 - any reader error: its type, never the contents
        problems.add(label, "", "file_readable",
                     f"{label} could not be read ({type(exc).__name__}); check that it is a CSV "
                     f"with one header line, in the dialect the spec gives (delimiter, encoding), or "
                     f"a Parquet file.")
        return table
    table.raw = raw.reset_index(drop=True)
    table.dialect = _Dialect.of(getattr(study, role))
    table.dialect_delimiter = getattr(study, role).delimiter
    if len(table.raw) == 0:
        problems.add(label, "", "has_rows", f"{label} has a header but no data rows; export the data again.")
    return table


def _require(table: _Table, wanted: list[tuple[str, str]], problems: _Problems) -> None:
    """column_present: one problem per missing column, naming the spec key to change."""
    cols = [str(c) for c in table.raw.columns]
    have = set(table.raw.columns)
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


def _check_ids(table: _Table, key: str, col: str, schema: _Schema, unique: bool) -> None:
    if col not in table.ok_cols:
        return
    table.ids = _clean_ids(table.raw[col])
    schema.not_empty(col, table.ids.isna().to_numpy(),
                     f"{col!r} ({key}) is empty in these rows; every {table.role} row needs a "
                     f"customer id.")
    if unique:
        # one hash table serves the uniqueness check and the look-ups of survey / complaint ids
        # (pandera's builtin ``unique`` would hash the ids twice more: it shows at 1e6 customers)
        present = table.ids.notna().to_numpy()
        known = table.ids[present]
        index = pd.Index(known.to_numpy(), dtype=object)
        if index.is_unique:
            dup = np.zeros(table.n, dtype=bool)
            table.id_index, table.id_rows = index, known.index.to_numpy()
        else:
            dup = table.ids.duplicated(keep=False).to_numpy() & present
            first = ~known.duplicated(keep="first").to_numpy()
            table.id_index, table.id_rows = index[first], known.index.to_numpy()[first]
        n_dup = int(table.ids[dup].nunique()) if dup.any() else 0
        schema.check(col, "unique", ~dup,
                     f"{col!r} ({key}) must be unique (one row per customer); {n_dup:,} id"
                     f"{'s' * (n_dup != 1)} appear more than once in these rows: merge or remove "
                     f"the duplicates.")


def _check_date(table: _Table, key: str, col: str, schema: _Schema, required: bool) -> None:
    if col not in table.ok_cols or col in table.dates:
        return
    dialect = table.dialect.without_codes() if table.role == "surveys" else table.dialect
    values, empty = _parse_dates(table.raw[col], dialect)
    table.dates[col], table.empties[col] = values, empty
    if required:
        schema.not_empty(col, empty, f"{col!r} ({key}) is empty in these rows; every row needs this date.")
    extra = "" if required else (" Leave it empty when there is no date (no placeholder such as "
                                 "9999-12-31 or 0000-00-00, unless it is declared in "
                                 f"{table.role}.missing_codes).")
    ok = ~np.isnat(values) | empty
    fmt = dialect.date_format
    if fmt:
        example = dt.datetime(2026, 6, 30).strftime(fmt)
        what = f"dates written as {table.role}.date_format {fmt!r} (e.g. {example}), a time of day allowed"
    else:
        what = _DATE_FORMAT_HINT
    hint = ""
    if not fmt and not ok.all():
        found = _suggest_date_format(table.raw[col][~ok])
        if len(found) == 1 or (found and found[0] not in ("%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y", "%m/%d/%y")):
            hint = (f" These dates parse with date_format: {found[0]!r} (e.g. "
                    f"{dt.datetime(2026, 6, 30).strftime(found[0])}): add it to {table.role}: in the spec.")
        elif found:
            hint = (f" These dates parse both as {found[0]!r} and as {found[1]!r} (no day above 12 among "
                    f"them): add date_format: '%d/%m/%Y' (day first) or '%m/%d/%Y' (month first) to "
                    f"{table.role}: in the spec, whichever the extract uses.")
    schema.check(col, "date_parseable", ok, f"{col!r} ({key}) must hold {what}; these rows do not.{extra}{hint}")


def _check_number(table: _Table, key: str, col: str, schema: _Schema, what: str) -> np.ndarray | None:
    if col not in table.ok_cols:
        return None
    if col not in table.numbers:
        values, empty, coded = _parse_numbers(table.raw[col], table.dialect)
        table.numbers[col], table.empties[col], table.coded[col] = values, empty, coded
        mark = ("a decimal comma (decimal: ',')" if table.dialect.decimal == "," else
                f"a decimal point (or set {table.role}.decimal: ',' for decimal commas)")
        schema.check(col, "numeric", np.isfinite(values) | empty,
                     f"{col!r} ({key}) must hold {what}, written with {mark} and no unit, "
                     f"currency sign or thousands separator, or be empty; these rows do not.")
    return table.numbers[col]


#: a label column with at least this many distinct values, more than half its filled rows, is
#: identifier-like; so is one holding a customer id of the id column (5+ characters mixing
#: letters and digits, or 7+ digits: short codes such as "1" or "75001" may match ids by chance)
_ID_LIKE_MIN_DISTINCT, _ID_LIKE_SHARE = 20, 0.5


def _looks_like_id(text: pd.Series) -> np.ndarray:
    t = text.fillna("")
    digit = t.str.contains(r"\d", regex=True)
    letter = t.str.contains(r"[^\W\d_]", regex=True)
    return ((t.str.len() >= 5) & digit & letter | (t.str.len() >= 7) & t.str.fullmatch(r"\d+")).to_numpy()


def _check_label(table: _Table, key: str, col: str, id_col: str, schema: _Schema) -> None:
    """not_identifier: a label (covariate) must be a category, never a customer identifier."""
    if col not in table.ok_cols:
        return
    text = table.texts[col] = _clean_text(table.raw[col], table.dialect)
    filled = text.notna().to_numpy()
    n_filled = int(filled.sum())
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    n_distinct = len(uniques)
    fix_tail = (f"Identifiers must stay out of models and reports: remove {col!r} from {key}, or "
                f"replace it by a category shared by many customers (e.g. a region instead of a "
                f"postcode).")
    if col == id_col:
        schema.check(col, "not_identifier", np.zeros(table.n, dtype=bool) | ~filled,
                     f"{col!r} ({key}) is the customer id column. {fix_tail}")
        return
    if n_distinct >= _ID_LIKE_MIN_DISTINCT and n_distinct > _ID_LIKE_SHARE * n_filled:
        counts = np.bincount(codes[codes >= 0], minlength=n_distinct)
        single = (codes >= 0) & (counts[np.where(codes >= 0, codes, 0)] == 1)
        schema.check(col, "not_identifier", ~single,
                     f"{col!r} ({key}) has {n_distinct:,} distinct values for {n_filled:,} filled rows "
                     f"(these rows hold a value no other customer has): it looks like an identifier, "
                     f"not a category. {fix_tail}")
        return
    u = pd.Series(np.asarray(uniques, dtype=object))
    if table.id_index is not None and n_distinct:
        u_bad = u.isin(table.id_index).to_numpy() & _looks_like_id(u)
        if u_bad.any():
            bad = (codes >= 0) & u_bad[np.where(codes >= 0, codes, 0)]
            schema.check(col, "not_identifier", ~bad,
                         f"{col!r} ({key}) holds customer ids of {id_col!r} in these rows. {fix_tail}")
            return
    # levels become parts of metric names through cxlab.study.slug: two levels with one slug
    # (they differ only by accents or punctuation) would be one figure in the run's manifest
    slugs = u.map(slug)
    clash = slugs.duplicated(keep=False).to_numpy()
    if clash.any():
        bad = (codes >= 0) & clash[np.where(codes >= 0, codes, 0)]
        n_groups = int(slugs[clash].nunique())
        schema.check(col, "label_slug_unique", ~bad,
                     f"{col!r} ({key}) has {int(clash.sum())} categories that differ only by accents, "
                     f"spaces or punctuation ({n_groups} group{'s' * (n_groups != 1)}), in these rows: "
                     f"write each category one way in the extract.")


def _check_order(table: _Table, first: tuple[str, str], second: tuple[str, str], schema: _Schema,
                 rule: str) -> None:
    (k1, c1), (k2, c2) = first, second
    if c1 not in table.dates or c2 not in table.dates:
        return
    a, b = table.dates[c1].astype("datetime64[D]"), table.dates[c2].astype("datetime64[D]")
    bad = ~np.isnat(a) & ~np.isnat(b) & (b < a)          # calendar days: same day is fine
    schema.check(c2, rule, ~bad,
                 f"{c2!r} ({k2}) is before {c1!r} ({k1}) in these rows; check for swapped columns or "
                 f"mistyped dates.")


# --------------------------------------------------------------------------------------------
# the whole study


def validate_study(study: Study) -> ValidationReport:
    """Read every data file of ``study`` and check the data contract.

    Never stops at the first problem: a missing file or column is one problem row and the other
    files and columns are still checked. Returns a :class:`ValidationReport`; its ``data``
    holds the typed tables when ``ok``.
    """
    problems = _Problems()
    tables: dict[str, _Table] = {}
    cs, ss, ks = study.customers, study.surveys, study.complaints

    # customers ---------------------------------------------------------------------------
    t = tables["customers"] = _read(study, "customers", problems)
    if t.raw is not None:
        wanted = [("customers.id", cs.id), ("customers.start", cs.start), ("customers.end", cs.end)]
        if cs.value is not None:
            wanted.append(("customers.value", cs.value))
        wanted += [("customers.covariates", c) for c in cs.covariates]
        _require(t, wanted, problems)
        schema = _Schema(t.label)
        _check_ids(t, "customers.id", cs.id, schema, unique=True)
        _check_date(t, "customers.start", cs.start, schema, required=True)
        _check_date(t, "customers.end", cs.end, schema, required=False)
        _check_order(t, ("customers.start", cs.start), ("customers.end", cs.end), schema, "start_before_end")
        if cs.value is not None:
            _check_number(t, "customers.value", cs.value, schema, "amounts of money")
        for cov in cs.covariates:
            _check_label(t, "customers.covariates", cov, cs.id, schema)
        schema.run(t.raw, problems)

    # surveys -----------------------------------------------------------------------------
    t = tables["surveys"] = _read(study, "surveys", problems)
    survey_columns: list[str] = []
    if t.raw is not None:
        items = [(f"surveys.constructs.{name}", col) for name, cols in ss.constructs.items() for col in cols]
        if ss.self_status is not None:
            items.append(("surveys.self_status", ss.self_status))
        outcomes = [(f"surveys.outcomes.{name}", col, name) for name, col in ss.outcome_columns.items()]
        _require(t, [("surveys.id", ss.id), ("surveys.date", ss.date), *items,
                     *[(k, c) for k, c, _ in outcomes]], problems)
        for key, col in [*items, *[(k, c) for k, c, _ in outcomes]]:
            if col in ("customer_id", "date", "source_row", ss.id, ss.date):
                problems.add(t.label, col, "name_clash",
                             f"{key} names column {col!r}, which is the id or date column or a name "
                             f"cxlab's survey table uses for its own column; name the item's own "
                             f"column (rename it in the file and in the spec if needed).")
        schema = _Schema(t.label)
        _check_ids(t, "surveys.id", ss.id, schema, unique=False)
        _check_date(t, "surveys.date", ss.date, schema, required=True)
        codes = np.asarray(ss.numeric_codes, dtype="float64")
        code_txt = f"surveys.missing_codes: {_fmt_codes(ss.missing_codes)}" if ss.missing_codes else \
            "no surveys.missing_codes declared"
        checked_scale: set = set()
        scaled = [(k, c, ss.status_scale, "surveys.self_status_scale" if ss.self_status_scale else
                   "surveys.scale") if k == "surveys.self_status" else (k, c, ss.scale, "surveys.scale")
                  for k, c in items] + \
                 [(k, c, ss.outcome_scale(name), f"surveys.outcomes.{name}.scale"
                   if ss.outcomes[name].scale is not None else f"surveys.outcome_scales.{name}" if name in
                   ss.outcome_scales else "surveys.scale (the default outcome scale)")
                  for k, c, name in outcomes]
        for key, col, (lo, hi), scale_key in scaled:
            if col not in survey_columns:
                survey_columns.append(col)
            v = _check_number(t, key, col, schema, f"numeric answers ({_fmt(lo)} to {_fmt(hi)})")
            if v is None or (col, lo, hi) in checked_scale:
                continue
            checked_scale.add((col, lo, hi))
            bad = np.isfinite(v) & ~np.isin(v, codes) & ~((v >= lo) & (v <= hi))
            schema.check(col, "in_scale", ~bad,
                         f"{col!r} ({key}) must lie in {scale_key} {_fmt_list((lo, hi))} or be a "
                         f"declared missing code ({code_txt}); these rows do not. Add the code to "
                         f"surveys.missing_codes or correct the scale.")
        schema.run(t.raw, problems)

    # complaints --------------------------------------------------------------------------
    if ks is not None:
        t = tables["complaints"] = _read(study, "complaints", problems)
        if t.raw is not None:
            wanted = [("complaints.id", ks.id), ("complaints.opened", ks.opened)]
            if ks.closed is not None:
                wanted.append(("complaints.closed", ks.closed))
            if ks.compensated is not None:
                wanted.append(("complaints.compensated", ks.compensated))
            _require(t, wanted, problems)
            schema = _Schema(t.label)
            _check_ids(t, "complaints.id", ks.id, schema, unique=False)
            _check_date(t, "complaints.opened", ks.opened, schema, required=True)
            if ks.closed is not None:
                _check_date(t, "complaints.closed", ks.closed, schema, required=False)
                _check_order(t, ("complaints.opened", ks.opened), ("complaints.closed", ks.closed),
                             schema, "opened_before_closed")
            if ks.compensated is not None and ks.compensated in t.ok_cols:
                flags, empty = _parse_flags(t.raw[ks.compensated], t.dialect)
                t.numbers[ks.compensated], t.empties[ks.compensated] = flags, empty
                schema.check(ks.compensated, "boolean", ~np.isnan(flags) | empty,
                             f"{ks.compensated!r} (complaints.compensated) must be 0/1, true/false "
                             f"or yes/no, or empty when unknown; these rows are not.")
            schema.run(t.raw, problems)

    # across files ------------------------------------------------------------------------
    _cross_checks(study, tables, problems)

    problems_df = problems.frame()
    summary = _summary(study, tables, survey_columns)
    files = {t.label: t.n for t in tables.values() if t.raw is not None}
    data = _canonical(study, tables, survey_columns) if problems_df.empty else None
    return ValidationReport(problems=problems_df, summary=summary, data=data, files=files)


def _cross_checks(study: Study, tables: dict[str, _Table], problems: _Problems) -> None:
    """id_in_customers and inside_relationship (plain pandas, on parsed values)."""
    cust = tables["customers"]
    cs = study.customers
    if cust.ids is None:
        return  # the customer file or its id column is missing: already reported
    index, first_row = cust.id_index, cust.id_rows  # first row of every distinct customer id
    starts = cust.dates.get(cs.start)
    ends = cust.dates.get(cs.end)
    day = "datetime64[D]"
    for role, key_id, date_key in (("surveys", "surveys.id", "surveys.date"),
                                   ("complaints", "complaints.id", "complaints.opened")):
        t = tables.get(role)
        if t is None or t.ids is None:
            continue
        spec = getattr(study, role)
        pos = index.get_indexer(t.ids)
        present = t.ids.notna().to_numpy()
        problems.add_mask(
            t.label, spec.id, "id_in_customers",
            f"{spec.id!r} ({key_id}) holds customer ids that are not in {cust.label} in these rows; "
            f"use a customer extract that includes every {role[:-1]}'s customer, or drop these rows.",
            present & (pos < 0))
        date_col = spec.date if role == "surveys" else spec.opened
        if date_col not in t.dates or starts is None:
            continue
        found = pos >= 0
        rows = first_row[np.where(found, pos, 0)] if len(first_row) else np.zeros(len(pos), int)
        d = t.dates[date_col].astype(day)
        none = np.full(len(pos), np.datetime64("NaT"), day)
        s = starts[rows].astype(day) if len(starts) else none
        e = ends[rows].astype(day) if ends is not None and len(ends) else none
        valid = found & ~np.isnat(d) & ~np.isnat(s)
        outside = valid & ((d < s) | (~np.isnat(e) & (d > e)))
        what = "answered" if role == "surveys" else "opened"
        problems.add_mask(
            t.label, date_col, "inside_relationship",
            f"{date_col!r} ({date_key}) is before the customer's {cs.start!r} or after their "
            f"{cs.end!r} ({cust.label}) in these rows: a {role[:-1]} must be {what} during the "
            f"relationship. Check the dates or the customer id.",
            outside)


def _summary(study: Study, tables: dict[str, _Table], survey_columns: list[str]) -> pd.DataFrame:
    rows = []
    codes = np.asarray(study.surveys.numeric_codes, dtype="float64")
    for role in _ROLE_ORDER:
        t = tables.get(role)
        if t is None:
            continue
        n_cols = None if t.raw is None else t.raw.shape[1]
        rows.append(dict(file=t.label, role=role, column=pd.NA, rows=t.n if t.raw is not None else pd.NA,
                         columns=n_cols, missing_codes=pd.NA, empty=pd.NA))
        if role == "surveys":
            for col in survey_columns:
                if col not in t.numbers:
                    continue
                coded = t.coded.get(col, np.zeros(t.n, dtype=bool))
                rows.append(dict(file=t.label, role=role, column=col, rows=t.n, columns=pd.NA,
                                 missing_codes=int(coded.sum()),
                                 empty=int((t.empties[col] & ~coded).sum())))
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.astype({c: "Int64" for c in ("rows", "columns", "missing_codes", "empty")})


def _canonical(study: Study, tables: dict[str, _Table], survey_columns: list[str]) -> StudyData:
    cs, ss, ks = study.customers, study.surveys, study.complaints

    c = tables["customers"]
    customers = pd.DataFrame({
        "customer_id": c.ids.to_numpy(dtype=object),
        "start": c.dates[cs.start],
        "end": c.dates[cs.end],
        "value": c.numbers[cs.value] if cs.value is not None else np.full(c.n, np.nan),
    })
    for cov in cs.covariates:
        if cov not in customers.columns:
            text = c.texts[cov] if cov in c.texts else _clean_text(c.raw[cov], c.dialect)
            customers[cov] = text.array
    customers["source_row"] = np.arange(1, c.n + 1)

    s = tables["surveys"]
    codes = np.asarray(ss.numeric_codes, dtype="float64")
    cols = {"customer_id": s.ids.to_numpy(dtype=object), "date": s.dates[ss.date]}
    for col in survey_columns:
        v = s.numbers[col].copy()
        v[np.isin(v, codes)] = np.nan
        cols[col] = v
    surveys = pd.DataFrame(cols)
    surveys["source_row"] = np.arange(1, s.n + 1)

    complaints = None
    if ks is not None:
        k = tables["complaints"]
        nat = np.full(k.n, np.datetime64("NaT"), "datetime64[ns]")
        complaints = pd.DataFrame({
            "customer_id": k.ids.to_numpy(dtype=object),
            "opened": k.dates[ks.opened],
            "closed": k.dates[ks.closed] if ks.closed is not None else nat,
            "compensated": k.numbers[ks.compensated] if ks.compensated is not None else np.full(k.n, np.nan),
            "source_row": np.arange(1, k.n + 1),
        })
    return StudyData(customers=customers, surveys=surveys, complaints=complaints)


def load_study_data(study: Study) -> StudyData:
    """Validate ``study`` and return its typed tables.

    Raises :class:`cxlab.errors.DataContractError` (message: the problem table; ``.problems``:
    the DataFrame) when any rule fails.
    """
    report = validate_study(study)
    report.raise_if_failed()
    return report.data
