"""Studies whose tables live in a database (``source:``): the spec, the connection, and the same
answers as from the CSV files on DuckDB and on a real PostgreSQL server (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ibis
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import warehouse as wh  # noqa: E402

from cxlab.errors import StudyError  # noqa: E402
from cxlab.data.panel import build_panel  # noqa: E402
from cxlab.data.sources import secret_values  # noqa: E402
from cxlab.study import load_study, parse_study  # noqa: E402
from cxlab.data.validate import validate_study  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CXLAB = str(ROOT / ".venv" / "bin" / "cxlab")
ENV = "CXLAB_TEST_WAREHOUSE_URL"
PARTS = ("respondents", "intervals", "exclusions")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    subprocess.run([CXLAB, "demo", "--customers", "2000", "--out", str(out)], check=True, capture_output=True)
    return out / "study.yaml"


@pytest.fixture(scope="module")
def csv_build(demo):
    study = load_study(demo)
    report = validate_study(study)
    assert report.ok, report.to_text()
    return study, report.data, build_panel(study, report.data)


def _raw(demo) -> dict:
    return yaml.safe_load(Path(demo).read_text())


def _assert_same_data(a, b):
    for role in ("customers", "surveys", "complaints"):
        pd.testing.assert_frame_equal(getattr(a, role), getattr(b, role), obj=role)


def _assert_same_panel(a, b):
    for part in PARTS:
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part), obj=part)


# ---- the spec -----------------------------------------------------------------------------

def _spec_with_source(demo, **source):
    raw = _raw(demo)
    for role in wh.TABLES:
        raw[role].pop("path")
    raw["source"] = {"backend": "postgres", "url_env": ENV, "tables": dict(wh.TABLES), **source}
    return raw


def test_source_spec_parses_and_files_stay_the_default(demo):
    study = parse_study(_spec_with_source(demo), base_dir=demo.parent)
    assert study.source.backend == "postgres" and study.files == {}
    assert study.label("surveys") == "postgres:crm.barometer"
    assert load_study(demo).source is None          # an existing spec: files, as before


@pytest.mark.parametrize("change, words", [
    (lambda r: r["customers"].__setitem__("path", "customers.csv"), "customers.path and source: both given"),
    (lambda r: r["source"]["tables"].pop("complaints"), "source.tables has no complaints"),
    (lambda r: r.pop("complaints"), "source.tables names complaints, which the spec does not describe"),
    (lambda r: r["source"].pop("url_env"), "a postgres source needs url_env"),
    (lambda r: r["source"].__setitem__("url_env", "postgresql://u:p@h/db"), "give the NAME of an environment"),
    (lambda r: r["source"]["tables"].__setitem__("surveys", "crm.bar; drop"), "give a table name"),
    (lambda r: r["source"].__setitem__("backend", "oracle"), "source.backend"),
])
def test_bad_source_specs_say_what_to_fix(demo, change, words):
    raw = _spec_with_source(demo)
    change(raw)
    with pytest.raises(StudyError, match=words.replace("(", r"\(").replace(".", r"\.")):
        parse_study(raw, base_dir=demo.parent)


def test_no_path_and_no_source_is_refused(demo):
    raw = _raw(demo)
    raw["surveys"].pop("path")
    with pytest.raises(StudyError, match="surveys.path missing"):
        parse_study(raw, base_dir=demo.parent)


def test_unset_url_variable_is_a_clear_error(demo, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    study = parse_study(_spec_with_source(demo), base_dir=demo.parent)
    with pytest.raises(StudyError, match=f"{ENV}, which is not set"):
        validate_study(study)
    assert secret_values(study) == []


# ---- DuckDB file ----------------------------------------------------------------------------

def test_duckdb_file_source_gives_the_csv_answers(demo, csv_build, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    con = ibis.duckdb.connect(str(db))
    wh.load_into(con, wh.typed_tables(demo))
    con.disconnect()
    spec = wh.source_spec(demo, tmp_path / "study.yaml", {"backend": "duckdb", "path": "warehouse.duckdb"})
    study = load_study(spec)
    report = validate_study(study)
    assert report.ok, report.to_text()
    ref_study, ref_data, ref_panel = csv_build
    _assert_same_data(report.data, ref_data)
    _assert_same_panel(build_panel(study, report.data), ref_panel)


def test_duckdb_source_outside_the_spec_folder_is_refused(demo, tmp_path):
    raw = _spec_with_source(demo, backend="duckdb", path="../elsewhere.duckdb")
    raw["source"].pop("url_env")
    spec = tmp_path / "sub" / "study.yaml"
    spec.parent.mkdir()
    spec.write_text(yaml.safe_dump(raw))
    with pytest.raises(StudyError, match="source.path"):
        load_study(spec)


# ---- PostgreSQL ---------------------------------------------------------------------------

try:
    import psycopg  # noqa: F401
except ImportError:
    psycopg = None
needs_postgres = pytest.mark.skipif(
    wh.postgres_bin() is None or psycopg is None,
    reason="PostgreSQL or psycopg is not installed (make system-deps / the warehouse extra install them)")


@pytest.fixture(scope="module")
def postgres(demo):
    with wh.postgres_server() as url:
        con = ibis.connect(url)
        wh.load_into(con, wh.typed_tables(demo))
        con.disconnect()
        yield url


@pytest.fixture(scope="module")
def pg_spec(demo, postgres, tmp_path_factory):
    os.environ[ENV] = postgres
    yield wh.source_spec(demo, tmp_path_factory.mktemp("pgspec") / "study.yaml",
                         {"backend": "postgres", "url_env": ENV})
    os.environ.pop(ENV, None)


@needs_postgres
def test_postgres_source_validates_to_the_csv_tables(pg_spec, csv_build):
    report = validate_study(load_study(pg_spec))
    assert report.ok, report.to_text()
    assert "postgres:crm.barometer" in report.to_text()
    _assert_same_data(report.data, csv_build[1])
    _assert_same_panel(build_panel(load_study(pg_spec), report.data), csv_build[2])


@needs_postgres
def test_panel_expressions_on_postgres_give_the_duckdb_tables(postgres, csv_build):
    """The same ibis expressions, run by PostgreSQL (temporary tables) instead of DuckDB."""
    study, data, ref = csv_build
    con = ibis.connect(postgres)
    try:
        _assert_same_panel(build_panel(study, data, con=con), ref)
        _assert_same_panel(build_panel(study, data, con=con, follow_up="next_survey"),
                           build_panel(study, data, follow_up="next_survey"))
        assert not [t for t in con.list_tables() if t.startswith("cxlab_")]   # its temporary tables dropped
    finally:
        con.disconnect()


@needs_postgres
def test_failed_connection_names_the_variable_never_the_password(pg_spec, monkeypatch):
    url = os.environ[ENV]
    host, port = url.rsplit("@", 1)[1].split("/")[0].split(":")
    monkeypatch.setenv(ENV, url.replace(f":{port}/", f":{int(port) + 1 if int(port) < 65535 else 1}/"))
    with pytest.raises(StudyError) as err:
        validate_study(load_study(pg_spec))
    assert ENV in str(err.value) and wh.PASSWORD not in str(err.value) and os.environ[ENV] not in str(err.value)
    assert "OperationalError" in str(err.value)
    monkeypatch.setenv(ENV, url.replace(wh.PASSWORD, "wrong-password"))
    with pytest.raises(StudyError) as err:
        validate_study(load_study(pg_spec))
    assert "wrong-password" not in str(err.value) and os.environ[ENV] not in str(err.value)
    assert "could not connect to the postgres source named by " + ENV in str(err.value)


def test_missing_table_is_named(demo, tmp_path):
    con = ibis.duckdb.connect(str(tmp_path / "w.duckdb"))
    tabs = wh.typed_tables(demo)
    tabs.pop("complaints")
    wh.load_into(con, tabs)
    con.disconnect()
    spec = wh.source_spec(demo, tmp_path / "study.yaml", {"backend": "duckdb", "path": "w.duckdb"})
    with pytest.raises(StudyError, match="source.tables.complaints names 'crm.complaints'"):
        validate_study(load_study(spec))


def _run(spec, out, extra_env=None):
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump({"name": out.name, "study": str(spec), "out": str(out)}))
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.run([CXLAB, "run", str(cfg), "--jobs", "2"], capture_output=True, text=True, env=env,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "latest" / "manifest.json").read_text()), proc.stderr, out / "latest"


def _metrics(manifest) -> dict:
    return manifest["metrics"]


@pytest.fixture(scope="module")
def csv_manifest(demo, tmp_path_factory):
    """The manifest of a `cxlab run` on the demo's CSV files: what every engine's run must give."""
    return _run(demo, tmp_path_factory.mktemp("csvrun") / "csv")[0]


@pytest.mark.slow
@needs_postgres
def test_cxlab_run_on_postgres_gives_the_csv_metrics_and_never_shows_the_url(csv_manifest, pg_spec, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    pg_manifest, stderr, folder = _run(pg_spec, base / "pg")
    assert _metrics(pg_manifest) == _metrics(csv_manifest)
    assert len(_metrics(csv_manifest)) > 20 and all(nb["status"] == "succeeded" for nb in pg_manifest["notebooks"])
    secrets = [os.environ[ENV], wh.PASSWORD]
    assert not any(s in stderr for s in secrets)
    for path in folder.resolve().rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(s in text for s in secrets), path


def test_cli_source_problems_exit_2_without_the_url(demo, tmp_path):
    spec = wh.source_spec(demo, tmp_path / "study.yaml", {"backend": "postgres", "url_env": ENV})
    env = {k: v for k, v in os.environ.items() if k != ENV}
    proc = subprocess.run([CXLAB, "validate", str(spec)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and f"{ENV}, which is not set" in proc.stderr
    url = "postgresql://cxlab:hunter22-password@127.0.0.1:1/cxlab"    # nothing listens on port 1
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"name": "t", "study": str(spec), "out": str(tmp_path / "out")}))
    proc = subprocess.run([CXLAB, "run", str(cfg)], capture_output=True, text=True, env={**env, ENV: url})
    assert proc.returncode == 2 and "could not connect to the postgres source named by" in proc.stderr
    assert "hunter22" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---- PySpark --------------------------------------------------------------------------------

def _have_spark() -> bool:
    import importlib.util
    import shutil

    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _have_spark(), reason="PySpark or Java is not installed (the spark extra installs PySpark)")
def test_panel_expressions_on_pyspark_give_the_duckdb_tables(csv_build):
    from pyspark.sql import SparkSession

    from cxlab.data.sources import SPARK_DEFAULTS

    builder = SparkSession.builder.master("local[2]").appName("cxlab-test")
    for key, value in {**SPARK_DEFAULTS, "spark.sql.shuffle.partitions": "4"}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()        # (not stopped: the later Spark tests use its JVM too)
    con = ibis.pyspark.connect(spark)
    study, data, ref = csv_build

    def ours():      # (a session reused from an earlier test may hold that test's tables)
        return {t.name for t in spark.catalog.listTables() if t.name.startswith("cxlab_")}

    before = ours()
    _assert_same_panel(build_panel(study, data, con=con), ref)
    assert ours() == before         # the panel's views and uploads are gone


# ---- backend: pyspark in the spec, its configuration ------------------------------------------

def _pyspark_spec(demo, folder: Path, **source) -> Path:
    """The demo's tables as Parquet files read by a pyspark source on local[2]."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, df in wh.typed_tables(demo).items():
        df.to_parquet(folder / f"{role}.parquet")
    raw = _raw(demo)
    for role in wh.TABLES:
        raw[role].pop("path")
    raw["source"] = {"backend": "pyspark", "master": "local[2]",
                     "spark_conf": {"spark.sql.shuffle.partitions": 4},
                     "parquet": {r: f"{r}.parquet" for r in wh.TABLES}, **source}
    spec = folder / "study.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    return spec


def test_pyspark_source_spec_parses(demo):
    raw = _spec_with_source(demo)
    raw["source"] = {"backend": "pyspark", "tables": {"customers": "crm.customers"},
                     "parquet": {"surveys": "s.parquet", "complaints": "s3a://bucket/complaints/"},
                     "master": "spark://head:7077", "spark_conf": {"spark.executor.memory": "8g"}}
    study = parse_study(raw, base_dir=demo.parent)
    assert study.source.roles == ["customers", "surveys", "complaints"]
    assert study.label("customers") == "pyspark:crm.customers"
    assert study.label("complaints") == "pyspark:s3a://bucket/complaints/"
    assert secret_values(study) == []           # no URL: nothing to scrub


@pytest.mark.parametrize("source, words", [
    ({"backend": "duckdb", "path": "w.duckdb", "parquet": {"customers": "c.parquet"}},
     "source.parquet is for backend: pyspark"),
    ({"backend": "pyspark", "tables": dict(wh.TABLES), "parquet": {"customers": "c.parquet"}},
     "source.tables and source.parquet both name customers"),
    ({"backend": "postgres", "url_env": ENV, "master": "local[2]"}, "source.master and source.spark_conf are for"),
    ({"backend": "pyspark", "parquet": {"customers": "c.parquet", "surveys": "s.parquet"}},
     "source.tables has no complaints"),
    ({"backend": "pyspark", "parquet": {"buyers": "b.parquet"}}, "source.parquet names the roles"),
    ({"backend": "postgres", "url_param": "postgresql://u:p@h/db"}, "give the NAME of a run parameter"),
])
def test_bad_pyspark_and_url_param_specs_say_what_to_fix(demo, source, words):
    raw = _spec_with_source(demo)
    raw["source"] = {"tables": {}, **source} if "tables" not in source else source
    if "parquet" not in source and "tables" not in source:
        raw["source"]["tables"] = dict(wh.TABLES)
    with pytest.raises(StudyError, match=words.replace("(", r"\(").replace(".", r"\.")):
        parse_study(raw, base_dir=demo.parent)


def test_spark_master_and_options_come_from_the_environment_then_the_spec(demo, monkeypatch):
    from cxlab.data.sources import spark_conf, spark_master

    raw = _spec_with_source(demo)
    raw["source"] = {"backend": "pyspark", "tables": dict(wh.TABLES), "master": "local[2]",
                     "spark_conf": {"spark.executor.memory": "2g", "spark.sql.shuffle.partitions": 4,
                                    "spark.ui.enabled": True}}
    study = parse_study(raw, base_dir=demo.parent)
    monkeypatch.delenv("CXLAB_SPARK_MASTER", raising=False)
    monkeypatch.delenv("CXLAB_SPARK_CONF", raising=False)
    assert spark_master(study) == "local[2]"
    conf = spark_conf(study)
    assert conf["spark.executor.memory"] == "2g" and conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.ui.enabled"] == "true"                       # the spec wins over cxlab's default
    assert conf["spark.sql.session.timeZone"] == "UTC"               # cxlab's default kept
    monkeypatch.setenv("CXLAB_SPARK_MASTER", "spark://head:7077")
    monkeypatch.setenv("CXLAB_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    assert spark_master(study) == "spark://head:7077"               # production: the variable wins
    assert spark_conf(study)["spark.executor.memory"] == "8g"
    monkeypatch.setenv("CXLAB_SPARK_CONF", "spark.executor.memory=8g")
    with pytest.raises(StudyError, match="CXLAB_SPARK_CONF must be a JSON object"):
        spark_conf(study)
    raw["source"].pop("master")
    monkeypatch.delenv("CXLAB_SPARK_MASTER")
    assert spark_master(parse_study(raw, base_dir=demo.parent)) == "local[*]"


needs_spark = pytest.mark.skipif(not _have_spark(),
                                 reason="PySpark or Java is not installed (the spark extra installs PySpark)")


@pytest.mark.slow
@needs_spark
def test_pyspark_parquet_source_validates_to_the_csv_tables(demo, csv_build, tmp_path):
    from cxlab.data.sources import describe

    study = load_study(_pyspark_spec(demo, tmp_path / "spark"))
    report = validate_study(study)
    assert report.ok, report.to_text()
    assert "pyspark:surveys.parquet" in report.to_text()
    _assert_same_data(report.data, csv_build[1])
    _assert_same_panel(build_panel(study, report.data), csv_build[2])
    described = describe(study)
    assert {r: d["rows"] for r, d in described.items()} == {
        r: len(getattr(csv_build[1], r)) for r in ("customers", "surveys", "complaints")}
    assert all(d["backend"] == "pyspark" for d in described.values())


@pytest.mark.slow
@needs_spark
def test_cxlab_run_on_pyspark_gives_the_csv_metrics(demo, csv_manifest, tmp_path_factory):
    base = tmp_path_factory.mktemp("sparkruns")
    spec = _pyspark_spec(demo, base / "spark")
    spark_manifest, _, _ = _run(spec, base / "spark-run", {"CXLAB_SPARK_MASTER": "local[2]"})
    assert all(nb["status"] == "succeeded" for nb in spark_manifest["notebooks"])
    assert len(_metrics(csv_manifest)) > 20 and _metrics(spark_manifest) == _metrics(csv_manifest)
    data = spark_manifest["data"]
    assert sorted(data) == ["complaints", "customers", "surveys"]
    assert data["customers"]["backend"] == "pyspark" and data["customers"]["rows"] == \
        csv_manifest["data"]["customers"]["rows"]


# ---- the URL as a secret run parameter ------------------------------------------------------

def test_url_parameter_is_taken_out_of_the_run_and_exported(demo, monkeypatch):
    from cxlab.report.runner import RunConfig
    from cxlab.data.sources import source_url
    from cxlab.report.params import take_url_parameter

    monkeypatch.delenv(ENV, raising=False)
    raw = _spec_with_source(demo, url_param="warehouse_url")
    study = parse_study(raw, base_dir=demo.parent)
    url = "postgresql://cxlab:p4ss-w0rd@127.0.0.1:5/cxlab"
    config = RunConfig(name="t", study=demo, notebooks_dir=demo.parent, notebooks=[], out=demo.parent,
                       parameters={"warehouse_url": url, "min_cell": 10})
    new, overrides = take_url_parameter(study, config, ["horizons=[12]"])
    assert new.parameters == {"min_cell": 10} and "warehouse_url" in new.secret
    assert overrides == ["horizons=[12]"] and config.parameters["warehouse_url"] == url   # a copy
    assert source_url(study) == url == os.environ[ENV]
    assert secret_values(study) == [url, "p4ss-w0rd"]
    # --set wins over the config; a per-notebook --set of another name stays
    new, overrides = take_url_parameter(study, config, ["warehouse_url=postgresql://u:other@h/d", "01-x:a=1"])
    assert os.environ[ENV] == "postgresql://u:other@h/d" and overrides == ["01-x:a=1"]
    # no url_env: the default variable carries it
    raw["source"].pop("url_env")
    study = parse_study(raw, base_dir=demo.parent)
    monkeypatch.delenv("CXLAB_SOURCE_URL", raising=False)
    with pytest.raises(StudyError, match="run parameter warehouse_url, which this run does not give"):
        source_url(study)
    take_url_parameter(study, config)
    assert os.environ.pop("CXLAB_SOURCE_URL") == url


@pytest.mark.slow
@needs_postgres
def test_cxlab_run_with_the_url_as_a_secret_parameter_never_shows_it(demo, postgres, tmp_path):
    spec = wh.source_spec(demo, tmp_path / "study.yaml", {"backend": "postgres", "url_param": "warehouse_url"})
    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"name": "pgparam", "study": str(spec), "out": str(out),
                                   "notebooks": ["01-data-audit"],
                                   "parameters": {"warehouse_url": postgres}, "secret": ["warehouse_url"]}))
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "CXLAB_SOURCE_URL")}
    proc = subprocess.run([CXLAB, "run", str(cfg), "--jobs", "1"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "latest" / "manifest.json").read_text())
    assert manifest["data"]["surveys"]["backend"] == "postgres" and manifest["data"]["surveys"]["rows"] > 0
    assert manifest["data"]["surveys"]["table"] == "crm.barometer"
    secrets = [postgres, wh.PASSWORD]
    assert not any(s in proc.stderr + proc.stdout for s in secrets)
    n_files = 0
    for path in (out / "latest").resolve().rglob("*"):
        if path.is_file():
            n_files += 1
            text = path.read_text(errors="replace")
            assert not any(s in text for s in secrets), path
    assert n_files >= 3


def test_manifest_data_section_of_a_duckdb_source(demo, tmp_path):
    from cxlab.data.sources import describe

    db = tmp_path / "warehouse.duckdb"
    con = ibis.duckdb.connect(str(db))
    tables = wh.typed_tables(demo)
    wh.load_into(con, tables)
    con.disconnect()
    study = load_study(wh.source_spec(demo, tmp_path / "study.yaml", {"backend": "duckdb", "path": "warehouse.duckdb"}))
    got = describe(study)
    assert {r: (d["table"], d["rows"], d["columns"]) for r, d in got.items()} == {
        r: (wh.TABLES[r], len(df), df.shape[1]) for r, df in tables.items()}
    con = ibis.duckdb.connect(str(db))
    con.raw_sql("ALTER TABLE crm.customers ADD COLUMN extra INTEGER")
    con.disconnect()
    again = describe(study)
    assert again["customers"]["schema_sha256"] != got["customers"]["schema_sha256"]
    assert again["surveys"]["schema_sha256"] == got["surveys"]["schema_sha256"]


def _duckdb_source(demo, tmp_path) -> Path:
    con = ibis.duckdb.connect(str(tmp_path / "w.duckdb"))
    wh.load_into(con, wh.typed_tables(demo))
    con.disconnect()
    return wh.source_spec(demo, tmp_path / "study.yaml", {"backend": "duckdb", "path": "w.duckdb"})


def _spills(pid=None) -> set[str]:
    import glob
    import tempfile

    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"cxlab-duckdb-spill-{pid or os.getpid()}-*")))


def test_a_duckdb_source_runs_in_bounded_memory(demo, tmp_path, monkeypatch):
    """A source connection is capped at 1GB ($CXLAB_DUCKDB_MEMORY_LIMIT sets another, 'none' leaves
    DuckDB's own), and its spill folder goes with the connection."""
    from cxlab.data.sources import connect, disconnect

    spec = _duckdb_source(demo, tmp_path)

    def limit():
        c = connect(load_study(spec))
        try:
            return c.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
        finally:
            disconnect(c)

    before = _spills()
    import duckdb

    own = duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit() == "953.6 MiB" != own           # 1GB (DuckDB counts in MiB)
    # the spill folder is ours to make and remove: a connection that spilled leaves none
    c = connect(load_study(spec))
    folder = c.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
    c.raw_sql("SET memory_limit = '20MB'")
    c.raw_sql("SELECT * FROM range(3000000) t(i) ORDER BY i DESC").fetchone()
    assert os.path.isdir(folder) and os.listdir(folder)
    disconnect(c)
    assert not os.path.exists(folder) and _spills() == before
    monkeypatch.setenv("CXLAB_DUCKDB_MEMORY_LIMIT", "3GB")
    assert limit() in ("2.7 GiB", "3.0 GB", "2.8 GiB")
    monkeypatch.setenv("CXLAB_DUCKDB_MEMORY_LIMIT", "none")
    assert limit() == own


def test_intermediate_tables_live_in_the_scratch_database_and_go_with_the_connection(demo, tmp_path):
    """Validation's and the panel's tables on a DuckDB source are in the connection's on-disk scratch
    database (evictable from memory: a temporary table is not, and 10 M customers then ran out of
    memory at 1GB), never in the temporary catalog; closing the connection removes them all."""
    from cxlab.data.panel import build_panel
    from cxlab.data.sources import connect, disconnect, scratch
    from cxlab.data.validate import validate_engine

    study = load_study(_duckdb_source(demo, tmp_path))
    con = connect(study)
    where = scratch(con)
    catalog = where.split(".")[0]
    seen = {"scratch": set(), "temp": set()}
    raw = con.con

    def tables():
        rows = raw.execute("SELECT database_name, table_name FROM duckdb_tables()").fetchall()
        return {(db, t) for db, t in rows if t.startswith("cxlab_")}

    import cxlab.data.panel as panel_module

    real = panel_module._Engine.release

    def release(self, *names):      # look before the panel frees its tables
        for db, t in tables():
            seen["scratch" if db == catalog else "temp"].add(t)
        return real(self, *names)

    try:
        report = validate_engine(study, con)
        report.raise_if_failed()
        after_validation = tables()
        panel_module._Engine.release = release
        build_panel(study, report.engine)
    finally:
        panel_module._Engine.release = real
    assert after_validation and {db for db, _ in after_validation} == {catalog}
    assert any("_v" in t for _, t in after_validation)          # validation's typed tables
    assert seen["scratch"] and not seen["temp"]
    folder = raw.execute(f"SELECT path FROM duckdb_databases() WHERE database_name = '{catalog}'").fetchone()[0]
    assert os.path.exists(folder)
    disconnect(con)
    assert not os.path.exists(os.path.dirname(folder))


def test_a_spill_folder_left_by_a_killed_process_is_removed_by_the_next_connection(demo, tmp_path):
    import tempfile

    from cxlab.data.sources import connect, disconnect

    spec = _duckdb_source(demo, tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    root = tempfile.gettempdir()
    orphan = os.path.join(root, f"cxlab-duckdb-spill-{dead}-0badc0de")
    alive = os.path.join(root, f"cxlab-duckdb-spill-{os.getppid()}-0badc0de")     # pytest's parent: alive
    for folder in (orphan, alive):
        os.makedirs(os.path.join(folder, "tmp"), exist_ok=True)
    try:
        disconnect(connect(load_study(spec)))
        assert not os.path.exists(orphan) and os.path.exists(alive)
    finally:
        import shutil

        for folder in (orphan, alive):
            shutil.rmtree(folder, ignore_errors=True)


def test_a_failed_validation_leaves_no_table_in_the_scratch_database(demo, tmp_path):
    """On a DuckDB source, a study that fails the contract drops its kept tables at once (the
    connection stays open for the caller), not only when the connection closes."""
    from cxlab.data.sources import connect, disconnect, scratch
    from cxlab.data.validate import validate_engine

    spec = _duckdb_source(demo, tmp_path)
    con = ibis.duckdb.connect(str(tmp_path / "w.duckdb"))
    con.raw_sql(f"UPDATE {wh.TABLES['customers']} SET \"{load_study(spec).customers.start}\" = NULL "
                f"WHERE rowid = 3")
    con.disconnect()
    study = load_study(spec)
    con = connect(study)
    try:
        report = validate_engine(study, con)
        assert not report.ok
        catalog = scratch(con).split(".")[0]
        left = con.con.execute(f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{catalog}'").fetchall()
        assert left == []
    finally:
        disconnect(con)
