"""Tests for cxlab.models.survival.engine, the one Cox engine of cxlab.

References: lifelines 0.30 ``CoxPHFitter`` (Efron ties; ``entry_col``, ``weights_col``, ``strata``)
and ``CoxTimeVaryingFitter`` (baseline hazard with left-truncated risk sets), statsmodels 0.15
``PHReg(ties="breslow")``, row duplication (frequency weights) and the slow event-time loop
``_efron_statistics_loop`` (score residuals, cox.zph expansion). R agreement is tested through
CoxModel in tests/test_survival_reference.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, CoxTimeVaryingFitter

from cxlab.errors import ModelError
from cxlab.models.survival.engine import (CoxProblem, RiskSets, _efron_statistics_loop, breslow_baseline,
                                   efron_statistics, fit_cox)

COLS = ["x1", "x2", "x3"]


def _data(n=600, seed=0, ties=True, entry=True):
    """Exponential PH data with delayed entry; whole-unit times give many tied events."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    t = rng.exponential(20 * np.exp(-X @ np.array([0.5, -0.3, 0.0])))
    c = rng.uniform(5, 40, n)
    df = pd.DataFrame(X, columns=COLS)
    df["entry"] = np.floor(rng.uniform(0, 8, n)) if entry else 0.0
    stop = df["entry"] + np.minimum(t, c)
    df["stop"] = np.ceil(stop) if ties else stop
    df["event"] = (t <= c).astype(int)
    df["w"] = rng.uniform(0.5, 2.0, n)
    df["stratum"] = rng.choice(["a", "b", "c"], n)
    return df


def _lifelines(df, **kw):
    cols = COLS + ["stop", "event"] + [c for c in ("entry", "w", "stratum") if c in kw.values() or c in kw.get("strata", [])]
    return CoxPHFitter(strata=kw.pop("strata", None)).fit(df[cols], "stop", "event", fit_options={"precision": 1e-12}, **kw)


def _engine(df, entry=True, weights=False, strata=False, **kw):
    return fit_cox(df[COLS].to_numpy(), df["stop"].to_numpy(), df["event"].to_numpy(),
                   entry=df["entry"].to_numpy() if entry else None, strata=df["stratum"].to_numpy() if strata else None,
                   weights=df["w"].to_numpy() if weights else None, **kw)


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("entry", [True, False])
def test_engine_equals_lifelines_with_and_without_entry(ties, entry):
    # lifelines 0.30: CoxPHFitter().fit(df, "stop", "event", entry_col="entry") (Efron ties)
    df = _data(seed=1, ties=ties)
    ref = _lifelines(df, entry_col="entry") if entry else _lifelines(df.drop(columns="entry"))
    res = _engine(df, entry=entry)
    assert res.converged
    np.testing.assert_allclose(res.coef, ref.params_[COLS].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(res.variance, ref.variance_matrix_.loc[COLS, COLS].to_numpy(), rtol=1e-6, atol=1e-10)
    assert res.loglik == pytest.approx(ref.log_likelihood_, abs=1e-6)
    assert res.loglik_null == pytest.approx(ref._ll_null_, abs=1e-6)


def test_engine_equals_lifelines_with_case_weights_and_ties():
    # lifelines 0.30: CoxPHFitter().fit(..., weights_col="w", entry_col="entry"): R's Efron
    # convention for weighted ties (mean weight of the tied events)
    df = _data(seed=2)
    ref = _lifelines(df, entry_col="entry", weights_col="w")
    res = _engine(df, weights=True)
    np.testing.assert_allclose(res.coef, ref.params_[COLS].to_numpy(), atol=1e-6)
    assert res.loglik == pytest.approx(ref.log_likelihood_, abs=1e-6)
    np.testing.assert_allclose(res.variance, ref.variance_matrix_.loc[COLS, COLS].to_numpy(), rtol=1e-6, atol=1e-10)


def test_engine_equals_lifelines_with_strata_entry_and_weights():
    # lifelines 0.30: CoxPHFitter(strata=["stratum"]).fit(..., entry_col="entry", weights_col="w")
    df = _data(seed=3)
    ref = _lifelines(df, strata=["stratum"], entry_col="entry", weights_col="w")
    res = _engine(df, weights=True, strata=True)
    np.testing.assert_allclose(res.coef, ref.params_[COLS].to_numpy(), atol=1e-6)
    assert res.loglik == pytest.approx(ref.log_likelihood_, abs=1e-6)
    np.testing.assert_allclose(res.variance, ref.variance_matrix_.loc[COLS, COLS].to_numpy(), rtol=1e-6, atol=1e-10)


def test_frequency_weights_equal_duplicated_rows():
    # reference: the unweighted fit on the table with row i repeated freq[i] times (tied copies of a
    # death are separate tied deaths); lifelines 0.30 on the duplicated table as well
    df = _data(n=300, seed=4)
    freq = np.random.default_rng(5).integers(0, 4, len(df))
    dup = df.loc[df.index.repeat(freq)].reset_index(drop=True)
    res = _engine(df, freq=freq)
    ref = _engine(dup)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-10)
    assert res.loglik == pytest.approx(ref.loglik, abs=1e-8)
    np.testing.assert_allclose(res.information, ref.information, rtol=1e-10)
    ll = _lifelines(dup, entry_col="entry")
    np.testing.assert_allclose(res.coef, ll.params_[COLS].to_numpy(), atol=1e-6)


def test_breslow_ties_equal_statsmodels_phreg():
    # statsmodels 0.15: PHReg(stop, X, status=event, entry=entry, strata=stratum, ties="breslow").
    # statsmodels counts a row entering exactly at an event time as at risk (R and lifelines do
    # not), so entries are put half-way between the whole-unit event times.
    from statsmodels.duration.hazard_regression import PHReg

    df = _data(seed=6)
    df["entry"] += 0.5
    ref = PHReg(df["stop"], df[COLS], status=df["event"], entry=df["entry"], strata=df["stratum"],
                ties="breslow").fit()
    res = _engine(df, strata=True, ties="breslow")
    np.testing.assert_allclose(res.coef, ref.params, atol=1e-6)
    np.testing.assert_allclose(res.variance, ref.cov_params(), rtol=1e-5)
    assert res.loglik == pytest.approx(ref.llf, abs=1e-6)


def test_score_residuals_and_zph_expansion_equal_the_event_time_loop():
    # reference: _efron_statistics_loop, the straightforward loop over event times (R agscore.c
    # logic), with ties, delayed entry, strata and case weights
    df = _data(n=250, seed=7)
    X, st = df[COLS].to_numpy(), df["stratum"].to_numpy()
    beta = np.array([0.4, -0.2, 0.1])
    codes = pd.factorize(st)[0]
    fast = efron_statistics(df["entry"].to_numpy(), df["stop"].to_numpy(), df["event"].to_numpy(), X,
                            df["w"].to_numpy(), codes, beta, gtime=np.log(df["stop"].to_numpy()))
    slow = _efron_statistics_loop(df["entry"].to_numpy(), df["stop"].to_numpy(), df["event"].to_numpy(), X,
                                  df["w"].to_numpy(), codes, beta, gtime=np.log(df["stop"].to_numpy()))
    for key in ("score", "info", "resid", "loglik", "u_g", "imat_full"):
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-9, atol=1e-9, err_msg=key)


def test_robust_variance_is_the_dfbeta_sandwich():
    # the sandwich D'D with D = weighted score residuals x variance (R residuals(type="dfbeta"));
    # clustering every row on its own leaves it unchanged
    df = _data(n=300, seed=8)
    res = _engine(df, weights=True, residuals=True)
    D = (res.score_residuals * df["w"].to_numpy()[:, None]) @ res.variance
    np.testing.assert_allclose(res.robust_variance(df["w"].to_numpy()), D.T @ D, rtol=1e-12)
    np.testing.assert_allclose(res.robust_variance(df["w"].to_numpy(), cluster=np.arange(len(df))), D.T @ D,
                               rtol=1e-12)
    # the residuals sum to the score, 0 at the estimate
    np.testing.assert_allclose((res.score_residuals * df["w"].to_numpy()[:, None]).sum(0), 0, atol=1e-8)


def test_breslow_baseline_honours_delayed_entry():
    # lifelines 0.30 CoxTimeVaryingFitter (start=entry, stop) has left-truncated risk sets; its
    # baseline cumulative hazard is at the covariate means
    df = _data(n=400, seed=9)
    res = _engine(df)
    ctv = CoxTimeVaryingFitter().fit(df[COLS + ["entry", "stop", "event"]].assign(id=np.arange(len(df))),
                                     id_col="id", event_col="event", start_col="entry", stop_col="stop")
    mean = df[COLS].to_numpy().mean(0)
    risk = np.exp((df[COLS].to_numpy() - mean) @ res.coef)
    times, cumhaz, stratum = breslow_baseline(df["stop"], df["event"], entry=df["entry"], risk=risk)
    ref = ctv.baseline_cumulative_hazard_.iloc[:, 0]
    np.testing.assert_allclose(cumhaz, ref.loc[times].to_numpy(), rtol=1e-5)
    assert (stratum == 0).all()
    # per stratum the cumulative hazard restarts: equal to the baseline of each stratum alone
    st = df["stratum"].to_numpy()
    t_all, h_all, s_all = breslow_baseline(df["stop"], df["event"], entry=df["entry"], risk=risk, strata=st)
    for code, level in enumerate(np.unique(st)):
        m = st == level
        t1, h1, _ = breslow_baseline(df["stop"][m], df["event"][m], entry=df["entry"][m], risk=risk[m])
        np.testing.assert_allclose(t_all[s_all == code], t1)
        np.testing.assert_allclose(h_all[s_all == code], h1, rtol=1e-12)


def test_non_convergence_and_bad_input_raise_model_errors():
    # monotone likelihood: the defector always has the highest x among those at risk
    n = 60
    rng = np.random.default_rng(0)
    stop = rng.permutation(np.arange(1, n + 1)).astype(float)
    event = (stop <= 40).astype(int)
    X = np.column_stack([-stop, rng.normal(size=n)])
    res = fit_cox(X, stop, event, raise_on_failure=False)
    assert not res.converged or np.abs(res.coef[0]) * X[:, 0].std() > 15  # runs off to infinity
    X2 = np.column_stack([X[:, 1], 2 * X[:, 1]])  # collinear
    with pytest.raises(ModelError, match="did not converge.*singular"):
        fit_cox(X2, stop, event)
    with pytest.raises(ModelError, match="entry >= stop"):
        fit_cox(X[:, 1:], stop, event, entry=stop)


def test_problem_reuses_sorted_risk_sets_for_column_subsets_and_weights():
    # one RiskSets, several fits: each equals a fresh fit on the same columns / weights
    df = _data(n=300, seed=10)
    rs = RiskSets(df["stop"], df["event"], df["entry"])
    prob = CoxProblem(df[COLS].to_numpy(), rs)
    sub = prob.fit(cols=[0, 2])
    fresh = fit_cox(df[["x1", "x3"]].to_numpy(), df["stop"], df["event"], entry=df["entry"])
    np.testing.assert_allclose(sub.coef, fresh.coef, atol=1e-9)
    prob.set_weights(df["w"].to_numpy())
    np.testing.assert_allclose(prob.fit().coef, _engine(df, weights=True).coef, atol=1e-9)


# ---- the AFT likelihoods (cxlab.models.survival.aft), vectorised on the same parameterisation ----------


@pytest.mark.parametrize("entry_col", ["entry", None])
def test_aft_likelihoods_equal_lifelines(entry_col):
    # lifelines 0.30 WeibullAFTFitter / LogLogisticAFTFitter / LogNormalAFTFitter on the same design:
    # cxlab's log-likelihood evaluated at lifelines' estimate equals lifelines' log-likelihood (same
    # function, to 1e-9), and cxlab's maximum is at least as high (lifelines' BFGS stops early)
    import lifelines

    from cxlab.models.survival.aft import _AFTFit, fit_aft

    rng = np.random.default_rng(11)
    n = 800
    df = pd.DataFrame({"recognition": rng.normal(3, 1, n), "segment": rng.choice(["a", "b"], n)})
    entry = rng.uniform(0, 20, n)
    t = entry + np.exp(2.5 + 0.3 * (df["recognition"] - 3) + 0.6 * rng.gumbel(size=n))
    c = entry + rng.uniform(1, 30, n)
    df["entry"], df["duration"], df["event"] = entry, np.minimum(t, c), (t <= c).astype(int)
    res = fit_aft(df, ["recognition"], controls=["segment"], entry_col=entry_col)
    d = res.design_.frame
    X = np.column_stack([d[res.design_.covariates].to_numpy(float), np.ones(len(d))])
    for dist, cls in [("weibull", "WeibullAFTFitter"), ("loglogistic", "LogLogisticAFTFitter"),
                      ("lognormal", "LogNormalAFTFitter")]:
        ref = getattr(lifelines, cls)().fit(d, "duration", "event", entry_col=entry_col)
        ours = res.models_[dist]
        theta_ref = ref.params_.reindex(ours.params_.index).to_numpy()
        f = _AFTFit(dist, ours.params_.index.get_level_values(1))
        f._X, f._y, f._e = X, np.log(d["duration"].to_numpy()), d["event"].to_numpy().astype(bool)
        en = d["entry"].to_numpy() if entry_col else None
        f._tr = None if en is None else np.flatnonzero(en > 0)
        f._ye = None if en is None else np.log(en[f._tr])
        assert -f._nll(theta_ref)[0] == pytest.approx(ref.log_likelihood_, abs=1e-9), dist
        assert ours.log_likelihood_ >= ref.log_likelihood_ - 1e-9, dist
        np.testing.assert_allclose(ours.params_.to_numpy(), theta_ref, atol=2e-3, err_msg=dist)
        np.testing.assert_allclose(ours.summary["se(coef)"].to_numpy(),
                                   ref.summary["se(coef)"].reindex(ours.params_.index).to_numpy(), rtol=2e-3)
        assert np.max(np.abs(f._nll(ours.params_.to_numpy())[1])) < 1e-6  # ours is the stationary point


@pytest.mark.parametrize("penalizer", [0.0, 0.1])
def test_cox_model_on_the_engine_equals_lifelines_with_and_without_penalizer(penalizer):
    # lifelines 0.30: CoxPHFitter(penalizer=...).fit(..., entry_col="entry"); lifelines' ridge term is
    # n * penalizer / 2 * ||beta * sd||^2 and its variance is the inverse penalised information
    from cxlab.models.survival import CoxModel

    df = _data(seed=3)
    m = CoxModel([], controls=COLS, penalizer=penalizer).fit(df, duration_col="stop", event_col="event",
                                                              entry_col="entry")
    ref = CoxPHFitter(penalizer=penalizer).fit(df[COLS + ["entry", "stop", "event"]], "stop", "event",
                                               entry_col="entry", fit_options={"precision": 1e-12})
    np.testing.assert_allclose(m.params_.to_numpy(), ref.params_[COLS].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(m.variance_matrix_)), ref.standard_errors_[COLS].to_numpy(), rtol=1e-6)
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-6)


def test_cox_model_computes_score_residuals_only_for_robust_errors(monkeypatch):
    """The n x p score residuals cost a third of a fit at 1 M rows: CoxModel asks the engine for
    them only when a sandwich variance needs them (robust=True or a cluster column)."""
    import pandas as pd

    from cxlab.models.survival.cox import CoxModel
    from cxlab.models.survival.engine import CoxProblem

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"recognition": rng.normal(3, 1, n), "entry": rng.uniform(0, 10, n)})
    t = df["entry"] + rng.exponential(20 * np.exp(0.4 * (df["recognition"] - 3)))
    df["duration"] = np.minimum(t, df["entry"] + 15)
    df["event"] = (t <= df["entry"] + 15).astype(int)
    calls = []
    real = CoxProblem.statistics
    monkeypatch.setattr(CoxProblem, "statistics", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    plain = CoxModel(["recognition"]).fit(df, entry_col="entry")
    assert calls == []
    robust = CoxModel(["recognition"], robust=True).fit(df, entry_col="entry")
    assert calls == [1]
    # same estimate either way; the plain fit's score at the estimate is ~0 (it converged)
    np.testing.assert_allclose(plain.params_.to_numpy(), robust.params_.to_numpy(), atol=1e-12)
    assert plain.gradient_max_ < 1e-6
    assert not np.allclose(plain.variance_matrix_.to_numpy(), robust.variance_matrix_.to_numpy())
