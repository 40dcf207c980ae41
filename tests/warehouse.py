"""A throw-away PostgreSQL server and loaders that copy a file study into a database (tests only).

:func:`postgres_server` runs Debian's PostgreSQL (``/usr/lib/postgresql/<v>/bin``): ``initdb`` into
a temporary folder owned by the ``postgres`` user (``runuser -u postgres`` when we are root),
listening on 127.0.0.1 on a free port with password authentication, stopped and removed on exit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import duckdb
import yaml

PASSWORD = "s3cr3t-warehouse-pw"


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server():
    """Yield the URL of a fresh PostgreSQL database ``cxlab`` (user ``cxlab``, password PASSWORD)."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="cxlab-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_pg:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_pg, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "cxlab", "--pwfile", str(pwfile),
            "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off", "start")
        started = True
        url = f"postgresql://cxlab:{PASSWORD}@127.0.0.1:{port}/postgres"
        import psycopg

        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE DATABASE cxlab")
        yield url.rsplit("/", 1)[0] + "/cxlab"
    finally:
        if started:
            subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


TABLES = {"customers": "crm.customers", "surveys": "crm.barometer", "complaints": "crm.complaints"}


def typed_tables(spec_path: Path) -> dict:
    """The study's CSV files as a warehouse would type them (DuckDB's CSV sniffer: dates as dates,
    numbers as numbers, empty cells as NULL), as pandas frames by role."""
    raw = yaml.safe_load(Path(spec_path).read_text())
    out = {}
    for role in TABLES:
        if raw.get(role):
            path = Path(spec_path).parent / raw[role]["path"]
            out[role] = duckdb.read_csv(str(path)).df()
    return out


def source_spec(spec_path: Path, out_path: Path, source: dict) -> Path:
    """Write a copy of the spec reading its tables from ``source`` instead of files."""
    raw = yaml.safe_load(Path(spec_path).read_text())
    for role in TABLES:
        if raw.get(role):
            raw[role].pop("path")
    raw["source"] = {**source, "tables": {r: t for r, t in TABLES.items() if raw.get(r)}}
    out_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out_path


def load_into(con, tables: dict, schema: str = "crm") -> None:
    """Create ``schema`` on the ibis backend ``con`` and one table per role."""
    con.raw_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for role, df in tables.items():
        name = TABLES[role].split(".")[1]
        if con.name == "duckdb":       # ibis 12's create_table(database=) fails on DuckDB
            con.con.register("_incoming", df)
            con.raw_sql(f"CREATE TABLE {schema}.{name} AS SELECT * FROM _incoming")
            con.con.unregister("_incoming")
        else:
            con.create_table(name, df, database=schema)


def load_numbered(con, tables: dict, schema: str = "crm_rows") -> None:
    """:func:`load_into` with each table's 1-based file row in a column ``file_row`` (a warehouse
    extract numbered at loading time), into ``schema``."""
    load_into(con, {role: df.assign(file_row=range(1, len(df) + 1)) for role, df in tables.items()}, schema)


def engine_data(con, study, schema: str = "crm_rows"):
    """The warehouse tables of :func:`load_numbered` typed as :class:`cxlab.data.tables.EngineData`
    by ibis expressions alone (renamed, cast, missing codes to NULL), as an engine-side validation
    would hand them over; nothing is collected."""
    import ibis

    from cxlab.data.tables import EngineData

    def table(role):
        return con.table(TABLES[role].split(".")[1], database=schema)

    cs, ss, ks = study.customers, study.surveys, study.complaints
    c = table("customers")
    customers = c.select(customer_id=c[cs.id].cast("string"), start=c[cs.start].cast("timestamp"),
                         end=c[cs.end].cast("timestamp"),
                         value=c[cs.value].cast("float64") if cs.value else ibis.null("float64"),
                         **{cov: c[cov].cast("string") for cov in cs.covariates},
                         source_row=c.file_row.cast("int64"))
    s = table("surveys")
    codes = [float(x) for x in ss.numeric_codes]
    cols = list(dict.fromkeys([*ss.items, *([ss.self_status] if ss.self_status else []),
                               *ss.outcome_columns.values()]))
    surveys = s.select(customer_id=s[ss.id].cast("string"), date=s[ss.date].cast("timestamp"),
                       **{col: ibis.ifelse(s[col].cast("float64").isin(codes), ibis.null("float64"),
                                           s[col].cast("float64")) for col in cols},
                       source_row=s.file_row.cast("int64"))
    complaints = None
    if ks is not None:
        k = table("complaints")
        complaints = k.select(customer_id=k[ks.id].cast("string"), opened=k[ks.opened].cast("timestamp"),
                              closed=k[ks.closed].cast("timestamp"),
                              compensated=k[ks.compensated].cast("float64"), source_row=k.file_row.cast("int64"))
    return EngineData(con, customers, surveys, complaints)
