"""cxlab.models.survival core: parameter recovery, PH fallback, edge cases (simulated data, fixed seeds).

R agreement is in test_survival_reference.py; here the references are the simulation truth,
lifelines (an independent KM implementation) and exact identities.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cxlab.errors import ModelError, ParameterError
from cxlab.models.survival.cox import CoxModel, TimeVaryingCoxModel
from cxlab.models.survival.km import kaplan_meier, logrank, pairwise_logrank
from cxlab.models.survival.phtest import check_and_fallback, ph_test, split_at_event_times

TRUTH = {"recognition": -0.4, "empathy": -0.2, "segment[B]": 0.3}  # log-HR per scale point / vs A


def simulate_respondents(n=1500, seed=11):
    """Respondents on a tenure clock (months) with delayed entry at the survey; Weibull PH truth."""
    rng = np.random.default_rng(seed)
    entry = rng.uniform(0, 24, n)
    recognition = np.clip(np.round(rng.normal(3.3, 0.9, n) * 2) / 2, 1, 5)
    empathy = np.clip(np.round((0.4 * recognition + rng.normal(1.9, 0.8, n)) * 2) / 2, 1, 5)
    segment = rng.choice(["A", "B"], size=n, p=[0.6, 0.4])
    lp = TRUTH["recognition"] * recognition + TRUTH["empathy"] * empathy + TRUTH["segment[B]"] * (segment == "B")
    shape, scale = 1.1, 40.0
    lam = np.exp(lp - lp.mean())
    t = scale * ((entry / scale) ** shape + rng.exponential(1.0, n) / lam) ** (1 / shape)
    end = entry + rng.uniform(6, 36, n)
    event = (t <= end).astype(int)
    duration = np.where(event == 1, t, end)
    return pd.DataFrame({"entry": entry, "duration": duration, "event": event, "recognition": recognition,
                         "empathy": empathy, "segment": segment, "time_since_survey": duration - entry})


@pytest.fixture(scope="module")
def respondents():
    return simulate_respondents()


def test_cox_recovers_known_log_hazard_ratios_with_delayed_entry(respondents):
    # truth: simulate_respondents (Weibull PH, left truncation at the survey)
    m = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(respondents, entry_col="entry")
    s = m.summary.set_index("term")
    for term in ("recognition", "empathy"):
        assert np.log(s.loc[term, "lower_per_point"]) < TRUTH[term] < np.log(s.loc[term, "upper_per_point"])
        # per point = per SD ** (1/sd)
        assert s.loc[term, "hr_per_point"] == pytest.approx(s.loc[term, "hr_per_sd"] ** (1 / s.loc[term, "sd"]))
    assert np.log(s.loc["segment[B]", "lower"]) < TRUTH["segment[B]"] < np.log(s.loc["segment[B]", "upper"])
    assert s.loc["segment[B]", "reference"] == "A"
    assert set(s["kind"]) == {"construct", "control"}
    # ignoring delayed entry (risk set from tenure 0) is a different, biased-likelihood fit
    naive = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(respondents)
    assert not np.allclose(naive.params_, m.params_, atol=1e-3)


def test_time_varying_model_equals_unsplit_model_when_covariates_are_constant(respondents):
    # exact identity: splitting rows at event times does not change the partial likelihood
    d = respondents.head(400).reset_index(drop=True)
    split = split_at_event_times(d, "duration", "event", "entry").rename(columns={"_row": "customer_key"})
    assert len(split) > len(d)
    tv = TimeVaryingCoxModel(["recognition"], controls=["segment"]).fit(
        split, start_col="_start", stop_col="_stop", event_col="_event", id_col="customer_key")
    one = CoxModel(["recognition"], controls=["segment"], robust=True).fit(d, entry_col="entry")
    np.testing.assert_allclose(tv.params_, one.params_, rtol=1e-5)
    # clustering the split rows by customer gives the per-customer robust SE
    np.testing.assert_allclose(tv.summary["se"], one.summary["se"], rtol=1e-4)
    assert "customer_key" not in tv.summary.to_string()


def test_km_delayed_entry_matches_lifelines(respondents):
    # reference: lifelines KaplanMeierFitter().fit(duration, event, entry=entry)
    from lifelines import KaplanMeierFitter

    km = kaplan_meier(respondents, entry_col="entry")
    ref = KaplanMeierFitter().fit(respondents["duration"], respondents["event"], entry=respondents["entry"])
    times = [6.0, 12.0, 24.0, 36.0]
    got = km.retention(times)
    np.testing.assert_allclose(got["estimate"], ref.survival_function_at_times(times).to_numpy(), atol=1e-10)
    # the interval too (not just "inside its own CI"): lifelines' exponential Greenwood interval is
    # R's conf.type = "log-log"; both use the left-truncated risk sets
    ll = kaplan_meier(respondents, entry_col="entry", conf_type="log-log").retention(times)
    ci = ref.confidence_interval_survival_function_
    at = [ci[ci.index <= t].iloc[-1] for t in times]
    np.testing.assert_allclose(ll["lower"], [r.iloc[0] for r in at], rtol=1e-8)
    np.testing.assert_allclose(ll["upper"], [r.iloc[1] for r in at], rtol=1e-8)


def test_km_flags_small_cells_and_at_risk_table(respondents):
    d = respondents.head(60)
    km = kaplan_meier(d, entry_col="entry", group_col="segment", min_cell=10)
    tab = km.at_risk_table([0, 12, 60])
    assert list(tab.columns) == ["group", "time", "at_risk", "cum_events", "suppressed"]
    # nobody is at risk at tenure 0 under delayed entry; at 60 months the tail is small: those
    # cells are flagged and blanked (privacy), the others show the true count
    raw = km._risk_counts(np.array([0.0, 12.0, 60.0]))
    assert raw.loc[raw["time"] == 0, "at_risk"].eq(0).all()
    np.testing.assert_array_equal(tab["suppressed"], raw["at_risk"] < 10)
    assert tab.loc[tab["suppressed"], "at_risk"].isna().all()
    assert (km.survival_["suppressed"] == (km.survival_["at_risk"] < 10)).all()
    ret = km.retention([12])
    assert {"group", "time", "estimate", "lower", "upper", "at_risk", "suppressed"} <= set(ret.columns)


def test_pairwise_logrank_holm_matches_statsmodels(respondents):
    # reference: statsmodels multipletests(p, method="holm") (= R p.adjust(p, "holm"))
    from statsmodels.stats.multitest import multipletests

    d = respondents.assign(band=pd.cut(respondents["recognition"], [0, 2.5, 3.5, 5], labels=["low", "mid", "high"]).astype(str))
    pw = pairwise_logrank(d, "band", entry_col="entry")
    assert len(pw) == 3
    np.testing.assert_allclose(pw["p_holm"], multipletests(pw["p"], method="holm")[1])
    glob = logrank(d, "band", entry_col="entry")
    assert glob.loc[0, "df"] == 2 and glob.loc[0, "p"] < 0.05  # recognition truly matters


def simulate_non_proportional(n=800, seed=5):
    """`affect` helps early and hurts late (log-HR -0.9 before 12 months, +0.9 after); `channel`
    (branch vs web) is PH-violating too (log-HR +1.2 before 12 months, -0.6 after); `recognition` is PH."""
    rng = np.random.default_rng(seed)
    affect = rng.normal(3, 1, n)
    recognition = rng.normal(3, 1, n)
    channel = rng.choice(["web", "branch"], size=n, p=[0.55, 0.45])
    br = (channel == "branch").astype(float)
    z = affect - 3
    base = -3.2 - 0.3 * (recognition - 3)
    h1 = np.exp(base - 0.9 * z + 1.2 * br)   # hazard before 12 months
    h2 = np.exp(base + 0.9 * z - 0.6 * br)   # hazard after 12 months
    e = rng.exponential(1.0, n)
    t = np.where(e < 12 * h1, e / h1, 12 + (e - 12 * h1) / h2)
    end = rng.uniform(20, 48, n)
    event = (t <= end).astype(int)
    # whole months, as the panel delivers them (many tied event times)
    return pd.DataFrame({"duration": np.ceil(np.minimum(t, end)), "event": event, "affect": affect,
                         "recognition": recognition, "channel": channel})


def test_ph_violation_is_flagged_and_fallback_is_labelled():
    d = simulate_non_proportional()
    m = CoxModel(["affect", "recognition"], controls=["channel"]).fit(d)
    ph = ph_test(m).set_index("term")
    assert list(ph.columns) == ["variable", "chi2", "df", "p", "transform"]
    assert ph.loc["affect", "p"] < 0.001 and ph.loc["recognition", "p"] > 0.05
    assert "GLOBAL" in ph.index and ph.loc["GLOBAL", "df"] == 3
    fb = check_and_fallback(m, d)
    assert fb.uses == "fallback" and fb.fallback is not None
    actions = fb.actions_.set_index("variable")["action"]
    assert actions["affect"].startswith("time interaction")
    assert actions["channel"] == "stratify on channel"
    s = fb.summary.set_index("term")
    inter = [t for t in s.index if t.startswith("affect x log(t/")]
    assert len(inter) == 1 and s.loc[inter[0], "kind"] == "time_interaction"
    # truth: the affect effect rises over tenure (negative early, positive late)
    assert s.loc[inter[0], "log_hr"] > 0 and s.loc[inter[0], "p"] < 0.001
    assert not any(t.startswith("channel") for t in s.index)  # stratified: no HR reported
    assert "fallback" in fb.label and "affect" in fb.label and "channel" in fb.label
    assert fb.model is fb.fallback
    assert "approximation" not in fb.label  # exact split at every event time


def test_fallback_too_many_rows_uses_quantile_cuts_and_says_so():
    d = simulate_non_proportional(n=300, seed=8)
    m = CoxModel(["affect"]).fit(d)
    with pytest.warns(UserWarning, match="max_rows=2000"):
        fb = check_and_fallback(m, d, max_rows=2000)
    assert fb.uses == "fallback" and "approximation" in fb.label
    assert fb.fallback.n_ <= 2000 + len(d)
    inter = fb.summary.set_index("kind").loc["time_interaction"]
    assert inter["log_hr"] > 0  # truth: affect's log-HR rises over tenure


def test_no_ph_violation_keeps_cox(respondents):
    m = CoxModel(["recognition"], controls=["segment"]).fit(respondents, entry_col="entry")
    fb = check_and_fallback(m, respondents)
    assert fb.uses == "cox" and fb.fallback is None and "Cox model" in fb.label
    assert fb.model is m


def test_diagnostics_flag_collinearity_and_few_events(respondents):
    rng = np.random.default_rng(3)
    d = respondents.head(300).assign(recognition_copy=lambda x: x["recognition"] + rng.normal(0, 0.05, len(x)))
    with pytest.warns(UserWarning, match="vif"):
        m = CoxModel(["recognition", "recognition_copy"]).fit(d, entry_col="entry")
    diag = m.diagnostics_
    assert set(diag["check"]) == {"events_per_parameter", "vif", "convergence"}
    assert (diag.loc[diag["check"] == "vif", "status"] == "warn").all()
    small = respondents.head(60)
    with pytest.warns(UserWarning, match="events_per_parameter"):
        m2 = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(small, entry_col="entry")
    assert m2.diagnostics_.set_index("check").loc["events_per_parameter", "status"] == "warn"


# ---- edge cases: a ModelError with a useful message, never a stack trace from lifelines ----


def _small(respondents, n=80):
    return respondents.head(n).reset_index(drop=True).copy()


def test_error_nan_rows_counted(respondents):
    d = _small(respondents)
    d.loc[[3, 7, 9], "recognition"] = np.nan
    with pytest.raises(ModelError, match=r"3 of 80 rows have missing values.*recognition.*upstream"):
        CoxModel(["recognition"]).fit(d, entry_col="entry")


def test_error_nan_rows_counted_per_column_text_controls_too(respondents):
    # a float column's NaN, a text control's None (read from the codes the design reuses): the
    # rows counted once, each column's count named
    d = _small(respondents)
    d["channel"] = np.where(np.arange(len(d)) % 2, "web", "branch").astype(object)
    d.loc[[3, 7], "recognition"] = np.nan
    d.loc[[7, 11, 12], "channel"] = None
    with pytest.raises(ModelError, match=r"4 of 80 rows have missing values in the model columns \(missing per "
                                         r"column: \{'recognition': 2, 'channel': 3\}\)"):
        CoxModel(["recognition"], controls=["channel"]).fit(d, entry_col="entry")
    d = _small(respondents).assign(empathy=np.inf)   # an infinity is not a missing value
    with pytest.raises(ModelError, match="construct 'empathy' has zero variance"):
        CoxModel(["recognition", "empathy"]).fit(d, entry_col="entry")


def test_error_empty_table(respondents):
    with pytest.raises(ModelError, match="no rows"):
        CoxModel(["recognition"]).fit(respondents.iloc[:0], entry_col="entry")


def test_error_all_censored(respondents):
    d = _small(respondents).assign(event=0)
    with pytest.raises(ModelError, match="all 80 customers are censored"):
        CoxModel(["recognition"]).fit(d, entry_col="entry")


def test_error_fewer_events_than_parameters(respondents):
    d = _small(respondents).assign(event=0)
    d.loc[[0, 1], "event"] = 1
    d["x3"] = np.arange(len(d)) % 7
    with pytest.raises(ModelError, match="2 events for 3 parameters"):
        CoxModel(["recognition", "empathy"], controls=["x3"]).fit(d, entry_col="entry")


def test_error_zero_variance_construct_named(respondents):
    d = _small(respondents).assign(proximity=4.0)
    with pytest.raises(ModelError, match="construct 'proximity' has zero variance"):
        CoxModel(["recognition", "proximity"]).fit(d, entry_col="entry")


def test_error_perfect_separation_level_without_events(respondents):
    d = _small(respondents)
    d["channel"] = np.where(d["event"] == 1, "web", np.where(np.arange(len(d)) % 2 == 0, "web", "branch"))
    with pytest.raises(ModelError, match=r"perfect separation on 'channel\[branch\]'.*no customer"):
        CoxModel(["recognition"], controls=["channel"]).fit(d, entry_col="entry")


def test_error_non_convergence_names_term():
    # monotone likelihood: at every event time the defector has the highest `risk_score` at risk
    rng = np.random.default_rng(0)
    n = 60
    duration = rng.permutation(np.arange(1, n + 1)).astype(float)
    event = (duration <= 40).astype(int)
    d = pd.DataFrame({"duration": duration, "event": event, "risk_score": -duration,
                      "recognition": rng.normal(3, 1, n)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelError, match=r"did not converge.*'risk_score'.*penalizer"):
            CoxModel(["recognition"], controls=["risk_score"]).fit(d)


def test_error_entry_after_duration_and_bad_parameters(respondents):
    d = _small(respondents)
    d.loc[0, "entry"] = d.loc[0, "duration"] + 1
    with pytest.raises(ModelError, match="1 row\\(s\\) have entry >= duration"):
        CoxModel(["recognition"]).fit(d, entry_col="entry")
    with pytest.raises(ModelError, match="1 row\\(s\\) have entry >= duration"):
        kaplan_meier(d, entry_col="entry")
    with pytest.raises(ParameterError, match="ties"):
        CoxModel(["recognition"], ties="breslow").fit(_small(respondents))
    with pytest.raises(ParameterError, match="conf_type"):
        kaplan_meier(_small(respondents), conf_type="logit")
    m = CoxModel(["recognition"]).fit(_small(respondents), entry_col="entry")
    with pytest.raises(ParameterError, match="transform"):
        ph_test(m, transform="spline")
    with pytest.raises(ModelError, match="not found"):
        CoxModel(["recognition", "empathie"]).fit(_small(respondents))


def test_plots_return_axes(respondents):
    from cxlab.report.plots import plot_forest, plot_km

    km = kaplan_meier(respondents, entry_col="entry", group_col="segment")
    ax = plot_km(km)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == 2  # one curve per segment
    assert any(t.get_text() == "at risk" for t in ax.texts)
    m = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(respondents, entry_col="entry")
    ax = plot_forest(m.summary)
    assert ax.get_xscale() == "log" and len(ax.get_yticklabels()) == 3
    import matplotlib.pyplot as plt

    plt.close("all")


def test_vectorised_efron_statistics_equal_the_event_time_loop():
    # reference: the straightforward loop over event times (_efron_statistics_loop), with ties,
    # delayed entry, strata and case weights
    from cxlab.models.survival.cox import _efron_statistics_loop, efron_statistics

    rng = np.random.default_rng(1)
    n = 300
    start = np.floor(rng.uniform(0, 10, n))
    stop = start + np.ceil(rng.uniform(0.1, 20, n))
    event = (rng.random(n) < 0.6).astype(int)
    X = rng.normal(size=(n, 3))
    w = rng.uniform(0.5, 2, n)
    strata = rng.integers(0, 2, n)
    beta = np.array([0.3, -0.2, 0.1])
    fast = efron_statistics(start, stop, event, X, w, strata, beta, gtime=np.log(stop))
    slow = _efron_statistics_loop(start, stop, event, X, w, strata, beta, gtime=np.log(stop))
    for key in ("score", "info", "resid", "loglik", "u_g", "imat_full"):
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-10, atol=1e-10)


def test_km_groups_follow_a_categorical_order():
    import pandas as pd

    from cxlab.models.survival.km import kaplan_meier

    d = pd.DataFrame({"duration": [1.0, 2, 3, 4, 5, 6], "event": [1, 0, 1, 0, 1, 0],
                      "band": pd.Categorical(["low", "high", "middle", "low", "high", "middle"],
                                             categories=["low", "middle", "high"], ordered=True)})
    km = kaplan_meier(d, group_col="band", min_cell=1)
    assert list(dict.fromkeys(km.survival_["group"])) == ["low", "middle", "high"]
    assert km.summary["group"].tolist() == ["low", "middle", "high"]
    assert list(dict.fromkeys(kaplan_meier(d.assign(band=d["band"].astype(str)), group_col="band",
                                           min_cell=1).survival_["group"])) == ["high", "low", "middle"]


def test_timefix_ties_round_off_near_ties_as_r_aeqsurv():
    # R: survfit(Surv(t, e) ~ 1) with timefix=TRUE (aeqSurv): 0.1 + 0.2 and 0.3 are one time
    import numpy as np
    import pandas as pd

    from cxlab.models.survival.km import kaplan_meier

    d = pd.DataFrame({"t": [0.1 + 0.2, 0.3, 1.0, 2.0], "e": [1, 1, 0, 1]})
    fixed = kaplan_meier(d, "t", "e", min_cell=1).survival_
    raw = kaplan_meier(d, "t", "e", min_cell=1, timefix=False).survival_
    assert len(fixed) == 3 and len(raw) == 4
    assert fixed["events"].iloc[0] == 2 and fixed["survival"].iloc[0] == pytest.approx(0.5)
    assert np.isclose(fixed["survival"].iloc[-1], raw["survival"].iloc[-1])
    with pytest.raises(ModelError, match="differ only by round-off"):
        kaplan_meier(pd.DataFrame({"a": [0.3], "t": [0.1 + 0.2], "e": [1]}), "t", "e", entry_col="a")


def test_ph_fallback_accounts_for_testing_several_terms(monkeypatch):
    """One term of three at p = 0.023 is not a failure once the three tests are Holm-corrected
    (0.069); at p = 0.001 it is (0.003). The rule is stated in plain words, without jargon."""
    import cxlab.models.survival.phtest as phtest

    d = simulate_non_proportional(n=400, seed=3)
    m = CoxModel(["affect", "recognition"], controls=["channel"]).fit(d)
    real = phtest.ph_test(m)

    def fake(p_affect):
        def ph(model, transform="km"):
            out = real.copy()
            out["p"] = [p_affect, 0.40, 0.60, 0.05][: len(out)] if len(out) == 4 else out["p"]
            return out
        return ph

    assert len(real) == 4
    monkeypatch.setattr(phtest, "ph_test", fake(0.023))
    fb = phtest.check_and_fallback(m, d)
    assert fb.uses == "cox" and fb.fallback is None
    assert fb.ph_.set_index("term").loc["affect", "p_holm"] == pytest.approx(0.069)
    assert "3 terms at once (Holm)" in fb.label
    monkeypatch.setattr(phtest, "ph_test", fake(0.001))
    fb = phtest.check_and_fallback(m, d)
    assert fb.uses == "fallback" and list(fb.actions_["variable"]) == ["affect"]
    for jargon in ("cox.zph", "transform=", "log(t/"):
        assert jargon not in fb.label
    assert "median tenure at defection" in fb.label


def test_perfect_separation_names_the_side_and_its_rows():
    # events only among 'web' customers (a minority level): the dummy channel[web] = 0 side, i.e.
    # every other level, has no event; a 0/1 numeric control and a 0/1 construct with no event at 1
    rng = np.random.default_rng(3)
    n = 600
    web = np.arange(n) < 200
    d = pd.DataFrame({"recognition": rng.normal(3, 1, n), "entry": 0.0,
                      "duration": rng.uniform(1, 30, n), "event": 0})
    d.loc[web & (rng.random(n) < 0.5), "event"] = 1
    d["channel"] = np.where(web, "web", "branch")   # reference: branch (the most frequent)
    with pytest.raises(ModelError, match=r"perfect separation on 'channel\[web\]': no customer with the other "
                                         r"levels of channel defected \(400 rows\)"):
        CoxModel(["recognition"], controls=["channel"]).fit(d, entry_col="entry")
    d["flag"] = (~web).astype(int)
    with pytest.raises(ModelError, match=r"perfect separation on 'flag': no customer with flag = 1 defected \(400 rows\)"):
        CoxModel(["recognition"], controls=["flag"]).fit(d, entry_col="entry")
    d["item"] = np.where(web, 2.0, 5.0)
    with pytest.raises(ModelError, match=r"perfect separation on 'item'.*defected \(400 rows\)"):
        CoxModel(["recognition", "item"]).fit(d, entry_col="entry")
