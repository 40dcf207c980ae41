"""A table's cells parsed in its dialect as ibis expressions (the engine path's
:mod:`.parsing`): identifiers, numbers, dates, 0/1 flags, category labels.

Every function takes a raw column's name and type (typed by the database: DATE / TIMESTAMP /
DOUBLE / INTEGER / BOOLEAN, or text) and a ``stage`` function that adds named columns to the
table (``stage(name=expression) -> {name: reference}``); each step of a parse is staged, so a
value used several times is computed once and the queries stay small. The results are
deferred references (``ibis._``) to those columns; booleans are never NULL (SQL's three-valued
logic would otherwise turn ``NOT bad`` into NULL). Text is parsed by regular
expressions and casts that every engine runs (DuckDB, PostgreSQL, Spark), with the same
acceptance as the pandas parsers for the cases the data contract names: ISO dates and
date-times (a time-zone offset dropped, wall-clock time kept), numbers with a decimal point or
comma, declared missing codes, 0/1 true/false yes/no. A ``date_format`` is parsed with the
engine's ``strptime`` (DuckDB ``try_strptime``, Spark ``try_to_timestamp``); PostgreSQL has no
non-failing ``strptime``, so there the distinct values of such a column are parsed in Python
(dates have few distinct values) and joined back.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
from ibis import _

from .parsing import FALSE, NS_MAX, NS_MIN, TIME_SUFFIXES, TRUE, TZ_SUFFIX, Dialect

_NUMBER = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?$"
_NULL_TS = ibis.null().cast("timestamp")
_NULL_F = ibis.null().cast("float64")
_NULL_S = ibis.null().cast("string")


def false_if_null(b):
    return b.fill_null(False)


def _typed_number(dtype) -> bool:
    return dtype.is_numeric() or dtype.is_boolean()


def text(col: str, dtype):
    """Stripped text (NULL stays NULL)."""
    return _[col].strip() if dtype.is_string() else _[col].cast("string").strip()


def to_number(t, decimal: str = "."):
    """Stripped text -> float64 (NULL when not a number), with the file's decimal mark."""
    if decimal == ",":
        t = ibis.ifelse(t.contains("."), _NULL_S, t.replace(",", "."))
    return ibis.ifelse(false_if_null(t.re_search(_NUMBER)), t.cast("float64"), _NULL_F)


@dataclass
class Parsed:
    value: object          # the parsed value (NULL: empty, a missing code, or not parseable)
    empty: object          # boolean: empty cell or a declared missing code
    coded: object          # boolean: a declared missing code


def _codes(t, num, dialect: Dialect):
    """Is the stripped text ``t`` (number ``num``) a declared missing code?"""
    out = ibis.literal(False)
    if dialect.text_codes:
        out = out | false_if_null(t.isin(list(dialect.text_codes)))
    if dialect.numeric_codes:
        out = out | false_if_null(num.isin([float(x) for x in dialect.numeric_codes]))
    return out


def _text_stage(col, dtype, dialect: Dialect, stage, decimal: str):
    """(stripped text, its number, coded, empty), staged."""
    t = stage(t=text(col, dtype))["t"]
    got = stage(num=to_number(t, decimal), coded=_codes(t, to_number(t, decimal), dialect))
    empty = t.isnull() | false_if_null(t == "") | got["coded"]
    return t, got["num"], got["coded"], empty


def numbers(col: str, dtype, dialect: Dialect, stage) -> Parsed:
    if _typed_number(dtype):
        v = stage(v=_[col].cast("float64"))["v"]
        coded = false_if_null(v.isin([float(x) for x in dialect.numeric_codes])) if dialect.numeric_codes \
            else ibis.literal(False)
        nan = false_if_null(v.isnan()) if dtype.is_floating() else ibis.literal(False)
        got = stage(coded=coded, empty=v.isnull() | nan | coded)
        got.update(stage(value=ibis.ifelse(got["empty"], _NULL_F, v)))
        return Parsed(got["value"], got["empty"], got["coded"])
    t, num, coded, empty = _text_stage(col, dtype, dialect, stage, dialect.decimal)
    got = stage(value=ibis.ifelse(empty, _NULL_F, num), empty=empty)
    return Parsed(got["value"], got["empty"], coded)


def finite(v):
    return v.notnull() & ~false_if_null(v.isinf()) & ~false_if_null(v.isnan())


def flags(col: str, dtype, dialect: Dialect, stage) -> Parsed:
    if _typed_number(dtype):
        p = numbers(col, dtype, dialect, stage)
        value = stage(value=ibis.ifelse(false_if_null(p.value.isin([0.0, 1.0])), p.value, _NULL_F))["value"]
        return Parsed(value, p.empty, p.coded)
    t, _num, coded, _empty = _text_stage(col, dtype, dialect, stage, dialect.decimal)
    low = stage(low=ibis.ifelse(coded, "", t.lower()))["low"]
    num = stage(num=to_number(low))["num"]
    one = false_if_null(low.isin(sorted(TRUE))) | false_if_null(num == 1)
    zero = false_if_null(low.isin(sorted(FALSE))) | false_if_null(num == 0)
    got = stage(value=ibis.ifelse(one, 1.0, ibis.ifelse(zero, 0.0, _NULL_F)),
                empty=low.isnull() | false_if_null(low == ""))
    return Parsed(got["value"], got["empty"], coded)


def labels(col: str, dtype, dialect: Dialect, stage):
    """Category labels: stripped text, NULL when empty or a missing code."""
    if not dialect.has_codes:
        t = stage(t=text(col, dtype))["t"]
        return stage(label=ibis.ifelse(false_if_null(t == ""), _NULL_S, t))["label"]
    t, _num, coded, empty = _text_stage(col, dtype, dialect, stage, dialect.decimal)
    return stage(label=ibis.ifelse(empty, _NULL_S, t))["label"]


def ids(col: str, dtype, stage):
    """Identifiers as stripped text (NULL when empty); integral floats without ``.0``."""
    if dtype.is_floating():
        c = _[col]
        return stage(id=ibis.ifelse(false_if_null(c == c.floor()), c.cast("int64").cast("string"),
                                    c.cast("string")))["id"]
    return stage(id=text(col, dtype).nullif(""))["id"]


def _days_in_month(y, m):
    leap = ((y % 4) == 0) & (((y % 100) != 0) | ((y % 400) == 0))
    return ibis.cases((m == 2, ibis.ifelse(leap, 29, 28)), (m.isin([4, 6, 9, 11]), 30), else_=31)


def _iso(t, con, stage):
    """ISO date or date-time text -> timestamp (NULL when not one)."""
    repl = "$1" if con is not None and con.name == "pyspark" else r"\1"
    s = stage(s=t.re_replace(TZ_SUFFIX.replace(r"\d", "[0-9]"), repl))["s"]
    ok = false_if_null(s.re_search(_ISO))

    def part(a, n, when=True):
        return ibis.ifelse(ok & when, s.substr(a, n), "0").cast("int64")

    p = stage(ok=ok, y=part(0, 4), m=part(5, 2), d=part(8, 2), hh=part(11, 2, s.length() > 10),
              mi=part(14, 2, s.length() > 10), ss=part(17, 2, s.length() > 16))
    y, m, d = p["y"], p["m"], p["d"]
    valid = p["ok"] & (m >= 1) & (m <= 12) & (d >= 1) & (d <= _days_in_month(y, m)) & (p["hh"] < 24) & \
        (p["mi"] < 60) & (p["ss"] < 60) & (y >= 1677) & (y <= 2262)
    return ibis.ifelse(valid, s.replace("T", " ").cast("timestamp"), _NULL_TS)


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(text: str, fmt: str) -> dt.timestamp:   # DuckDB
    ...


@ibis.udf.scalar.builtin(name="try_to_timestamp")
def _try_to_timestamp(text: str, fmt: str) -> dt.timestamp:   # Spark
    ...


def _strptime(t, fmt: str, con):
    """Text in ``fmt`` (a time of day after it allowed) -> timestamp, NULL when not (DuckDB,
    Spark; None elsewhere: the caller checks the study in pandas)."""
    if con is None or con.name not in ("duckdb", "pyspark"):
        return None
    if con.name == "duckdb":
        f = _try_strptime
        return ibis.coalesce(*[f(t, fmt + suffix) for suffix in TIME_SUFFIXES])
    from sqlglot.dialects.spark import Spark
    from sqlglot.time import format_time

    f = _try_to_timestamp
    java = lambda x: format_time(x, Spark.INVERSE_TIME_MAPPING, Spark.INVERSE_TIME_TRIE)  # noqa: E731
    return ibis.coalesce(*[f(t, java(fmt + suffix)) for suffix in TIME_SUFFIXES])


def in_range(v):
    return (v >= ibis.literal(NS_MIN.astype("datetime64[us]").item(), "timestamp")) & \
        (v <= ibis.literal(NS_MAX.astype("datetime64[us]").item(), "timestamp"))


def dates(col: str, dtype, dialect: Dialect, stage, con=None) -> Parsed | None:
    """Dates as timestamps (NULL: empty, or not parseable with ``empty`` False); None when the
    engine cannot parse ``date_format`` (see the module docstring)."""
    if dtype.is_timestamp() or dtype.is_date():
        v = stage(v=_[col].cast("timestamp"))["v"]
        got = stage(empty=v.isnull(), coded=ibis.literal(False))
        got.update(stage(value=ibis.ifelse(false_if_null(in_range(v)), v, _NULL_TS)))
        return Parsed(got["value"], got["empty"], got["coded"])
    t, _num, coded, empty = _text_stage(col, dtype, dialect, stage, dialect.decimal)
    if dialect.date_format:
        v = _strptime(t, dialect.date_format, con)
        if v is None:
            return None
    else:
        v = _iso(t, con, stage)
    got = stage(v=v, empty=empty)
    v, empty = got["v"], got["empty"]
    value = stage(value=ibis.ifelse(empty | ~false_if_null(in_range(v)), _NULL_TS, v))["value"]
    return Parsed(value, empty, coded)
