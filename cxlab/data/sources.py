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

* ``url_param`` (optional): the name of a secret run parameter that supplies the URL under
  ``cxlab run`` (``parameters: {warehouse_url: ...}`` and ``secret: [warehouse_url]`` in the run
  config, or ``--set warehouse_url=...``). The runner takes it out of the notebooks' parameters
  and hands it to the notebooks' kernels in the environment variable ``url_env`` (default
  ``CXLAB_SOURCE_URL``): :func:`cxlab.report.params.take_url_parameter`. It is scrubbed from every output like any
  secret.
* ``backend: pyspark``: catalog tables (``tables``) or Parquet files / folders / URLs
  (``parquet: {role: path}``) on a Spark session from configuration (:func:`spark_session`):
  master ``$CXLAB_SPARK_MASTER``, else ``source.master``, else ``local[*]``; options
  ``source.spark_conf`` with ``$CXLAB_SPARK_CONF`` (a JSON object) on top. Tests use
  ``local[2]``; production a cluster URL (``spark://host:7077``, ``yarn``, ``k8s://...``).

What runs where: the data contract's checks run as queries on the engine
(:func:`cxlab.data.validate.validate_engine`: counts and example row numbers come back), and
the validated tables stay there as :class:`cxlab.data.tables.EngineData` for the panel;
:func:`read_table` still collects a role's table into pandas for callers who want it. The
panel's ibis expressions are backend independent (:func:`cxlab.data.panel.build_panel` takes ``con=``: tested on DuckDB, PostgreSQL and PySpark
``local[2]``). :func:`describe` gives the run manifest's ``data`` section for a source: backend,
table names, row and column counts and a fingerprint of the columns and their types (never the
URL).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pandas as pd

from cxlab.errors import StudyError

__all__ = ["connect", "describe", "read_table", "secret_values", "source_url", "spark_session",
           "DEFAULT_URL_ENV"]

#: the variable a URL given as a run parameter travels in when the spec names no ``url_env``
DEFAULT_URL_ENV = "CXLAB_SOURCE_URL"
#: Spark options cxlab sets unless the configuration says otherwise (UTC: dates are calendar days)
SPARK_DEFAULTS = {"spark.sql.session.timeZone": "UTC", "spark.ui.enabled": "false",
                  "spark.ui.showConsoleProgress": "false",
                  "spark.sql.execution.arrow.pyspark.enabled": "true"}


def url_variable(src) -> str | None:
    """The environment variable the source's URL is read from (None: the source needs no URL)."""
    if src is None or not (src.url_env or src.url_param):
        return None
    return src.url_env or DEFAULT_URL_ENV


def source_url(study) -> str | None:
    """The connection URL of the study's source (from ``url_env``), or None for files / a path.

    Raises StudyError (exit 2) when the variable is not set."""
    src = study.source
    var = url_variable(src)
    if var is None:
        return None
    url = os.environ.get(var, "")
    if not url.strip():
        if src.url_param and not src.url_env:
            raise StudyError(f"{study.spec_path or 'study spec'}: source.url_param names the run parameter "
                             f"{src.url_param}, which this run does not give (nor is {var} set). Give it in "
                             f"the run config (parameters: {{{src.url_param}: ...}}, secret: [{src.url_param}]) "
                             f"or with --set {src.url_param}=..., or export {var}.")
        via = f" or give it as the run parameter {src.url_param}" if src.url_param else ""
        raise StudyError(f"{study.spec_path or 'study spec'}: source.url_env names the environment variable "
                         f"{var}, which is not set (or empty). Export the connection URL in it "
                         f"(e.g. {var}=postgresql://user:password@host:5432/database){via} before "
                         f"running cxlab.")
    return url


def secret_values(study) -> list[str]:
    """Values no output may show: the source's connection URL and its password (never raises)."""
    try:
        url = source_url(study)
    except StudyError:
        return []
    if not url:
        return []
    out = [url]
    try:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(url).password
        if password:
            out += [password, unquote(password)]
    except ValueError:
        pass
    return list(dict.fromkeys(out))


def spark_master(study) -> str:
    """``$CXLAB_SPARK_MASTER``, else the spec's ``source.master``, else ``local[*]``."""
    return os.environ.get("CXLAB_SPARK_MASTER", "").strip() or (study.source.master or "local[*]")


def spark_conf(study) -> dict[str, str]:
    """Spark options: cxlab's defaults, then ``source.spark_conf``, then ``$CXLAB_SPARK_CONF``."""
    import json

    conf = dict(SPARK_DEFAULTS)
    conf.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in study.source.spark_conf.items()})
    extra = os.environ.get("CXLAB_SPARK_CONF", "").strip()
    if extra:
        try:
            got = json.loads(extra)
            if not isinstance(got, dict):
                raise ValueError
        except ValueError:
            raise StudyError("CXLAB_SPARK_CONF must be a JSON object of Spark options, e.g. "
                             '{"spark.executor.memory": "8g"}.') from None
        conf.update({str(k): str(v) for k, v in got.items()})
    return conf


def spark_session(study):
    """The Spark session of a ``pyspark`` source (created, or the running one reused)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(spark_master(study)).appName(f"cxlab-{study.name}"[:60])
    for key, value in spark_conf(study).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key, value in spark_conf(study).items():     # a reused session: runtime options still apply
        with contextlib.suppress(Exception):
            session.conf.set(key, value)
    return session


def connect(study):
    """Connect to the study's source and return the ibis backend (StudyError if it fails)."""
    import ibis

    src = study.source
    if src is None:
        raise StudyError("the study reads files; it has no source: section to connect to.")
    url = source_url(study)
    try:
        if src.backend == "pyspark":
            return ibis.pyspark.connect(spark_session(study))
        if src.backend == "duckdb":
            if url is not None:
                return _bounded(ibis.connect(url, read_only=True))
            path = study.resolve(src.path)
            if not Path(path).is_file():
                raise StudyError(f"{study.spec_path or 'study spec'}: source.path names {src.path!r}, which "
                                 f"does not exist (looked for {str(path)!r}; relative paths start from the "
                                 f"spec's folder). Correct source.path.")
            return _bounded(ibis.duckdb.connect(str(path), read_only=True))
        if not url.startswith(("postgres://", "postgresql://")):
            raise StudyError(f"the URL in {url_variable(src)} does not start with postgresql://; give "
                             f"postgresql://user:password@host:port/database.")
        return ibis.connect(url)
    except StudyError:
        raise
    except Exception as exc:  # noqa: BLE001 - its text may quote the URL: give its type only
        where = url_variable(src) or ("the Spark master" if src.backend == "pyspark" else "source.path")
        raise StudyError(f"could not connect to the {src.backend} source named by "
                         f"{where} ({type(exc).__name__}); check that the server "
                         f"is up and the URL (user, password, host, port, database) is right.") from None


#: DuckDB's memory for a source (what it holds beyond this goes to disk: its operators spill, and
#: the intermediate tables are in the scratch database, below). ``$CXLAB_DUCKDB_MEMORY_LIMIT``
#: sets another (``512MB``, ``6GB``; ``none``: DuckDB's own default, 80 % of the machine).
#: Measured (benchmarks/bench_scale.py, 2 cores): open_study at 3 M customers peaks at 1.9 GiB
#: with 1GB, 10 M customers complete with it (the rest of the peak is the respondent tables).
DUCKDB_MEMORY_LIMIT = "1GB"

#: A DuckDB source's scratch database: an on-disk file of the connection's own, attached as
#: ``cxlab_scratch_<tag>`` (DuckDB shares one database instance, and its attachments, between
#: connections to the same file), where validation and the panel keep their intermediate tables.
#: DuckDB can evict a table kept there from memory (its blocks are on disk); with temporary tables
#: 10 M customers ran out of memory at 1GB. So the engine's memory is bounded by the operators at
#: work, not by the base.
SCRATCH = "cxlab_scratch"
_SPILL_PREFIX = "cxlab-duckdb-spill-"


def scratch(con) -> str | None:
    """``catalog.schema`` where intermediate tables go on ``con`` (None: temporary tables)."""
    return getattr(con, "_cxlab_scratch", None)


def keep_table(con, name: str, expr):
    """``expr`` run now as table ``name`` on ``con`` (not Spark): in the scratch database when the
    connection has one, else a temporary table. :func:`drop_kept` removes it."""
    where = scratch(con)
    return con.create_table(name, expr, database=where) if where else con.create_table(name, expr, temp=True)


def drop_kept(con, name: str) -> None:
    """Drop a table made by :func:`keep_table` (gone already: nothing happens)."""
    where = scratch(con)
    ref = ".".join(f'"{part}"' for part in [*(where.split(".") if where else []), name])
    cur = con.raw_sql(f"DROP TABLE IF EXISTS {ref}")
    if con.name != "duckdb":     # (DuckDB's raw_sql gives the connection itself, which stays open)
        getattr(cur, "close", lambda: None)()


def _sweep_orphans(root: str) -> None:
    """Remove spill folders whose process is gone (a run killed with ``kill -9`` leaves one)."""
    import shutil

    try:
        entries = os.listdir(root)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(_SPILL_PREFIX):
            continue
        pid = entry[len(_SPILL_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue                       # its process is alive: not ours to touch
        except ProcessLookupError:
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
        except OSError:                    # (alive, another user's)
            continue


def _bounded(con):
    """A DuckDB source connection with a folder of its own for spilled data and the scratch
    database, and a memory limit (:data:`DUCKDB_MEMORY_LIMIT`).

    The folder is removed when the connection is closed or collected, or at the latest when the
    process exits; one left by a killed process is removed by the next connection."""
    import shutil
    import tempfile
    import uuid
    import weakref

    limit = os.environ.get("CXLAB_DUCKDB_MEMORY_LIMIT", "").strip() or DUCKDB_MEMORY_LIMIT
    if limit.lower() != "none":
        con.raw_sql(f"SET memory_limit = '{limit}'")
    root = tempfile.gettempdir()
    _sweep_orphans(root)
    tag = uuid.uuid4().hex[:8]
    spill = os.path.join(root, f"{_SPILL_PREFIX}{os.getpid()}-{tag}")
    os.mkdir(spill, 0o700)
    con._cxlab_spill = weakref.finalize(con, shutil.rmtree, spill, True)
    con.raw_sql(f"SET temp_directory = '{os.path.join(spill, 'tmp')}'")
    # (READ_WRITE: a read-only source would attach it read-only)
    con.raw_sql(f"ATTACH '{os.path.join(spill, 'scratch.duckdb')}' AS {SCRATCH}_{tag} (READ_WRITE)")
    con._cxlab_scratch = f"{SCRATCH}_{tag}.main"
    return con


def disconnect(con) -> None:
    """Close a connection made by :func:`connect` (a Spark session is kept for the process: its
    JVM is slow to start, and the panel and the next table use it again)."""
    if con.name != "pyspark":
        con.disconnect()
        spill = getattr(con, "_cxlab_spill", None)
        if spill is not None:
            spill()      # the spill folder and the scratch database go with the connection


def _parquet_location(study, path: str) -> str:
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):     # s3a://, hdfs://, file://, ...
        return path
    return str(study.resolve(path))


def table(con, study, role: str):
    """The ibis table of ``role`` on ``con`` (StudyError naming the table if it is missing)."""
    src = study.source
    name = src.name_of(role)
    if role in src.parquet:
        try:
            return con.read_parquet(_parquet_location(study, name), table_name=f"cxlab_{role}_{os.getpid()}")
        except Exception as exc:  # noqa: BLE001
            raise StudyError(f"source.parquet.{role} names {name!r}, which Spark cannot read as Parquet "
                             f"({type(exc).__name__}); relative paths start from the spec's folder.") from None
    schema, _, tab = name.rpartition(".")
    try:
        return con.table(tab, database=schema) if schema else con.table(tab)
    except Exception as exc:  # noqa: BLE001
        raise StudyError(f"source.tables.{role} names {name!r}, which the {src.backend} source does "
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
            disconnect(con)
    # database decimals arrive as Python Decimal objects: numbers for the checks
    for col in df.columns:
        if df[col].dtype == object:
            first = df[col].dropna().head(1)
            if len(first) and type(first.iloc[0]).__name__ == "Decimal":
                df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def describe(study) -> dict:
    """The run manifest's ``data`` section for a source: per role the backend, the table (or
    Parquet path as written in the spec), its rows and columns, and ``schema_sha256``, a hash of
    the column names and types (the same columns and types, not the same content). Never the
    URL. {} for a study of files."""
    import hashlib

    if study.source is None:
        return {}
    con = connect(study)
    out = {}
    try:
        for role in study.source.roles:
            t = table(con, study, role)
            sch = t.schema()
            text = "\n".join(f"{n}\t{dtype}" for n, dtype in sch.items())
            out[role] = {"backend": study.source.backend, "table": study.source.name_of(role),
                         "rows": int(t.count().execute()), "columns": len(sch),
                         "schema_sha256": hashlib.sha256(text.encode()).hexdigest()}
    finally:
        disconnect(con)
    return out
