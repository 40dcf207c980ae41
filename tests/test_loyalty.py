"""Tests for cxlab.models.loyalty: ordinal recommendation model and retention at a horizon."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from scipy import special
from statsmodels.miscmodels.ordinal_model import OrderedModel

from cxlab.errors import ModelError, ParameterError
from cxlab.models.loyalty import censoring_survival, ordinal_model, retention_logit

CONSTRUCTS = ["recognition", "empathy"]


def _survey(n=1200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(3, 0.8, (n, 2)), columns=CONSTRUCTS)
    df["segment"] = rng.choice(["mass", "affluent"], n, p=[0.7, 0.3])
    lat = 1.0 * (df["recognition"] - 3) / 0.8 + 0.3 * (df["empathy"] - 3) / 0.8 + rng.logistic(size=n)
    df["recommend"] = np.clip(np.round(7 + 1.5 * lat), 0, 10)
    return df


def _retention(n=20000, seed=1, H=12.0, a=0.5, b=0.8):
    """Retention at H follows a known logistic model: P(retained | z) = expit(a + b z), z ~ N(0,1);
    defectors leave uniformly within (0, H]; follow-up is uniform on (0, 2H), independent."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    retained = rng.random(n) < special.expit(a + b * z)
    T = np.where(retained, H + rng.exponential(24, n), rng.uniform(0, H, n))
    C = rng.uniform(0, 2 * H, n)
    return pd.DataFrame({"recognition": 3 + 0.8 * z, "time_since_survey": np.minimum(T, C),
                         "event": (T <= C).astype(int)})


# ---- ordinal model --------------------------------------------------------------------------


def test_ordinal_odds_ratios_are_per_sd_of_the_raw_fit():
    # statsmodels 0.15 OrderedModel on the raw scale: OR per SD = exp(b_raw * sd)
    df = _survey()
    res = ordinal_model(df, "recommend", CONSTRUCTS, controls=["segment"], bins="nps")
    y = pd.Series(pd.Categorical(np.select([df.recommend <= 6, df.recommend <= 8], [0, 1], 2),
                                 ordered=True))
    X = df[CONSTRUCTS].assign(**{"segment=mass": (df.segment == "mass").astype(float)})
    raw = OrderedModel(y, X, distr="logit").fit(method="newton", disp=False, maxiter=200, tol=1e-12)
    s = res.summary.set_index("term")
    for c in CONSTRUCTS:
        assert s.loc[c, "odds_ratio"] == pytest.approx(np.exp(raw.params[c] * df[c].std()), rel=1e-4)
    # the Wald interval too, from statsmodels' own covariance (not "inside its own CI")
    ci = raw.conf_int()
    for c in CONSTRUCTS:
        assert s.loc[c, "lower"] == pytest.approx(np.exp(ci.loc[c, 0] * df[c].std()), rel=1e-4), c
        assert s.loc[c, "upper"] == pytest.approx(np.exp(ci.loc[c, 1] * df[c].std()), rel=1e-4), c
    assert res.categories_ == ["detractor", "passive", "promoter"] and res.n_ == len(df)


def test_ordinal_ame_is_the_average_change_in_p_top():
    # finite difference of statsmodels' predicted P(promoter) when a construct moves by 0.001 SD
    df = _survey(seed=2)
    res = ordinal_model(df, "recommend", CONSTRUCTS, bins="nps")
    fitted = res.result_
    X = np.column_stack([(df[c] - df[c].mean()) / df[c].std() for c in CONSTRUCTS])
    h = 1e-3
    for j, c in enumerate(CONSTRUCTS):
        up, down = X.copy(), X.copy()
        up[:, j] += h
        down[:, j] -= h
        fd = (fitted.model.predict(fitted.params, exog=up)[:, 2]
              - fitted.model.predict(fitted.params, exog=down)[:, 2]).mean() / (2 * h)
        row = res.ame_.set_index("term").loc[c]
        assert row["ame"] == pytest.approx(fd, rel=1e-5)
        assert row["lower"] < row["ame"] < row["upper"] and row["category"] == "promoter"
    assert res.ame_.set_index("term").loc["recognition", "ame"] > 0.1


def test_ordinal_raw_scale_and_category_errors():
    df = _survey(seed=3)
    res = ordinal_model(df, "recommend", CONSTRUCTS)
    assert res.categories_[0] == df.recommend.min() and res.categories_[-1] == 10
    with pytest.raises(ModelError, match="detractor"):
        ordinal_model(df[df.recommend >= 7], "recommend", CONSTRUCTS, bins="nps")
    sparse = df.copy()
    sparse.loc[sparse.index[:3], "recommend"] = 0.5
    with pytest.raises(ModelError, match="fewer than 10"):
        ordinal_model(sparse, "recommend", CONSTRUCTS)
    with pytest.raises(ParameterError, match="bins"):
        ordinal_model(df, "recommend", CONSTRUCTS, bins="quartiles")


# ---- retention ------------------------------------------------------------------------------


def test_censoring_survival_matches_lifelines_km():
    # lifelines 0.30: KaplanMeierFitter().fit(T, 1 - event); left limit G(t-)
    df = _retention(500, seed=4)
    df["time_since_survey"] = np.ceil(df["time_since_survey"])  # ties
    T, E = df["time_since_survey"], df["event"]
    km = KaplanMeierFitter().fit(T, 1 - E)
    at = np.array([1.0, 5.0, 12.0, 20.0])
    expected = km.survival_function_at_times(at - 1e-9).to_numpy()
    np.testing.assert_allclose(censoring_survival(T, E, at), expected, atol=1e-12)


def test_observable_counts_the_excluded_and_ipcw_recovers_the_truth():
    H = 12.0
    df = _retention(seed=5, H=H)
    T, E = df["time_since_survey"], df["event"]
    unknown = int(((T < H) & (E == 0)).sum())
    obs = retention_logit(df, H, ["recognition"], method="observable")
    ipcw = retention_logit(df, H, ["recognition"], method="ipcw")
    assert obs.n_excluded_ == unknown and obs.n_ == len(df) - unknown
    # truth: logit P(retained) = 0.5 + 0.8 z, z = (recognition - 3) / 0.8 (SD ~ 1)
    b_ipcw = np.log(ipcw.summary.set_index("term").loc["recognition", "odds_ratio"])
    a_ipcw, a_obs = ipcw.result_.params.iloc[0], obs.result_.params.iloc[0]
    sd = df["recognition"].std() / 0.8
    mean_z = (df["recognition"].mean() - 3) / 0.8
    assert b_ipcw / sd == pytest.approx(0.8, abs=0.06)
    assert a_ipcw - b_ipcw * (-mean_z / sd) == pytest.approx(0.5, abs=0.06)
    # dropping the early-censored over-represents early defectors: intercept biased downward
    assert a_obs < a_ipcw - 0.2


def test_ipcw_weighted_retention_equals_kaplan_meier():
    # with KM censoring weights, the IPCW share retained at H is the KM survival at H
    # (Satten & Datta 2001); the intercept score equation makes the fitted mean equal to it
    H = 10.0
    df = _retention(3000, seed=6, H=H)
    res = retention_logit(df, H, ["recognition"], method="ipcw")
    w = res.result_.model.var_weights
    y = res.result_.model.endog
    km = KaplanMeierFitter().fit(df["time_since_survey"], df["event"])
    assert np.sum(w * y) / np.sum(w) == pytest.approx(float(km.survival_function_at_times(H).iloc[0]), abs=1e-10)


def test_ipcw_robust_se_is_the_sandwich():
    # HC0 sandwich: (X'WVX)^-1 X' diag(w² (y - mu)²) X (X'WVX)^-1
    df = _retention(3000, seed=7)
    res = retention_logit(df, 12, ["recognition"], method="ipcw").result_
    X, y, w = res.model.exog, res.model.endog, res.model.var_weights
    mu = np.asarray(res.fittedvalues)
    X, y, w = np.asarray(X), np.asarray(y), np.asarray(w)
    bread = np.linalg.inv((X * (w * mu * (1 - mu))[:, None]).T @ X)
    meat = (X * ((w * (y - mu)) ** 2)[:, None]).T @ X
    np.testing.assert_allclose(np.asarray(res.cov_params()), bread @ meat @ bread, rtol=1e-6)


def test_retention_errors():
    df = _retention(400, seed=8)
    with pytest.raises(ModelError, match="too few events"):
        retention_logit(df.assign(event=0, time_since_survey=30.0).iloc[:50], 12, ["recognition"])
    with pytest.raises(ParameterError, match="method"):
        retention_logit(df, 12, ["recognition"], method="km")
    sep = df.copy()
    T, E = sep.time_since_survey, sep.event
    sep["recognition"] = np.where((E == 1) & (T <= 12), 1.0, 5.0) + np.random.default_rng(0).normal(0, 0.01, len(sep))
    with pytest.raises(ModelError, match="separation"):
        retention_logit(sep, 12, ["recognition"])


def test_ordinal_model_derivatives_are_statsmodels_own_analytically():
    # ordinal_model hands statsmodels analytic derivatives in OrderedModel's parametrisation
    # [b, t1, log(t2 - t1), ...]; against statsmodels 0.14's numerical score and Hessian and a
    # central difference of the analytic score, away from the maximum (where the chain rule's
    # second-derivative term matters)
    from statsmodels.tools.numdiff import approx_fprime

    from cxlab.models.loyalty import _analytic_derivatives

    df = _survey(seed=5)
    levels = np.sort(df["recommend"].unique())
    codes = np.searchsorted(levels, df["recommend"].to_numpy())
    K = len(levels)
    assert K >= 8
    X = df[CONSTRUCTS] - 3
    y = pd.Series(pd.Categorical.from_codes(codes, [str(v) for v in levels], ordered=True))
    model = OrderedModel(y, X, distr="logit")
    phi = np.asarray(model.fit(method="bfgs", disp=False, maxiter=3000).params)
    phi = phi + np.random.default_rng(0).normal(0, 0.1, phi.size)
    score, hessian = _analytic_derivatives(X.to_numpy(float), codes, K)
    np.testing.assert_allclose(score(phi), model.score(phi), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(hessian(phi), model.hessian(phi), rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(hessian(phi), approx_fprime(phi, score, centered=True), rtol=1e-6, atol=1e-5)
    res = ordinal_model(df, "recommend", CONSTRUCTS)     # and the fit's covariance is its inverse
    Xs = np.column_stack([(df[c] - df[c].mean()) / df[c].std() for c in CONSTRUCTS])
    H = _analytic_derivatives(Xs, codes, K)[1](np.asarray(res.result_.params))
    np.testing.assert_allclose(np.asarray(res.result_.cov_params()), np.linalg.inv(-H), rtol=1e-8)
