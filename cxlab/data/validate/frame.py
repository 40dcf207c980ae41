"""The file path: a CSV or Parquet file read into pandas and checked column by column (numpy
masks, reported through one pandera schema per file, :class:`.schema.Schema`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxlab.errors import StudyError
from cxlab.study import TableReadError, read_table, slug

from . import messages as msg
from .flow import Checks
from .parsing import (PLAIN, Dialect, clean_ids, clean_text, parse_dates, parse_flags, parse_numbers,
                      suggest_date_format)
from .report import Problems
from .schema import Schema

#: a label column with at least this many distinct values, more than half its filled rows, is
#: identifier-like; so is one holding a customer id of the id column (5+ characters mixing
#: letters and digits, or 7+ digits: short codes such as "1" or "75001" may match ids by chance)
ID_LIKE_MIN_DISTINCT, ID_LIKE_SHARE = 20, 0.5


def looks_like_id(text: pd.Series) -> np.ndarray:
    t = text.fillna("")
    digit = t.str.contains(r"\d", regex=True)
    letter = t.str.contains(r"[^\W\d_]", regex=True)
    return ((t.str.len() >= 5) & digit & letter | (t.str.len() >= 7) & t.str.fullmatch(r"\d+")).to_numpy()


def slug_clashes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Which distinct category values share their metric-name slug with another, and in how many
    groups (label_slug_unique)."""
    slugs = values.map(slug)
    clash = slugs.duplicated(keep=False).to_numpy()
    return clash, int(slugs[clash].nunique()) if clash.any() else 0


@dataclass
class FrameTable(Checks):
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
    dialect: Dialect = PLAIN                   # how the file writes numbers, dates, codes
    dialect_delimiter: str = ","
    id_index: pd.Index | None = None           # customers: distinct ids (first occurrence)
    id_rows: np.ndarray | None = None          # customers: row of each id_index entry
    schema: Schema | None = None

    @property
    def n(self) -> int:
        return 0 if self.raw is None else len(self.raw)

    @property
    def columns(self) -> list | None:
        return None if self.raw is None else list(self.raw.columns)

    def run(self, problems: Problems) -> None:
        self.schema.run(self.raw, problems)

    # -- the column rules ----------------------------------------------------------------------

    def check_ids(self, key: str, col: str, unique: bool) -> None:
        if col not in self.ok_cols:
            return
        self.ids = clean_ids(self.raw[col])
        self.schema.not_empty(col, self.ids.isna().to_numpy(), msg.empty_id(col, key, self.role))
        if unique:
            # one hash table serves the uniqueness check and the look-ups of survey / complaint ids
            # (pandera's builtin ``unique`` would hash the ids twice more: it shows at 1e6 customers)
            present = self.ids.notna().to_numpy()
            known = self.ids[present]
            index = pd.Index(known.to_numpy(), dtype=object)
            if index.is_unique:
                dup = np.zeros(self.n, dtype=bool)
                self.id_index, self.id_rows = index, known.index.to_numpy()
            else:
                dup = self.ids.duplicated(keep=False).to_numpy() & present
                first = ~known.duplicated(keep="first").to_numpy()
                self.id_index, self.id_rows = index[first], known.index.to_numpy()[first]
            n_dup = int(self.ids[dup].nunique()) if dup.any() else 0
            self.schema.check(col, "unique", ~dup, msg.duplicate_ids(col, key, n_dup))

    def check_date(self, key: str, col: str, required: bool) -> None:
        if col not in self.ok_cols or col in self.dates:
            return
        dialect = self.dialect.without_codes() if self.role == "surveys" else self.dialect
        values, empty = parse_dates(self.raw[col], dialect)
        self.dates[col], self.empties[col] = values, empty
        if required:
            self.schema.not_empty(col, empty, msg.empty_date(col, key))
        ok = ~np.isnat(values) | empty
        found = suggest_date_format(self.raw[col][~ok]) if not dialect.date_format and not ok.all() else []
        self.schema.check(col, "date_parseable", ok,
                          msg.unparseable_date(col, key, self.role, dialect.date_format, required, found))

    def check_number(self, key: str, col: str, what: str) -> bool:
        if col not in self.ok_cols:
            return False
        if col not in self.numbers:
            values, empty, coded = parse_numbers(self.raw[col], self.dialect)
            self.numbers[col], self.empties[col], self.coded[col] = values, empty, coded
            self.schema.check(col, "numeric", np.isfinite(values) | empty,
                              msg.not_numeric(col, key, self.role, what, self.dialect.decimal))
        return True

    def check_scale(self, key: str, col: str, lo: float, hi: float, fix: str) -> None:
        v = self.numbers[col]
        codes = np.asarray(self.dialect.numeric_codes, dtype="float64")
        bad = np.isfinite(v) & ~np.isin(v, codes) & ~((v >= lo) & (v <= hi))
        self.schema.check(col, "in_scale", ~bad, fix)

    def check_flag(self, key: str, col: str) -> None:
        if col not in self.ok_cols:
            return
        flags, empty = parse_flags(self.raw[col], self.dialect)
        self.numbers[col], self.empties[col] = flags, empty
        self.schema.check(col, "boolean", ~np.isnan(flags) | empty, msg.not_boolean(col))

    def check_order(self, first: tuple[str, str], second: tuple[str, str], rule: str) -> None:
        c1, c2 = first[1], second[1]
        if c1 not in self.dates or c2 not in self.dates:
            return
        a, b = self.dates[c1].astype("datetime64[D]"), self.dates[c2].astype("datetime64[D]")
        bad = ~np.isnat(a) & ~np.isnat(b) & (b < a)          # calendar days: same day is fine
        self.schema.check(c2, rule, ~bad, msg.dates_out_of_order(first, second))

    def check_label(self, key: str, col: str, id_col: str) -> None:
        """not_identifier: a label (covariate) must be a category, never a customer identifier."""
        if col not in self.ok_cols:
            return
        text = self.texts[col] = clean_text(self.raw[col], self.dialect)
        filled = text.notna().to_numpy()
        n_filled = int(filled.sum())
        codes, uniques = pd.factorize(text, use_na_sentinel=True)
        n_distinct = len(uniques)
        if col == id_col:
            self.schema.check(col, "not_identifier", np.zeros(self.n, dtype=bool) | ~filled,
                              msg.label_is_id_column(col, key))
            return
        if n_distinct >= ID_LIKE_MIN_DISTINCT and n_distinct > ID_LIKE_SHARE * n_filled:
            counts = np.bincount(codes[codes >= 0], minlength=n_distinct)
            single = (codes >= 0) & (counts[np.where(codes >= 0, codes, 0)] == 1)
            self.schema.check(col, "not_identifier", ~single,
                              msg.label_like_identifier(col, key, n_distinct, n_filled))
            return
        u = pd.Series(np.asarray(uniques, dtype=object))
        if self.id_index is not None and n_distinct:
            u_bad = u.isin(self.id_index).to_numpy() & looks_like_id(u)
            if u_bad.any():
                bad = (codes >= 0) & u_bad[np.where(codes >= 0, codes, 0)]
                self.schema.check(col, "not_identifier", ~bad, msg.label_holds_ids(col, key, id_col))
                return
        # levels become parts of metric names through cxlab.study.slug: two levels with one slug
        # (they differ only by accents or punctuation) would be one figure in the run's manifest
        clash, n_groups = slug_clashes(u)
        if clash.any():
            bad = (codes >= 0) & clash[np.where(codes >= 0, codes, 0)]
            self.schema.check(col, "label_slug_unique", ~bad,
                              msg.label_slugs_clash(col, key, int(clash.sum()), n_groups))


def read_file(study, role: str, problems: Problems) -> FrameTable:
    """Read the role's file (or, for a ``source:`` study, collect its table: the
    :func:`~cxlab.data.validate.validate_frames` fallback)."""
    if study.source is not None:        # a database table collected whole
        from cxlab.data.sources import read_table as read_source_table

        table = FrameTable(role, study.label(role))
        raw = read_source_table(study, role)      # StudyError (exit 2) names the table or variable
        table.raw = raw.reset_index(drop=True)
        table.dialect = Dialect.of(getattr(study, role))
        table.schema = Schema(table.label)
        if len(table.raw) == 0:
            problems.add(table.label, "", "has_rows", msg.empty_table(table.label, role))
        return table
    label = getattr(study, role).path
    table = FrameTable(role, label)
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
    table.dialect = Dialect.of(getattr(study, role))
    table.dialect_delimiter = getattr(study, role).delimiter
    table.schema = Schema(label)
    if len(table.raw) == 0:
        problems.add(label, "", "has_rows", f"{label} has a header but no data rows; export the data again.")
    return table
