"""The data contract pushed down (issue 11 part 3): every rule run as queries on the engine gives
the problems table the pandas path gives for the same extract.

A matrix of small studies (tests/test_validate.py's hand-made tables, one rule broken in each,
plus the clean one) is written as CSV files (checked in pandas) and loaded into a DuckDB file by
DuckDB's ``read_csv`` (checked by queries on the engine), once with every column as text (the
engine parses in the spec's dialect) and once typed by DuckDB's sniffer (DATE, TIMESTAMP,
DOUBLE, BIGINT columns). The problems must be identical: the same rows, columns, rules, counts,
example row numbers (a DuckDB table loaded from a file numbers its rows as the file does) and
fix texts, the file label aside (``clients.csv`` is ``duckdb:crm.customers``). A few cases run on
a real PostgreSQL server too.

Reference: the pandas path (tests/test_validate.py checks it against hand counts).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import test_validate as tv  # noqa: E402
import warehouse as wh  # noqa: E402

from cxlab.data.validate import load_engine_data, validate_engine, validate_study  # noqa: E402
from cxlab.data.sources import connect, disconnect  # noqa: E402
from cxlab.study import load_study  # noqa: E402

ID, START, END, VALUE, REGION = tv.ID, tv.START, tv.END, tv.VALUE, tv.REGION
ANSWERED, REC1, REC2, EMP1, EMP2, SELF, NPS = tv.ANSWERED, tv.REC1, tv.REC2, tv.EMP1, tv.EMP2, tv.SELF, tv.NPS
OPENED, CLOSED, GESTURE = tv.OPENED, tv.CLOSED, tv.GESTURE
FILES = {"customers": "clients.csv", "surveys": "barometre.csv", "complaints": "reclamations.csv"}


# ---- the matrix: (name, change the clean tables, spec keys) -----------------------------------

def _set(role, rows, col, values):
    def change(t):
        t[role].loc[rows, col] = values
    return change


def _append_customers(rows):
    def change(t):
        extra = pd.DataFrame(rows, columns=t["customers"].columns)
        t["customers"] = pd.concat([t["customers"], extra], ignore_index=True)
    return change


def _dup_ids(t):
    extra = t["customers"].iloc[[2, 0, 0]].assign(**{ID: [tv.CANARY, "C77", "C77"]})
    t["customers"] = pd.concat([t["customers"], extra], ignore_index=True)


def _many(*changes):
    def change(t):
        for c in changes:
            c(t)
    return change


def _column(role, col, values):
    def change(t):
        t[role][col] = values
    return change


def _identifier_like(t):
    n = 38
    ids = [f"K{i:03d}" for i in range(n)]
    t["customers"] = pd.DataFrame({ID: ids, START: "2019-01-01", END: "", VALUE: "1",
                                   REGION: [f"L{i % 20}" for i in range(n)]})
    t["surveys"] = t["surveys"].iloc[:3].assign(**{ID: ids[:3], ANSWERED: "2024-01-01"})
    t["complaints"] = t["complaints"].iloc[:1].assign(**{ID: ids[:1], OPENED: "2024-01-01", CLOSED: ""})


def _rename(role, old, new):
    def change(t):
        t[role] = t[role].rename(columns={old: new})
    return change


CASES = [
    ("clean", None, {}),
    ("not_empty", _many(_set("surveys", [4, 10], ID, ""), _set("surveys", 6, ID, "   "),
                        _set("customers", 2, START, "")), {}),
    ("unique", _dup_ids, {}),
    ("date_parseable", _many(_set("customers", 1, START, "01/03/2020"), _set("customers", 3, END, "9999-12-31"),
                             _set("customers", [6, 7], END, ["2020-02-30", "soon"]),
                             _set("surveys", 0, ANSWERED, "hier"), _set("complaints", 2, CLOSED, "31.12.2023")), {}),
    ("date_format_hint", _column("customers", START, [pd.Timestamp(v).strftime("%d.%m.%Y") for v in
                                                      tv.clean_tables()["customers"][START]]), {}),
    ("ambiguous_day_month", _many(_column("complaints", OPENED, ["01/02/2024", "02/02/2022", "03/12/2023",
                                                                  "05/05/2025"]),
                                  _column("complaints", CLOSED, ["", "", "", ""])), {}),
    ("date_format_given", _many(
        _column("customers", START, [pd.Timestamp(v).strftime("%d/%m/%Y") for v in tv.clean_tables()["customers"][START]]),
        _set("customers", 3, START, "2021-01-01"),
        _column("customers", END, [pd.Timestamp(v).strftime("%d/%m/%Y %H:%M") if v else ""
                                   for v in tv.clean_tables()["customers"][END]])),
     {"customers": {"date_format": "%d/%m/%Y"}}),
    ("start_before_end", _many(_append_customers([["C13", "2022-01-01", "2021-12-31", "1", "nord"]]),
                               _set("complaints", 3, CLOSED, "2025-05-04")), {}),
    ("numeric", _many(_set("customers", [0, 3], VALUE, ["12,5", "€40"]), _set("surveys", 2, REC2, "beaucoup"),
                      _set("surveys", 5, NPS, "NaN")), {}),
    ("decimal_comma", _column("customers", VALUE, ["120,5", "1.234", "80", "0", "", "45", "310", "12", "77,7",
                                                    "5", "66", "1e2"]), {"customers": {"decimal": ","}}),
    ("in_scale", _many(_set("surveys", [1, 12], EMP2, ["6", "0"]), _set("surveys", 4, SELF, "98"),
                       _set("surveys", [0, 3], NPS, ["11", "-1"])), {}),
    ("in_scale_many", _set("surveys", [1, 2, 4, 6, 8, 9, 11], EMP1, "7"), {}),
    ("boolean", _set("complaints", [0, 2], GESTURE, ["oui", "2"]), {}),
    ("id_in_customers", _many(_set("surveys", [3, 7], ID, ["X404", "c01"]), _set("complaints", 0, ID, "Z9")), {}),
    ("inside_relationship", _many(_set("surveys", 0, ANSWERED, "2019-01-14"), _set("surveys", 1, ANSWERED, "2025-06-02"),
                                  _set("surveys", 5, ANSWERED, "2023-12-31 23:59:00"),
                                  _set("complaints", 3, OPENED, "2026-07-01"), _set("complaints", 3, CLOSED, "2026-07-02")),
     {}),
    ("not_identifier_ids", _set("customers", [1, 4], REGION, tv.CANARY), {}),
    ("not_identifier_id_column", None, {"customers": {"covariates": [ID]}}),
    ("not_identifier_distinct", _identifier_like, {}),
    ("label_slug_unique", _column("customers", REGION, ["Île", "sud", "Ile", "est", "ouest", "sud", "Île", "",
                                                         "est", "sud", "nord", "ouest"]), {}),
    ("column_present", None, {"customers": {"start": "opened"}}),
    ("column_present_close", _rename("complaints", OPENED, "ouvert le"), {}),
    ("name_clash", _rename("surveys", SELF, "date"), {"surveys": {"self_status": "date"}}),
    ("missing_codes", _many(_column("customers", END, tv.clean_tables()["customers"][END].replace({"": "1900-01-01"})),
                            _column("customers", REGION, tv.clean_tables()["customers"][REGION].replace({"": "inconnu"}))),
     {"customers": {"missing_codes": ["1900-01-01", "inconnu"]}}),
    ("several_files", _many(_set("customers", 4, VALUE, "n/a"), _set("surveys", 13, REC1, "7"),
                            _set("surveys", 2, ANSWERED, "2024-13-01"), _set("complaints", 1, GESTURE, "peut-être")),
     {"customers": {"covariates": ["canal"]}}),
]


def _tables(change):
    t = tv.clean_tables()
    if change is not None:
        change(t)
    return t


def load_csv_into_duckdb(spec_path: Path, db: Path, typed: bool) -> Path:
    """The study's CSV files loaded by DuckDB's read_csv (in file order) into ``db`` (schema crm),
    and a copy of the spec reading them from there."""
    raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    con = ibis.duckdb.connect(str(db))
    con.raw_sql("CREATE SCHEMA IF NOT EXISTS crm")
    for role, table in wh.TABLES.items():
        if not raw.get(role):
            continue
        spec = raw[role]
        path = spec_path.parent / spec["path"]
        opts = [f"delim='{spec.get('delimiter', ',')}'", "header=true"]
        if spec.get("encoding"):
            opts.append(f"encoding='{spec['encoding']}'")
        if not typed:
            opts.append("all_varchar=true")
        con.raw_sql(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', {', '.join(opts)})")
    con.disconnect()
    return wh.source_spec(spec_path, spec_path.parent / "engine.yaml", {"backend": "duckdb", "path": db.name})


def _labels(study) -> dict:
    return {FILES[role]: study.label(role) for role in FILES if getattr(study, role, None) is not None}


def assert_same_problems(files_report, engine_report, labels: dict):
    """Identical problem tables, the file label mapped (in ``file`` and in the fix texts)."""
    expected = files_report.problems.copy()
    for old, new in labels.items():
        expected["file"] = expected["file"].replace(old, new)
        expected["fix"] = expected["fix"].str.replace(old, new, regex=False)
    pd.testing.assert_frame_equal(engine_report.problems.reset_index(drop=True), expected.reset_index(drop=True))


def compare(csv_spec: Path, source_spec: Path, summary: bool = True):
    """Validate the CSV study (pandas) and its source copy (engine); assert the same problems,
    summary and, when clean, the same typed tables. Returns (files report, engine report)."""
    on_files = validate_study(load_study(csv_spec))
    study = load_study(source_spec)
    labels = _labels(study)
    con = connect(study)
    try:
        on_engine = validate_engine(study, con)
        assert_same_problems(on_files, on_engine, labels)
        if summary:
            pd.testing.assert_frame_equal(_summary(on_engine, labels), _summary(on_files, labels))
        if on_files.ok:     # the typed tables on the engine are the pandas ones
            got = on_engine.engine.to_study_data()
            for role in ("customers", "surveys", "complaints"):
                pd.testing.assert_frame_equal(getattr(got, role), getattr(on_files.data, role), obj=role)
        else:
            assert on_engine.engine is None
    finally:
        disconnect(con)
    tv.assert_private(on_engine)
    return on_files, on_engine


def _summary(report, labels):
    s = report.summary.copy()
    for old, new in labels.items():
        s["file"] = s["file"].replace(old, new)
    return s


@pytest.fixture
def write_case(tmp_path):
    def write(name, change, over, typed=False):
        folder = tmp_path / name
        folder.mkdir()
        spec = tv.write_study(folder, _tables(change), **over)
        return spec, load_csv_into_duckdb(spec, folder / "w.duckdb", typed)
    return write


#: cases whose extract DuckDB's sniffer types differently from the text (by design, then, no
#: longer the same extract): day-first dates become DATE columns, the text 'NaN' a missing DOUBLE
TEXT_ONLY = {"date_format_hint": "the sniffer reads %d.%m.%Y dates as DATE",
             "ambiguous_day_month": "the sniffer reads these dates as DATE",
             "numeric": "the sniffer reads the text 'NaN' as a DOUBLE NaN, a missing number"}
#: typed cases in the quick suite (the rest are marked slow)
TYPED_QUICK = {"clean", "unique", "inside_relationship", "date_parseable"}


def _matrix():
    for name, change, over in CASES:
        yield pytest.param(name, change, over, False, id=f"{name}-text")
        marks = [pytest.mark.skip(reason=TEXT_ONLY[name])] if name in TEXT_ONLY else \
            [] if name in TYPED_QUICK else [pytest.mark.slow]
        yield pytest.param(name, change, over, True, id=f"{name}-typed", marks=marks)


@pytest.mark.parametrize("name, change, over, typed", list(_matrix()))
def test_engine_rules_give_the_pandas_problems(write_case, name, change, over, typed):
    csv_spec, db_spec = write_case(name, change, over, typed)
    on_files, _ = compare(csv_spec, db_spec)
    assert (name in ("clean", "missing_codes")) == on_files.ok


def test_the_matrix_breaks_every_rule_of_the_engine_path(tmp_path):
    """Each rule a table can break is broken by some case (so the matrix above compares it)."""
    rules = {"not_empty", "unique", "date_parseable", "start_before_end", "opened_before_closed", "numeric",
             "in_scale", "boolean", "id_in_customers", "inside_relationship", "not_identifier",
             "label_slug_unique", "column_present", "name_clash"}
    seen = set()
    for name, change, over in CASES:
        (tmp_path / name).mkdir()
        seen |= set(validate_study(load_study(tv.write_study(tmp_path / name, _tables(change), **over)))
                    .problems["rule"])
    assert seen == rules


def test_an_empty_table_is_has_rows(tmp_path):
    t = tv.clean_tables()
    t["complaints"] = t["complaints"].iloc[:0]
    spec = tv.write_study(tmp_path, t)
    db_spec = load_csv_into_duckdb(spec, tmp_path / "w.duckdb", typed=False)
    study = load_study(db_spec)
    con = connect(study)
    try:
        p = tv.only_problem(validate_engine(study, con))
    finally:
        disconnect(con)
    assert (p["file"], p["column"], p["rule"], p["rows"]) == ("duckdb:crm.complaints", "", "has_rows", 0)
    assert p["fix"] == "duckdb:crm.complaints has no rows; check source.tables.complaints."


def test_the_french_export_on_the_engine(tmp_path):
    """latin-1, ';', decimal commas, dd/mm/yyyy dates, a string missing code: as text on DuckDB."""
    spec = tv.write_dialect_study(tmp_path / "fr")
    db_spec = load_csv_into_duckdb(spec, tmp_path / "fr" / "w.duckdb", typed=False)
    on_files, on_engine = compare(spec, db_spec)
    assert on_engine.ok, on_engine.to_text()


def test_load_engine_data_keeps_the_tables_on_the_engine(write_case):
    _, db_spec = write_case("clean", None, {})
    study = load_study(db_spec)
    con = connect(study)
    try:
        data = load_engine_data(study, con)
        assert data.con is con and data.backend == "duckdb"
        assert data.count("customers") == 12 and data.count("surveys") == 14 and data.count("complaints") == 4
        assert isinstance(data.customers, ibis.expr.types.Table)
        assert list(np.sort(data.surveys.source_row.to_pandas())) == list(range(1, 15))
    finally:
        disconnect(con)


# ---- PostgreSQL ---------------------------------------------------------------------------

#: date_format_given: PostgreSQL has no non-failing strptime, so that study is checked in pandas
#: (its tables collected) and must still say the same
PG_CASES = ["clean", "unique", "date_parseable", "numeric", "in_scale", "id_in_customers", "inside_relationship",
            "not_identifier_ids", "label_slug_unique", "start_before_end", "date_format_given"]
ENV = "CXLAB_TEST_VALIDATE_PG_URL"


@pytest.fixture(scope="module")
def postgres():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed")
    if wh.postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed")
    with wh.postgres_server() as url:
        yield url


def _load_text_tables(url: str, schema: str, frames: dict) -> None:
    """Text columns, in the frames' row order, by COPY (column names with '%' or '(' included)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        c.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for role, df in frames.items():
            table = sql.Identifier(schema, wh.TABLES[role].split(".")[1])
            cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(col)) for col in df.columns)
            c.execute(sql.SQL("CREATE TABLE {} ({})").format(table, cols))
            with c.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy:
                for row in df.itertuples(index=False):
                    copy.write_row([None if pd.isna(v) else v for v in row])


@pytest.mark.parametrize("name", PG_CASES)
def test_engine_rules_on_postgres_give_the_pandas_problems(postgres, tmp_path, monkeypatch, name):
    change, over = {c[0]: (c[1], c[2]) for c in CASES}[name]
    spec = tv.write_study(tmp_path, _tables(change), **over)
    db_spec = load_csv_into_duckdb(spec, tmp_path / "w.duckdb", typed=False)
    duck = ibis.duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    frames = {role: duck.table(t.split(".")[1], database="crm").to_pandas() for role, t in wh.TABLES.items()}
    duck.disconnect()
    schema = f"crm_{name}"
    _load_text_tables(postgres, schema, frames)
    raw = yaml.safe_load(db_spec.read_text())
    raw["source"] = {"backend": "postgres", "url_env": ENV,
                     "tables": {r: f"{schema}.{t.split('.')[1]}" for r, t in wh.TABLES.items()}}
    pg_spec = tmp_path / "pg.yaml"
    pg_spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv(ENV, postgres)
    _, on_engine = compare(spec, pg_spec, summary=False)
    assert wh.PASSWORD not in on_engine.to_text()


def test_open_study_on_a_duckdb_source_keeps_the_tables_on_the_engine(tmp_path):
    """open_study validates a source on its engine and builds the panel from EngineData; the
    panel and the (lazily collected) typed tables equal those of the CSV files."""
    from cxlab.data.tables import EngineData
    from cxlab.workbook import open_study

    spec = tv.write_study(tmp_path)
    db_spec = load_csv_into_duckdb(spec, tmp_path / "w.duckdb", typed=True)
    wb, ref = open_study(db_spec), open_study(spec)
    assert isinstance(wb.validation.engine, EngineData) and wb.validation.data is None
    for part in ("respondents", "intervals", "exclusions"):
        pd.testing.assert_frame_equal(getattr(wb.panel, part), getattr(ref.panel, part), obj=part)
    pd.testing.assert_frame_equal(wb.data.customers, ref.data.customers)


def test_cli_validate_on_a_duckdb_source_prints_the_engine_problems(tmp_path):
    import subprocess

    t = tv.clean_tables()
    t["surveys"].loc[[3, 7], ID] = ["X404", "c01"]
    spec = tv.write_study(tmp_path, t)
    db_spec = load_csv_into_duckdb(spec, tmp_path / "w.duckdb", typed=False)
    proc = subprocess.run([tv.PYTHON, "-m", "cxlab.cli", "validate", str(db_spec)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "duckdb:crm.barometer" in proc.stdout and "id_in_customers" in proc.stdout and "4, 8" in proc.stdout
    assert tv.CANARY not in proc.stdout and "X404" not in proc.stdout


# ---- PySpark (slow: a JVM) ---------------------------------------------------------------------

SPARK_CASES = ["clean", "date_parseable", "id_in_customers", "not_identifier_ids", "in_scale"]


def _have_spark() -> bool:
    import importlib.util
    import shutil

    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _have_spark(), reason="PySpark or Java is not installed")
def test_engine_rules_on_pyspark_give_the_pandas_problems(tmp_path, monkeypatch):
    """Text columns in Parquet files read by a pyspark source on local[2]."""
    monkeypatch.setenv("CXLAB_SPARK_MASTER", "local[2]")
    for name in SPARK_CASES:
        change, over = {c[0]: (c[1], c[2]) for c in CASES}[name]
        folder = tmp_path / name
        folder.mkdir()
        spec = tv.write_study(folder, _tables(change), **over)
        db_spec = load_csv_into_duckdb(spec, folder / "w.duckdb", typed=False)
        duck = ibis.duckdb.connect(str(folder / "w.duckdb"), read_only=True)
        for role, t in wh.TABLES.items():
            duck.table(t.split(".")[1], database="crm").to_parquet(folder / f"{role}.parquet")
        duck.disconnect()
        raw = yaml.safe_load(db_spec.read_text())
        raw["source"] = {"backend": "pyspark", "spark_conf": {"spark.sql.shuffle.partitions": 2},
                         "parquet": {r: f"{r}.parquet" for r in wh.TABLES}}
        spark_spec = folder / "spark.yaml"
        spark_spec.write_text(yaml.safe_dump(raw, sort_keys=False))
        compare(spec, spark_spec, summary=False)


def test_notebook_summaries_of_the_customers_run_on_the_engine_without_collecting_them(tmp_path, monkeypatch):
    """Notebooks 01 and 04 read the customer table only through wb.table(): on a source study the
    response summary and the cohort counts are queries there, the typed tables are never collected,
    and the figures equal the CSV study's; under the run's cache, a DuckDB scan of its Parquet copy."""
    import warnings

    from cxlab.insight import audit
    from cxlab.insight.value import cohort_survivors
    from cxlab.workbook import open_study

    spec = tv.write_study(tmp_path)
    db_spec = load_csv_into_duckdb(spec, tmp_path / "w.duckdb", typed=True)
    ref = open_study(spec)
    warnings.simplefilter("ignore")
    want_summary = audit.response_summary(ref.panel, ref.data.customers, 1)
    want_cohorts = cohort_survivors(ref.data.customers, snapshot=ref.panel.snapshot_date, min_cell=1)
    assert len(want_cohorts) > 0

    def check(wb):
        table = wb.table("customers")
        assert not isinstance(table, pd.DataFrame)
        pd.testing.assert_frame_equal(audit.response_summary(wb.panel, table, 1), want_summary)
        pd.testing.assert_frame_equal(cohort_survivors(table, snapshot=wb.panel.snapshot_date, min_cell=1),
                                      want_cohorts)

    wb = open_study(db_spec)
    check(wb)
    assert wb.validation.data is None                 # nothing collected on the way
    monkeypatch.setenv("CXLAB_PANEL_CACHE", str(tmp_path / "cache"))
    open_study(db_spec)                               # the first notebook of a run stores the cache
    later = open_study(db_spec)                       # a later notebook reads it
    check(later)
    assert later.validation.data._frames.get("customers") is None   # scanned, not read into pandas


@pytest.mark.parametrize("typed", [False, True])
def test_row_numbers_are_ranks_when_a_duckdb_table_has_deleted_rows(write_case, typed):
    """DuckDB numbers rows ``rowid + 1`` when the rowids are 0..n-1 (no window over the table);
    a table with a deleted row in front has rowids 1..n, and its row numbers must still be ranks."""
    import duckdb

    name, change, over = next(c for c in CASES if c[0] == "date_parseable")
    csv_spec, db_spec = write_case(name, change, over, typed)
    db = db_spec.parent / "w.duckdb"
    con = duckdb.connect(str(db))
    for table in wh.TABLES.values():
        first = con.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        con.execute(f"CREATE TABLE scratch AS SELECT * FROM {table}")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(first[0]))})", first[0])
        con.execute(f"INSERT INTO {table} SELECT * FROM scratch")
        con.execute(f"DROP TABLE scratch")
        con.execute(f"DELETE FROM {table} WHERE rowid = (SELECT min(rowid) FROM {table})")
    con.close()
    con = duckdb.connect(str(db), read_only=True)
    lows = {t: con.execute(f"SELECT min(rowid) FROM {t}").fetchone()[0] for t in wh.TABLES.values()}
    con.close()
    assert all(low > 0 for low in lows.values()), lows      # the premise: a gap in front
    compare(csv_spec, db_spec)


def test_spark_row_numbers_are_file_order_ranks_across_partitions(tmp_path, monkeypatch):
    """Parquet files of small row groups, which Spark reads in several partitions: a row's number is
    still its rank in the file (the rows of the partitions before it, plus its place in its own),
    for bad rows in the first and in the last partitions."""
    import pyarrow.parquet as pq

    monkeypatch.setenv("CXLAB_SPARK_MASTER", "local[2]")
    change = _many(_set("customers", [1, 10], START, "01/03/2020"), _set("customers", 6, END, "9999-12-31"),
                   _set("surveys", [2, 12], REC2, "beaucoup"), _set("surveys", 8, REC1, "12"))
    spec = tv.write_study(tmp_path, _tables(change))
    db_spec = load_csv_into_duckdb(spec, tmp_path / "w.duckdb", typed=False)
    duck = ibis.duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    for role, t in wh.TABLES.items():
        pq.write_table(duck.table(t.split(".")[1], database="crm").to_pyarrow(), tmp_path / f"{role}.parquet",
                       row_group_size=3)
    duck.disconnect()
    conf = {"spark.sql.shuffle.partitions": 2, "spark.sql.files.maxPartitionBytes": 64,
            "spark.sql.files.openCostInBytes": 1, "spark.sql.files.minPartitionNum": 4}
    raw = yaml.safe_load(db_spec.read_text())
    raw["source"] = {"backend": "pyspark", "spark_conf": conf, "parquet": {r: f"{r}.parquet" for r in wh.TABLES}}
    spark_spec = tmp_path / "spark.yaml"
    spark_spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    from cxlab.data.sources import spark_session

    session = spark_session(load_study(spark_spec))
    parts = {r: session.read.parquet(str(tmp_path / f"{r}.parquet")).rdd.getNumPartitions() for r in wh.TABLES}
    assert parts["customers"] >= 3 and parts["surveys"] >= 3, parts      # the premise: several partitions
    compare(spec, spark_spec, summary=False)            # the same problems, row numbers included
    problems = validate_study(load_study(spec)).problems
    numbers = {int(n) for n in re.findall(r"\d+", " ".join(problems["examples"]))}     # "2, 11"
    assert max(numbers) > 3 * 3, problems["examples"].tolist()       # bad rows past the first partitions
    for key in conf:                    # (the session lives on for the other Spark tests)
        session.conf.unset(key)
