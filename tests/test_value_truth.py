"""What-if and the disappointed-good-customer effect against the demo generator's true model.

The demo study's hazard is known (truth.json: Weibull baseline in tenure months, log-HRs per scale
point, the DGC effect, complaint and segment effects). Raising recognition for the disappointed
good customers changes each respondent's 12-month defection probability in a way the true model
gives exactly; the what-if (a Cox model fitted on the data, bootstrap CI) must contain it.
Perceptions are held as measured at the survey, so follow-up stops at the next survey answer.
"""

import json
import warnings

import numpy as np
import pytest
from lifelines import CoxPHFitter

from cxlab.insight import segments, value
from cxlab.data.panel import build_panel
from cxlab.data.synth import write_demo
from cxlab.workbook import open_study

pytestmark = pytest.mark.slow

HORIZON = 12
DELTA = 0.5


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    spec = write_demo(tmp_path_factory.mktemp("demo-truth"), n_customers=20_000, seed=2026)
    wb = open_study(spec)
    truth = json.loads((spec.parent / "truth.json").read_text())
    p = build_panel(wb.study, wb.data, follow_up="next_survey")
    r = p.model_table([*p.constructs, "dgc", "segment", "value"], label="what-if")
    r = segments.perception_segments(r, p.recognition, scale=p.scale)
    first = p.intervals.sort_values(["customer_key", "start"]).groupby("customer_key").first()
    r = r.join(first[["complaint_open", "complaint_resolved_no_goodwill"]], on="customer_key")
    r["affluent"] = (r["segment"] == "affluent").astype(float)
    r["private"] = (r["segment"] == "private").astype(float)
    return p, r, truth


def true_defection(df, truth, constructs):
    """P(defect within HORIZON months of the survey | covariates at the survey), true model."""
    b = truth["log_hr_per_point"]
    lp = sum(b[c] * (df[c] - truth["score_centre"]) for c in constructs)
    lp = lp + truth["gamma_dgc"] * df["dgc"] + truth["delta_open"] * df["complaint_open"] \
        + truth["delta_resolved"] * df["complaint_resolved_no_goodwill"] \
        + truth["segment_log_hr"]["affluent"] * df["affluent"] + truth["segment_log_hr"]["private"] * df["private"]
    k, lam = truth["weibull_k"], truth["weibull_lam"]
    cum = ((df["entry"] + HORIZON) / lam) ** k - (df["entry"] / lam) ** k
    return 1 - np.exp(-cum * np.exp(lp))


def test_what_if_contains_the_change_the_true_model_implies(demo):
    p, r, truth = demo
    cols = [*p.constructs, "dgc", "affluent", "private", "complaint_open", "complaint_resolved_no_goodwill",
            "entry", "duration", "event"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cox = CoxPHFitter().fit(r[cols], "duration", "event", entry_col="entry")
    threshold = sum(p.scale) / 2
    est = value.what_if(r, cox, p.recognition, DELTA, segment="disappointed good customers",
                        horizons=(HORIZON,), n_boot=100, seed=1, scale=p.scale, dgc_threshold=threshold)
    est = est.set_index("metric").loc["expected defections"]

    scenario = r.copy()
    moved = scenario["segment_2x2"] == "disappointed good customers"
    scenario.loc[moved, p.recognition] = np.clip(scenario.loc[moved, p.recognition] + DELTA, *p.scale)
    scenario.loc[moved & (scenario[p.recognition] >= threshold), "dgc"] = 0
    true_change = float((true_defection(scenario, truth, p.constructs) - true_defection(r, truth, p.constructs)).sum())

    assert true_change < -10          # the scenario matters in truth
    assert est["lower"] <= true_change <= est["upper"], (est["delta"], est["lower"], est["upper"], true_change)
    assert est["upper"] - est["lower"] < abs(true_change)   # informative, not a wide net


def test_disappointed_good_customer_effect_recovered(demo):
    """The DGC log-HR, holding the perceptions, complaint status and segment: truth inside the CI."""
    p, r, truth = demo
    cols = [*p.constructs, "dgc", "affluent", "private", "complaint_open", "complaint_resolved_no_goodwill",
            "entry", "duration", "event"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = CoxPHFitter().fit(r[cols], "duration", "event", entry_col="entry").summary
    lo, hi = s.loc["dgc", "coef lower 95%"], s.loc["dgc", "coef upper 95%"]
    assert lo <= truth["gamma_dgc"] <= hi
    hr = segments.segment_hazard_ratios(r).set_index("cell")
    # the raw cell comparison also carries the lower recognition score: a larger HR than the DGC term
    assert hr.loc["disappointed good customers", "hr"] > np.exp(truth["gamma_dgc"])
