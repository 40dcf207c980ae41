"""Metrics and findings recorded by notebooks: names, values, and reading them back."""

import math

import nbformat
import pytest

from cxlab.report.record import FINDING_MIME, METRIC_MIME, read_findings, read_metrics, record_finding, record_metric, recorded


@pytest.mark.parametrize("name", ["panel.respondents", "cox.hr_per_sd.recognition", "drivers.importance.proximité",
                                  "cox.hr_per_sd.self image", "loyalty.importance.empathie-client"])
def test_metric_names_accept_the_studys_own_construct_names(name):
    import json
    import re
    from pathlib import Path

    from cxlab.study import slug

    record_metric(name, 0.8, 0.7, 0.9)
    stored = ".".join(slug(p) for p in name.split("."))
    assert recorded[stored]["estimate"] == 0.8
    # stored under a name the manifest schema accepts, the name as written kept as its label
    schema = json.loads((Path(__file__).parents[1] / "cxlab/report/manifest.schema.json").read_text())
    assert re.match(schema["properties"]["metrics"]["propertyNames"]["pattern"], stored)
    assert recorded[stored].get("label") == (None if stored == name else name)


def test_metric_label_given_is_kept():
    record_metric("cox.hr_per_sd.proximité", 1.1, label="Proximity")
    assert recorded["cox.hr_per_sd.proximite"]["label"] == "Proximity"


@pytest.mark.parametrize("name", ["respondents", "a..b", " a.b", "a.b ", "a.", 3])
def test_bad_metric_names_are_refused(name):
    with pytest.raises(ValueError, match="dotted words"):
        record_metric(name, 1)


def test_values_must_be_numbers_and_nan_becomes_null():
    record_metric("x.nan", float("nan"), None, 2)
    assert recorded["x.nan"] == {"name": "x.nan", "estimate": None, "lower": None, "upper": 2.0}
    with pytest.raises(TypeError, match="estimate must be a number"):
        record_metric("x.text", "high")
    with pytest.raises(ValueError, match="level must be"):
        record_finding("x", level="info")


def test_read_back_from_a_notebook():
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={METRIC_MIME: {"name": "a.b", "estimate": 1.0, "lower": None,
                                                                   "upper": None}}),
        nbformat.v4.new_output("display_data", data={FINDING_MIME: {"text": "Something.", "level": "warning"}}),
        nbformat.v4.new_output("stream", name="stdout", text="noise"),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), cell])
    assert read_metrics(nb) == {"a.b": {"estimate": 1.0, "lower": None, "upper": None}}
    assert read_findings(nb) == [{"text": "Something.", "level": "warning"}]
    assert not math.isnan(read_metrics(nb)["a.b"]["estimate"])
