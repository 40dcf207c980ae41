"""Audit tables: small cells suppressed, counts that add up, findings generated from numbers."""

import re

import numpy as np
import pandas as pd
import pytest

from cxlab.insight import audit
from cxlab.data.panel import build_panel
from cxlab.report.tables import show_table

from test_panel import make_data, make_study


@pytest.fixture(scope="module")
def panel():
    return build_panel(make_study(), make_data())


def test_suppress_small_cells_blanks_numbers_and_flags():
    t = pd.DataFrame({"group": ["a", "b"], "n": [25, 4], "share": [0.86, 0.14]})
    out = audit.suppress_small_cells(t, "n", 10)
    assert out["suppressed"].tolist() == [False, True]
    assert out.loc[0, "n"] == 25 and np.isnan(out.loc[1, "n"]) and np.isnan(out.loc[1, "share"])
    assert out.loc[1, "group"] == "b"   # labels stay


def test_response_summary_suppresses_groups_under_min_cell(panel):
    customers = make_data().customers
    t = audit.response_summary(panel, customers)
    overall = t.iloc[0]
    # 6 customers known at the snapshot, 3 respondents: both fewer than 10, so both blanked
    assert overall["suppressed"] and np.isnan(overall["respondents"]) and np.isnan(overall["customers"])
    assert t["suppressed"].all() and t[["customers", "respondents", "response_rate"]].isna().all().all()
    assert set(t["group"]) == {"all customers", "région"}


def test_censoring_and_distribution(panel):
    c = audit.censoring_summary(panel).set_index("quantity")["value"]
    assert c["respondents"] == 3 and c["defections by the snapshot"] == 2
    assert c["share censored"] == pytest.approx(100 / 3)
    d = audit.construct_distribution(panel).set_index("construct")
    assert d.loc["reconnaissance", "n"] == 3
    assert d.loc["reconnaissance", "mean"] == pytest.approx((4 + 1 + 5) / 3)
    assert d.loc["reconnaissance", "share_at_ceiling"] == pytest.approx(1 / 3)


def test_findings_are_generated_from_the_numbers(panel):
    text = " ".join(audit.audit_findings(panel, min_cell=1))
    assert "3 respondents are analysed, of whom 2 (67 %) defected" in text
    assert "Records dated after the snapshot were set aside" in text
    assert "Respondents set aside, by reason: " in text
    assert "fewer than 50% of the reconnaissance items answered (1)" in text


def test_findings_never_print_a_set_aside_count_below_min_cell(panel):
    ex = audit._set_aside(panel.exclusions)
    small = ex[(ex["excluded"] > 0) & (ex["excluded"] < 10)]
    assert len(small) >= 2, "the fixture has small counts of respondents set aside"
    text = " ".join(audit.audit_findings(panel, min_cell=10))
    assert "fewer than 50% of the reconnaissance items answered (fewer than 10)" in text
    for reason in small["reason"]:    # every reason is still named ...
        assert f"{reason} (fewer than 10)" in text, reason
    # ... and no small count is printed next to a reason or a table name
    assert not re.search(r"\((?:[1-9])\)|: [1-9]\b", text), text
    # the boundary: min_cell = the count itself shows it
    reason = small["reason"].iloc[0]
    n = int(small["excluded"].iloc[0])
    assert f"{reason} ({n})" in " ".join(audit.audit_findings(panel, min_cell=n))
    assert f"{reason} (fewer than {n + 1})" in " ".join(audit.audit_findings(panel, min_cell=n + 1))


def test_set_aside_metric_is_withheld_below_min_cell(panel):
    total = int(audit._set_aside(panel.exclusions)["excluded"].sum())
    assert 0 < total < 10
    assert np.isnan(audit.set_aside_total(panel, total + 1))
    assert audit.set_aside_total(panel, 1) == total
    # min_cell = total: 2 >= min_cell, but its two parts (1 and 1) are withheld and nothing is left
    # to withhold beside them, so the total would give them away: withheld too
    assert np.isnan(audit.set_aside_total(panel, total))
    assert np.isnan(audit.population_metrics(panel, make_data().customers, 10)["panel.set_aside"])


def test_validation_overview_hides_small_counts():
    s = pd.DataFrame({"file": ["a.csv", "a.csv"], "column": ["q1", "q2"], "missing_codes": [3, 42],
                      "empty": [0, np.nan]})
    out = audit.validation_overview(s, 10)
    assert out["missing_codes"].tolist() == ["< 10", "42"]
    assert out["empty"].tolist() == ["0", "–"]


def test_show_table_formats_for_people():
    t = pd.DataFrame({"term": ["<b>x</b>"], "n": [1234.0], "share": [0.123], "p": [0.00001], "hr": [0.7123]})
    html = show_table(t, percent=["share"]).to_html()
    assert "1,234" in html and "12.3 %" in html and "< 0.001" in html and "0.71" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_show_table_blanks_every_number_of_a_suppressed_row():
    t = pd.DataFrame({"group": ["big", "small"], "n": [120, 4], "estimate": [0.81, 0.5], "suppressed": [False, True]})
    html = show_table(t).to_html()
    assert "0.81" in html and "120" in html
    assert "0.50" not in html and ">4<" not in html
