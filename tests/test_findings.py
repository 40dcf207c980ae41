"""cxlab.insight.findings: each notebook's findings and metrics from hand-made result tables (the
sentences and figures expected here are typed from the tables, not produced by the code)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pandas as pd
import pytest

from cxlab import privacy
from cxlab.insight.findings import Findings, driver_findings, segment_value_findings, survival_findings


@pytest.fixture(autouse=True)
def min_cell_10():
    before = privacy.get_min_cell()
    privacy.set_min_cell(10)
    yield
    privacy.set_min_cell(before)


# ---- notebook 02 -----------------------------------------------------------------------------

def _cox_summary():
    return pd.DataFrame({
        "term": ["recognition", "empathy", "dgc"], "kind": ["construct", "construct", "control"],
        "hr_per_sd": [0.70, 0.95, np.nan], "lower_per_sd": [0.60, 0.85, np.nan], "upper_per_sd": [0.80, 1.05, np.nan],
        "hr_per_point": [0.65, 0.93, np.nan], "lower_per_point": [0.55, 0.83, np.nan],
        "upper_per_point": [0.77, 1.04, np.nan],
        "hr": [0.65, 0.93, 1.40], "lower": [0.55, 0.83, 1.10], "upper": [0.77, 1.04, 1.80]})


def _survival_inputs(fallback=False, n_fit=1000, n_respondents=1000):
    checked = NS(model=NS(summary=_cox_summary()), t_ref=None,
                 label="Every effect stays the same over tenure (global p = 0.40). The rule: p below 0.05.",
                 fallback="time_interaction" if fallback else None,
                 actions_=pd.DataFrame({"variable": ["recognition"], "term": ["recognition"]}),
                 ph_=pd.DataFrame({"term": ["recognition", "GLOBAL"], "p": [0.30, 0.40]}))
    cox = NS(n_=n_fit, events_=150, diagnostics_=pd.DataFrame(
        {"check": ["vif"], "term": ["recognition"], "status": ["ok"], "value": [1.2], "threshold": [5.0],
         "message": [""]}))
    retention = pd.DataFrame({"time": [12.0, 24.0], "estimate": [0.90, 0.80], "lower": [0.88, 0.77],
                              "upper": [0.92, 0.83]})
    aft = NS(best_="weibull", summary=pd.DataFrame({
        "distribution": ["weibull", "weibull", "lognormal"], "term": ["recognition", "empathy", "recognition"],
        "time_ratio": [1.30, 1.02, 9.0], "lower": [1.20, 0.95, 8.0], "upper": [1.40, 1.10, 10.0]}))
    tv = NS(summary=pd.DataFrame({"term": ["recognition", "complaint_open", "channel"], "hr": [0.72, 2.5, 1.1],
                                  "lower": [0.62, 2.0, 0.9], "upper": [0.82, 3.1, 1.3]}))
    evaluation = NS(summary=pd.DataFrame({
        "metric": ["harrell_c", "uno_c", "auc_12m", "integrated_brier_score", "other"],
        "estimate": [0.71, 0.70, 0.74, 0.10, 9.0], "lower": [0.69, 0.68, 0.72, 0.09, 9.0],
        "upper": [0.73, 0.72, 0.76, 0.11, 9.0]}))
    return dict(checked=checked, cox=cox, retention=retention, aft=aft, tv=tv,
                tv_terms=["recognition", "empathy", "complaint_open"], evaluation=evaluation,
                constructs=["recognition", "empathy"], n_respondents=n_respondents, model_controls=["dgc", "channel"])


def _survival(**kw):
    inputs = _survival_inputs(**kw)
    return survival_findings(inputs.pop("checked"), **inputs)


def test_survival_answers_lead_in_their_order_and_the_rest_is_evidence():
    f = _survival()
    texts = f.texts
    assert [level for _, level in f.findings] == ["finding"] * 4
    assert texts[0].startswith("Recognition matters most: customers one SD higher on recognition have a 30 % lower")
    assert texts[1] == "90 % of respondents were still customers 12 months after the survey (95 % CI 88 %–92 %)."
    # the same answer in time: the best distribution's sentence for the perception with the lowest HR
    assert texts[2] == ("Customers one SD higher on recognition stay 30 % longer (time ratio 1.30, 95 % CI 1.20–1.40; "
                        "Weibull accelerated failure time model).")
    assert texts[3].startswith("Customers with a complaint open have a 2.5-fold higher risk of defecting than "
                               "customers without a complaint")
    ev = " | ".join(f.evidence)
    assert "empathy" in ev and "still customers 24 months" in ev and "9.00" not in ev   # lognormal is not the best
    assert ("The model ranks customers by risk correctly 71% of the time (cross-validated Harrell's C, 95 % CI "
            "0.69–0.73; 0.5 = chance).") in f.evidence
    assert "Every effect stays the same over tenure (global p = 0.40) (the rule is stated under Checks)." in f.evidence
    assert not any("leave out" in t or "use " in t for t in f.evidence)   # nobody left out: no sentence


def test_survival_metrics_are_named_and_valued_from_their_tables():
    f = _survival()
    names = [m.name for m in f.metrics]
    assert names == ["cox.hr_per_sd.recognition", "cox.hr_per_point.recognition", "cox.hr_per_sd.empathy",
                     "cox.hr_per_point.empathy", "km.retention_12m", "km.retention_24m", "ph.global_p",
                     "aft.time_ratio_per_sd.recognition", "aft.time_ratio_per_sd.empathy", "tv.hr.recognition",
                     "tv.hr.complaint_open", "eval.c_index", "eval.uno_c", "eval.auc_12m",
                     "eval.integrated_brier_score", "cox.events", "cox.respondents", "ph.fallback", "cox.hr.dgc"]
    m = {x.name: (x.estimate, x.lower, x.upper) for x in f.metrics}
    assert m["cox.hr_per_sd.recognition"] == (0.70, 0.60, 0.80)
    assert m["cox.hr_per_point.empathy"] == (0.93, 0.83, 1.04)
    assert m["ph.global_p"] == (0.40, None, None) and m["ph.fallback"] == (0, None, None)
    assert m["cox.hr.dgc"] == (1.40, 1.10, 1.80) and m["tv.hr.complaint_open"] == (2.5, 2.0, 3.1)
    assert m["cox.respondents"] == (1000, None, None) and m["cox.events"] == (150, None, None)


def test_the_ph_fallback_is_a_warning_and_not_evidence():
    f = _survival(fallback=True)
    warnings = [t for t, level in f.findings if level == "warning"]
    assert warnings == ["Findings use the fallback model: the effect of recognition changes with tenure "
                        "(the rule is stated under Checks)."]
    assert not any("the rule is stated under Checks" in t for t in f.evidence)
    assert f.value("ph.fallback") == 1


def test_a_failed_check_is_a_warning():
    inputs = _survival_inputs()
    inputs["cox"].diagnostics_ = pd.DataFrame({"check": ["events_per_parameter"], "term": [""], "status": ["fail"],
                                               "value": [4.0], "threshold": [10.0], "message": [""]})
    f = survival_findings(inputs.pop("checked"), **inputs)
    assert f.findings[-1] == ("Few events per model parameter (value 4, threshold 10).", "warning")


def test_a_few_respondents_left_out_are_not_counted_anywhere():
    # 9 left out (min_cell 10): "fewer than 10", and neither count they follow from is recorded
    few = _survival(n_fit=991)
    text = next(t for t in few.evidence if "leave out" in t)
    assert text == ("The survival models leave out fewer than 10 of the 1,000 respondents: they lack a value of a "
                    "model term (disappointed good customer, channel).")
    assert few.value("cox.respondents") is None and few.value("cox.events") is None
    assert "cox.respondents" in [m.name for m in few.metrics]      # recorded as withheld, not dropped
    # 10 left out: the numbers are shown
    ten = _survival(n_fit=990)
    assert ("The survival models use 990 of the 1,000 respondents: 10 lack a value of a model term "
            "(disappointed good customer, channel).") in ten.evidence
    assert ten.value("cox.respondents") == 990 and ten.value("cox.events") == 150


# ---- notebook 03 -----------------------------------------------------------------------------

def _drivers(stability):
    return NS(summary=pd.DataFrame({"construct": ["empathy", "recognition"], "rank": [2, 1],
                                    "share": [0.30, 0.70], "lower": [0.20, 0.60], "upper": [0.40, 0.80],
                                    "rank_stability": [1 - stability, stability]}))


def _rel():
    return pd.DataFrame({"construct": ["recognition", "empathy"], "n_items": [3, 1], "alpha": [0.85, np.nan],
                         "alpha_lower": [0.82, np.nan], "alpha_upper": [0.88, np.nan], "omega": [0.86, np.nan]})


def _ors(terms, ors):
    return NS(summary=pd.DataFrame({"term": terms, "odds_ratio": ors, "lower": [o * 0.9 for o in ors],
                                    "upper": [o * 1.1 for o in ors]}))


def test_driver_findings_name_the_top_driver_and_say_when_its_rank_is_uncertain():
    retention = _ors(["recognition", "channel[online]"], [1.5, 0.8])
    sure = driver_findings(_drivers(0.8), retention, ["recognition", "empathy"], 12, _rel())
    # (these two sentences write percentages as "70%", unlike the house "70 %": kept as the notebook had them)
    assert sure.texts[0] == ("Recognition carries the largest share of the explanation of time to defection: 70% "
                             "(95 % CI 60%–80%); it ranks first in 80% of bootstrap samples.")
    unsure = driver_findings(_drivers(0.49), retention, ["recognition", "empathy"], 12, _rel())
    assert unsure.texts[0].endswith("it ranks first in 49% of bootstrap samples, so which perception matters most "
                                    "is uncertain.")
    half = driver_findings(_drivers(0.5), retention, ["recognition", "empathy"], 12, _rel())
    assert "uncertain" not in half.texts[0]
    # one odds-ratio sentence per perception (not the controls), at the stated horizon
    ors = [t for t in sure.texts if "odds of still being a customer" in t]
    assert len(ors) == 1 and "12 months after the survey" in ors[0] and "recognition" in ors[0]


def test_driver_findings_with_and_without_the_recommendation_outcome():
    retention = _ors(["recognition"], [1.5])
    without = driver_findings(_drivers(0.8), retention, ["recognition", "empathy"], 12, _rel())
    assert [m.name for m in without.metrics] == [
        "drivers.rank_stability.empathy", "drivers.rank_stability.recognition", "drivers.importance.empathy",
        "drivers.importance.recognition", "measurement.alpha.recognition"]
    assert not any("recommend" in t for t in without.texts)
    rec = NS(summary=pd.DataFrame({"construct": ["empathy", "recognition"], "rank": [1, 2], "share": [0.6, 0.4],
                                   "lower": [0.5, 0.3], "upper": [0.7, 0.5], "rank_stability": [0.9, 0.1]}))
    with_rec = driver_findings(_drivers(0.8), retention, ["recognition", "empathy"], 12, _rel(),
                               ordinal=_ors(["empathy"], [1.3]), rec_drivers=rec, recommend_outcome="nps")
    assert ("For the intention to recommend, empathy matters most: 60% of the model's explanatory power "
            "(95 % CI 50%–70%).") in with_rec.texts
    assert any("odds of a better nps answer" in t for t in with_rec.texts)
    assert [m.name for m in with_rec.metrics if m.name.startswith("loyalty.")] == [
        "loyalty.importance.empathy", "loyalty.importance.recognition"]
    # reliability last: the single-item scale has no alpha metric
    assert with_rec.findings[-1][0].startswith("Empathy is measured by one item")
    assert with_rec.value("measurement.alpha.recognition") == 0.85


# ---- notebook 04 -----------------------------------------------------------------------------

CELLS = ["recognised good customers", "disappointed good customers", "recognised others", "unrecognised others"]


def _grid_inputs(dgc_share_shown=True, small_other=False):
    classified = pd.DataFrame({"segment_2x2": [CELLS[1]] * 25 + [CELLS[0]] * 50 + [CELLS[2]] * 15 + [CELLS[3]] * 10})
    table = pd.DataFrame({"cell": CELLS, "share": [0.5, 0.25 if dgc_share_shown else np.nan, 0.15, 0.10]})
    hr = pd.DataFrame({"cell": CELLS, "hr": [1.0, 2.0, 1.2, 1.1], "lower": [1.0, 1.5, 0.8, 0.7],
                       "upper": [1.0, 2.7, 1.8, 1.7], "suppressed": [False, False, False, small_other]})
    contrasts = pd.DataFrame({"cell": [CELLS[0], CELLS[2], CELLS[3]], "hr": [2.0, 1.7, 1.8],
                              "lower": [1.5, 1.1, 1.2], "upper": [2.7, 2.6, 2.7], "suppressed": [False, False, small_other]})
    wbd = NS(finding="They hold 40 % of the would-be defectors.",
             table=pd.DataFrame({"cell": CELLS, "ratio": [0.8, 1.6, 1.0, 0.9], "lower": [0.7, 1.3, 0.8, 0.7],
                                 "upper": [0.9, 1.9, 1.2, 1.1]}))
    return dict(classified=classified, table=table, hr=hr, contrasts=contrasts, wbd=wbd)


def _whatif(metrics=("expected defections", "retained months", "discounted margin"), horizons=(12, 24)):
    rows = [{"metric": m, "horizon": h, "delta": -10.0 * h if m == "expected defections" else 100.0 * h,
             "lower": -15.0 * h if m == "expected defections" else 60.0 * h,
             "upper": -5.0 * h if m == "expected defections" else 140.0 * h} for h in horizons for m in metrics]
    return pd.DataFrame(rows)


def test_whatif_metrics_carry_a_suffix_except_the_raise_at_the_main_horizon():
    f = segment_value_findings(horizon=12, min_cell=10, currency="EUR", raise_=_whatif(), move=_whatif(),
                               whatif_segment=CELLS[1], delta_points=0.5, construct="recognition")
    names = [m.name for m in f.metrics]
    assert names[:6] == ["value.whatif.delta_defections", "value.whatif.delta_months", "value.whatif.delta_margin",
                         "value.whatif.delta_defections.raise_24m", "value.whatif.delta_months.raise_24m",
                         "value.whatif.delta_margin.raise_24m"]
    assert names[6:9] == ["value.whatif.delta_defections.move_12m", "value.whatif.delta_months.move_12m",
                          "value.whatif.delta_margin.move_12m"]
    assert names[-2:] == ["value.whatif.horizon_months", "value.whatif.delta_points"]
    units = {m.name: m.unit for m in f.metrics}
    assert units["value.whatif.delta_margin.move_24m"] == "EUR" and units["value.whatif.delta_months"] is None
    m = {x.name: x for x in f.metrics}
    assert (m["value.whatif.delta_defections"].estimate, m["value.whatif.delta_defections"].lower) == (-120.0, -180.0)
    assert m["value.whatif.delta_points"].label == CELLS[1] and m["value.whatif.horizon_months"].estimate == 12
    assert f.texts == [
        "Raising recognition by 0.5 scale points for disappointed good customers would mean 120 fewer defections "
        "within 12 months of the survey (95 % CI 60 to 180 fewer).",
        "It would mean EUR 1,200 more discounted margin within 12 months (95 % CI EUR 720 to EUR 1,680 more)."]


def test_whatif_for_everyone_without_money():
    f = segment_value_findings(horizon=24, min_cell=10, raise_=_whatif(("expected defections", "retained months")),
                               whatif_segment="all", delta_points=1, construct="recognition")
    assert f.texts == ["Raising recognition by 1 scale points for every respondent would mean 240 fewer defections "
                       "within 24 months of the survey (95 % CI 120 to 360 fewer)."]
    assert {m.name for m in f.metrics} >= {"value.whatif.delta_defections", "value.whatif.delta_defections.raise_12m"}
    assert next(m for m in f.metrics if m.name == "value.whatif.delta_points").label == "every respondent"


def test_the_dgc_figures_are_withheld_with_a_warning_when_their_cell_is_blank():
    f = segment_value_findings(horizon=12, min_cell=10, **_grid_inputs(dgc_share_shown=False))
    assert f.findings == [("The disappointed good customers' figures are withheld: their cell, or a cell that would "
                           "reveal it, has fewer than 10 customers.", "warning")]
    names = [m.name for m in f.metrics]
    assert "segments.disappointed.share" not in names and "segments.disappointed.hr" not in names


def test_the_dgc_answer_share_and_metrics():
    f = segment_value_findings(horizon=12, min_cell=10, **_grid_inputs(small_other=True))
    assert f.texts[0].startswith("Disappointed good customers are 25 % of the respondents in the 2 × 2 grid. "
                                 "Are they the likeliest to leave? Yes:")
    assert f.texts[0].endswith("(Crude comparison: nothing else held equal.)")
    assert f.texts[1] == "They hold 40 % of the would-be defectors."
    m = {x.name: x for x in f.metrics}
    assert m["segments.disappointed.share"].estimate == 0.25
    assert (m["segments.disappointed.hr"].estimate, m["segments.disappointed.hr"].upper) == (2.0, 2.7)
    # a suppressed cell gives neither its ratio nor its direct comparison
    assert f"segments.hr.{CELLS[3]}" not in m and f"segments.dgc_vs.{CELLS[3]}" not in m
    assert f"segments.hr.{CELLS[2]}" in m and m[f"segments.dgc_vs.{CELLS[2]}"].label == (
        f"hazard of the disappointed good customers relative to {CELLS[2]}")
    assert m["segments.disappointed.defector_ratio"].estimate == 1.6


def test_concentration_and_cohort_figures():
    g = pd.DataFrame({"estimate": [0.55], "lower": [0.50], "upper": [0.60]})
    t = pd.DataFrame({"estimate": [0.62], "lower": [0.58], "upper": [0.66]})
    conc = NS(gini=g, top_share=t, scope="respondents in the 2 × 2 grid", sentence="The top 20 % hold 62 %.")
    sbg = NS(params_=pd.DataFrame({"estimate": [1.1, 3.2], "lower": [0.9, 2.5], "upper": [1.3, 4.0]},
                                  index=["alpha", "beta"]))
    f = segment_value_findings(horizon=12, min_cell=10, concentration=conc, sbg=sbg)
    assert f.texts == ["The top 20 % hold 62 %."]
    m = {x.name: x for x in f.metrics}
    assert (m["value.gini"].estimate, m["value.gini"].label) == (0.55, "Gini of the margin among respondents in "
                                                                  "the 2 × 2 grid")
    assert m["value.top20_share"].upper == 0.66
    assert (m["sbg.beta"].estimate, m["sbg.beta"].lower, m["sbg.beta"].upper) == (3.2, 2.5, 4.0)
    withheld = segment_value_findings(horizon=12, min_cell=10, concentration=NS(gini=None, sentence="Withheld."))
    assert withheld.texts == ["Withheld."] and withheld.metrics == []


def test_findings_value_reads_a_recorded_estimate():
    f = Findings()
    f.metric("a.b", 3, 1, 4)
    f.metric("a.c", None)
    assert f.value("a.b") == 3 and f.value("a.c") is None and f.value("missing") is None
