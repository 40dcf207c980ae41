"""cxlab.survival (KM, log-rank, Cox, cox.zph) against R's survival package.

Reference values come from ``tests/reference/survival_reference.R`` (R 4.x, survival 3.x). If
``Rscript`` is on PATH the script is re-run into a temporary file and the tests compare with
that fresh output; otherwise they compare with the committed ``survival_reference.json``.
Tolerances: Cox coefficients and SEs relative 1e-4, cox.zph statistics relative 1e-3, KM 1e-6.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab.survival.cox import CoxModel, TimeVaryingCoxModel
from cxlab.survival.km import kaplan_meier, logrank
from cxlab.survival.phtest import ph_test

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
ROSSI_TERMS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


def _na(values):
    """R's NA arrives as the string "NA" in the JSON."""
    return np.array([np.nan if v == "NA" else v for v in np.atleast_1d(values)], dtype=float)


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    rscript = shutil.which("Rscript")
    if rscript is None:
        return json.loads((REF / "survival_reference.json").read_text())
    out = tmp_path_factory.mktemp("rref") / "survival_reference.json"
    subprocess.run([rscript, str(REF / "survival_reference.R"), str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    return json.loads(out.read_text())


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
    _assert_km(kaplan_meier(delayed, entry_col="entry"), ref["delayed_km"], check_n_risk=False)
    _assert_km(kaplan_meier(delayed, entry_col="entry", group_col="segment"), ref["delayed_km_segment"],
               check_n_risk=False)


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
