"""EngineData (the study's typed tables on an ibis backend) and the panel built from it."""

import ibis
import pandas as pd
import pytest

from cxlab.data.tables import EngineData
from cxlab.errors import CxlabError
from test_panel import make_data


def test_upload_keeps_studydata_columns_and_types():
    data = make_data()
    con = ibis.duckdb.connect()
    eng = EngineData.upload(con, data)
    schema = eng.customers.schema()
    assert list(schema.names) == ["customer_id", "start", "end", "value", "région", "source_row"]
    assert schema["start"].is_timestamp() and schema["value"].is_floating() and schema["région"].is_string()
    back = eng.to_study_data()
    pd.testing.assert_frame_equal(back.surveys.drop(columns="source_row"), data.surveys)
    assert back.complaints["closed"].dtype == "datetime64[ns]"
    eng.close()
    assert con.list_tables() == []


def test_wrong_types_are_refused():
    con = ibis.duckdb.connect()
    data = make_data()
    good = EngineData.upload(con, data)
    bad = good.customers.mutate(value=good.customers.value.cast("string"))
    with pytest.raises(CxlabError, match="customers.value is string"):
        EngineData(con, bad, good.surveys)
    with pytest.raises(CxlabError, match="no column 'date'"):
        EngineData(con, good.customers, good.surveys.drop("date"))
    with pytest.raises(CxlabError, match="surveys.note is string"):
        EngineData(con, good.customers, good.surveys.mutate(note=ibis.literal("x")))


# ---- the panel from tables on the engine ------------------------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import warehouse as wh  # noqa: E402

from cxlab.data.panel import build_panel, survey_answers  # noqa: E402
from cxlab.data.validate import load_study_data  # noqa: E402
from cxlab.study import load_study  # noqa: E402

CXLAB = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "cxlab")
PARTS = ("respondents", "intervals", "exclusions")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    subprocess.run([CXLAB, "demo", "--customers", "2000", "--out", str(out)], check=True, capture_output=True)
    # duplicates for the rules to decide: exact copies of survey answers and of a complaint, a
    # conflicting answer on the same day, a complaint opened twice on one day with other outcomes
    for name, pick in (("barometer.csv", [1, 2, 3]), ("complaints.csv", [1, 2])):
        lines = (out / name).read_text().splitlines()
        extra = [lines[i] for i in pick]
        first = lines[pick[-1]].split(",")
        first[-1] = "99" if name == "barometer.csv" else ("0" if first[-1] == "1" else "1")
        (out / name).write_text("\n".join([*lines, *extra, ",".join(first)]) + "\n")
    study = load_study(out / "study.yaml")
    data = load_study_data(study)
    return study, data, build_panel(study, data), wh.typed_tables(out / "study.yaml")


def _assert_same_panel(a, b):
    for part in PARTS:
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part), obj=part)


def _check_engine(con, demo):
    study, data, ref, raw = demo
    steps = ref.exclusions.set_index("step")["excluded"]
    assert steps["one answer per customer, day and answers"] == 3 and steps["one row per complaint"] == 2
    assert steps["no conflicting answers on one day"] >= 2
    wh.load_numbered(con, raw)
    eng = wh.engine_data(con, study)
    _assert_same_panel(build_panel(study, eng), ref)
    _assert_same_panel(build_panel(study, eng, follow_up="next_survey"),
                       build_panel(study, data, follow_up="next_survey"))
    pd.testing.assert_frame_equal(survey_answers(study, eng), survey_answers(study, data))
    with pytest.raises(CxlabError, match="another backend"):
        build_panel(study, eng, con=ibis.duckdb.connect())
    assert not [t for t in con.list_tables() if t.startswith("cxlab_")]    # its temporary tables dropped


def test_panel_from_engine_tables_on_duckdb_equals_the_panel_from_files(demo):
    con = ibis.duckdb.connect()
    _check_engine(con, demo)


try:
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None


@pytest.mark.skipif(wh.postgres_bin() is None or psycopg is None, reason="PostgreSQL or psycopg is not installed")
def test_panel_from_engine_tables_on_postgres_equals_the_panel_from_files(demo):
    with wh.postgres_server() as url:
        con = ibis.connect(url)
        try:
            _check_engine(con, demo)
        finally:
            con.disconnect()
