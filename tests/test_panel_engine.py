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
