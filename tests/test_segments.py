"""Tests for cxlab.insight.segments: the 2x2, suppression of small cells, hazard ratios, would-be defectors."""

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from cxlab.errors import DataContractError, ParameterError
from cxlab.insight.segments import (
    SEGMENTS_2X2,
    perception_segments,
    segment_hazard_ratios,
    segment_table,
    would_be_defectors,
)

DGC, RGC, MBR, MAU = SEGMENTS_2X2
#: true hazard ratios vs "recognised good customers" used by the simulation
TRUE_HR = {DGC: 2.0, RGC: 1.0, MBR: 1.3, MAU: 1.6}


def simulate_cells(n, seed):
    """Respondents with self-status and recognition on 1..5; hazard on the tenure clock
    h(t) = h0(t) * HR[cell] (Weibull h0, shape 1.2, scale 60); delayed entry at the survey,
    followed 6..36 months after it."""
    rng = np.random.default_rng(seed)
    status = rng.choice([1, 2, 3, 4, 5], n, p=[0.05, 0.1, 0.25, 0.35, 0.25]).astype(float)
    rec = rng.choice([1, 2, 3, 4, 5], n, p=[0.1, 0.2, 0.3, 0.25, 0.15]).astype(float)
    d = perception_segments(pd.DataFrame({"self_status": status, "recognition": rec}), "recognition")
    hr = d["segment_2x2"].map(TRUE_HR).astype(float).to_numpy()
    entry = rng.uniform(1, 48, n)
    H0 = (entry / 60.0) ** 1.2
    t_def = 60.0 * (H0 + rng.exponential(1.0, n) / hr) ** (1 / 1.2)
    follow = entry + rng.uniform(6, 36, n)
    d["entry"] = entry
    d["duration"] = np.minimum(t_def, follow)
    d["event"] = (t_def <= follow).astype(int)
    d["value"] = rng.gamma(2.0, 250.0, n)
    return d


@pytest.fixture(scope="module")
def cells():
    return simulate_cells(4000, seed=21)


def test_perception_segments_boundaries_and_unclassified():
    df = pd.DataFrame({"self_status": [5, 4, 4, 3, 3, 1, np.nan, 5],
                       "recognition": [2.99, 3.0, 5, 3.0, 2.5, 1, 4, np.nan]})
    with pytest.warns(UserWarning, match="2 of 8"):
        out = perception_segments(df, "recognition")
    # top-two-box on 1..5 = {4, 5}; midpoint 3: below 3 = not recognised
    assert out["segment_2x2"].astype(str).tolist() == [DGC, RGC, RGC, MBR, MAU, MAU, "unclassified", "unclassified"]
    assert out.attrs["unclassified"] == 2
    assert "segment_2x2" not in df.columns  # input untouched


def test_perception_segments_other_scale_and_thresholds():
    df = pd.DataFrame({"status": [10, 9, 8, 10], "rec": [4.9, 5.0, 9, 7]})
    out = perception_segments(df, "rec", "status", scale=(0, 10))
    # 0..10: top-two-box = {9, 10}; midpoint 5
    assert out["segment_2x2"].astype(str).tolist() == [DGC, RGC, MBR, RGC]
    out = perception_segments(df, "rec", "status", scale=(0, 10), good_customer_min=8, recognised_min=8)
    assert out["segment_2x2"].astype(str).tolist() == [DGC, DGC, RGC, DGC]
    with pytest.raises(DataContractError, match="outside the scale"):
        perception_segments(df, "rec", "status", scale=(1, 5))


def test_segment_table_matches_km_and_suppresses_small_cells(cells):
    # make one cell tiny: keep 6 "modest but recognised"
    small_idx = cells.index[cells["segment_2x2"] == MBR][6:]
    d = cells.drop(small_idx)
    tab = segment_table(d, min_cell=10).set_index("cell")
    assert tab.loc[MBR, "suppressed"] and tab.loc[MBR, ["n", "share", "events", "defection_12m",
                                                         "margin_total"]].isna().all()
    assert not tab.loc[DGC, "suppressed"]
    # lifelines KaplanMeierFitter on months since the survey (log-log CI, as R conf.type="log-log")
    m = d["segment_2x2"] == DGC
    km = KaplanMeierFitter().fit(d.loc[m, "duration"] - d.loc[m, "entry"], d.loc[m, "event"])
    assert tab.loc[DGC, "defection_12m"] == pytest.approx(1 - km.predict(12), rel=1e-10)
    ci = km.confidence_interval_survival_function_
    s_lo = ci[ci.index <= 12].iloc[-1, 0]
    assert tab.loc[DGC, "defection_12m_upper"] == pytest.approx(1 - s_lo, rel=1e-6)
    # complementary suppression: the next-smallest cell's counts and margin are blanked too (else
    # total - shown cells = the tiny cell), its defection figures stay
    sizes = d["segment_2x2"].astype(object).value_counts()
    second = sizes.drop(MBR).idxmin()
    assert tab.loc[second, ["n", "share", "events", "margin_total", "margin_share"]].isna().all()
    assert not tab.loc[second, "suppressed"] and np.isfinite(tab.loc[second, "defection_12m"])
    shown = tab.drop(index=[MBR, second])
    assert (shown["n"] == sizes[shown.index]).all()
    assert len(d) - shown["n"].sum() >= 10 + 6   # what subtraction reveals: two cells together


def test_segment_hazard_ratios_recover_truth(cells):
    hr = segment_hazard_ratios(cells).set_index("cell")
    assert hr.loc[RGC, "hr"] == 1 and hr.loc[RGC, "reference"]
    for cell in (DGC, MBR, MAU):
        assert hr.loc[cell, "lower"] < TRUE_HR[cell] < hr.loc[cell, "upper"], cell
    assert hr.loc[DGC, "p"] < 1e-6
    with pytest.raises(ParameterError, match="reference"):
        segment_hazard_ratios(cells, reference="nobody")
    # a cell under min_cell is not estimated and is flagged
    tiny = cells.drop(cells.index[cells["segment_2x2"] == MAU][5:])
    hr_tiny = segment_hazard_ratios(tiny).set_index("cell")
    assert hr_tiny.loc[MAU, "suppressed"] and np.isnan(hr_tiny.loc[MAU, "hr"])
    assert not hr_tiny.loc[DGC, "suppressed"]
    wbd = would_be_defectors(tiny, 12, n_boot=20).table.set_index("cell")
    assert wbd.loc[MAU, "suppressed"] and np.isnan(wbd.loc[MAU, "defector_share"])


def test_dgc_contrasts_compare_the_cells_directly_as_lifelines_does(cells):
    """DGC against each other cell from the fit behind the usual table, checked against lifelines'
    own fit with DGC as the reference (delayed entry, Efron ties): the interval of a direct comparison uses
    the two cells' covariance, which the overlap of their intervals against a third cell cannot."""
    from lifelines import CoxPHFitter

    from cxlab.insight.segments import dgc_contrasts

    out = dgc_contrasts(segment_hazard_ratios(cells)).set_index("cell")
    assert sorted(out.index) == sorted([RGC, MBR, MAU]) and not out["suppressed"].any()
    d = cells[cells["segment_2x2"].astype(object) != "unclassified"]
    X = pd.DataFrame({c: (d["segment_2x2"].astype(object) == c).astype(float) for c in (RGC, MBR, MAU)})
    X["entry"], X["duration"], X["event"] = d["entry"], d["duration"], d["event"]
    ref = CoxPHFitter().fit(X, "duration", "event", entry_col="entry", fit_options={"precision": 1e-12}).summary
    for c in (RGC, MBR, MAU):   # lifelines gives the cell's hazard relative to DGC; ours is the inverse
        assert out.loc[c, "hr"] == pytest.approx(1 / ref.loc[c, "exp(coef)"], rel=1e-6)
        assert out.loc[c, "lower"] == pytest.approx(1 / ref.loc[c, "exp(coef) upper 95%"], rel=1e-6)
        assert out.loc[c, "upper"] == pytest.approx(1 / ref.loc[c, "exp(coef) lower 95%"], rel=1e-6)
        assert out.loc[c, "lower"] < TRUE_HR[DGC] / TRUE_HR[c] < out.loc[c, "upper"], c   # the truth
    # the point estimates are the ratios of the usual table's (one model, two codings)
    hr = segment_hazard_ratios(cells).set_index("cell")
    assert out.loc[MAU, "hr"] == pytest.approx(hr.loc[DGC, "hr"] / hr.loc[MAU, "hr"], rel=1e-8)
    # privacy: a small focus cell withholds every comparison
    tiny = cells.drop(cells.index[cells["segment_2x2"] == DGC][5:])
    withheld = dgc_contrasts(segment_hazard_ratios(tiny))
    assert withheld["suppressed"].all() and withheld["hr"].isna().all()


def test_would_be_defectors_matches_hand_count_without_censoring():
    # everyone followed 24 months after the survey: expected defectors = observed defections within 12
    seg = [DGC] * 40 + [RGC] * 60 + [MBR] * 50 + [MAU] * 50
    died = [1] * 20 + [0] * 20 + [1] * 6 + [0] * 54 + [1] * 10 + [0] * 40 + [1] * 14 + [0] * 36
    d = pd.DataFrame({"segment_2x2": seg, "event": died, "entry": 10.0})
    d["duration"] = np.where(d["event"] == 1, 16.0, 34.0)
    res = would_be_defectors(d, 12, n_boot=200, seed=1)
    t = res.table.set_index("cell")
    assert t.loc[DGC, "expected_defectors"] == pytest.approx(20)
    assert t.loc[DGC, "defector_share"] == pytest.approx(20 / 50)
    assert t.loc[DGC, "ratio"] == pytest.approx((20 / 50) / (40 / 200))
    assert t.loc[DGC, "lower"] > 1
    assert "Disappointed good customers are 20 % of classified respondents but hold 40 %" in res.finding
    assert "largest share of would-be defectors" in res.finding


def test_would_be_defectors_on_simulation(cells):
    res = would_be_defectors(cells, 12, n_boot=100, seed=2)
    t = res.table.set_index("cell")
    assert t["ratio"].idxmax() == DGC and t.loc[DGC, "lower"] > 1
    assert t["defector_share"].sum() == pytest.approx(1)
    assert t.loc[DGC, "p_highest_ratio"] > 0.9
    assert f"{t.loc[DGC, 'ratio']:.2f}" in res.finding


def test_plot_segment_grid_shows_suppressed_cells(cells):
    import matplotlib

    matplotlib.use("Agg")
    from cxlab.report.plots import plot_segment_grid

    tiny = cells.drop(cells.index[cells["segment_2x2"] == MAU][5:])
    ax = plot_segment_grid(segment_table(tiny))
    texts = [t.get_text() for t in ax.texts]
    assert any("< min cell" in t for t in texts) and any("disappointed" in t for t in texts)
    matplotlib.pyplot.close("all")


def test_perception_bands_cut_at_quantiles_with_ties():
    from cxlab.insight.segments import perception_bands

    s = pd.Series([1, 2, 2, 3, 3, 3, 4, 4, 5, np.nan], name="recognition")
    b = perception_bands(s, (1 / 3, 2 / 3))
    # by hand (9 scores, linear interpolation as R's quantile type 7): the 1/3 quantile sits at
    # position 8/3 = 2.67 between 2 and 3 -> 2.67; the 2/3 quantile at 16/3 = 5.33 between 3 and 4
    # -> 3.33. Bands: (-inf, 2.67] low, (2.67, 3.33] middle, (3.33, inf) high.
    assert b.astype(object).tolist()[:9] == ["low"] * 3 + ["middle"] * 3 + ["high"] * 3
    assert b.isna().tolist() == [False] * 9 + [True]
    assert list(b.cat.categories) == ["low", "middle", "high"] and b.cat.ordered
    assert b.name == "recognition band"
    # a cut ON a tied score: [1, 3 x 7, 5] has both cuts at 3; a band holds "> previous cut and
    # <= cut", so every 3 is low, the middle band is empty and dropped, 5 is high
    tied = perception_bands(pd.Series([1, 3, 3, 3, 3, 3, 3, 3, 5]), (1 / 3, 2 / 3))
    assert tied.astype(object).tolist() == ["low"] * 8 + ["high"]
    assert list(tied.cat.categories) == ["low", "high"]
    # quartile bands of 1..8 (R: quantile(1:8, c(.25, .75)) = 2.75, 6.25)
    q = perception_bands(pd.Series(np.arange(1.0, 9.0)), (0.25, 0.75))
    assert q.astype(object).tolist() == ["low"] * 2 + ["middle"] * 4 + ["high"] * 2
    with pytest.raises(ValueError, match="quantiles must be 2 numbers"):
        perception_bands(s, (0.5,))
