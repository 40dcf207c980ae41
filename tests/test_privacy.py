"""The privacy layer at its boundary: a group of ``min_cell - 1`` customers shows no figure, a group of
``min_cell`` does; blanked counts cannot be recovered from a total; rare levels are pooled before a model.

References are computed here from the raw rows (counts with pandas, curves with lifelines or exact
identities of uncensored data), never by the code under test.
"""

from __future__ import annotations

import itertools
import re
import warnings
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cxlab.insight import audit

from cxlab import privacy

from cxlab.insight import segments, value  # noqa: E402
from cxlab.errors import ParameterError  # noqa: E402
from cxlab.models.survival.km import kaplan_meier, logrank, pairwise_logrank  # noqa: E402

MC = 10   # min_cell in these tests


@pytest.fixture(autouse=True)
def _default_min_cell():
    privacy.set_min_cell(privacy.MIN_CELL)
    privacy.pooled.clear()      # each pooling is announced once per process: start afresh
    yield
    privacy.set_min_cell(privacy.MIN_CELL)


# ---- the primitives -----------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "hidden"), [(MC - 1, True), (MC, False)])
def test_suppress_boundary(n, hidden):
    t = pd.DataFrame({"group": ["a", "b"], "n": [n, 500], "rate": [0.25, 0.5]})
    out = privacy.suppress(t, "n", MC)
    assert out["suppressed"].tolist() == [hidden, False]
    assert np.isnan(out.loc[0, "n"]) == hidden and np.isnan(out.loc[0, "rate"]) == hidden
    assert out.loc[1, "n"] == 500 and out.loc[0, "group"] == "a"


def test_min_cell_must_be_a_whole_number():
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ParameterError, match="min_cell"):
            privacy.suppress(pd.DataFrame({"n": [3]}), "n", bad)
    privacy.set_min_cell(25)
    assert privacy.suppress(pd.DataFrame({"n": [24, 25]}), "n")["suppressed"].tolist() == [True, False]


def _hidden(out):
    return set(out.index[out["n"].isna()])


@pytest.mark.parametrize(("counts", "expected"), [
    ([50, 30, 4, 6], {2, 3}),        # two blanked rows holding exactly min_cell: enough
    ([50, 30, 4, 5], {1, 2, 3}),     # 4 + 5 = 9 < min_cell: the next-smallest joins them
    ([50, 30, 20, 9], {2, 3}),       # one small row: the next-smallest is blanked with it
    ([50, 30, 20, 10], set()),       # nothing below min_cell: nothing blanked
])
def test_complementary_suppression_boundary(counts, expected):
    t = pd.DataFrame({"level": list("abcd"), "n": counts, "share": np.array(counts) / sum(counts),
                      "rate": [0.1, 0.2, 0.3, 0.4]})
    out = privacy.complementary_suppression(t, "n", MC, columns=["n", "share"])
    assert _hidden(out) == expected
    primary = {i for i, c in enumerate(counts) if c < MC}
    assert set(out.index[out["suppressed"]]) == primary
    for i in expected - primary:     # a complementary cell keeps its non-additive figures
        assert out.loc[i, "rate"] == t.loc[i, "rate"] and np.isnan(out.loc[i, "share"])
    for i in primary:
        assert np.isnan(out.loc[i, "rate"])


def test_no_blanked_count_can_be_recovered_by_subtraction():
    """Property over random tables with a total row and blocks: every count below min_cell is blank,
    and in every block the blanked rows are at least two and hold at least min_cell customers
    together (the total minus the shown rows reveals only that sum)."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        blocks = []
        for b in range(rng.integers(1, 4)):
            k = int(rng.integers(2, 7))
            n = rng.choice([1, 3, 5, 8, 9, 10, 11, 25, 60, 200], size=k)
            blocks.append(pd.DataFrame({"group": f"g{b}", "level": [f"l{i}" for i in range(k)], "n": n}))
        t = pd.concat(blocks, ignore_index=True)
        total = pd.DataFrame({"group": ["all"], "level": [""],
                              "n": [max(MC, int(t.groupby("group")["n"].sum().max()))]})
        t = pd.concat([total, t], ignore_index=True)
        out = privacy.complementary_suppression(t, "n", MC, total_row=(t["group"] == "all").to_numpy(), by="group")
        assert out.loc[0, "n"] == t.loc[0, "n"]          # the total is not blanked by the blocks
        assert not ((out["n"] < MC) & out["n"].notna()).any()
        for g, rows in t.iloc[1:].groupby("group"):
            hidden = out.loc[rows.index, "n"].isna()
            if hidden.any():
                enough = len(rows) >= 2 and rows["n"].sum() >= MC
                if enough:
                    assert hidden.sum() >= 2 and rows.loc[hidden, "n"].sum() >= MC, (g, rows["n"].tolist())


# ---- Kaplan-Meier: retention table, at-risk table, curves ---------------------------------------


def _groups_frame():
    """Uncensored durations 1..200 (one defection a month) in 'big'; 'edge' has exactly min_cell and
    'small' min_cell - 1 customers. At time t, #(duration >= t) are at risk."""
    big = pd.DataFrame({"group": "big", "time": np.arange(1, 201, dtype=float), "event": 1})
    edge = pd.DataFrame({"group": "edge", "time": np.linspace(3, 40, MC), "event": 1})
    small = pd.DataFrame({"group": "small", "time": np.linspace(3, 40, MC - 1), "event": 1})
    return pd.concat([big, edge, small], ignore_index=True)


def _at_risk(d, group, t):
    return int((d.loc[d["group"] == group, "time"] >= t).sum())


def test_retention_table_blanks_a_group_below_min_cell():
    d = _groups_frame()
    km = kaplan_meier(d, "time", "event", group_col="group", min_cell=MC)
    ret = km.retention([2.0]).set_index("group")
    assert ret.loc["small", "suppressed"]
    assert ret.loc["small", ["estimate", "lower", "upper", "at_risk"]].isna().all()
    assert not ret.loc["edge", "suppressed"] and ret.loc["edge", "estimate"] == 1.0   # nobody left before 3
    # complementary: edge's at-risk (the next-smallest) is blanked, else big + edge + small = all
    assert np.isnan(ret.loc["edge", "at_risk"]) and ret.loc["big", "at_risk"] == _at_risk(d, "big", 2.0)
    summary = km.summary.set_index("group")
    assert summary.loc["small", "suppressed"] and summary.loc["small", ["n", "events", "median"]].isna().all()
    assert summary.loc["edge", "median"] == pytest.approx(np.median(d.loc[d["group"] == "edge", "time"]), abs=5)
    assert summary.loc["big", "n"] == 200


def test_retention_table_small_cell_flag_at_the_at_risk_boundary():
    d = _groups_frame()
    big = d[d["group"] == "big"]
    t_edge, t_small = 191.0, 192.0   # 10 and 9 customers still at risk
    assert _at_risk(big, "big", t_edge) == MC and _at_risk(big, "big", t_small) == MC - 1
    ret = kaplan_meier(big, "time", "event", min_cell=MC).retention([t_edge, t_small]).set_index("time")
    # reference: uncensored data, S(t) = share with duration > t
    assert ret.loc[t_edge, "estimate"] == pytest.approx((big["time"] > t_edge).mean())
    assert ret.loc[t_edge, "at_risk"] == MC and not ret.loc[t_edge, "suppressed"]
    assert ret.loc[t_small, "suppressed"] and ret.loc[t_small, ["estimate", "lower", "upper", "at_risk"]].isna().all()


def test_at_risk_table_boundary():
    d = _groups_frame()
    big = d[d["group"] == "big"]
    tab = kaplan_meier(big, "time", "event", min_cell=MC).at_risk_table([191, 192]).set_index("time")
    assert tab.loc[191.0, "at_risk"] == MC and not tab.loc[191.0, "suppressed"]
    assert tab.loc[192.0, "suppressed"] and np.isnan(tab.loc[192.0, "at_risk"])


def _drawn(ax):
    """x range and label of every curve drawn (step lines with data)."""
    out = {}
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), float)
        if x.size > 1:
            out[line.get_label()] = (np.nanmin(x), np.nanmax(x))
    return out


def test_plot_km_never_draws_below_min_cell_at_risk():
    from cxlab.report.plots import plot_km

    d = _groups_frame()
    ax = plot_km(kaplan_meier(d, "time", "event", group_col="group", min_cell=MC))
    drawn = _drawn(ax)
    assert "small" not in drawn                # a group of min_cell - 1: no curve at all
    assert "edge" in drawn                     # a group of min_cell: its curve
    # big: drawn up to the last time with min_cell at risk (191), never at 192 (9 at risk)
    assert drawn["big"][1] == 191.0
    # edge: 10 at risk at its first time, 9 at the second: drawn only up to its first time
    assert drawn["edge"][1] == pytest.approx(d.loc[d["group"] == "edge", "time"].min())
    texts = [t.get_text() for t in ax.texts]
    assert f"<{MC}" in texts
    import matplotlib.pyplot as plt
    plt.close(ax.figure)


def test_plot_km_at_risk_row_of_a_small_group_shows_no_count():
    from cxlab.report.plots import plot_km

    d = _groups_frame()
    small = d[d["group"] == "small"]
    ax = plot_km(kaplan_meier(small, "time", "event", min_cell=MC))
    assert _drawn(ax) == {}
    numbers = [t.get_text() for t in ax.texts if t.get_text().isdigit()]
    assert numbers == [], numbers          # every at-risk cell reads "<10"
    import matplotlib.pyplot as plt
    plt.close(ax.figure)


def test_logrank_leaves_small_groups_out():
    d = _groups_frame()
    glob = logrank(d, "group", "time", "event", min_cell=MC).iloc[0]
    assert glob["groups"] == 2 and glob["groups_left_out"] == 1
    assert np.isnan(glob["n"]) and np.isnan(glob["events"])     # total - n would give the small group
    ref = logrank(d[d["group"] != "small"], "group", "time", "event", min_cell=MC).iloc[0]
    assert glob["chi2"] == pytest.approx(ref["chi2"]) and ref["n"] == 200 + MC
    pw = pairwise_logrank(d, "group", "time", "event", min_cell=MC)
    with_small = (pw["group_a"] == "small") | (pw["group_b"] == "small")
    assert pw.loc[with_small, "suppressed"].all() and pw.loc[with_small, ["chi2", "p", "n"]].isna().all().all()
    assert pw.loc[~with_small, "p"].notna().all() and pw.loc[~with_small, "n"].tolist() == [200 + MC]


# ---- band table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_low", "hidden"), [(MC - 1, True), (MC, False)])
def test_band_table_boundary(n_low, hidden):
    rng = np.random.default_rng(3)
    n_rest = 300
    score = np.r_[np.ones(n_low), rng.choice([2.0, 3.0, 4.0, 5.0], n_rest)]
    df = pd.DataFrame({"recognition": score, "time_since_survey": rng.uniform(1, 36, n_low + n_rest),
                       "event": rng.integers(0, 2, n_low + n_rest)})
    bands = segments.perception_bands(df["recognition"], (0.02, 0.5))
    assert (bands == "low").sum() == n_low      # the set-up: a low band of n_low respondents
    tab = segments.band_retention_table(df, ["recognition"], 0.5, band_quantiles=(0.02, 0.5), min_cell=MC)
    low = tab.set_index("band").loc["low"]
    assert bool(low["suppressed"]) == hidden
    assert low[["estimate", "lower", "upper", "at_risk"]].isna().all() == hidden
    if not hidden:   # at 0.5 months nobody has left: every low-band respondent at risk
        assert low["estimate"] == 1.0 and low["at_risk"] == n_low
    else:            # the next-smallest band's at-risk count is blanked with it (complementary)
        others = tab[tab["band"] != "low"]
        assert others["at_risk"].isna().sum() == 1 and others["estimate"].notna().all()


# ---- RMST, CLV, value at risk -------------------------------------------------------------------


def _value_frame(n_small):
    rng = np.random.default_rng(5)
    sizes = {"big": 100, "edge": MC, "small": n_small}
    g = np.concatenate([[k] * v for k, v in sizes.items()])
    since = rng.uniform(1, 30, g.size)
    return pd.DataFrame({"group": g, "entry": 0.0, "duration": since, "event": 1,
                         "value": rng.gamma(2, 100, g.size)})


def test_rmst_boundary_and_complementary():
    d = _value_frame(MC - 1)
    out = value.rmst(d, 12, group_col="group", min_cell=MC).set_index("group")
    assert out.loc["small", "suppressed"] and out.loc["small", ["estimate", "se", "lower", "upper", "n",
                                                                "events"]].isna().all()
    # edge (exactly min_cell) is estimated; uncensored, so RMST = mean(min(T, 12))
    edge = d[d["group"] == "edge"]
    assert out.loc["edge", "estimate"] == pytest.approx(np.minimum(edge["duration"], 12).mean())
    assert not out.loc["edge", "suppressed"] and np.isnan(out.loc["edge", "n"])   # complementary
    assert out.loc["big", "n"] == 100


def test_rmst_clv_value_at_risk_show_a_group_of_min_cell():
    d = _value_frame(60)                                          # no small group: nothing blanked
    for frame in (value.rmst(d, 12, group_col="group", min_cell=MC),
                  value.clv(d, group_col="group", min_cell=MC),
                  value.value_at_risk(d, group_col="group", min_cell=MC)):
        f = frame.set_index("group")
        assert not f["suppressed"].any() and f.loc["edge", "n"] == MC


def test_clv_and_value_at_risk_blank_a_group_below_min_cell():
    d = _value_frame(MC - 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clv = value.clv(d, group_col="group", min_cell=MC).set_index("group")
        var = value.value_at_risk(d, group_col="group", min_cell=MC).set_index("group")
    assert not any("small" in str(w.message) for w in caught)     # no warning quoting the small group
    assert clv.loc["small", ["n", "expected_months", "clv_per_customer", "clv_total"]].isna().all()
    assert var.loc["small", ["n", "defection_rate", "expected_defectors", "margin_lost"]].isna().all()
    # edge: its per-customer figures stay; its totals (which reveal n) are blanked
    edge = d[d["group"] == "edge"]
    assert np.isfinite(clv.loc["edge", "clv_per_customer"]) and np.isnan(clv.loc["edge", "clv_total"])
    assert np.isnan(var.loc["edge", "expected_defectors"]) and np.isfinite(var.loc["edge", "defection_rate"])
    # reference: uncensored, F(12) = share who left within 12 months
    assert var.loc["edge", "defection_rate"] == pytest.approx((edge["duration"] <= 12).mean())
    assert var.loc["big", "n"] == 100


# ---- segment grid and concentration -------------------------------------------------------------


@pytest.mark.parametrize(("n_dgc", "hidden"), [(MC - 1, True), (MC, False)])
def test_segment_grid_boundary(n_dgc, hidden):
    rng = np.random.default_rng(9)
    sizes = {segments.DGC: n_dgc, "recognised good customers": 200, "modest but recognised": 120,
             "modest and unrecognised": 80}
    cell = np.concatenate([[k] * v for k, v in sizes.items()])
    d = pd.DataFrame({"segment_2x2": cell, "entry": 0.0, "duration": rng.uniform(1, 30, cell.size),
                      "event": rng.integers(0, 2, cell.size), "value": rng.gamma(2, 50, cell.size)})
    tab = segments.segment_table(d, min_cell=MC).set_index("cell")
    assert bool(tab.loc[segments.DGC, "suppressed"]) == hidden
    assert tab.loc[segments.DGC, ["share", "defection_12m", "events"]].isna().all() == hidden
    if not hidden:
        assert tab.loc[segments.DGC, "n"] == MC
    conc = segments.concentration_by_cell(d, min_cell=MC).set_index("cell")
    assert np.isnan(conc.loc[segments.DGC, "estimate"]) == hidden
    # the next-smallest cell's n is blanked only when a cell is suppressed
    assert np.isnan(conc.loc["modest and unrecognised", "n"]) == hidden
    assert np.isnan(tab.loc["modest and unrecognised", "n"]) == hidden
    hr = segments.segment_hazard_ratios(d, min_cell=MC).set_index("cell")
    assert np.isnan(hr.loc[segments.DGC, "hr"]) == hidden and np.isnan(hr.loc[segments.DGC, "n"]) == hidden
    assert np.isnan(hr.loc["modest and unrecognised", "n"]) == hidden
    assert np.isfinite(hr.loc["modest and unrecognised", "hr"])


@pytest.mark.parametrize(("n_ref", "hidden"), [(MC - 1, True), (MC, False)])
def test_segment_hazard_ratios_with_a_small_reference_show_nothing(n_ref, hidden):
    # every ratio compares with the reference cell: below min_cell none is shown (and nothing fails)
    rng = np.random.default_rng(3)
    sizes = {segments.DGC: 150, "recognised good customers": n_ref, "modest but recognised": 120,
             "modest and unrecognised": 80}
    cell = np.concatenate([[k] * v for k, v in sizes.items()])
    d = pd.DataFrame({"segment_2x2": cell, "entry": 0.0, "duration": rng.uniform(1, 30, cell.size),
                      "event": rng.integers(0, 2, cell.size)})
    if hidden:
        with pytest.warns(UserWarning, match="reference cell") as caught:
            hr = segments.segment_hazard_ratios(d, min_cell=MC).set_index("cell")
        assert not any(str(MC - 1) in str(w.message) for w in caught)   # the small count is not quoted
    else:
        hr = segments.segment_hazard_ratios(d, min_cell=MC).set_index("cell")
    assert hr[["hr", "n"]].isna().all().all() == hidden
    assert hr["suppressed"].all() == hidden


# ---- audit tables with totals -------------------------------------------------------------------


def _audit_panel(n_small):
    levels = {"branch": 300, "phone": 120, "mail": 40, "web": n_small}
    channel = np.concatenate([[k] * v for k, v in levels.items()])
    customers = pd.DataFrame({"customer_id": np.arange(channel.size), "start": pd.Timestamp("2020-01-01"),
                              "channel": channel})
    respondents = customers.assign(n_answers=np.r_[np.ones(channel.size - 7), [2] * 4, [3] * 3])
    panel = SimpleNamespace(snapshot_date="2026-06-30", respondents=respondents, covariates=["channel"])
    return panel, customers


@pytest.mark.parametrize(("n_small", "hidden"), [(MC - 1, True), (MC, False)])
def test_response_summary_boundary_and_complementary(n_small, hidden):
    panel, customers = _audit_panel(n_small)
    t = audit.response_summary(panel, customers, MC).set_index("level")
    assert bool(t.loc["web", "suppressed"]) == hidden
    assert t.loc["web", ["customers", "respondents", "response_rate"]].isna().all() == hidden
    # "all customers" minus branch and phone would give mail + web: mail is blanked with web
    assert t.loc["mail", ["customers", "respondents"]].isna().all() == hidden
    assert t.loc["", "customers"] == len(customers) and t.loc["branch", "respondents"] == 300


def test_answers_per_respondent_complementary():
    panel, _ = _audit_panel(MC)
    t = audit.answers_per_respondent(panel, MC).set_index("answers")
    # 4 with two answers, 3 with three or more: 7 < min_cell together, so "1" cannot be shown either
    assert t["n"].isna().all() and t["share"].isna().all()
    panel.respondents = panel.respondents.assign(n_answers=np.r_[np.ones(len(panel.respondents) - 15),
                                                                  [2] * 5, [3] * 10])
    t = audit.answers_per_respondent(panel, MC).set_index("answers")
    assert np.isnan(t.loc["2", "n"]) and np.isnan(t.loc["3 or more", "n"])   # 5 blanked, 10 with it
    assert t.loc["1", "n"] == len(panel.respondents) - 15


# ---- rare levels pooled before a model ----------------------------------------------------------


def _respondents_with_segment(n_tiny, seed=11):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_survival import simulate_respondents

    d = simulate_respondents(seed=seed)
    d.loc[d.index[:n_tiny], "segment"] = "tiny"
    d.loc[d.index[:n_tiny], "event"] = 0     # nobody in it defected: separation if it had its own term
    return d


def test_a_five_customer_segment_is_pooled_before_the_cox_fit():
    from cxlab.models.survival.cox import CoxModel

    d = _respondents_with_segment(5)
    privacy.pooled.clear()
    with pytest.warns(UserWarning, match=r"segment: 1 level with fewer than 10 customers pooled into 'other'"):
        m = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(d, "duration", "event", "entry")
    terms = m.summary["term"].tolist()
    assert not any("tiny" in t for t in terms) and "segment[other]" in terms
    assert any("fewer than 10 customers pooled" in s for s in privacy.pooling_sentences())


def test_a_segment_of_min_cell_keeps_its_own_term():
    from cxlab.models.survival.cox import CoxModel

    d = _respondents_with_segment(MC)
    d.loc[d.index[0], "event"] = 1          # one defection: no separation
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # no pooling warning
        try:
            m = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(d, "duration", "event", "entry")
        except UserWarning as w:  # pragma: no cover - a failure message
            pytest.fail(f"a level of min_cell customers was pooled: {w}")
    assert "segment[tiny]" in m.summary["term"].tolist()


def test_pool_rare_levels_report_and_boundary():
    f = pd.DataFrame({"channel": ["web"] * (MC - 1) + ["mail"] * MC + ["branch"] * 50, "x": 1.0})
    out, report = privacy.pool_rare_levels(f, ["channel", "x"], MC, warn=False)
    # 9 web pooled; the pool (9) is below min_cell, so the next-smallest level (mail, 10) joins it
    assert set(out["channel"]) == {"other", "branch"} and (out["channel"] == "other").sum() == 2 * MC - 1
    assert (out["channel"] == "branch").sum() == 50 and (out["x"] == 1.0).all()
    assert report["column"].tolist() == ["channel"]
    assert report.loc[0, "sentence"].startswith("channel: 1 level with fewer than 10 customers pooled into 'other'")
    f2 = pd.DataFrame({"channel": ["web"] * MC + ["branch"] * 50})
    out2, report2 = privacy.pool_rare_levels(f2, ["channel"], MC, warn=False)
    assert report2.empty and out2["channel"].tolist() == f2["channel"].tolist()


# ---- findings cannot be written from a suppressed figure ------------------------------------------


def test_no_finding_or_metric_from_a_suppressed_retention_row():
    from cxlab.insight import narrative
    from cxlab.report.record import _number

    d = _groups_frame()
    small = d[d["group"] == "small"]
    ret = kaplan_meier(small, "time", "event", min_cell=MC).retention([2.0, 12.0])
    assert ret["suppressed"].all()
    assert narrative.retention_findings(ret) == []
    assert all(_number(v, "estimate", "km.retention_12m") is None for v in ret["estimate"])


def test_rmst_warns_about_no_small_group():
    d = _value_frame(MC - 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = value.rmst(d, 40, group_col="group", min_cell=MC)   # beyond every group's follow-up
    msgs = [str(w.message) for w in caught]
    assert any("'big'" in m for m in msgs)                 # the shown groups are warned about
    assert not any("'small'" in m for m in msgs), msgs     # the small group's follow-up is never quoted
    assert out.set_index("group").loc["small", "suppressed"]


def test_rare_levels_are_pooled_before_the_aft_and_loyalty_models():
    from cxlab.models.loyalty import retention_logit
    from cxlab.models.survival.aft import fit_aft

    d = _respondents_with_segment(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aft = fit_aft(d, ["recognition", "empathy"], controls=["segment"], duration_col="duration",
                      event_col="event", entry_col="entry")
        logit = retention_logit(d, 12, ["recognition", "empathy"], controls=["segment"])
    for terms in (aft.summary["term"].astype(str), logit.summary["term"].astype(str)):
        assert not terms.str.contains("tiny").any() and terms.str.contains("other").any(), terms.tolist()


def test_levels_are_counted_in_customers_on_counting_process_rows():
    from cxlab.models.survival.cox import TimeVaryingCoxModel

    d = _respondents_with_segment(5).reset_index(drop=True).assign(customer_key=lambda x: x.index)
    mid = (d["entry"] + d["duration"]) / 2
    first = d.assign(start=d["entry"], stop=mid, event=0)
    second = d.assign(start=mid, stop=d["duration"])
    intervals = pd.concat([first, second], ignore_index=True)   # the 5 tiny customers have 10 rows
    assert (intervals["segment"] == "tiny").sum() == 2 * 5
    with pytest.warns(UserWarning, match="segment: 1 level with fewer than 10 customers"):
        tv = TimeVaryingCoxModel(["recognition", "empathy"], controls=["segment"]).fit(intervals)
    assert not tv.summary["term"].astype(str).str.contains("tiny").any()


def test_rare_levels_are_pooled_in_the_driver_design():
    from cxlab.models import drivers

    d = _respondents_with_segment(5)
    with pytest.warns(UserWarning, match="segment: 1 level with fewer than 10 customers"):
        _, names = drivers._design(d, ["recognition", "segment"])[:2]
    assert not any("tiny" in n for n in names) and any("other" in n for n in names)


@pytest.mark.parametrize(("n_small", "drawn"), [(MC - 1, False), (MC, True)])
def test_lorenz_curve_of_a_small_cell_is_not_drawn(n_small, drawn):
    x = np.arange(1.0, 102.0 + n_small)
    groups = ["big"] * 101 + ["small"] * n_small
    out = value.lorenz(x, groups=groups, min_cell=MC)
    assert ("small" in set(out["group"])) == drawn and {"all", "big"} <= set(out["group"])
    assert (out.attrs["suppressed"] == ["small"]) == (not drawn)


# ---- the exclusion flow: small counts withheld, none recoverable by difference -----------------


def _flow(blocks):
    """A flow from {table: (rows in at the start, [excluded per step])}."""
    rows = []
    for table, (start, counts) in blocks.items():
        n = start
        for i, c in enumerate(counts):
            rows.append({"table": table, "step": f"{table} {i}", "reason": f"{table} reason {i}",
                         "rows_in": n, "rows_out": n - c, "excluded": c})
            n -= c
    return pd.DataFrame(rows)


def _num(text):
    return None if text in ("–", "withheld") or text.startswith("fewer than") else int(text.replace(",", ""))


def _reader(shown: pd.DataFrame, m: int):
    """An independent reader: every assignment of the hidden counts consistent with everything the
    table shows (the exact counts and rows in / out, 'fewer than m' = 1..m-1, 'withheld' = m..the
    smallest count shown that is at least m, as the rule picks the smallest) — brute force over the
    chain rows_out = rows_in - excluded. Returns {row: set of feasible values} for the 'fewer than' rows."""
    feasible = {}
    for _, blk in shown.groupby("table", sort=False):
        idx = list(blk.index)
        counts = [_num(t) for t in blk["excluded"]]
        big = [c for c in counts if c is not None and c >= m]
        cap = min(big) if big else 200
        ranges = []
        for t in blk["excluded"]:
            if t.startswith("fewer than"):
                ranges.append(range(1, m))
            elif t == "withheld":
                ranges.append(range(m, cap + 1))
            else:
                ranges.append([_num(t)])
        start = _num(blk["rows_in"].iloc[0])
        assert start is not None, "the start of a block is always shown"
        ins = [_num(t) for t in blk["rows_in"]]
        outs = [_num(t) for t in blk["rows_out"]]
        for values in itertools.product(*ranges):
            n, ok = start, True
            for v, a, b in zip(values, ins, outs):
                if (a is not None and a != n) or (b is not None and b != n - v):
                    ok = False
                    break
                n -= v
            if ok:
                for i, (v, t) in enumerate(zip(values, blk["excluded"])):
                    if t.startswith("fewer than"):
                        feasible.setdefault(idx[i], set()).add(v)
    return feasible


def test_count_text_boundary_by_one():
    assert privacy.count_text(9, 10) == "fewer than 10"
    assert privacy.count_text(10, 10) == "10"
    assert privacy.count_text(0, 10) == "0"
    assert privacy.count_text(1, 10) == "fewer than 10"
    assert privacy.count_text(12345, 10) == "12,345"


def test_flow_boundary_min_cell_minus_one_withheld_min_cell_shown():
    flow = _flow({"t": (1000, [9, 40, 300])})
    out = privacy.flow_suppression(flow, 10)
    assert out["excluded"].tolist() == ["fewer than 10", "withheld", "300"]
    out = privacy.flow_suppression(_flow({"t": (1000, [10, 40, 300])}), 10)
    assert out["excluded"].tolist() == ["10", "40", "300"]
    assert out["rows_in"].tolist() == ["1,000", "990", "950"] and not out["withheld"].any()


def test_flow_a_single_small_step_gets_a_second_one_withheld_and_zero_stays():
    flow = _flow({"t": (500, [0, 120, 3, 0, 45, 60])})
    out = privacy.flow_suppression(flow, 10)
    assert out["excluded"].tolist() == ["0", "120", "fewer than 10", "0", "withheld", "60"]
    assert out["small"].tolist() == [False, False, True, False, False, False]
    # rows in / out between the withheld steps are blanked, the ends of the run shown
    assert out["rows_in"].tolist() == ["500", "500", "380", "–", "–", "332"]
    assert out["rows_out"].tolist() == ["500", "380", "–", "–", "332", "272"]


def test_flow_nothing_recoverable_by_any_difference_or_sum_of_shown_numbers():
    # counts chosen so that no two shown figures differ by a small count by coincidence
    flow = _flow({"a": (1000, [7, 0, 41, 5, 97]), "b": (777, [3]), "c": (600, [0, 0])})
    m = 10
    out = privacy.flow_suppression(flow, m)
    shown = [v for col in ("rows_in", "rows_out", "excluded") for v in map(_num, out[col]) if v is not None]
    hidden = {int(c) for c in flow["excluded"] if 0 < c < m}
    reach = set()
    for k in (1, 2, 3):
        for combo in itertools.combinations(shown, k):
            for signs in itertools.product((1, -1), repeat=k):
                reach.add(abs(sum(s * v for s, v in zip(signs, combo))))
    assert not (hidden & reach), sorted(hidden & reach)
    # the same search finds them in the raw flow (so the search can see a leak)
    raw = [int(v) for col in ("rows_in", "rows_out") for v in flow[col]]
    assert hidden <= {abs(a - b) for a in raw for b in raw}
    # and the reader who solves the whole chain still finds every value 1..m-1 possible
    feasible = _reader(out, m)
    assert set(feasible) == set(np.flatnonzero(out["small"].to_numpy()))
    assert all(v == set(range(1, m)) for v in feasible.values()), feasible


@pytest.mark.parametrize("seed", range(25))
def test_flow_random_small_flows_never_narrow_a_withheld_count(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(3, 7))
    blocks = {}
    for b in range(int(rng.integers(1, 3))):
        counts = [int(x) for x in rng.choice([0, 1, 2, m - 1, m, m + 1, 2 * m, 3 * m + 2], size=int(rng.integers(1, 5)))]
        blocks[f"t{b}"] = (sum(counts) + int(rng.integers(0, 50)), counts)
    flow = _flow(blocks)
    out = privacy.flow_suppression(flow, m)
    for i, (c, t) in enumerate(zip(flow["excluded"], out["excluded"])):
        assert (t == f"fewer than {m}") == (0 < c < m) and (t == "0") == (c == 0)
    feasible = _reader(out, m)
    for i, values in feasible.items():
        assert values == set(range(1, m)), (blocks, out.to_dict("list"), i, values)


def test_the_run_summary_says_respondents_were_set_aside_when_their_number_is_withheld():
    from cxlab.report import summary

    nb = [{"name": "01-data-audit", "status": "succeeded"}]
    withheld = summary._who(summary._Run({"metrics": {"panel.respondents": {"estimate": 100},
                                                      "panel.set_aside": {"estimate": None}}, "notebooks": nb}))
    assert "set aside" in withheld and not re.search(r"\d+ respondents were set aside", withheld)
    shown = summary._who(summary._Run({"metrics": {"panel.respondents": {"estimate": 100},
                                                   "panel.set_aside": {"estimate": 12}}, "notebooks": nb}))
    assert "12 respondents were set aside" in shown
    none = summary._who(summary._Run({"metrics": {"panel.respondents": {"estimate": 100}}, "notebooks": nb}))
    assert "set aside" not in none      # an older manifest without the metric: nothing claimed


def test_the_run_summary_prints_no_small_count_of_respondents_left_out_of_the_models():
    from cxlab.report import summary

    nb = [{"name": "01-data-audit", "status": "succeeded"}]

    def who(cox_n, min_cell):
        return summary._who(summary._Run({"parameters": {"min_cell": min_cell}, "notebooks": nb, "metrics": {
            "panel.respondents": {"estimate": 1098}, "cox.respondents": {"estimate": cox_n}}}))

    assert "fewer than 10 of them" in who(1089, 10) and "1,089" not in who(1089, 10)   # 9 left out
    assert "use 1,088 of them: 10 lack a value" in who(1088, 10)                        # 10: shown
    assert "fewer than 200 of them" in who(1094, 200)
    # 02 withholds cox.respondents itself (panel.respondents minus it would be the small count)
    withheld = who(None, 10)
    assert "fewer than 10 of them" in withheld and "1,098" in withheld
