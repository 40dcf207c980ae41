"""Tables that live in a database: the study spec's ``source:`` section.

A study reads its tables from files (``customers.path`` ...: the default) or from one ibis
backend named under ``source:``::

    source: {backend: postgres, url_env: CXLAB_WAREHOUSE_URL,
             tables: {customers: crm.customers, surveys: crm.barometer, complaints: crm.complaints}}

* ``backend``: ``duckdb`` (a ``.duckdb`` file: ``path:``, relative to the spec's folder, or a
  ``duckdb://`` URL in ``url_env``) or ``postgres``.
* ``url_env``: the *name* of the environment variable holding the connection URL
  (``postgresql://user:password@host:port/database``). The URL itself is never written in the
  spec, never put in an error message (a failed connection names the variable and the error's
  type only), and :func:`secret_values` gives it to ``cxlab run``'s scrubber so that no output
  can show it.
* ``tables``: one table per role (``schema.table`` allowed); its columns are named in the role's
  section as for a file (``customers: {id: cust, start: opened, ...}``, without ``path``).

What runs where (first step of issue 11): :func:`read_table` collects a role's table into
pandas for validation (the data contract's checks are not yet queries on the engine), then the
panel is built from the validated tables as for files. The panel's ibis expressions are backend
independent (:func:`cxlab.panel.build_panel` takes ``con=`` and builds on that backend: they are
tested on DuckDB, PostgreSQL and PySpark ``local[2]``). Not done yet: ``backend: pyspark`` in the
spec (a Spark session's master and options from configuration), validation as queries on the
engine, and reading the raw tables in the engine without collecting them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cxlab.errors import StudyError

__all__ = ["connect", "read_table", "secret_values", "source_url"]


def source_url(study) -> str | None:
    """The connection URL of the study's source (from ``url_env``), or None for files / a path.

    Raises StudyError (exit 2) when the variable is not set."""
    src = study.source
    if src is None or not src.url_env:
        return None
    url = os.environ.get(src.url_env, "")
    if not url.strip():
        raise StudyError(f"{study.spec_path or 'study spec'}: source.url_env names the environment variable "
                         f"{src.url_env}, which is not set (or empty). Export the connection URL in it "
                         f"(e.g. {src.url_env}=postgresql://user:password@host:5432/database) before "
                         f"running cxlab.")
    return url


def secret_values(study) -> list[str]:
    """Values no output may show: the source's connection URL (if any; never raises)."""
    try:
        url = source_url(study)
    except StudyError:
        return []
    return [url] if url else []


def connect(study):
    """Connect to the study's source and return the ibis backend (StudyError if it fails)."""
    import ibis

    src = study.source
    if src is None:
        raise StudyError("the study reads files; it has no source: section to connect to.")
    url = source_url(study)
    try:
        if src.backend == "duckdb":
            if url is not None:
                return ibis.connect(url, read_only=True)
            path = study.resolve(src.path)
            if not Path(path).is_file():
                raise StudyError(f"{study.spec_path or 'study spec'}: source.path names {src.path!r}, which "
                                 f"does not exist (looked for {str(path)!r}; relative paths start from the "
                                 f"spec's folder). Correct source.path.")
            return ibis.duckdb.connect(str(path), read_only=True)
        if not url.startswith(("postgres://", "postgresql://")):
            raise StudyError(f"the URL in {src.url_env} does not start with postgresql://; give "
                             f"postgresql://user:password@host:port/database.")
        return ibis.connect(url)
    except StudyError:
        raise
    except Exception as exc:  # noqa: BLE001 - its text may quote the URL: give its type only
        raise StudyError(f"could not connect to the {src.backend} source named by "
                         f"{src.url_env or 'source.path'} ({type(exc).__name__}); check that the server "
                         f"is up and the URL (user, password, host, port, database) is right.") from None


def table(con, study, role: str):
    """The ibis table of ``role`` on ``con`` (StudyError naming the table if it is missing)."""
    name = study.source.tables[role]
    schema, _, tab = name.rpartition(".")
    try:
        return con.table(tab, database=schema) if schema else con.table(tab)
    except Exception as exc:  # noqa: BLE001
        raise StudyError(f"source.tables.{role} names {name!r}, which the {study.source.backend} source does "
                         f"not hold or cxlab may not read ({type(exc).__name__}); correct the table name "
                         f"or grant SELECT on it.") from None


def read_table(study, role: str, con=None) -> pd.DataFrame:
    """The table of ``role`` collected into pandas (as typed by the database), for validation."""
    own = con is None
    con = connect(study) if own else con
    try:
        df = table(con, study, role).to_pandas()
    finally:
        if own:
            con.disconnect()
    # database decimals arrive as Python Decimal objects: numbers for the checks
    for col in df.columns:
        if df[col].dtype == object:
            first = df[col].dropna().head(1)
            if len(first) and type(first.iloc[0]).__name__ == "Decimal":
                df[col] = pd.to_numeric(df[col], errors="coerce")
    return df
