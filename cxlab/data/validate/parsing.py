"""Parsing a file's cells in its dialect (pandas, vectorised; a text column is parsed once per
distinct value): identifiers, numbers, dates, 0/1 flags, category labels, and the spec's
dialect itself (:class:`Dialect`: decimal mark, ``date_format``, missing codes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa_arrow
import pyarrow.compute as pa_compute

DATE_FORMAT_HINT = ("ISO dates (YYYY-MM-DD) or date-times (YYYY-MM-DD HH:MM:SS) between the years "
                    "1678 and 2261")


def is_text(s: pd.Series) -> bool:
    return s.dtype == object or isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype))


def distinct(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Codes (-1 = missing) and the distinct values as stripped strings."""
    codes, uniques = pd.factorize(s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s,
                                  use_na_sentinel=True)
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).astype(str).str.strip()
    return codes, text


def take(values: np.ndarray, codes: np.ndarray, fill) -> np.ndarray:
    """``values[codes]`` with ``fill`` where the code is -1."""
    if len(values) == 0:
        return np.full(len(codes), fill, dtype=values.dtype)
    out = values[np.where(codes < 0, 0, codes)]
    out[codes < 0] = fill
    return out


def clean_ids(s: pd.Series) -> pd.Series:
    """Identifiers as stripped strings (object dtype, NaN when empty)."""
    if is_text(s):
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
class Dialect:
    """How a file writes numbers and dates, and which cell values mean "unknown"."""

    decimal: str = "."
    date_format: str | None = None
    numeric_codes: tuple = ()
    text_codes: tuple = ()

    @classmethod
    def of(cls, spec, codes: bool = True) -> "Dialect":
        if spec is None:
            return cls()
        return cls(decimal=spec.decimal, date_format=spec.date_format,
                   numeric_codes=tuple(spec.numeric_codes) if codes else (),
                   text_codes=tuple(spec.text_codes) if codes else ())

    def without_codes(self) -> "Dialect":
        return Dialect(self.decimal, self.date_format)

    @property
    def has_codes(self) -> bool:
        return bool(self.numeric_codes or self.text_codes)


PLAIN = Dialect()


def to_numbers(text: pd.Series, decimal: str) -> np.ndarray:
    """Stripped strings -> float64 (NaN when not a number), with the file's decimal mark."""
    if decimal == ",":
        has_point = text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
        text = text.str.replace(",", ".", regex=False)
        text = text.mask(has_point)
    return pd.to_numeric(text.mask(text == ""), errors="coerce").astype("float64").to_numpy()


def coded_uniques(text: pd.Series, dialect: Dialect) -> np.ndarray:
    """Which distinct (stripped) values are declared missing codes."""
    out = np.zeros(len(text), dtype=bool)
    if not dialect.has_codes:
        return out
    if dialect.text_codes:
        out |= text.isin(dialect.text_codes).to_numpy()
    if dialect.numeric_codes:
        out |= np.isin(to_numbers(text, dialect.decimal), np.asarray(dialect.numeric_codes, "float64"))
    return out


def parse_numbers(s: pd.Series, dialect: Dialect = PLAIN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values, empty mask, coded mask). Non-numbers are NaN with ``empty`` False; cells
    holding a missing code are NaN with ``empty`` and ``coded`` True."""
    if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s) and not is_text(s)):
        v = s.astype("float64").to_numpy(na_value=np.nan)
        coded = np.isin(v, np.asarray(dialect.numeric_codes, "float64")) if dialect.numeric_codes else \
            np.zeros(len(v), dtype=bool)
        v = np.where(coded, np.nan, v)
        return v, (np.isnan(v) & s.isna().to_numpy()) | coded, coded
    codes, text = distinct(s)
    u_coded = coded_uniques(text, dialect)
    u_empty = (text == "").to_numpy() | u_coded
    u_val = np.where(u_coded, np.nan, to_numbers(text, dialect.decimal))
    return take(u_val, codes, np.nan), take(u_empty, codes, True), take(u_coded, codes, False)


NS_MIN, NS_MAX = np.datetime64(pd.Timestamp.min.ceil("us")), np.datetime64(pd.Timestamp.max.floor("us"))


TZ_SUFFIX = r"^(.+[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
TIME_SUFFIXES = ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S")
#: formats tried, in this order, to suggest a ``date_format`` when dates are not ISO
CANDIDATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y",
                      "%m/%d/%y", "%Y%m%d")


def parse_with_format(text: pd.Series, fmt: str) -> pd.Series:
    """Parse stripped strings with ``fmt``, a time of day after it allowed (NaT when not)."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = text.notna() & (text != "")
    for suffix in TIME_SUFFIXES:
        if not todo.any():
            break
        got = pd.to_datetime(text[todo], format=fmt + suffix, errors="coerce")
        out[todo] = got
        todo &= out.isna()
    return out


def parse_dates(s: pd.Series, dialect: Dialect = PLAIN) -> tuple[np.ndarray, np.ndarray]:
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
            inside = (a >= NS_MIN) & (a <= NS_MAX)
            a = np.where(inside, a, np.datetime64("NaT")).astype("datetime64[ns]")
        return a, empty
    codes, text = distinct(s)
    u_coded = coded_uniques(text, dialect)
    u_empty = (text == "").to_numpy() | u_coded
    text = text.mask(u_coded, "")
    if dialect.date_format:
        parsed = parse_with_format(text, dialect.date_format)
        u_val = parsed.to_numpy(dtype="datetime64[ns]")
    else:
        text = text.str.replace(TZ_SUFFIX, r"\1", regex=True)
        parsed = pd.to_datetime(text.mask(text == ""), format="ISO8601", errors="coerce", utc=True)
        u_val = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return take(u_val, codes, np.datetime64("NaT")), take(u_empty, codes, True)


def suggest_date_format(values: pd.Series) -> list[str]:
    """The candidate formats that parse every one of these (distinct, non-ISO) date strings."""
    text = pd.Series(values.dropna().astype(str).str.strip().unique()[:500], dtype=object)
    text = text[text != ""]
    if text.empty:
        return []
    return [fmt for fmt in CANDIDATE_FORMATS if parse_with_format(text, fmt).notna().all()]


TRUE, FALSE = {"1", "true", "yes"}, {"0", "false", "no"}


def parse_flags(s: pd.Series, dialect: Dialect = PLAIN) -> tuple[np.ndarray, np.ndarray]:
    """(float 0/1 values, empty mask) for 0/1, true/false, yes/no."""
    if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s) and not is_text(s)):
        v, empty, _ = parse_numbers(s, dialect)
        return np.where(np.isin(v, (0.0, 1.0)), v, np.nan), empty
    codes, text = distinct(s)
    u_coded = coded_uniques(text, dialect)
    low = text.str.lower().mask(u_coded, "")
    num = pd.to_numeric(low.mask(low == ""), errors="coerce")
    u_val = np.where(low.isin(TRUE) | (num == 1), 1.0, np.where(low.isin(FALSE) | (num == 0), 0.0, np.nan))
    return take(u_val, codes, np.nan), take((low == "").to_numpy(), codes, True)


def clean_text(s: pd.Series, dialect: Dialect = PLAIN) -> pd.Series:
    """Covariates as pandas "string" (stripped; empty or a missing code -> NA), parsed once per
    distinct value."""
    codes, text = distinct(s)
    text = text.mask((text == "").to_numpy() | coded_uniques(text, dialect))
    values = pd.array(text.to_numpy(dtype=object), dtype="string")
    return pd.Series(values.take(codes, allow_fill=True), index=s.index)


def fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def fmt_list(xs) -> str:
    return "[" + ", ".join(fmt_number(x) for x in xs) + "]"


def fmt_codes(xs) -> str:
    return "[" + ", ".join(repr(x) if isinstance(x, str) else fmt_number(x) for x in xs) + "]"
