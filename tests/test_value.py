"""Tests for cxlab.insight.value: concentration, RMST (vs R), CLV, what-if (vs the true model), sBG (vs Fader & Hardie)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from conftest import r_reference
from cxlab.errors import CxlabError, DataContractError, ParameterError
from cxlab.insight.value import (
    _cox_fit,
    clv,
    cohort_survivors,
    fit_sbg,
    gini,
    lorenz,
    rmst,
    top_share,
    value_at_risk,
    what_if,
)

REF = Path(__file__).parent / "reference"

# ---- simulated respondent table with a known Cox model (tenure clock, delayed entry) ---------

WEIBULL_SCALE, WEIBULL_SHAPE = 80.0, 1.3
TRUE_BETA = {"recognition": -0.35, "empathy": -0.15}


def true_cumhaz(t):
    return (np.asarray(t) / WEIBULL_SCALE) ** WEIBULL_SHAPE


def simulate_respondents(n, seed):
    """Respondents surveyed at tenure ``entry``; hazard h0(t) exp(-0.35 recognition - 0.15 empathy),
    Weibull baseline on the tenure clock; followed 6..36 months after the survey."""
    rng = np.random.default_rng(seed)
    entry = rng.uniform(1, 60, n)
    rec = np.clip(np.round(rng.normal(3.2, 1.0, n)), 1, 5)
    emp = np.clip(np.round(rng.normal(3.5, 0.9, n)), 1, 5)
    lp = TRUE_BETA["recognition"] * rec + TRUE_BETA["empathy"] * emp
    # inverse of the conditional cumulative hazard: H0(entry + r) = H0(entry) + Exp(1) / exp(lp)
    target = true_cumhaz(entry) + rng.exponential(1.0, n) / np.exp(lp)
    t_defect = WEIBULL_SCALE * target ** (1 / WEIBULL_SHAPE)
    follow = entry + rng.uniform(6, 36, n)
    return pd.DataFrame({
        "entry": entry,
        "duration": np.minimum(t_defect, follow),
        "event": (t_defect <= follow).astype(int),
        "recognition": rec,
        "empathy": emp,
        "value": rng.gamma(2.0, 300.0, n),
    })


def true_defections(df, rec, horizon):
    lp = TRUE_BETA["recognition"] * rec + TRUE_BETA["empathy"] * df["empathy"].to_numpy()
    dH = true_cumhaz(df["entry"] + horizon) - true_cumhaz(df["entry"])
    return float(np.sum(1 - np.exp(-dH * np.exp(lp))))


# ---- Lorenz / Gini / top share -------------------------------------------------------------


def test_gini_hand_computed_cases():
    # hand computed: G = sum|xi - xj| / (2 n^2 mean); [0,0,0,1]: 6 / (2*16*0.25) = 0.75
    assert gini([1, 1, 1, 1])["estimate"].iloc[0] == pytest.approx(0.0)
    assert gini([0, 0, 0, 1])["estimate"].iloc[0] == pytest.approx(0.75)
    # with the n/(n-1) convention: 0.75 * 4/3 = 1
    assert gini([0, 0, 0, 1], unbiased=True)["estimate"].iloc[0] == pytest.approx(1.0)
    # [1, 2, 3, 4]: sum|xi-xj| over ordered pairs = 20; 20 / (2*16*2.5) = 0.25
    assert gini([1, 2, 3, 4])["estimate"].iloc[0] == pytest.approx(0.25)


def test_gini_equals_one_minus_twice_lorenz_area_and_bootstrap_covers():
    x = np.random.default_rng(3).lognormal(0, 1, 400)
    curve = lorenz(x)
    area = np.trapezoid(curve["margin_share"], curve["customer_share"])
    g = gini(x, n_boot=200, seed=1)
    assert g["estimate"].iloc[0] == pytest.approx(1 - 2 * area, abs=1e-12)
    # lognormal(sigma=1): population Gini = 2 Phi(sigma / sqrt 2) - 1 = 0.5205
    assert g["lower"].iloc[0] < 0.5205 < g["upper"].iloc[0]


def test_lorenz_points_and_groups():
    with pytest.warns(UserWarning, match="total margin is 0"):
        curve = lorenz([0, 0, 0, 4], groups=["a", "a", "b", "b"], min_cell=1)   # arithmetic, not privacy
    all_ = curve[curve["group"] == "all"]
    np.testing.assert_allclose(all_["customer_share"], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(all_["margin_share"], [0, 0, 0, 0, 1])
    b = curve[curve["group"] == "b"]
    np.testing.assert_allclose(b["margin_share"], [0, 0, 1])


def test_top_share():
    # top 20 % of [1..10] = the two largest: (10 + 9) / 55
    assert top_share(np.arange(1, 11), 0.2)["estimate"].iloc[0] == pytest.approx(19 / 55)
    # fractional cut: top 25 % of 10 customers = 10 + 9 + 0.5 * 8
    assert top_share(np.arange(1, 11), 0.25)["estimate"].iloc[0] == pytest.approx(23 / 55)
    with pytest.raises(ParameterError):
        top_share([1, 2], 1.5)
    with pytest.raises(DataContractError, match="missing"):
        gini([1, np.nan])


# ---- RMST vs R ------------------------------------------------------------------------------


def _check_rmst_against(ref):
    d = pd.read_csv(REF / "value_rmst_data.csv")
    for r in ref["results"]:
        group_col = None if r["group"] == "all" else "group"
        out = rmst(d, r["horizon"], group_col).set_index("group").loc[r["group"]]
        assert out["estimate"] == pytest.approx(r["rmean"], rel=1e-9)
        assert out["se"] == pytest.approx(r["se"], rel=1e-9)


def test_rmst_matches_r_survival_rmean(r_reference_dir):
    # R 4.2.2, survival 3.5-3: summary(survfit(Surv(entry, duration, event) ~ group), rmean = H)$table
    # (tests/reference/value_reference.R; re-run when R is installed, else value_reference.json)
    _check_rmst_against(r_reference("value_reference.R", "value_reference.json", r_reference_dir))


def test_rmst_bootstrap_close_to_analytic():
    d = pd.read_csv(REF / "value_rmst_data.csv")
    a = rmst(d, 12).iloc[0]
    b = rmst(d, 12, n_boot=300, seed=2).iloc[0]
    assert b["estimate"] == a["estimate"]
    # bootstrap half-width within 25 % of 1.96 * analytic se
    assert (b["upper"] - b["lower"]) / 2 == pytest.approx(1.96 * a["se"], rel=0.25)


def test_rmst_without_delayed_entry_equals_km_area_from_lifelines():
    from lifelines import KaplanMeierFitter
    from lifelines.utils import restricted_mean_survival_time

    rossi = load_rossi()
    km = KaplanMeierFitter().fit(rossi["week"], rossi["arrest"])
    ours = rmst(rossi, 40, entry_col=None, duration_col="week", event_col="arrest")
    assert ours["estimate"].iloc[0] == pytest.approx(restricted_mean_survival_time(km, t=40), rel=1e-9)


def test_rmst_input_errors_name_the_column():
    d = pd.read_csv(REF / "value_rmst_data.csv")
    with pytest.raises(DataContractError, match="tenure"):
        rmst(d, 12, duration_col="tenure")
    bad = d.copy()
    bad.loc[3, "duration"] = bad.loc[3, "entry"]
    with pytest.raises(DataContractError, match="duration <= entry"):
        rmst(bad, 12)


# ---- CLV and value at risk ----------------------------------------------------------------


def test_clv_and_value_at_risk_without_defection():
    # nobody defects: CLV = monthly margin * sum of discount factors; nothing at risk
    d = pd.DataFrame({"entry": np.zeros(20), "duration": np.full(20, 40.0), "event": 0,
                      "value": np.full(20, 120.0), "g": ["a"] * 10 + ["b"] * 10})
    out = clv(d, "value", horizon_months=24, annual_discount_rate=0.1, group_col="g")
    expected = 10.0 * np.sum(1.1 ** (-np.arange(1, 25) / 12))
    np.testing.assert_allclose(out["clv_per_customer"], expected)
    np.testing.assert_allclose(out["expected_months"], 24)
    var = value_at_risk(d, "value", 12)
    assert var["expected_defectors"].iloc[0] == 0 and var["margin_lost"].iloc[0] == 0


def test_value_at_risk_exponential():
    # survey clock exponential with monthly hazard 0.05, no censoring before 12 months:
    # F(12) = 1 - exp(-0.6) = 0.451
    rng = np.random.default_rng(5)
    t = rng.exponential(20, 4000)
    d = pd.DataFrame({"entry": 5.0, "duration": 5 + np.minimum(t, 30), "event": (t <= 30).astype(int),
                      "value": 12.0})
    var = value_at_risk(d, "value", 12)
    assert var["defection_rate"].iloc[0] == pytest.approx(1 - np.exp(-0.6), abs=0.02)
    assert var["annual_margin_at_risk"].iloc[0] == pytest.approx(var["expected_defectors"].iloc[0] * 12)


# ---- own Cox (Efron, delayed entry) vs lifelines -------------------------------------------


def test_fast_cox_matches_lifelines_with_ties_and_delayed_entry():
    # lifelines 0.30 CoxPHFitter (Efron ties, entry_col); Rossi has heavily tied integer weeks
    rossi = load_rossi()
    rossi["entry"] = np.minimum(np.random.default_rng(1).uniform(0, 20, len(rossi)), rossi["week"] - 0.5)
    cph = CoxPHFitter().fit(rossi, "week", "arrest", entry_col="entry")
    X = rossi[cph.params_.index].to_numpy(float)
    fit = _cox_fit(X, rossi["entry"].to_numpy(), rossi["week"].to_numpy(float), rossi["arrest"].to_numpy())
    np.testing.assert_allclose(fit.beta, cph.params_.to_numpy(), atol=1e-6)
    assert fit.loglik == pytest.approx(cph.log_likelihood_, abs=1e-8)


# ---- what-if against the true model --------------------------------------------------------


@pytest.fixture(scope="module")
def sim():
    d = simulate_respondents(3000, seed=11)
    cph = CoxPHFitter().fit(d[["entry", "duration", "event", "recognition", "empathy"]], "duration", "event",
                            entry_col="entry")
    return d, cph


def test_what_if_recovers_true_change_in_defections(sim):
    d, cph = sim
    low = (d["recognition"] <= 2).to_numpy()
    out = what_if(d, cph, "recognition", 1.0, segment=low, n_boot=60, seed=3, horizons=(12, 24))
    for h in (12, 24):
        row = out[(out["metric"] == "expected defections") & (out["horizon"] == h)].iloc[0]
        truth = (true_defections(d, np.where(low, np.minimum(d["recognition"] + 1, 5), d["recognition"]), h)
                 - true_defections(d, d["recognition"].to_numpy(), h))
        assert truth < 0
        assert row["lower"] <= truth <= row["upper"], (h, truth, row.to_dict())
        assert row["baseline"] == pytest.approx(true_defections(d, d["recognition"].to_numpy(), h), rel=0.1)
    assert set(out.columns) >= {"metric", "baseline", "scenario", "delta", "lower", "upper"}
    # fewer defections -> more retained months and more margin
    assert (out.loc[out["metric"] != "expected defections", "delta"] > 0).all()
    assert out["n_changed"].iloc[0] == low.sum()


def test_what_if_caps_at_scale_max_and_moves_share(sim):
    d, cph = sim
    top = (d["recognition"] == 5).to_numpy()
    with pytest.warns(UserWarning, match="changes no covariate"):
        capped = what_if(d, cph, "recognition", 2.0, segment=top, n_boot=0)
    assert (capped["delta"] == 0).all() and capped["n_changed"].iloc[0] == 0
    d2 = d.copy()
    d2["segment_2x2"] = np.where(d2["recognition"] <= 2, "disappointed good customers", "recognised good customers")
    half = what_if(d2, cph, "recognition", move_share=0.5, n_boot=0)
    full = what_if(d2, cph, "recognition", move_share=1.0, n_boot=0)
    # expected-value scenario: moving half the cell gives half the effect of moving all of it
    np.testing.assert_allclose(half["delta"], 0.5 * full["delta"], rtol=1e-9)
    assert (full.loc[full["metric"] == "expected defections", "delta"] < 0).all()


def test_what_if_rejects_a_model_without_the_construct(sim):
    d, cph = sim
    with pytest.raises(CxlabError, match="loyalty"):
        what_if(d, cph, "loyalty", 1.0, n_boot=0)


# ---- sBG vs Fader & Hardie (2007) -------------------------------------------------------------


def test_sbg_matches_published_estimates():
    # Fader & Hardie (2007) J. Interactive Marketing 21(1), Table 1 data, fit on years 1..7
    ref = json.loads((REF / "fader_hardie_2007_sbg.json").read_text())
    for name, cohort in ref["cohorts"].items():
        res = fit_sbg(cohort["survivors"], fit_on=ref["fit_on_years"])
        pub = cohort["published"]
        assert round(res.alpha_, 3) == pytest.approx(pub["alpha"], abs=1e-9), name
        assert round(res.beta_, 3) == pytest.approx(pub["beta"], abs=1e-9), name
        if "log_likelihood" in pub:
            assert round(res.log_likelihood_, 1) == pytest.approx(pub["log_likelihood"], abs=1e-9)
        assert (res.params_["se"] > 0).all()
        proj = res.project(12)
        assert proj["survival"].iloc[0] == 1 and proj["survival"].is_monotonic_decreasing
        # held-out years 8..12 projected within 5 % of the cohort (the paper's Figure 3 shows a close fit)
        held = proj[~proj["fitted"]]
        assert np.max(np.abs(held["expected_survivors"] - held["observed_survivors"])) < 50


def test_sbg_recovers_simulated_parameters():
    rng = np.random.default_rng(8)
    theta = rng.beta(1.2, 2.5, 20000)  # churn probability per period
    life = rng.geometric(theta)
    survivors = [int((life > t).sum()) for t in range(9)]
    res = fit_sbg(survivors)
    p = res.params_
    assert p.loc["alpha", "lower"] < 1.2 < p.loc["alpha", "upper"]
    assert p.loc["beta", "lower"] < 2.5 < p.loc["beta", "upper"]


def test_sbg_interval_is_on_the_log_scale_and_stays_positive():
    # a small cohort: a plain Wald interval (estimate +- 1.96 se) would go below zero
    rng = np.random.default_rng(0)
    life = rng.geometric(rng.beta(0.8, 3.0, 120))
    res = fit_sbg([int((life > t).sum()) for t in range(6)])
    p = res.params_
    assert (p["estimate"] - 1.96 * p["se"] < 0).any()     # the case the log scale is for
    assert (p["lower"] > 0).all()
    # delta method: log(upper / estimate) = log(estimate / lower) = 1.96 se / estimate
    np.testing.assert_allclose(np.log(p["upper"] / p["estimate"]), 1.959963984540054 * p["se"] / p["estimate"])
    np.testing.assert_allclose(np.log(p["estimate"] / p["lower"]), 1.959963984540054 * p["se"] / p["estimate"])


def test_cohort_survivors_counts_and_no_lookahead():
    start = pd.to_datetime(["2020-01-15"] * 12 + ["2021-03-01"] * 12)
    end = pd.to_datetime([None] * 6 + ["2020-06-01"] * 3 + ["2021-08-01"] * 3
                         + [None] * 10 + ["2021-05-01", "2023-01-01"])
    df = pd.DataFrame({"start": start, "end": end})
    out = cohort_survivors(df, snapshot="2022-06-30", min_cell=5)
    c20 = out[out["cohort"] == "2020"].set_index("period")["survivors"]
    # 2020 cohort: periods 0, 1, 2 fully observed (2022-01-15 <= snapshot; 2023-01-15 is not)
    assert c20.to_dict() == {0: 12, 1: 9, 2: 6}
    c21 = out[out["cohort"] == "2021"].set_index("period")["survivors"]
    # the 2023 defection is after the snapshot: still active at the cut
    assert c21.to_dict() == {0: 12, 1: 11}
    with pytest.warns(UserWarning, match="dropped"):
        cohort_survivors(df.iloc[:15], snapshot="2022-06-30")
    # privacy boundary: the series stops before the first period with fewer than min_cell survivors
    for min_cell, periods in ((9, {0: 12, 1: 9}), (10, {0: 12})):
        out = cohort_survivors(df, snapshot="2022-06-30", min_cell=min_cell)
        assert out[out["cohort"] == "2020"].set_index("period")["survivors"].to_dict() == periods


def test_what_if_parallel_draws_equal_serial_and_formula_models():
    # each draw has its own spawned seed: n_jobs does not change the result
    d = simulate_respondents(600, seed=4)
    d["channel"] = np.where(np.arange(600) % 3 == 0, "online", "branch")
    cph = CoxPHFitter().fit(d[["entry", "duration", "event", "recognition", "empathy", "channel"]], "duration",
                            "event", entry_col="entry", formula="recognition + empathy + channel")
    serial = what_if(d, cph, "recognition", 1.0, n_boot=4, seed=9, margin_col=None)
    parallel = what_if(d, cph, "recognition", 1.0, n_boot=4, seed=9, margin_col=None, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)
    assert set(serial["metric"]) == {"expected defections", "retained months"}


def test_value_plots_return_axes():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    from cxlab.report.plots import plot_lorenz, plot_retention_projection

    ref = json.loads((REF / "fader_hardie_2007_sbg.json").read_text())
    ax = plot_retention_projection(fit_sbg(ref["cohorts"]["regular"]["survivors"], fit_on=7))
    assert isinstance(ax, Axes) and len(ax.lines) >= 3
    ax = plot_lorenz(lorenz(np.arange(1, 21), groups=["a", "b"] * 10))
    curves = [ln.get_label() for ln in ax.lines if not ln.get_label().startswith("_")]
    assert isinstance(ax, Axes) and curves == ["all", "a", "b", "equality"]  # (+ the top-20 % marker)
    matplotlib.pyplot.close("all")


def test_what_if_recomputes_dgc_when_recognition_crosses_the_threshold():
    """Raising recognition past the midpoint ends 'disappointed good customer' status."""
    import numpy as np
    import pandas as pd
    from lifelines import CoxPHFitter

    from cxlab.insight.value import what_if

    rng = np.random.default_rng(3)
    n = 1500
    rec = rng.integers(1, 6, n).astype(float)
    dgc = ((rec < 3) & (rng.random(n) < 0.6)).astype(float)
    entry = rng.uniform(0, 24, n)
    lp = -0.3 * (rec - 3) + 0.8 * dgc
    t = entry + rng.exponential(40 / np.exp(lp))
    event = (t < entry + 36).astype(int)
    df = pd.DataFrame({"recognition": rec, "dgc": dgc, "entry": entry,
                       "duration": np.minimum(t, entry + 36), "event": event, "value": 120.0})
    model = CoxPHFitter().fit(df[["recognition", "dgc", "entry", "duration", "event"]], "duration", "event",
                              entry_col="entry")
    kw = dict(horizons=(12,), n_boot=0, scale=(1, 5), margin_col="value")
    plain = what_if(df, model, "recognition", 1.0, **kw)
    crossing = what_if(df, model, "recognition", 1.0, dgc_threshold=3.0, **kw)
    d = lambda t: t.set_index("metric").loc["expected defections", "delta"]  # noqa: E731
    # customers at 2 move to 3 and lose the DGC penalty too: fewer defections than the score alone
    assert d(crossing) < d(plain) < 0
