"""Tests for cxlab.models.drivers: fitters against statsmodels/lifelines, Shapley decomposition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from statsmodels.miscmodels.ordinal_model import OrderedModel

from cxlab.models.drivers import (CoxFit, _logit_fit, _ordinal_fit, _ordinal_ll, cox_loglik_fit, shapley_importance,
                           shapley_values)
from cxlab.errors import ModelError, ParameterError

CONSTRUCTS = ["recognition", "empathy", "proximity"]


def _respondents(n=1500, seed=0, betas=(-0.6, -0.2, 0.0)):
    """Simulated respondent table (months, delayed entry) with known drivers of defection,
    recommendation and a binary outcome."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=n)
    Z = 0.4 * common[:, None] + rng.normal(size=(n, 3))
    df = pd.DataFrame(3 + 0.8 * Z, columns=CONSTRUCTS)
    df["segment"] = rng.choice(["mass", "affluent", "private"], n, p=[0.6, 0.3, 0.1])
    entry = rng.uniform(0, 48, n)
    t = entry + rng.exponential(1 / (0.03 * np.exp(Z @ np.array(betas))))
    cens = entry + rng.uniform(1, 36, n)
    df["entry"] = entry
    df["duration"] = np.minimum(t, cens)
    df["event"] = (t <= cens).astype(int)
    lat = -1.2 * betas[0] * Z[:, 0] - 1.2 * betas[1] * Z[:, 1] + rng.logistic(size=n)
    df["recommend"] = np.clip(np.round(7 + 1.2 * lat), 0, 10)
    df["satisfaction"] = 3 + 0.7 * Z[:, 0] + 0.2 * Z[:, 1] + rng.normal(size=n)
    df["promoter"] = (df["recommend"] >= 9).astype(int)
    return df


# ---- the fitters ---------------------------------------------------------------------------


def test_cox_matches_lifelines_on_rossi_with_ties():
    # lifelines 0.30: CoxPHFitter (Efron ties) on load_rossi(); week has many ties
    rossi = load_rossi()
    cols = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    beta, ll = cox_loglik_fit(rossi, cols, "week", "arrest")
    cph = CoxPHFitter().fit(rossi, "week", "arrest", fit_options={"precision": 1e-12})
    np.testing.assert_allclose(beta.to_numpy(), cph.params_[cols].to_numpy(), atol=1e-6)
    assert ll == pytest.approx(cph.log_likelihood_, abs=1e-6)


def test_cox_matches_lifelines_with_delayed_entry_and_ties():
    # lifelines 0.30: CoxPHFitter(...).fit(entry_col="entry") (left truncation, Efron ties)
    df = _respondents(800, seed=3)
    df["duration"] = np.ceil(df["duration"])  # whole months: many ties
    df = df[df["duration"] > df["entry"]]
    beta, ll = cox_loglik_fit(df, CONSTRUCTS, "duration", "event", "entry")
    cph = CoxPHFitter().fit(df[CONSTRUCTS + ["entry", "duration", "event"]], "duration", "event",
                            entry_col="entry", fit_options={"precision": 1e-12})
    np.testing.assert_allclose(beta.to_numpy(), cph.params_[CONSTRUCTS].to_numpy(), atol=1e-6)
    assert ll == pytest.approx(cph.log_likelihood_, abs=1e-6)


def test_cox_frequency_weights_match_lifelines_weights_col():
    # lifelines 0.30: CoxPHFitter().fit(..., weights_col="w", entry_col="entry"); the bootstrap
    # uses such integer weights (zero-weight rows are the ones lifelines never sees)
    df = _respondents(400, seed=4)
    w = np.random.default_rng(0).integers(0, 3, len(df)).astype(float)
    b_w, ll_w, _ = CoxFit(df[CONSTRUCTS].to_numpy(), df["duration"], df["event"], df["entry"]).fit(w=w)
    kept = df[CONSTRUCTS + ["entry", "duration", "event"]].assign(w=w)[w > 0]
    cph = CoxPHFitter().fit(kept, "duration", "event", entry_col="entry", weights_col="w",
                            fit_options={"precision": 1e-12})
    np.testing.assert_allclose(b_w, cph.params_[CONSTRUCTS].to_numpy(), atol=1e-6)
    assert ll_w == pytest.approx(cph.log_likelihood_, abs=1e-6)


def test_logit_fit_matches_statsmodels():
    # statsmodels 0.15: sm.Logit(y, X).fit(method="newton")
    df = _respondents(1000, seed=5)
    Z = sm.add_constant(df[CONSTRUCTS].to_numpy())
    y = df["promoter"].to_numpy(float)
    b, ll = _logit_fit(Z, y, np.ones(len(y)))
    ref = sm.Logit(y, Z).fit(disp=False, method="newton", tol=1e-12)
    np.testing.assert_allclose(b, ref.params, atol=1e-6)
    assert ll == pytest.approx(ref.llf, abs=1e-6)


def test_ordinal_fit_matches_statsmodels_orderedmodel():
    # statsmodels 0.15: OrderedModel(y, X, distr="logit").fit(method="newton")
    df = _respondents(800, seed=6)
    X = df[CONSTRUCTS].to_numpy() - 3
    y = np.select([df["recommend"] <= 6, df["recommend"] <= 8], [0, 1], 2)
    par, ll = _ordinal_fit(X, y, 3, np.ones(len(y)))
    ref = OrderedModel(y, X, distr="logit").fit(method="newton", disp=False, maxiter=200, tol=1e-12)
    thresholds = OrderedModel(y, X, distr="logit").transform_threshold_params(ref.params)[1:-1]
    np.testing.assert_allclose(par[:3], ref.params[:3], atol=1e-6)
    np.testing.assert_allclose(par[3:], thresholds, atol=1e-6)
    assert ll == pytest.approx(ref.llf, abs=1e-6)


# ---- the Shapley decomposition -------------------------------------------------------------


@pytest.mark.parametrize("model,outcome", [("linear", "satisfaction"), ("logit", "promoter"),
                                           ("ordinal", "recommend"), ("cox", None)])
def test_importances_add_up_to_the_full_fit(model, outcome):
    df = _respondents(600, seed=7)
    res = shapley_importance(df, CONSTRUCTS, model=model, outcome=outcome, controls=["segment"])
    s = res.summary
    assert s["importance"].sum() == pytest.approx(res.full_fit_ - res.baseline_fit_, abs=1e-10)
    assert s["share"].sum() == pytest.approx(1.0, abs=1e-12)
    assert res.gain_ > 0 and len(res.subsets_) == 8
    assert sorted(s["rank"]) == [1, 2, 3]


def test_linear_shapley_with_two_constructs_is_the_average_of_both_orders():
    # hand check with statsmodels OLS R²: phi_1 = ((R²(1) - R²(0)) + (R²(12) - R²(2))) / 2
    df = _respondents(500, seed=8)
    r2 = lambda cols: sm.OLS(df["satisfaction"], sm.add_constant(df[["segment"]].pipe(  # noqa: E731
        pd.get_dummies, drop_first=True, dtype=float).join(df[cols]))).fit().rsquared
    base = r2([])
    a, b, ab = r2(["recognition"]), r2(["empathy"]), r2(["recognition", "empathy"])
    res = shapley_importance(df, ["recognition", "empathy"], model="linear", outcome="satisfaction",
                             controls=["segment"]).summary.set_index("construct")
    assert res.loc["recognition", "importance"] == pytest.approx(((a - base) + (ab - b)) / 2, abs=1e-10)
    assert res.loc["empathy", "importance"] == pytest.approx(((b - base) + (ab - a)) / 2, abs=1e-10)


def test_shapley_values_of_an_additive_game_are_the_contributions():
    # v(S) = sum of c_j over S  ->  phi_j = c_j exactly
    c = np.array([0.5, 0.2, 0.05, 0.0])
    v = np.array([sum(c[j] for j in range(4) if m >> j & 1) for m in range(16)])
    np.testing.assert_allclose(shapley_values(v, 4), c, atol=1e-15)


def test_the_true_driver_ranks_first_with_stable_rank():
    df = _respondents(1500, seed=9, betas=(-0.8, 0.0, 0.0))
    res = shapley_importance(df, CONSTRUCTS, model="cox", n_boot=20, seed=1)
    top = res.summary.iloc[0]
    assert top["construct"] == "recognition" and top["rank"] == 1
    assert top["rank_stability"] == 1.0 and top["share"] > 0.8
    assert top["lower"] <= top["share"] <= top["upper"]
    assert len(res.boot_shares_) == 20


def test_bootstrap_does_not_depend_on_the_number_of_workers():
    df = _respondents(500, seed=10)
    kw = dict(model="linear", outcome="satisfaction", n_boot=6, seed=3)
    one = shapley_importance(df, CONSTRUCTS, n_jobs=1, **kw).boot_shares_
    two = shapley_importance(df, CONSTRUCTS, n_jobs=2, **kw).boot_shares_
    pd.testing.assert_frame_equal(one.sort_values("recognition").reset_index(drop=True),
                                  two.sort_values("recognition").reset_index(drop=True))


def test_input_errors_name_the_problem():
    df = _respondents(300, seed=11)
    with pytest.raises(ParameterError, match="model"):
        shapley_importance(df, CONSTRUCTS, model="probit", outcome="promoter")
    with pytest.raises(ParameterError, match="not found"):
        shapley_importance(df, ["recognition", "trust"], model="cox")
    with pytest.raises(ModelError, match="Too few defections"):
        shapley_importance(df.assign(event=0), CONSTRUCTS, model="cox")
    with pytest.raises(ModelError, match="0/1 outcome"):
        shapley_importance(df, CONSTRUCTS, model="logit", outcome="recommend")
    with pytest.raises(ParameterError, match="numeric scores"):
        shapley_importance(df, ["recognition", "segment"], model="cox")
    with pytest.raises(ParameterError, match="boot_refit"):
        shapley_importance(df, CONSTRUCTS, model="cox", boot_refit="fast")


def test_plot_quadrant_marks_fix_first():
    import matplotlib.pyplot as plt

    from cxlab.report.plots import plot_quadrant

    imp = pd.DataFrame({"construct": ["recognition", "empathy", "proximity"],
                        "share": [0.6, 0.3, 0.1], "lower": [0.5, 0.2, 0.05], "upper": [0.7, 0.4, 0.2]})
    perf = pd.DataFrame({"construct": ["recognition", "empathy", "proximity"], "mean": [2.5, 3.5, 4.0]})
    ax = plot_quadrant(imp, perf)
    labels = [t.get_text() for t in ax.texts]
    assert "recognition (fix first)" in labels and "empathy" in labels
    assert ax.get_xlabel() == "mean score"
    plt.close(ax.figure)


def test_one_step_bootstrap_refit_agrees_with_full_convergence():
    # the one-step error is third order in the bootstrap perturbation (~1/sqrt(n)): on 3 000
    # respondents the shares agree to ~1e-5, far inside their bootstrap spread (~1e-2)
    df = _respondents(3000, seed=12)
    kw = dict(model="cox", controls=["segment"], n_boot=5, seed=2)
    full = shapley_importance(df, CONSTRUCTS, boot_refit="converge", **kw).boot_shares_
    one = shapley_importance(df, CONSTRUCTS, boot_refit="one-step", **kw).boot_shares_
    np.testing.assert_allclose(one.to_numpy(), full.to_numpy(), atol=5e-5)
    assert one.std().max() > 5e-3


def test_ordinal_bootstrap_resamples_all_converge(small_demo):
    """Regression: Newton steps at the optimum cannot improve on round-off; the fit must stop on
    the score instead of reporting non-convergence (it used to drop ~15 % of resamples)."""
    from cxlab.workbook import open_study

    p = open_study(small_demo).panel
    r = p.model_table([*p.constructs, "recommend", "segment"])
    d = shapley_importance(r, p.constructs, model="ordinal", outcome="recommend", controls=["segment"],
                           n_boot=30, seed=4)
    assert d.n_boot_failed_ == 0
    assert d.summary["share"].sum() == pytest.approx(1.0)


# ---- the fast ordinal path against the textbook implementation it replaced --------------------


def _textbook_ordinal_derivatives(X, y, K, w, beta, theta):
    """Reference: gradient and Hessian from the dense design of both thresholds
    (``U_a``, ``U_b``: n x (p + K - 1)), as cxlab computed them before the block assembly."""
    n, p = X.shape
    q = p + K - 1
    eta = X @ beta
    th = np.concatenate([[-np.inf], theta, [np.inf]])
    Fa, Fb = 1 / (1 + np.exp(-(th[y + 1] - eta))), 1 / (1 + np.exp(-(th[y] - eta)))
    P = Fa - Fb
    fa, fb = Fa * (1 - Fa), Fb * (1 - Fb)
    ga, gb = fa / P, -fb / P
    haa = fa * (1 - 2 * Fa) / P - (fa / P) ** 2
    hbb = -fb * (1 - 2 * Fb) / P - (fb / P) ** 2
    hab = fa * fb / P**2
    rows = np.arange(n)
    Ua, Ub = np.zeros((n, q)), np.zeros((n, q))
    Ua[:, :p] = -X
    Ub[:, :p] = -X
    top, bot = y < K - 1, y > 0
    Ua[rows[top], p + y[top]] = 1.0
    Ub[rows[bot], p + y[bot] - 1] = 1.0
    Ua[~top] = 0.0
    Ub[~bot] = 0.0
    g = Ua.T @ (w * ga) + Ub.T @ (w * gb)
    H = ((Ua * (w * haa)[:, None]).T @ Ua + (Ub * (w * hbb)[:, None]).T @ Ub
         + (Ua * (w * hab)[:, None]).T @ Ub + (Ub * (w * hab)[:, None]).T @ Ua)
    return g, H


def _textbook_ordinal_fit(X, y, K, w, start=None):
    """Reference fit: plain Newton-Raphson with the textbook derivatives, to the score's round-off."""
    p = X.shape[1]
    cum = np.cumsum(np.bincount(y, weights=w, minlength=K))[:-1] / w.sum()
    par = np.concatenate([np.zeros(p), np.log(cum / (1 - cum))]) if start is None else start.copy()
    for _ in range(100):
        g, H = _textbook_ordinal_derivatives(X, y, K, w, par[:p], par[p:])
        if np.max(np.abs(g)) < 1e-9 * w.sum():
            break
        par = par + np.linalg.solve(-H, g)
    eta = X @ par[:p]
    th = np.concatenate([[-np.inf], par[p:], [np.inf]])
    P = 1 / (1 + np.exp(-(th[y + 1] - eta))) - 1 / (1 + np.exp(-(th[y] - eta)))
    return par, float(w @ np.log(P))


def _ordinal_sample(n=700, seed=13):
    df = _respondents(n, seed=seed)
    X = np.column_stack([df[CONSTRUCTS].to_numpy() - 3, (df["segment"] == "affluent").to_numpy(float)])
    levels = np.sort(df["recommend"].unique())
    return X, np.searchsorted(levels, df["recommend"].to_numpy()), len(levels)


def test_block_hessian_of_the_ordinal_model_equals_the_textbook_one():
    from cxlab.models.drivers import _ordinal_derivatives, _ordinal_ll

    X, y, K = _ordinal_sample()
    assert K >= 8   # many thresholds: every block (and the tridiagonal threshold block) is exercised
    w = np.random.default_rng(1).integers(0, 3, len(y)).astype(float)
    par, _ = _ordinal_fit(X, y, K, np.ones(len(y)))
    par = par + np.random.default_rng(2).normal(0, 0.05, par.size)   # away from the maximum
    par[X.shape[1]:] = np.sort(par[X.shape[1]:])
    g, H = _ordinal_derivatives(X, y, K, w, _ordinal_ll(X, y, K, w, par)[1])
    g_ref, H_ref = _textbook_ordinal_derivatives(X, y, K, w, par[:X.shape[1]], par[X.shape[1]:])
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(H, H_ref, rtol=1e-10, atol=1e-9)


def test_fast_ordinal_fits_equal_the_textbook_fits_on_fixed_resamples():
    from cxlab.models.drivers import _ordinal_derivatives, _ordinal_ll, _ordinal_refit

    X, y, K = _ordinal_sample()
    n = len(y)
    par, ll = _ordinal_fit(X, y, K, np.ones(n))
    ref, ll_ref = _textbook_ordinal_fit(X, y, K, np.ones(n))
    np.testing.assert_allclose(par, ref, atol=1e-8)
    assert ll == pytest.approx(ll_ref, abs=1e-8)
    _, H = _ordinal_derivatives(X, y, K, np.ones(n), _ordinal_ll(X, y, K, np.ones(n), par)[1])
    cov = np.linalg.inv(-H)
    for s in range(4):   # multinomial bootstrap weights, as shapley_importance draws them
        w = np.random.default_rng(s).multinomial(n, np.full(n, 1 / n)).astype(float)
        ref, ll_ref = _textbook_ordinal_fit(X, y, K, w)
        warm, ll_warm = _ordinal_fit(X, y, K, w, par)
        chord, ll_chord = _ordinal_refit(X, y, K, w, par, cov)
        np.testing.assert_allclose(warm, ref, atol=1e-6)
        assert ll_warm == pytest.approx(ll_ref, abs=1e-7)
        # the chord stops on the decrement (1e-10 of |loglik|): the log-likelihood, which is all
        # the Shapley decomposition uses, is exact to 1e-7; the coefficients to ~1e-4 of an SE
        np.testing.assert_allclose(chord, ref, atol=1e-4)
        assert ll_chord == pytest.approx(ll_ref, abs=1e-7)


def test_chord_refit_reaches_the_maximum_even_with_a_wrong_hessian():
    from cxlab.models.drivers import _ordinal_refit

    X, y, K = _ordinal_sample()
    n = len(y)
    par, _ = _ordinal_fit(X, y, K, np.ones(n))
    w = np.random.default_rng(7).multinomial(n, np.full(n, 1 / n)).astype(float)
    ref, ll_ref = _textbook_ordinal_fit(X, y, K, w)
    for cov in (np.eye(par.size) * 1e-2, np.eye(par.size) * 10.0):   # too short, and overshooting
        got, got_ll = _ordinal_refit(X, y, K, w, par, cov)
        np.testing.assert_allclose(got, ref, atol=1e-4)
        assert got_ll == pytest.approx(ll_ref, abs=1e-7)


def test_ordinal_bootstrap_shares_equal_textbook_refits_of_every_subset():
    # the fast path (block Hessian, warm starts, chord refits, workers) must give the same draws as
    # refitting every subset from scratch with the textbook Newton-Raphson on the same weights
    df = _respondents(500, seed=14)
    res = shapley_importance(df, CONSTRUCTS, model="ordinal", outcome="recommend", controls=["segment"],
                             n_boot=3, seed=5, n_jobs=2)
    from cxlab.models.drivers import _design

    Xc, _ = _design(df, CONSTRUCTS)
    C, _ = _design(df, ["segment"])
    levels = np.sort(df["recommend"].unique())
    y = np.searchsorted(levels, df["recommend"].to_numpy())
    K, n = len(levels), len(df)
    counts = lambda w: np.bincount(y, weights=w, minlength=K)  # noqa: E731
    expected = []
    for ss in np.random.SeedSequence(5).spawn(3):
        w = np.random.default_rng(ss).multinomial(n, np.full(n, 1.0 / n)).astype(float)
        c = counts(w)
        ll0 = float(np.sum(c[c > 0] * np.log(c[c > 0] / c.sum())))
        fits = []
        for mask in range(8):
            Z = np.column_stack([C] + [Xc[:, j] for j in range(3) if mask >> j & 1])
            fits.append(1 - _textbook_ordinal_fit(Z, y, K, w)[1] / ll0)
        expected.append(shapley_values(np.array(fits), 3) / (fits[-1] - fits[0]))
    got = res.boot_shares_.to_numpy()
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(np.array(expected), axis=0), atol=1e-7)


def test_n_jobs_must_be_a_nonzero_integer():
    df = _respondents(300, seed=11)
    with pytest.raises(ParameterError, match="n_jobs"):
        shapley_importance(df, CONSTRUCTS, model="linear", outcome="satisfaction", n_boot=2, n_jobs=0)


def test_cox_bootstrap_refit_reaches_the_same_maximum_as_a_fit_from_scratch():
    df = _respondents(1500, seed=15)
    cf = CoxFit(df[CONSTRUCTS].to_numpy(), df["duration"], df["event"], df["entry"])
    beta, _, _ = cf.fit()
    n = len(df)
    for s in range(3):
        w = np.random.default_rng(s).multinomial(n, np.full(n, 1 / n)).astype(float)
        ref_b, ref_ll, _ = cf.fit(w=w)                       # from zero, Newton to convergence
        for start in (beta, np.zeros(3), beta + 1.0):         # near, and far from the maximum
            b, ll, _ = cf.fit(w=w, beta0=start)
            np.testing.assert_allclose(b, ref_b, atol=1e-6)
            assert ll == pytest.approx(ref_ll, abs=1e-7)


def test_auto_refit_is_chord_on_large_bases_only(monkeypatch):
    import cxlab.models.drivers as drv

    df = _respondents(1500, seed=16)
    kw = dict(controls=["segment"], n_boot=3, seed=2, n_jobs=1)
    # the base each model counts: defections, the rarer logit outcome, answers outside the modal one
    bases = {"cox": int(df["event"].sum()), "logit": int(min(df["promoter"].sum(), (1 - df["promoter"]).sum())),
             "ordinal": int(len(df) - df["recommend"].value_counts().max())}
    for model, outcome in [("cox", None), ("logit", "promoter"), ("ordinal", "recommend")]:
        kw.update(model=model, outcome=outcome)
        converge = shapley_importance(df, CONSTRUCTS, boot_refit="converge", **kw).boot_shares_
        chord = shapley_importance(df, CONSTRUCTS, boot_refit="chord", **kw).boot_shares_
        assert not np.allclose(chord.to_numpy(), converge.to_numpy(), atol=1e-12, rtol=0)   # they do differ
        monkeypatch.setattr(drv, "_CHORD_MIN_EVENTS", bases[model] + 1)
        pd.testing.assert_frame_equal(shapley_importance(df, CONSTRUCTS, **kw).boot_shares_, converge)
        monkeypatch.setattr(drv, "_CHORD_MIN_EVENTS", bases[model])
        pd.testing.assert_frame_equal(shapley_importance(df, CONSTRUCTS, **kw).boot_shares_, chord)


# ---- bootstrap draws by one chord step (boot_refit="chord", the default on large bases) -------


def _prepared(model, n=3000, seed=12, outcome=None):
    """A _Problem with its full-sample fits and information inverses, as shapley_importance makes it."""
    from cxlab.models.drivers import _design, _Problem

    df = _respondents(n, seed=seed)
    X, _ = _design(df, CONSTRUCTS)
    C, _ = _design(df, ["segment"])
    if model == "cox":
        prob = _Problem("cox", C, X, cox=CoxFit(np.column_stack([C, X]), df["duration"], df["event"], df["entry"]))
    elif model == "ordinal":
        levels = np.sort(df[outcome].unique())
        prob = _Problem("ordinal", C, X, y=np.searchsorted(levels, df[outcome].to_numpy()), K=len(levels))
    else:
        prob = _Problem("logit", C, X, y=df[outcome].to_numpy(float))
    prob.fits()
    prob.prepare_chord()
    return prob


def _counts(n, draws, seed=0):
    from cxlab.models.drivers import _boot_counts

    return _boot_counts(np.random.SeedSequence(seed).spawn(draws), n)


def test_cox_draws_give_the_engines_loglik_and_score_for_every_weight_column():
    # the vectorised risk-set sums (sparse products, Efron entries, score pushed onto rows) against
    # CoxProblem.loglik with the same case weights, one column at a time; ties and delayed entry
    from cxlab.models.drivers import _CoxDraws

    df = _respondents(800, seed=21)
    df["duration"] = np.ceil(df["duration"])              # whole months: many tied defections
    df["entry"] = np.floor(df["entry"])
    cf = CoxFit(df[CONSTRUCTS].to_numpy(), df["duration"], df["event"], df["entry"])
    assert cf._problem.rs.n_dead_rows.max() >= 5
    beta, _, _ = cf.fit()
    W = _counts(len(df), 7, seed=3)
    draws = _CoxDraws(cf._weighted(None))
    draws.use(W.astype(float))
    for cols in ([0, 1, 2], [1], []):
        b = beta[cols] + 0.1
        ll, g = draws.loglik_score(b, cols)
        at = np.random.default_rng(4).normal(0, 0.3, (len(cols), W.shape[1]))
        ll_at = draws.loglik_at(at, cols) if cols else None
        for j in range(W.shape[1]):
            ref_ll, ref_g, _ = cf.loglik(b, cols, W[:, j].astype(float))
            assert ll[j] == pytest.approx(ref_ll, rel=1e-12, abs=1e-9)
            np.testing.assert_allclose(g[:, j], ref_g, rtol=1e-10, atol=1e-8)
            if cols:
                assert ll_at[j] == pytest.approx(cf.loglik(at[:, j], cols, W[:, j].astype(float), derivatives=False),
                                                 rel=1e-12, abs=1e-9)


def test_per_respondent_scores_add_up_to_the_fitters_gradients():
    from cxlab.models.drivers import (_logit_ll_at, _logit_obs, _ordinal_gradient, _ordinal_ll, _ordinal_ll_at,
                               _ordinal_obs)

    X, y, K = _ordinal_sample()
    n = len(y)
    par, _ = _ordinal_fit(X, y, K, np.ones(n))
    par = par + np.random.default_rng(2).normal(0, 0.05, par.size)   # away from the maximum
    par[X.shape[1]:] = np.sort(par[X.shape[1]:])
    W = _counts(n, 3).astype(float)
    R = _ordinal_obs(X, y, K, par).T @ W
    pars = par[:, None] + np.random.default_rng(5).normal(0, 0.02, (par.size, 3))
    at = _ordinal_ll_at(X, y, K, W, pars)
    for j in range(3):
        ll, parts = _ordinal_ll(X, y, K, W[:, j], par)
        assert R[0, j] == pytest.approx(ll, rel=1e-12)
        np.testing.assert_allclose(R[1:, j], _ordinal_gradient(X, y, K, W[:, j], parts), rtol=1e-10, atol=1e-9)
        assert at[j] == pytest.approx(_ordinal_ll(X, y, K, W[:, j], pars[:, j])[0], rel=1e-12)
    unordered = pars.copy()
    unordered[-1, 0] = unordered[-2, 0] - 0.1
    assert _ordinal_ll_at(X, y, K, W, unordered)[0] == -np.inf
    Z = np.column_stack([np.ones(n), X])
    yb = (y >= K - 2).astype(float)
    b, _ = _logit_fit(Z, yb, np.ones(n))
    R = _logit_obs(Z, yb, b + 0.05).T @ W
    for j in range(3):
        eta = Z @ (b + 0.05)
        mu = 1 / (1 + np.exp(-eta))
        assert R[0, j] == pytest.approx(np.sum(W[:, j] * (yb * eta - np.logaddexp(0, eta))), rel=1e-12)
        np.testing.assert_allclose(R[1:, j], Z.T @ (W[:, j] * (yb - mu)), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(_logit_ll_at(Z, yb, W, np.repeat((b + 0.05)[:, None], 3, axis=1)), R[0], rtol=1e-12)


def _loglik(prob, fits, w):
    """Log-likelihoods from a _Problem's fit measures (pseudo-R2 -> log-likelihood)."""
    if prob.model == "cox":
        return fits
    K = prob.K if prob.model == "ordinal" else 2
    c = np.bincount(prob.y.astype(int), weights=w, minlength=K)
    c = c[c > 0]
    return (1 - fits) * float(np.sum(c * np.log(c / c.sum())))


def _loglik_at_estimate(prob, mask, w):
    """The resample's log-likelihood at the full-sample estimate (no step taken)."""
    cols, par = prob.cols(mask), prob.params.get(mask, np.zeros(0))
    if prob.model == "cox":
        return prob.cox.loglik(par, cols, w, derivatives=False)
    if prob.model == "ordinal":
        return _ordinal_ll(np.column_stack([prob.C, prob.X])[:, cols], prob.y, prob.K, w, par)[0]
    Z = np.column_stack([np.ones(prob.n), prob.C, prob.X])[:, [0] + [1 + c for c in cols]]
    eta = Z @ par
    return float(np.sum(w * (prob.y * eta - np.logaddexp(0, eta))))


@pytest.mark.parametrize("model, outcome", [("cox", None), ("ordinal", "recommend"), ("logit", "promoter")])
def test_chord_draws_fall_short_of_each_resamples_maximum_by_order_one_over_n(model, outcome):
    # every subset of every draw: the chord fit is the exact log-likelihood at a point near the
    # resample's maximum, so it is a lower bound that misses by O(1/n) (0.04-0.2 here, n = 3 000),
    # a few per cent of what the step gains over the full-sample estimate (a chi-square, ~q/2)
    prob = _prepared(model, outcome=outcome)
    W = _counts(prob.n, 6, seed=8)
    chord = prob.chord_fits(W)
    short, gain = [], []
    for j in range(W.shape[1]):
        w = W[:, j].astype(float)
        best = _loglik(prob, prob.fits(w, warm=prob.params), w)       # refits to convergence
        got = _loglik(prob, chord[j], w)
        short.append(best - got)
        gain.append(got - np.array([_loglik_at_estimate(prob, m, w) for m in range(8)]))
    short, gain = np.array(short), np.array(gain)
    assert np.all(short >= -1e-7), short                 # a lower bound of the maximum
    assert np.max(short) < 0.1 * np.median(gain), (np.max(short), np.median(gain))
    assert np.median(gain) > 1.0


@pytest.mark.parametrize("model, outcome", [("cox", None), ("ordinal", "recommend"), ("logit", "promoter")])
def test_chord_bootstrap_shares_agree_with_refits_to_convergence(model, outcome):
    # the same draws (seeds) refitted to convergence: on 3 000 respondents every share of every draw
    # agrees to ~1e-4 (the error shrinks as n^-2), a few per cent of the shares' bootstrap spread
    df = _respondents(3000, seed=12)
    kw = dict(model=model, outcome=outcome, controls=["segment"], n_boot=12, seed=2, n_jobs=1)
    full = shapley_importance(df, CONSTRUCTS, boot_refit="converge", **kw)
    chord = shapley_importance(df, CONSTRUCTS, boot_refit="chord", **kw)
    assert full.n_boot_failed_ == chord.n_boot_failed_ == 0
    diff = np.abs(chord.boot_shares_.to_numpy() - full.boot_shares_.to_numpy())
    spread = full.boot_shares_.std().to_numpy()
    assert diff.max() < 3e-4 and diff.max() < 0.1 * spread.min(), (diff.max(), spread)
    pd.testing.assert_frame_equal(chord.summary.drop(columns=["lower", "upper", "rank_stability"]),
                                  full.summary.drop(columns=["lower", "upper", "rank_stability"]))


def test_chord_bootstrap_does_not_depend_on_the_number_of_workers():
    df = _respondents(1500, seed=10)
    kw = dict(model="cox", controls=["segment"], n_boot=6, seed=3, boot_refit="chord")
    one = shapley_importance(df, CONSTRUCTS, n_jobs=1, **kw).boot_shares_
    two = shapley_importance(df, CONSTRUCTS, n_jobs=2, **kw).boot_shares_
    pd.testing.assert_frame_equal(one.sort_values("recognition").reset_index(drop=True),
                                  two.sort_values("recognition").reset_index(drop=True))


def test_chord_draws_in_blocks_equal_all_draws_at_once(monkeypatch):
    # the draws go through in column blocks (memory); the block size must not change a figure, and the
    # distinct-row sums of the logit/ordinal path must equal the sums over every respondent
    import cxlab.models.drivers as drv
    from cxlab.models.drivers import _ordinal_ll_at, _ordinal_obs

    for model, outcome in [("cox", None), ("ordinal", "recommend")]:
        prob = _prepared(model, n=600, outcome=outcome)
        W = _counts(prob.n, 7, seed=1)
        whole = prob.chord_fits(W)
        monkeypatch.setattr(drv, "_BLOCK", 2 * prob.n)         # blocks of two draws
        np.testing.assert_allclose(prob.chord_fits(W), whole, rtol=1e-12, atol=1e-12)
    prob = _prepared("ordinal", n=600, outcome="recommend")
    W = _counts(prob.n, 3, seed=2)
    got = prob.chord_fits(W)
    Z = np.column_stack([prob.C, prob.X])
    for mask in (1, 7):
        cols, par = prob.cols(mask), prob.params[mask]
        Wf = W.astype(float)
        R = _ordinal_obs(Z[:, cols], prob.y, prob.K, par).T @ Wf      # every respondent, no grouping
        stepped = par[:, None] + prob.covariance[mask] @ R[1:]
        ll = np.maximum(R[0], _ordinal_ll_at(Z[:, cols], prob.y, prob.K, Wf, stepped))
        ll0 = np.array([_loglik(prob, np.zeros(1), Wf[:, j])[0] for j in range(3)])
        np.testing.assert_allclose(got[:, mask], 1 - ll / ll0, rtol=1e-10)


def test_cox_draws_skip_an_event_time_whose_whole_risk_set_was_left_out():
    # a resample that draws nobody at risk at the last defection time: that time is not in the
    # resample (it adds nothing), as if those rows were not there -- not an empty risk set (-inf)
    from cxlab.models.drivers import _CoxDraws

    df = _respondents(600, seed=22)
    cf = CoxFit(df[CONSTRUCTS].to_numpy(), df["duration"], df["event"], df["entry"])
    beta, _, _ = cf.fit()
    last = df.loc[df["event"] == 1, "duration"].max()
    at_risk = ((df["entry"] < last) & (df["duration"] >= last)).to_numpy()
    w = _counts(len(df), 1, seed=5)[:, 0].astype(float)
    w[at_risk] = 0.0
    assert cf.loglik(beta, None, w, derivatives=False) == -np.inf      # the engine: an empty risk set
    draws = _CoxDraws(cf._weighted(None))
    draws.use(w[:, None])
    ll, g = draws.loglik_score(beta, [0, 1, 2])
    kept = ~at_risk
    rest = CoxFit(df.loc[kept, CONSTRUCTS].to_numpy(), df.loc[kept, "duration"], df.loc[kept, "event"],
                  df.loc[kept, "entry"])
    ref_ll, ref_g, _ = rest.loglik(beta, None, w[kept])
    assert ll[0] == pytest.approx(ref_ll, rel=1e-12)
    np.testing.assert_allclose(g[:, 0], ref_g, rtol=1e-10, atol=1e-9)
