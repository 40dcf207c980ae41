"""The study's typed tables as ibis expressions on one backend (:class:`EngineData`).

:class:`cxlab.data.validate.StudyData` holds the validated tables as pandas frames in memory;
:class:`EngineData` holds the *same* tables — the same columns under the same names, with the
matching engine types — as ibis table expressions on one backend (an embedded DuckDB, a
PostgreSQL database, a Spark session), so that the panel runs where the data live and only
respondent-level tables come back (:func:`cxlab.data.panel.build_panel` takes either).

Columns and types (``StudyData``'s, see its docstring):

* customers: ``customer_id`` (string), ``start``, ``end`` (timestamp; NULL = active), ``value``
  (float64; NULL when the spec has no value), each covariate (string), ``source_row`` (int64,
  1-based data row in the file).
* surveys: ``customer_id``, ``date`` (timestamp), every item / self-status / outcome column
  (float64; declared missing codes are NULL), ``source_row``.
* complaints (optional): ``customer_id``, ``opened``, ``closed`` (timestamp; NULL = open),
  ``compensated`` (float64 0/1 or NULL), ``source_row``.

:meth:`EngineData.upload` puts a ``StudyData`` on a backend as temporary tables (DuckDB: views
that scan the frames in place; Spark: cached temporary views); :meth:`EngineData.close` drops
what ``upload`` made.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pandas as pd

from cxlab.errors import CxlabError

__all__ = ["EngineData", "ROLE_TYPES", "collect", "typed"]

#: the engine type of every fixed column, per role (covariates: string; survey columns: float64)
ROLE_TYPES = {
    "customers": {"customer_id": "string", "start": "timestamp", "end": "timestamp",
                  "value": "float64", "source_row": "int64"},
    "surveys": {"customer_id": "string", "date": "timestamp", "source_row": "int64"},
    "complaints": {"customer_id": "string", "opened": "timestamp", "closed": "timestamp",
                   "compensated": "float64", "source_row": "int64"},
}
_EXTRA_TYPE = {"customers": "string", "surveys": "float64", "complaints": None}


def _kind(dtype) -> str:
    """A coarse name for an ibis type: timestamps of any precision / zone, integers of any
    width and floats of any width compare equal."""
    if dtype.is_timestamp():
        return "timestamp"
    if dtype.is_date():
        return "date"
    if dtype.is_string():
        return "string"
    if dtype.is_integer():
        return "int64"
    if dtype.is_floating() or dtype.is_decimal():
        return "float64"
    return str(dtype)


@dataclass
class EngineData:
    """The study's tables on one ibis backend (see the module docstring)."""

    con: object
    customers: object
    surveys: object
    complaints: object | None = None
    made: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self):
        for role in ("customers", "surveys", "complaints"):
            t = getattr(self, role)
            if t is None:
                if role != "complaints":
                    raise CxlabError(f"EngineData: the {role} table is required.")
                continue
            schema = t.schema()
            for col, kind in ROLE_TYPES[role].items():
                if col not in schema:
                    raise CxlabError(f"EngineData: the {role} table has no column {col!r} "
                                     f"(columns: {list(schema.names)}).")
                if _kind(schema[col]) != kind and not (kind == "timestamp" and _kind(schema[col]) == "date"):
                    raise CxlabError(f"EngineData: {role}.{col} is {schema[col]}, expected {kind}.")
            extra = _EXTRA_TYPE[role]
            for col in schema.names:
                if col in ROLE_TYPES[role]:
                    continue
                if extra is None or _kind(schema[col]) != extra:
                    raise CxlabError(f"EngineData: {role}.{col} is {schema[col]}; the {role} table holds "
                                     f"only {list(ROLE_TYPES[role])}"
                                     + (f" and {extra} columns." if extra else "."))

    @property
    def backend(self) -> str:
        return self.con.name

    def columns(self, role: str) -> list[str]:
        t = getattr(self, role)
        return [] if t is None else list(t.schema().names)

    def count(self, role: str) -> int:
        t = getattr(self, role)
        return 0 if t is None else int(t.count().execute())

    @classmethod
    def upload(cls, con, data) -> "EngineData":
        """Put a :class:`~cxlab.data.validate.StudyData` on ``con`` as temporary tables."""
        made: list[str] = []
        prefix = f"cxlab_{uuid.uuid4().hex[:12]}_"
        tables = {}
        for role in ("customers", "surveys", "complaints"):
            df = getattr(data, role)
            if df is None:
                tables[role] = None
                continue
            df = _with_source_row(df)
            tables[role] = _create(con, prefix + role, df, made)
        return cls(con, tables["customers"], tables["surveys"], tables["complaints"], made=made)

    def to_study_data(self):
        """Collect the tables into pandas (small studies and tests only: the panel does not)."""
        from cxlab.data.validate import StudyData

        return StudyData(**{role: None if getattr(self, role) is None else collect(role, getattr(self, role))
                            for role in ("customers", "surveys", "complaints")})

    def close(self) -> None:
        """Drop the temporary tables :meth:`upload` made (tables handed in are left alone)."""
        _drop(self.con, self.made)
        self.made = []


def collect(role: str, table) -> pd.DataFrame:
    """Rows of one role's table (or of a selection of its rows) as pandas in ``StudyData``'s
    types, in file order, through Arrow."""
    return typed(role, table.order_by("source_row").to_pyarrow().to_pandas())


def typed(role: str, df: pd.DataFrame) -> pd.DataFrame:
    """A role's frame (from Arrow or Parquet) in ``StudyData``'s pandas types."""
    for col, kind in ROLE_TYPES[role].items():
        if kind == "timestamp":
            ts = pd.to_datetime(df[col])
            df[col] = (ts.dt.tz_localize(None) if ts.dt.tz is not None else ts).astype("datetime64[ns]")
        elif kind == "float64":
            df[col] = df[col].astype("float64")
        elif kind == "int64":
            df[col] = df[col].astype("int64")
    extra = _EXTRA_TYPE[role]
    for col in df.columns:
        if col not in ROLE_TYPES[role] and extra is not None:
            df[col] = df[col].astype(extra)
    return df


def _with_source_row(df: pd.DataFrame) -> pd.DataFrame:
    if "source_row" in df.columns:
        return df
    return df.assign(source_row=range(1, len(df) + 1))


def _spark(con) -> bool:
    return con.name == "pyspark"


def _create(con, name: str, df: pd.DataFrame, made: list[str]):
    """A temporary table (Spark: a cached temporary view through Arrow) holding ``df``."""
    made.append(name)
    if _spark(con):
        session = con._session
        # through Arrow, so that a missing number is NULL (a pandas NaN would stay NaN in Spark)
        session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        session.createDataFrame(df).createOrReplaceTempView(name)
        con.raw_sql(f"CACHE TABLE `{name}`")
        return con.table(name)
    if con.name == "duckdb":     # DuckDB scans the frame in place (no second copy)
        con.con.register(name, df)
        return con.table(name)
    return con.create_table(name, df, temp=True)


def _drop(con, names: list[str]) -> None:
    for name in names:     # (ibis 12's drop_table emits no name with this sqlglot)
        try:
            if _spark(con):     # (dropping a cached view uncaches it)
                con._session.catalog.dropTempView(name)
                continue
            if con.name == "duckdb":
                con.con.unregister(name)
                continue
            cur = con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
            getattr(cur, "close", lambda: None)()
        except Exception:  # noqa: BLE001 - temporary tables go with the session anyway
            pass
