"""cxlab.models.survival (KM, log-rank, Cox, cox.zph) against R's survival package.

Reference values come from ``tests/reference/survival_reference.R`` (R 4.x, survival 3.x), through
``conftest.r_reference``: with R and its packages installed the script is re-run into a temporary
file (a failing script fails, a stale committed JSON fails) and the tests compare with that fresh
output; otherwise they compare with the committed ``survival_reference.json``.
Tolerances: Cox coefficients and SEs relative 1e-4, cox.zph statistics relative 1e-3, KM 1e-6.
Data: lifelines' Rossi data, small simulated tables, and a demo-study analysis table
(``demo_respondents.csv``, ``demo_intervals.csv`` from ``make_demo_reference_data.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import r_reference

from cxlab.models.survival.cox import CoxModel, TimeVaryingCoxModel
from cxlab.models.survival.km import kaplan_meier, logrank
from cxlab.models.survival.phtest import ph_test

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
ROSSI_TERMS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


def _na(values):
    """R's NA arrives as the string "NA" in the JSON."""
    return np.array([np.nan if v == "NA" else v for v in np.atleast_1d(values)], dtype=float)


@pytest.fixture(scope="module")
def ref(r_reference_dir):
    return r_reference("survival_reference.R", "survival_reference.json", r_reference_dir)


@pytest.fixture(scope="module")
def rossi():
    return pd.read_csv(REF / "rossi.csv")


@pytest.fixture(scope="module")
def delayed():
    return pd.read_csv(REF / "delayed_entry.csv")


@pytest.fixture(scope="module")
def counting():
    return pd.read_csv(REF / "counting_process.csv")


def _r_term(name):
    # R names factor dummies "segmentB"; cxlab names them "segment[B]"
    return name.replace("[", "").replace("]", "")


def _per_unit(summary):
    """log-HR and SE per unit of each column (constructs are fitted per SD)."""
    s = summary.copy()
    is_c = s["kind"] == "construct"
    s.loc[is_c, "log_hr"] = s.loc[is_c, "log_hr"] / s.loc[is_c, "sd"]
    s.loc[is_c, "se"] = s.loc[is_c, "se"] / s.loc[is_c, "sd"]
    s.index = [_r_term(t) for t in s["term"]]
    return s


def _assert_cox(model, r):
    s = _per_unit(model.summary).loc[r["term"]]
    np.testing.assert_allclose(s["log_hr"], r["coef"], rtol=1e-4)
    np.testing.assert_allclose(s["se"], r["se"], rtol=1e-4)


def test_coxph_efron_rossi(ref, rossi):
    # R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data=rossi, ties="efron")
    m = CoxModel([], controls=ROSSI_TERMS).fit(rossi, "week", "arrest")
    _assert_cox(m, ref["rossi_coxph"])
    assert m.log_likelihood_ == pytest.approx(ref["rossi_coxph"]["loglik"], rel=1e-6)


def test_coxph_robust_rossi(ref, rossi):
    # R: coxph(Surv(week, arrest) ~ fin + ... + prio, data=rossi, ties="efron", robust=TRUE)
    m = CoxModel([], controls=ROSSI_TERMS, robust=True).fit(rossi, "week", "arrest")
    _assert_cox(m, ref["rossi_coxph_robust"])


def test_coxph_and_zph_case_weights(ref, rossi):
    # R: f <- coxph(Surv(week, arrest) ~ fin + ... + prio, rossi, ties="efron", weights=w), w = 1 + age %% 3
    #    cox.zph(f, transform="km", terms=FALSE)
    m = CoxModel([], controls=ROSSI_TERMS, weights_col="w").fit(rossi.assign(w=1 + rossi["age"] % 3), "week", "arrest")
    _assert_cox(m, ref["rossi_coxph_weighted"])
    _assert_zph(m, ref["rossi_zph_weighted"])


def test_coxph_delayed_entry_constructs_per_point(ref, delayed):
    # R: coxph(Surv(entry, duration, event) ~ recognition + empathy + segment, data=delayed, ties="efron")
    m = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(delayed, entry_col="entry")
    _assert_cox(m, ref["delayed_coxph"])
    s = m.summary.set_index("term")
    r = dict(zip(ref["delayed_coxph"]["term"], ref["delayed_coxph"]["coef"]))
    # per scale point = per SD ** (1 / sd) = exp(R's per-unit coefficient)
    assert s.loc["recognition", "hr_per_point"] == pytest.approx(np.exp(r["recognition"]), rel=1e-4)
    assert m.reference_levels_ == {"segment": "A"}


def test_coxph_delayed_entry_robust(ref, delayed):
    # R: coxph(Surv(entry, duration, event) ~ recognition + empathy + segment, robust=TRUE, cluster=row_id)
    m = CoxModel(["recognition", "empathy"], controls=["segment"], robust=True).fit(delayed, entry_col="entry")
    _assert_cox(m, ref["delayed_coxph_robust"])


def test_coxph_delayed_entry_strata(ref, delayed):
    # R: coxph(Surv(entry, duration, event) ~ recognition + empathy + strata(segment), ties="efron")
    m = CoxModel(["recognition", "empathy"], strata="segment").fit(delayed, entry_col="entry")
    _assert_cox(m, ref["delayed_coxph_strata"])


def test_time_varying_cox_cluster_robust(ref, counting):
    # R: coxph(Surv(start, stop, event) ~ recognition + empathy + segment + complaint_open,
    #          data=cp, ties="efron", cluster=customer_key)
    m = TimeVaryingCoxModel(["recognition", "empathy"], controls=["segment", "complaint_open"]).fit(counting)
    _assert_cox(m, ref["cp_coxph_cluster"])


def _assert_zph(model, r):
    ph = ph_test(model, transform="km").set_index("term")
    ph.index = [_r_term(t) for t in ph.index]
    ph = ph.loc[r["term"]]
    np.testing.assert_allclose(ph["chi2"], r["chisq"], rtol=1e-3)
    np.testing.assert_allclose(ph["p"], r["p"], rtol=1e-3, atol=1e-6)
    np.testing.assert_array_equal(ph["df"], r["df"])


def test_cox_zph_rossi(ref, rossi):
    # R: cox.zph(coxph(Surv(week, arrest) ~ fin + ... + prio, rossi), transform="km", terms=FALSE)
    _assert_zph(CoxModel([], controls=ROSSI_TERMS).fit(rossi, "week", "arrest"), ref["rossi_zph"])


def test_cox_zph_delayed_entry(ref, delayed):
    # R: cox.zph(coxph(Surv(entry, duration, event) ~ recognition + empathy + segment), transform="km", terms=FALSE)
    m = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(delayed, entry_col="entry")
    _assert_zph(m, ref["delayed_zph"])


def test_cox_zph_stratified(ref, delayed):
    # R: cox.zph(coxph(Surv(entry, duration, event) ~ recognition + empathy + strata(segment)), transform="km", terms=FALSE)
    m = CoxModel(["recognition", "empathy"], strata="segment").fit(delayed, entry_col="entry")
    _assert_zph(m, ref["delayed_zph_strata"])


def test_cox_zph_counting_process(ref, counting):
    # R: cox.zph(coxph(Surv(start, stop, event) ~ ... + complaint_open, cluster=customer_key), transform="km", terms=FALSE)
    m = TimeVaryingCoxModel(["recognition", "empathy"], controls=["segment", "complaint_open"]).fit(counting)
    _assert_zph(m, ref["cp_zph"])


def _assert_km(result, r, check_n_risk=True):
    times = sorted(set(r["time"]))
    got = result.retention(times)
    got["group"] = got["group"].astype(str)
    exp = pd.DataFrame({"group": [str(g) for g in r["group"]], "time": r["time"], "surv": r["surv"],
                        "r_lower": _na(r["lower"]), "r_upper": _na(r["upper"]), "n_risk": r["n_risk"]})
    m = exp.merge(got, on=["group", "time"], how="left", validate="one_to_one")
    assert len(m) == len(exp) and m["estimate"].notna().all()
    np.testing.assert_allclose(m["estimate"], m["surv"], atol=1e-6)
    np.testing.assert_allclose(m["lower"], m["r_lower"], atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(m["upper"], m["r_upper"], atol=1e-6, equal_nan=True)
    if check_n_risk:
        np.testing.assert_array_equal(m["at_risk"], m["n_risk"])


@pytest.mark.parametrize(("conf_type", "key"), [("log", "rossi_km"), ("log-log", "rossi_km_loglog"),
                                                ("plain", "rossi_km_plain")])
def test_km_conf_types_rossi(ref, rossi, conf_type, key):
    # R: summary(survfit(Surv(week, arrest) ~ 1, rossi, conf.type=conf_type), times=c(5, 10, 20, 30, 40, 52))
    _assert_km(kaplan_meier(rossi, "week", "arrest", conf_type=conf_type), ref[key])


def test_km_groups_rossi(ref, rossi):
    # R: summary(survfit(Surv(week, arrest) ~ fin, rossi), times=c(5, 10, 20, 30, 40, 52))
    _assert_km(kaplan_meier(rossi, "week", "arrest", group_col="fin"), ref["rossi_km_fin"])


def test_km_delayed_entry(ref, delayed):
    # R: summary(survfit(Surv(entry, duration, event) ~ 1, delayed), times=c(6, 12, 24, 36, 48), extend=TRUE)
    # (n.risk not compared: R reports the risk set at the next observed time, cxlab at exactly t)
    # min_cell=1: numerical agreement only (small risk sets would otherwise be blanked, privacy)
    _assert_km(kaplan_meier(delayed, entry_col="entry", min_cell=1), ref["delayed_km"], check_n_risk=False)
    _assert_km(kaplan_meier(delayed, entry_col="entry", group_col="segment", min_cell=1),
               ref["delayed_km_segment"], check_n_risk=False)


@pytest.mark.parametrize(("key", "duration", "entry"), [("delayed_median", "duration", "entry"),
                                                         ("delayed_median_segment", "duration", "entry"),
                                                         ("since_survey_median_segment", "time_since_survey", None)])
def test_km_median_with_ci(ref, delayed, key, duration, entry):
    # R: quantile(survfit(Surv(entry, duration, event) ~ segment, delayed), probs=0.5)  (print.survfit's median CI)
    d = delayed.assign(time_since_survey=delayed["duration"] - delayed["entry"])
    group = None if key == "delayed_median" else "segment"
    med = kaplan_meier(d, duration, "event", entry_col=entry, group_col=group).median_
    r = ref[key]
    np.testing.assert_allclose(med["median"], _na(r["median"]), atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(med["lower"], _na(r["lower"]), atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(med["upper"], _na(r["upper"]), atol=1e-6, equal_nan=True)


def test_logrank_survdiff(ref, rossi, delayed):
    # R: survdiff(Surv(week, arrest) ~ fin, rossi); survdiff(Surv(week, arrest) ~ pmin(prio, 3), rossi)
    got = logrank(rossi, "fin", "week", "arrest").iloc[0]
    assert got["chi2"] == pytest.approx(ref["rossi_survdiff_fin"]["chisq"], rel=1e-6)
    got = logrank(rossi.assign(prio3=rossi["prio"].clip(upper=3)), "prio3", "week", "arrest").iloc[0]
    assert got["chi2"] == pytest.approx(ref["rossi_survdiff_prio3"]["chisq"], rel=1e-6)
    assert got["df"] == 3 and got["p"] == pytest.approx(ref["rossi_survdiff_prio3"]["p"], rel=1e-6)
    # R: survdiff(Surv(time_since_survey, event) ~ segment, delayed)
    d = delayed.assign(time_since_survey=delayed["duration"] - delayed["entry"])
    got = logrank(d, "segment", "time_since_survey", "event").iloc[0]
    assert got["chi2"] == pytest.approx(ref["since_survey_survdiff_segment"]["chisq"], rel=1e-6)


def test_logrank_counting_process(ref, delayed):
    # R: logrank_cp(entry, duration, event, segment) in survival_reference.R (survdiff rejects
    # Surv(entry, duration, event); the script checks logrank_cp against survdiff with entry = 0)
    got = logrank(delayed, "segment", entry_col="entry").iloc[0]
    assert got["chi2"] == pytest.approx(ref["delayed_logrank_segment"]["chisq"], rel=1e-6)
    assert got["df"] == 2


# ---- the demo study (issue 3) ---------------------------------------------------------------
# tests/reference/demo_respondents.csv and demo_intervals.csv: cxlab.data.synth.write_demo(n_customers=3000,
# seed=7) through open_study(...).panel.model_table (make_demo_reference_data.py). Read with
# float_precision="round_trip" so pandas gets exactly the doubles R's read.csv gets (pandas' default
# parser can be 1 ulp off, which could break a tie in time since survey).

DEMO_CONSTRUCTS = ["recognition", "empathy", "proximity", "affect"]
DEMO_CP_CONTROLS = ["dgc", "segment", "complaint_open", "complaint_resolved_no_goodwill"]


@pytest.fixture(scope="module")
def demo():
    d = pd.read_csv(REF / "demo_respondents.csv", float_precision="round_trip")
    return d.assign(time_since_survey=d["duration"] - d["entry"])


@pytest.fixture(scope="module")
def demo_cp():
    return pd.read_csv(REF / "demo_intervals.csv", float_precision="round_trip")


@pytest.fixture(scope="module")
def demo_cox(demo):
    return CoxModel(DEMO_CONSTRUCTS, controls=["dgc", "segment"]).fit(demo, entry_col="entry")


@pytest.fixture(scope="module")
def demo_tv_cox(demo_cp):
    return TimeVaryingCoxModel(DEMO_CONSTRUCTS, controls=DEMO_CP_CONTROLS).fit(demo_cp)


def test_coxph_demo_study(ref, demo, demo_cox):
    # R: coxph(Surv(entry, duration, event) ~ recognition + empathy + proximity + affect + dgc + segment,
    #          data=demo, ties="efron")   (segment levels mass, affluent, private)
    r = ref["demo_coxph"]
    _assert_cox(demo_cox, r)
    assert demo_cox.log_likelihood_ == pytest.approx(r["loglik"], rel=1e-6)
    assert demo_cox.reference_levels_ == {"segment": "mass"}
    # cxlab fits constructs per SD of the fitted rows (sample SD); per point = exp(R's coefficient)
    s = demo_cox.summary.set_index("term")
    coef = dict(zip(r["term"], r["coef"]))
    for c in DEMO_CONSTRUCTS:
        mean, sd = demo_cox.construct_scales_[c]
        assert mean == pytest.approx(demo[c].mean(), rel=1e-12)
        assert sd == pytest.approx(demo[c].std(ddof=1), rel=1e-12)
        assert s.loc[c, "log_hr"] == pytest.approx(coef[c] * sd, rel=1e-4)
        assert s.loc[c, "hr_per_point"] == pytest.approx(np.exp(coef[c]), rel=1e-4)


def test_cox_zph_demo_study(ref, demo_cox):
    # R: cox.zph(coxph(Surv(entry, duration, event) ~ recognition + ... + dgc + segment), transform="km", terms=FALSE)
    _assert_zph(demo_cox, ref["demo_zph"])


def test_time_varying_cox_demo_study(ref, demo_tv_cox):
    # R: coxph(Surv(start, stop, event) ~ recognition + empathy + proximity + affect + dgc + segment +
    #          complaint_open + complaint_resolved_no_goodwill + cluster(customer_key), data=demo_cp, ties="efron")
    r = ref["demo_cp_coxph_cluster"]
    _assert_cox(demo_tv_cox, r)   # robust (clustered) SEs
    naive = pd.Series(np.sqrt(np.diag(demo_tv_cox.naive_variance_matrix_.to_numpy())),
                      index=[_r_term(t) for t in demo_tv_cox.params_.index])
    sd = pd.Series({_r_term(t): demo_tv_cox.construct_scales_.get(t, (0.0, 1.0))[1] for t in demo_tv_cox.params_.index})
    np.testing.assert_allclose((naive / sd).loc[r["term"]], r["naive_se"], rtol=1e-4)
    assert demo_tv_cox.log_likelihood_ == pytest.approx(r["loglik"], rel=1e-6)


def test_cox_zph_demo_counting_process(ref, demo_tv_cox):
    # R: cox.zph(coxph(Surv(start, stop, event) ~ ... + complaint_resolved_no_goodwill + cluster(customer_key)),
    #            transform="km", terms=FALSE)
    _assert_zph(demo_tv_cox, ref["demo_cp_zph"])


def test_km_demo_time_since_survey(ref, demo):
    # R: summary(survfit(Surv(time_since_survey, event) ~ 1, demo, timefix=FALSE), times=c(3, 6, 12, 24, 36),
    #            extend=TRUE) and the same ~ segment (log CIs, Greenwood); time_since_survey = duration - entry.
    # timefix=FALSE: cxlab compares times exactly, as R does without aeqSurv (see the next test).
    _assert_km(kaplan_meier(demo, "time_since_survey", "event", timefix=False), ref["demo_km_since_survey_notimefix"])
    _assert_km(kaplan_meier(demo, "time_since_survey", "event", group_col="segment", timefix=False),
               ref["demo_km_since_survey_segment_notimefix"])


def test_km_demo_time_since_survey_r_default_timefix(ref, demo):
    # R: summary(survfit(Surv(time_since_survey, event) ~ 1, demo), times=c(3, 6, 12, 24, 36), extend=TRUE)
    # duration - entry has round-off near-ties (627 distinct values for 339 day counts); R's default
    # timefix=TRUE (aeqSurv) ties them, and so does kaplan_meier by default.
    _assert_km(kaplan_meier(demo, "time_since_survey", "event"), ref["demo_km_since_survey"])
    _assert_km(kaplan_meier(demo, "time_since_survey", "event", group_col="segment"),
               ref["demo_km_since_survey_segment"])


@pytest.mark.parametrize(("key", "duration", "entry", "group"), [
    ("demo_median_since_survey", "time_since_survey", None, None),
    ("demo_median_since_survey_segment", "time_since_survey", None, "segment"),
    ("demo_median_tenure", "duration", "entry", None),
])
def test_km_median_demo(ref, demo, key, duration, entry, group):
    # R: quantile(survfit(Surv(time_since_survey, event) ~ 1 / ~ segment, demo), probs=0.5): NA, not reached
    #    quantile(survfit(Surv(entry, duration, event) ~ 1, demo), probs=0.5): reached on the tenure clock
    med = kaplan_meier(demo, duration, "event", entry_col=entry, group_col=group).median_
    r = ref[key]
    med = med.assign(group=med["group"].astype(str)).set_index("group").loc[[str(g) for g in np.atleast_1d(r["group"])]]
    np.testing.assert_allclose(med["median"], _na(r["median"]), atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(med["lower"], _na(r["lower"]), atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(med["upper"], _na(r["upper"]), atol=1e-6, equal_nan=True)


@pytest.mark.parametrize(("key", "risk"), [
    ("rossi_concordance_prio", lambda d: d["prio"]),                      # ties in time and in risk
    ("rossi_concordance_lin", lambda d: d["prio"] - 0.05 * d["age"]),
])
def test_harrell_c_and_variance_match_r_concordance_rossi(ref, rossi, key, risk):
    # R: concordance(Surv(week, arrest) ~ risk, reverse = TRUE): $concordance, $var
    from cxlab.models.survival.evaluate import harrell_c

    c, var = harrell_c(rossi["week"].to_numpy(float), rossi["arrest"].to_numpy(bool),
                       risk(rossi).to_numpy(float), return_variance=True)
    assert c == pytest.approx(ref[key]["concordance"], rel=1e-10)
    assert var == pytest.approx(ref[key]["var"], rel=1e-8)


def test_harrell_c_and_variance_match_r_concordance_since_survey(ref, delayed):
    # R: concordance(Surv(duration - entry, event) ~ -recognition, reverse = TRUE)
    from cxlab.models.survival.evaluate import harrell_c

    c, var = harrell_c((delayed["duration"] - delayed["entry"]).to_numpy(float), delayed["event"].to_numpy(bool),
                       -delayed["recognition"].to_numpy(float), return_variance=True)
    r = ref["delayed_concordance_since_survey"]
    assert c == pytest.approx(r["concordance"], rel=1e-10)
    assert var == pytest.approx(r["var"], rel=1e-8)
