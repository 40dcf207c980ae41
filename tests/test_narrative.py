"""Findings in words are generated from numbers: direction, size and uncertainty."""

import pandas as pd

from cxlab.narrative import cox_findings, diagnostic_warnings, hazard_sentence, retention_findings


def summary(rows):
    return pd.DataFrame(rows, columns=["term", "hr_per_sd", "lower_per_sd", "upper_per_sd"]).assign(kind="construct")


def test_hazard_sentence_direction_and_uncertainty():
    assert hazard_sentence("recognition", 0.7, 0.6, 0.8).startswith("Customers one SD higher on recognition are 30 % less")
    assert "20 % more likely" in hazard_sentence("price", 1.2, 1.1, 1.3)
    assert "no clear link" in hazard_sentence("affect", 0.95, 0.85, 1.05)
    assert "could not be estimated" in hazard_sentence("x", float("nan"), 0.1, 0.2)


def test_cox_findings_name_the_strongest_and_grammar():
    out = cox_findings(summary([["empathie", 0.9, 0.85, 0.95], ["reconnaissance", 0.7, 0.6, 0.8],
                                ["proximité", 0.85, 0.8, 0.9]]))
    assert out[0].startswith("Reconnaissance matters most: customers one SD higher on reconnaissance are 30 %")
    assert "Proximité and empathie also protect, less strongly." in out[0]
    assert len(out) == 3
    two = cox_findings(summary([["a", 0.7, 0.6, 0.8], ["b", 0.9, 0.85, 0.95]]))
    assert "B also protects" in two[0]
    none = cox_findings(summary([["a", 1.0, 0.9, 1.1]]))
    assert none[0].startswith("No perception is clearly linked")


def test_retention_and_diagnostics_in_words():
    ret = pd.DataFrame({"time": [12.0, 24.0], "estimate": [0.891, 0.5], "lower": [0.88, 0.4], "upper": [0.9, 0.6],
                        "suppressed": [False, True]})
    out = retention_findings(ret)
    assert out == ["89 % of respondents were still customers 12 months after the survey (95 % CI 88%–90%)."]
    diag = pd.DataFrame({"check": ["events_per_parameter", "vif"], "term": [None, "empathy"], "value": [6.0, 2.0],
                         "threshold": [10.0, 5.0], "status": ["warning", "ok"], "message": ["60 events for 10", ""]})
    assert diagnostic_warnings(diag) == ["Few events per model parameter (value 6, threshold 10): 60 events for 10."]
