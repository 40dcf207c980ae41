"""Plots a reviewer expects: importance with intervals, the what-if before/after, PH residuals
over tenure, the Lorenz curve with its top-20 % point."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from cxlab.report.plots import plot_importance, plot_lorenz, plot_ph_residuals, plot_whatif, ph_residuals
from cxlab.models.survival import CoxModel
from cxlab.insight.value import lorenz


def _no_ties(n=300, seed=4):
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    t = rng.exponential(1 / np.exp(0.5 * x - 0.3 * z))
    c = rng.exponential(2.0, n)
    return pd.DataFrame({"duration": np.minimum(t, c) + 1e-3, "event": (t <= c).astype(int), "x": x, "z": z})


def test_scaled_schoenfeld_residuals_match_lifelines():
    # lifelines 0.30: CoxPHFitter.compute_residuals(df, "scaled_schoenfeld"); no tied times, so
    # Breslow (here) and Efron (lifelines) coincide
    from lifelines import CoxPHFitter

    d = _no_ties()
    m = CoxModel(["x", "z"]).fit(d)
    ours = ph_residuals(m)
    cph = CoxPHFitter().fit(d, "duration", "event")
    ref = cph.compute_residuals(d, "scaled_schoenfeld").sort_index()
    ref = ref.assign(time=d.loc[ref.index, "duration"]).sort_values("time")
    # ours are per SD of the constructs (CoxModel standardises them) and include beta, as R's
    # residuals(fit, "scaledsch"); lifelines leaves beta out
    sd = {c: m.construct_scales_[c][1] for c in ("x", "z")}
    for c in ("x", "z"):
        np.testing.assert_allclose(ours[c].to_numpy() / sd[c], ref[c].to_numpy() + cph.params_[c],
                                   rtol=1e-4, atol=1e-4)
    ax = plot_ph_residuals(m, ["x"])
    assert ax.get_title() == "x" and ax.get_xlabel().startswith("tenure")


def test_lorenz_marks_the_top_20_point():
    values = pd.Series(np.r_[np.ones(80), np.full(20, 16.0)])   # top 20 % hold 320 / 400 = 80 %
    ax = plot_lorenz(lorenz(values))
    texts = [t.get_text() for t in ax.texts]
    assert any("top 20 % (all) hold 80% of the margin" in t for t in texts), texts


def test_importance_bars_with_intervals_and_whatif_before_after():
    imp = pd.DataFrame({"construct": ["recognition", "empathy"], "share": [0.6, 0.4], "lower": [0.4, 0.2],
                        "upper": [0.8, 0.6], "rank_stability": [0.9, 0.9]})
    ax = plot_importance(imp)
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.get_yticklabels()] == ["empathy", "recognition"]
    assert any("90%" in t.get_text() for t in ax.texts)
    wi = pd.DataFrame({"metric": ["expected defections"] * 2, "horizon": [12, 24], "baseline": [100.0, 180.0],
                       "delta": [-5.0, -11.0], "lower": [-8.0, -17.0], "upper": [-2.0, -6.0]})
    ax = plot_whatif(wi)
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [95.0, 100.0, 169.0, 180.0]
    assert [t.get_text() for t in ax.texts] == ["-5", "-11"]


def test_scaled_schoenfeld_residuals_equal_the_risk_set_loop_with_entry_and_ties():
    # the vectorised risk sets against the direct definition, one pass over the rows per event
    # (delayed entry, tied event times)
    rng = np.random.default_rng(7)
    n = 400
    d = _no_ties(n, seed=8)
    d["entry"] = rng.integers(0, 6, n) / 20
    d["duration"] = d["entry"] + np.ceil(d["duration"] * 20) / 20      # ties on a 1/20 grid
    m = CoxModel(["x", "z"]).fit(d, entry_col="entry")
    got = ph_residuals(m)
    fd = m._fit_data
    start, stop, event = (np.asarray(fd[k], float) for k in ("start", "stop", "event"))
    X, beta = np.asarray(fd["X"], float), np.asarray(fd["beta"], float)
    w = np.asarray(fd["weights"], float) if fd.get("weights") is not None else np.ones(len(stop))
    risk = w * np.exp(X @ beta)
    ev = np.flatnonzero(event == 1)
    assert len(np.unique(stop[ev])) < len(ev) and np.any(start > 0)
    resid = np.empty((ev.size, X.shape[1]))
    for k, i in enumerate(ev):
        at = (start < stop[i]) & (stop >= stop[i])
        resid[k] = X[i] - (risk[at] @ X[at]) / risk[at].sum()
    ref = pd.DataFrame(beta + ev.size * resid @ np.asarray(m.naive_variance_matrix_, float), columns=list(fd["names"]))
    ref.insert(0, "time", stop[ev])
    ref = ref.sort_values("time", kind="stable").reset_index(drop=True)
    got = got.sort_values(["time", "x"], kind="stable").reset_index(drop=True)
    ref = ref.sort_values(["time", "x"], kind="stable").reset_index(drop=True)
    np.testing.assert_allclose(got[["x", "z"]].to_numpy(), ref[["x", "z"]].to_numpy(), rtol=1e-10, atol=1e-10)
