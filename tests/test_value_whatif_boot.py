"""what_if's one-step bootstrap (one Newton step per draw from the full-sample estimate) against the
refits to convergence it stands in for: the same point estimate, draws and interval endpoints within
Monte-Carlo error, and the "auto" rule's boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cxlab.errors import ParameterError
from cxlab.insight.value import what_if
from cxlab.insight.value.whatif import ONE_STEP_MIN_EVENTS
from cxlab.models.survival import CoxModel


def _respondents(n, seed):
    """Delayed entry on the tenure clock, Weibull baseline, two 1..5 constructs, a margin."""
    rng = np.random.default_rng(seed)
    entry = rng.uniform(1, 60, n)
    rec = np.clip(np.round(rng.normal(3.2, 1.0, n)), 1, 5)
    emp = np.clip(np.round(rng.normal(3.5, 0.9, n)), 1, 5)
    lp = -0.35 * rec - 0.15 * emp
    target = (entry / 30.0) ** 1.3 + rng.exponential(1.0, n) / np.exp(lp)
    t_def = 30.0 * target ** (1 / 1.3)
    follow = entry + rng.uniform(6, 36, n)
    return pd.DataFrame({"entry": entry, "duration": np.minimum(t_def, follow),
                         "event": (t_def <= follow).astype(int), "recognition": rec, "empathy": emp,
                         "value": rng.gamma(2.0, 300.0, n)})


def _fit(df):
    return CoxModel(["recognition", "empathy"]).fit(df, duration_col="duration", event_col="event",
                                                   entry_col="entry")


@pytest.fixture(scope="module")
def table():
    df = _respondents(1500, seed=11)
    return df, _fit(df), (df["recognition"] <= 2).to_numpy()


def test_one_step_keeps_the_point_estimate_and_its_endpoints_agree_within_monte_carlo_error(table):
    df, cox, low = table
    n_boot = 300
    kw = dict(segment=low, n_boot=n_boot, seed=5, horizons=(12, 24))
    exact = what_if(df, cox, "recognition", 1.0, boot_refit="converge", **kw)
    quick = what_if(df, cox, "recognition", 1.0, boot_refit="one-step", **kw)
    # the point estimate does not depend on the bootstrap
    pd.testing.assert_frame_equal(exact.drop(columns=["lower", "upper"]), quick.drop(columns=["lower", "upper"]))
    assert (quick["n_boot"] == n_boot).all()
    # each endpoint within one Monte-Carlo standard error of the exact refit bootstrap's (same resamples)
    spread = (exact["upper"] - exact["lower"]) / (2 * stats.norm.ppf(0.975))   # bootstrap SD, roughly
    mc = spread * np.sqrt(0.025 * 0.975 / n_boot) / stats.norm.pdf(stats.norm.ppf(0.025))
    for end in ("lower", "upper"):
        gap = (quick[end] - exact[end]).abs()
        assert (gap < mc).all(), pd.DataFrame({"metric": exact["metric"], "h": exact["horizon"], "gap": gap, "mc": mc})
    # and the endpoints are not trivially equal: the one-step draws are another computation
    assert (quick["lower"] != exact["lower"]).any()


def test_one_step_draws_track_the_refits_draw_by_draw(table):
    # the resample's maximum and one Newton step towards it differ by O(1/n): a small fraction of
    # the spread of the draws (O(1/sqrt(n)))
    from cxlab.insight.value import whatif as w

    df, cox, low = table
    captured = {}
    real = w._WhatIf.draws

    def spy(self, seeds, refit="converge"):
        out = real(self, seeds, refit)
        captured[refit] = out
        return out

    w._WhatIf.draws = spy
    try:
        for refit in ("converge", "one-step"):
            what_if(df, cox, "recognition", 1.0, segment=low, n_boot=40, seed=2, boot_refit=refit, horizons=(12,))
    finally:
        w._WhatIf.draws = real
    keys = list(captured["converge"][0])
    a = np.array([[d[k] for k in keys] for d in captured["converge"]])
    b = np.array([[d[k] for k in keys] for d in captured["one-step"]])
    sd = a.std(0, ddof=1)
    assert np.all(sd > 0)
    assert np.all(np.abs(a - b).max(0) < 0.05 * sd), (np.abs(a - b).max(0) / sd)
    # the draws do vary with the resample (not the full-sample fit every time)
    assert np.all(np.abs(a - a.mean(0)).max(0) > 0.5 * sd)


def test_auto_takes_one_step_from_the_stated_number_of_defections_on():
    df = _respondents(3500, seed=3)
    events = np.flatnonzero(df["event"].to_numpy() == 1)
    assert events.size > ONE_STEP_MIN_EVENTS
    kw = dict(n_boot=6, seed=1, horizons=(12,), margin_col=None)
    for n_events, expected in ((ONE_STEP_MIN_EVENTS, "one-step"), (ONE_STEP_MIN_EVENTS - 1, "converge")):
        d = df.copy()
        d.loc[events[n_events:], "event"] = 0          # exactly n_events defections
        cox = _fit(d)
        auto = what_if(d, cox, "recognition", 1.0, boot_refit="auto", **kw)
        same = what_if(d, cox, "recognition", 1.0, boot_refit=expected, **kw)
        other = what_if(d, cox, "recognition", 1.0, boot_refit={"one-step": "converge"}.get(expected, "one-step"),
                        **kw)
        pd.testing.assert_frame_equal(auto, same)
        assert not auto[["lower", "upper"]].equals(other[["lower", "upper"]]), n_events


def test_boot_refit_names_its_choices(table):
    df, cox, low = table
    with pytest.raises(ParameterError, match="boot_refit.*one-step"):
        what_if(df, cox, "recognition", 1.0, n_boot=0, boot_refit="chord")
