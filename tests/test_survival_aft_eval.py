"""Tests for cxlab.models.survival.aft (AFT trio, time-ratio sentences) and cxlab.models.survival.evaluate
(cross-validated C / AUC / Brier, calibration). References: lifelines 0.30, scikit-survival 0.28,
CoxTimeVaryingFitter, and small cases computed by hand in the comments."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cxlab.errors import ModelError
from cxlab.models.survival.aft import fit_aft, time_ratio_sentence
from cxlab.models.survival.evaluate import (
    _auc_stats,
    _breslow,
    _brier_contributions,
    _censoring_km,
    _concordance_stats,
    _fit_cox,
    _folds,
    _predict,
    _structured,
    calibration,
    evaluate_survival,
    harrell_c,
    uno_c,
)

sksurv_metrics = pytest.importorskip("sksurv.metrics")


def simulate_weibull(n, seed=0, time_ratios=(1.3, 0.8, 1.0), shape=1.5, scale=40.0):
    """Weibull AFT with delayed entry: log T = log(scale) + sum log(TR_k) z_k + 0.2 [segment b]
    + (1/shape) log E, E ~ Exp(1), z_k ~ N(0, 1); construct_k = 3 + 0.8 z_k, so the true time ratio
    per SD of construct_k is TR_k. Entry (tenure at survey) ~ U(0, 60), only T > entry is observed
    (left truncation); administrative censoring 1-48 months after entry."""
    rng = np.random.default_rng(seed)
    m = 3 * n
    z = rng.normal(size=(m, len(time_ratios)))
    segment = rng.choice(["a", "b", "c"], size=m)
    t = np.exp(np.log(scale) + z @ np.log(time_ratios) + 0.2 * (segment == "b")) * rng.exponential(size=m) ** (1 / shape)
    entry = rng.uniform(0, 60, size=m)
    keep = np.flatnonzero(t > entry)[:n]
    censor = entry[keep] + rng.uniform(1, 48, size=keep.size)
    df = pd.DataFrame(3 + 0.8 * z[keep], columns=["recognition", "empathy", "proximity"])
    df["segment"] = segment[keep]
    df["entry"] = entry[keep]
    df["duration"] = np.minimum(t[keep], censor)
    df["event"] = (t[keep] <= censor).astype(int)
    return df


@pytest.fixture(scope="module")
def weibull_data():
    return simulate_weibull(3000, seed=0)


# ---- AFT --------------------------------------------------------------------------------------


def test_weibull_aft_recovers_time_ratios_with_delayed_entry(weibull_data):
    res = fit_aft(weibull_data, ["recognition", "empathy", "proximity"], controls=["segment"], entry_col="entry")
    # the data are Weibull: the lowest AIC must be Weibull
    assert res.best_ == "weibull"
    assert set(res.comparison["distribution"]) == {"weibull", "loglogistic", "lognormal"}
    assert res.comparison["best"].sum() == 1 and res.comparison["delta_aic"].min() == 0
    assert (res.comparison["n_params"] == 3 + 2 + 1 + 1).all()  # 3 constructs, 2 dummies, intercept, shape
    w = res.summary[res.summary["distribution"] == "weibull"].set_index("term")
    for term, truth in {"recognition": 1.3, "empathy": 0.8, "proximity": 1.0}.items():
        assert w.loc[term, "lower"] <= truth <= w.loc[term, "upper"], (term, w.loc[term].to_dict())
    assert w.loc["recognition", "p"] < 1e-6 and w.loc["empathy", "p"] < 1e-6
    # categorical control, dummy-coded against its most frequent level: segment b adds 0.2 to log T
    ref = res.design_.references["segment"]
    for level in {"a", "b", "c"} - {ref}:
        truth = np.exp(0.2 * ((level == "b") - (ref == "b")))
        row = w.loc[f"segment={level}"]
        assert row["lower"] <= truth <= row["upper"], (level, row.to_dict())


def test_aft_matches_lifelines_directly(weibull_data):
    # lifelines 0.30: WeibullAFTFitter on the same standardised design gives the same coefficients
    from lifelines import WeibullAFTFitter

    d = weibull_data[["recognition", "empathy", "entry", "duration", "event"]].copy()
    for c in ["recognition", "empathy"]:
        d[c] = (d[c] - d[c].mean()) / d[c].std(ddof=1)
    ref = WeibullAFTFitter().fit(d, "duration", "event", entry_col="entry")
    res = fit_aft(weibull_data, ["recognition", "empathy"], entry_col="entry", distributions=("weibull",))
    got = res.summary.set_index("term")["time_ratio"]
    # cxlab maximises the same likelihood to a tighter tolerance than lifelines' BFGS (which stops
    # with a gradient of ~1e-2), so it is never below lifelines' maximum and agrees to ~1e-5
    assert res.models_["weibull"].log_likelihood_ >= ref.log_likelihood_ - 1e-9
    np.testing.assert_allclose(got["recognition"], np.exp(ref.params_.loc[("lambda_", "recognition")]), rtol=2e-5)
    np.testing.assert_allclose(got["empathy"], np.exp(ref.params_.loc[("lambda_", "empathy")]), rtol=2e-5)


def test_time_ratio_sentences_on_fixed_numbers():
    assert (
        time_ratio_sentence("recognition", 1.18, 1.12, 1.25, label="recognised")
        == "Customers one SD more recognised stay 18 % longer (95 % CI 12–25 %)."
    )
    assert (
        time_ratio_sentence("empathy", 0.91, 0.87, 0.95)
        == "Customers scoring one SD higher on empathy stay 9 % shorter (95 % CI 5–13 %)."
    )
    s = time_ratio_sentence("proximity", 1.03, 0.97, 1.10)
    assert "no clear difference" in s and "longer" not in s and "shorter" not in s
    assert "0.97–1.10" in s


def test_sentences_from_a_fit(weibull_data):
    res = fit_aft(weibull_data, ["recognition", "empathy", "proximity"], entry_col="entry", distributions=("weibull",))
    lines = res.sentences(labels={"recognition": "recognised"})
    assert lines[0].startswith("Customers one SD more recognised stay") and "longer" in lines[0]
    assert "shorter" in lines[1]
    assert "no clear difference" in lines[2]


def test_aft_errors_are_model_errors(weibull_data):
    no_events = weibull_data.assign(event=0)
    with pytest.raises(ModelError, match="no events"):
        fit_aft(no_events, ["recognition"], entry_col="entry")
    with pytest.raises(ModelError, match="not in the data"):
        fit_aft(weibull_data, ["loyalty"], entry_col="entry")
    with pytest.raises(ModelError, match="greater than 'entry'"):
        fit_aft(weibull_data.assign(entry=weibull_data["duration"] + 1), ["recognition"], entry_col="entry")
    with pytest.raises(ModelError, match="no variance"):
        fit_aft(weibull_data.assign(recognition=3.0), ["recognition"], entry_col="entry")


# ---- concordance: hand-computed cases and references -------------------------------------------


def test_harrell_c_hand_computed():
    # times 1,2,3,4; events 1,1,0,1. Comparable pairs: (1,2) (1,3) (1,4) (2,3) (2,4) = 5.
    t, e = np.array([1.0, 2, 3, 4]), np.array([1, 1, 0, 1], bool)
    # risk 4,1,2,2: subject 1 beats 2,3,4 (3); subject 2 (risk 1) loses to 3 and 4 (0) -> 3/5
    assert harrell_c(t, e, np.array([4.0, 1, 2, 2])) == pytest.approx(0.6, abs=1e-15)
    # risk 2,2,1,3: (1,2) tie 0.5, (1,3) 1, (1,4) 0, (2,3) 1, (2,4) 0 -> 2.5/5
    assert harrell_c(t, e, np.array([2.0, 2, 1, 3])) == pytest.approx(0.5, abs=1e-15)


def test_uno_c_hand_computed():
    # training censoring KM: censored at 2 (4 at risk) and 4 (2 at risk): G(1)=1, G(2)=3/4, G(4)=3/8.
    train_t, train_e = np.array([1.0, 2, 3, 4, 5]), np.array([1, 0, 1, 0, 1], bool)
    t, e, risk = np.array([1.0, 2, 3, 4]), np.array([1, 1, 0, 1], bool), np.array([4.0, 1, 2, 2])
    # weights 1/G^2: subject 1 -> 1, subject 2 -> 16/9; numerator 1*3 + 16/9*0, denominator 1*3 + 16/9*2
    expected = 3 / (3 + 32 / 9)
    assert uno_c(train_t, train_e, t, e, risk, tau=5) == pytest.approx(expected, abs=1e-14)
    ref = sksurv_metrics.concordance_index_ipcw(_structured(train_e, train_t), _structured(e, t), risk, tau=5)[0]
    assert ref == pytest.approx(expected, abs=1e-14)


def test_concordance_and_variance_match_brute_force_with_ties():
    # brute force over all pairs; variance = sum_k (N_k - C D_k)^2 / D^2 (U-statistic influence)
    rng = np.random.default_rng(7)
    for _ in range(60):
        n = int(rng.integers(3, 25))
        t = rng.integers(1, 6, n).astype(float)
        e = rng.random(n) < 0.6
        r = rng.integers(0, 4, n).astype(float)
        w = rng.random(n)
        num_k, den_k = np.zeros(n), np.zeros(n)
        for i in np.flatnonzero(e):
            for j in range(n):
                if j != i and (t[j] > t[i] or (t[j] == t[i] and not e[j])):
                    c = 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
                    num_k[[i, j]] += w[i] * c
                    den_k[[i, j]] += w[i]
        if den_k.sum() == 0:
            continue
        c_ref = num_k.sum() / den_k.sum()
        var_ref = np.sum((num_k - c_ref * den_k) ** 2) / (den_k.sum() / 2) ** 2
        c, var, _ = _concordance_stats(t, e, r, w)
        assert c == pytest.approx(c_ref, abs=1e-12)
        assert var == pytest.approx(var_ref, abs=1e-12)


def test_harrell_c_equals_lifelines_exactly_on_rossi():
    # lifelines 0.30: concordance_index(T, -risk, E); rossi has many tied weeks
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi
    from lifelines.utils import concordance_index

    rossi = load_rossi()
    risk = CoxPHFitter().fit(rossi, "week", "arrest").predict_log_partial_hazard(rossi).to_numpy()
    ours = harrell_c(rossi["week"].to_numpy(float), rossi["arrest"].to_numpy(bool), risk)
    assert ours == concordance_index(rossi["week"], -risk, rossi["arrest"])
    sk = sksurv_metrics.concordance_index_censored(rossi["arrest"].to_numpy(bool), rossi["week"].to_numpy(float), risk)[0]
    assert ours == pytest.approx(sk, abs=1e-12)


def test_breslow_with_delayed_entry_matches_cox_time_varying(weibull_data):
    # lifelines CoxTimeVaryingFitter (start=entry, stop=duration) has correct left-truncated risk
    # sets; compare the cumulative hazard of a reference customer.
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter

    d = weibull_data[["recognition", "empathy", "entry", "duration", "event"]].iloc[:800].copy()
    cph = CoxPHFitter().fit(d, "duration", "event", entry_col="entry")
    grid, h0 = _breslow(cph, d, ["recognition", "empathy"], "duration", "event", "entry")
    ctv = CoxTimeVaryingFitter().fit(d.assign(id=np.arange(len(d))), id_col="id", event_col="event",
                                     start_col="entry", stop_col="duration")
    x0 = pd.DataFrame({"recognition": [3.0], "empathy": [3.0]})
    ours = h0 * np.exp(cph.predict_log_partial_hazard(x0).iloc[0])
    ref = ctv.baseline_cumulative_hazard_.iloc[:, 0].loc[grid].to_numpy() * np.exp(ctv.predict_log_partial_hazard(x0).iloc[0])
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


# ---- cross-validated evaluation ----------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluation_data():
    # strong: time ratio 2 per SD of 'recognition'; noise: unrelated to defection
    df = simulate_weibull(2000, seed=11, time_ratios=(2.0, 1.0, 1.0))
    df["noise"] = np.random.default_rng(12).normal(size=len(df))
    return df


def test_strong_predictor_discriminates_noise_does_not(evaluation_data):
    strong = evaluate_survival(evaluation_data, ["recognition"], entry_col="entry", times=(12, 24)).summary
    s = strong.set_index("metric")
    assert list(strong.columns) == ["metric", "estimate", "lower", "upper", "n_folds"]
    assert list(strong["metric"]) == ["harrell_c", "uno_c", "auc_12m", "auc_24m", "integrated_brier_score"]
    assert (strong["n_folds"] == 5).all()
    for m in ["harrell_c", "uno_c", "auc_12m", "auc_24m"]:
        assert s.loc[m, "estimate"] > 0.65 and s.loc[m, "lower"] > 0.6, m
    noise = evaluate_survival(evaluation_data, ["noise"], entry_col="entry").summary.set_index("metric")
    for m in ["harrell_c", "uno_c"]:
        assert abs(noise.loc[m, "estimate"] - 0.5) < 0.04
        assert noise.loc[m, "lower"] <= 0.5 <= noise.loc[m, "upper"], noise.loc[m].to_dict()
    # better discrimination and a lower Brier score for the informative model
    assert s.loc["integrated_brier_score", "estimate"] < noise.loc["integrated_brier_score", "estimate"]


def _independent_fold_predictions(data, train, test, horizons):
    """lifelines' CoxTimeVaryingFitter (start = entry, stop = duration: left-truncated risk sets,
    Breslow baseline) fitted on the raw training rows: linear predictor of the test rows and their
    survival P(T > entry + h | T > entry, x) = exp(-(H(entry + h) - H(entry)) exp(lp)). Nothing of
    cxlab is used (the design's scaling does not change a Cox model's predictions)."""
    from lifelines import CoxTimeVaryingFitter

    x = data[["recognition", "empathy"]].assign(seg_b=(data["segment"] == "b").astype(float),
                                               seg_c=(data["segment"] == "c").astype(float))
    fit_rows = x.iloc[train].assign(id=np.arange(len(train)), entry=data["entry"].to_numpy()[train],
                                    duration=data["duration"].to_numpy()[train],
                                    event=data["event"].to_numpy()[train])
    ctv = CoxTimeVaryingFitter().fit(fit_rows, id_col="id", event_col="event", start_col="entry",
                                     stop_col="duration")
    lp = ctv.predict_log_partial_hazard(x.iloc[test]).to_numpy(float)
    base = ctv.baseline_cumulative_hazard_.iloc[:, 0]
    grid, h0 = base.index.to_numpy(float), base.to_numpy(float)

    def cumhaz(t):
        i = np.searchsorted(grid, t, side="right") - 1
        return np.where(i >= 0, h0[np.clip(i, 0, None)], 0.0)

    entry = data["entry"].to_numpy(float)[test]
    dh = cumhaz(entry[:, None] + np.asarray(horizons)[None, :]) - cumhaz(entry)[:, None]
    return lp, np.exp(-dh * np.exp(lp)[:, None])


def test_fold_metrics_equal_an_independent_computation(evaluation_data):
    # Reference, from the raw rows only: scikit-learn's StratifiedKFold(5, shuffle, seed 0) on the
    # event flag; lifelines CoxTimeVaryingFitter on each training fold; scikit-survival 0.28
    # (concordance_index_censored, concordance_index_ipcw, cumulative_dynamic_auc,
    # integrated_brier_score) on time since entry. cxlab's folds, fit, baseline and prediction
    # are all under test here, not only the metric formulas.
    from sklearn.model_selection import StratifiedKFold

    d = evaluation_data
    res = evaluate_survival(d, ["recognition", "empathy"], ["segment"], entry_col="entry", times=(12,))
    since = (d["duration"] - d["entry"]).to_numpy()
    ev = d["event"].to_numpy(bool)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(len(d)), ev)
    checked = 0
    for k, (tr, te) in enumerate(folds):
        tau = since[tr].max()
        if since[te].max() >= tau:       # the reference metrics need no clipping at tau
            continue
        lp, surv = _independent_fold_predictions(d, tr, te, res.ibs_times_)
        y_tr, y_te = _structured(ev[tr], since[tr]), _structured(ev[te], since[te])
        got = res.folds_[res.folds_["fold"] == k].set_index("metric")["value"]
        assert got["harrell_c"] == pytest.approx(
            sksurv_metrics.concordance_index_censored(ev[te], since[te], lp)[0], abs=1e-6), k
        assert got["uno_c"] == pytest.approx(sksurv_metrics.concordance_index_ipcw(y_tr, y_te, lp, tau=tau)[0],
                                             abs=1e-6), k
        assert got["auc_12m"] == pytest.approx(sksurv_metrics.cumulative_dynamic_auc(y_tr, y_te, lp, [12.0])[0][0],
                                               abs=1e-6), k
        ibs = sksurv_metrics.integrated_brier_score(y_tr, y_te, surv, res.ibs_times_)
        assert got["integrated_brier_score"] == pytest.approx(ibs, rel=1e-5), k
        checked += 1
    assert checked >= 2


def test_concordance_extremes_on_known_orderings():
    # no ties in time: a risk that orders defection exactly gives C = 1, the reverse C = 0,
    # a constant risk 1/2 (every comparable pair tied)
    rng = np.random.default_rng(4)
    t = rng.permutation(np.arange(1.0, 41.0))
    e = rng.random(40) < 0.7
    assert harrell_c(t, e, -t) == 1.0
    assert harrell_c(t, e, t) == 0.0
    assert harrell_c(t, e, np.zeros(40)) == 0.5
    assert uno_c(t, e, t, e, -t, tau=41.0) == pytest.approx(1.0, abs=1e-15)


def test_auc_and_brier_helpers_equal_sksurv_on_random_data():
    rng = np.random.default_rng(3)
    tt, et = rng.exponential(10, 300), rng.random(300) < 0.6
    ts, es, x = np.minimum(rng.exponential(10, 150), tt.max() * 0.99), rng.random(150) < 0.6, rng.normal(size=150)
    cens = _censoring_km(tt, et)
    y_tr, y_te = _structured(et, tt), _structured(es, ts)
    for t in (3.0, 8.0):
        assert _auc_stats(cens, ts, es, x, t)[0] == pytest.approx(
            sksurv_metrics.cumulative_dynamic_auc(y_tr, y_te, x, [t])[0][0], abs=1e-12)
    grid = np.linspace(1, 15, 20)
    surv = np.exp(-np.outer(np.exp(0.3 * x), grid) / 10)
    assert _brier_contributions(cens, ts, es, surv, grid).mean() == pytest.approx(
        sksurv_metrics.integrated_brier_score(y_tr, y_te, surv, grid), abs=1e-12)


# ---- calibration -------------------------------------------------------------------------------


def test_calibration_table_sums_to_n_and_tracks_observed(evaluation_data):
    cal = calibration(evaluation_data, ["recognition", "empathy"], ["segment"], entry_col="entry", time=12)
    assert list(cal.columns) == ["decile", "n", "predicted_defection", "observed_defection", "lower", "upper", "suppressed"]
    assert cal["n"].sum() == len(evaluation_data) and len(cal) == 10
    assert not cal["suppressed"].any()
    assert cal["predicted_defection"].is_monotonic_increasing
    # a correctly specified model: observed within its CI of predicted in most deciles
    inside = (cal["lower"] <= cal["predicted_defection"]) & (cal["predicted_defection"] <= cal["upper"])
    assert inside.sum() >= 7


def test_calibration_table_equals_an_independent_computation(evaluation_data):
    # Reference from the raw rows: out-of-fold predictions of lifelines' CoxTimeVaryingFitter on
    # scikit-learn's StratifiedKFold(5, shuffle, seed 0); deciles of the predicted defection
    # (ties broken by row order); per decile the mean prediction and lifelines' KaplanMeierFitter on
    # time since entry read at 12 months (exponential Greenwood interval = R conf.type "log-log").
    from lifelines import KaplanMeierFitter
    from sklearn.model_selection import StratifiedKFold

    d = evaluation_data
    cal = calibration(d, ["recognition", "empathy"], ["segment"], entry_col="entry", time=12)
    ev = d["event"].to_numpy(bool)
    predicted = np.empty(len(d))
    for tr, te in StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(np.zeros(len(d)), ev):
        predicted[te] = 1 - _independent_fold_predictions(d, tr, te, [12.0])[1][:, 0]
    decile = pd.qcut(pd.Series(predicted).rank(method="first"), 10, labels=False).to_numpy() + 1
    since = (d["duration"] - d["entry"]).to_numpy()
    for g in range(1, 11):
        m = decile == g
        row = cal.set_index("decile").loc[g]
        assert row["n"] == m.sum()
        assert row["predicted_defection"] == pytest.approx(predicted[m].mean(), rel=1e-5)
        km = KaplanMeierFitter().fit(since[m], ev[m])
        ci = km.confidence_interval_survival_function_
        lo, hi = ci[ci.index <= 12].iloc[-1]
        assert row["observed_defection"] == pytest.approx(1 - km.predict(12), abs=1e-12)
        assert row["lower"] == pytest.approx(1 - hi, rel=1e-8) and row["upper"] == pytest.approx(1 - lo, rel=1e-8)


def test_calibration_hides_cells_under_ten_customers(evaluation_data):
    small = evaluation_data.iloc[:95]  # 10 bins of 9 or 10 customers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = calibration(small, ["recognition"], entry_col="entry", time=12, bins=10)
    assert cal["n"].sum() == 95
    hidden = cal[cal["n"] < 10]
    assert len(hidden) > 0 and hidden["suppressed"].all()
    assert hidden[["predicted_defection", "observed_defection", "lower", "upper"]].isna().all().all()
    shown = cal[cal["n"] >= 10]
    assert shown["predicted_defection"].notna().all()


def test_plot_calibration_returns_axes(evaluation_data):
    import matplotlib.pyplot as plt

    from cxlab.report.plots import plot_calibration

    cal = calibration(evaluation_data, ["recognition"], entry_col="entry", time=12)
    ax = plot_calibration(cal)
    assert ax.get_xlabel() == "predicted defection"
    assert len(ax.lines) >= 1  # the diagonal
    plt.close(ax.figure)
