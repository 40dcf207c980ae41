"""One Kaplan–Meier for all of cxlab (issue 13): cxlab.models.survival.km.km_product on the engine's
RiskSets; its suppression rule is cxlab.privacy.curve_suppressed.

References: lifelines 0.30 KaplanMeierFitter (entry=, confidence_interval_ is the exponential
Greenwood = R survfit conf.type="log-log"), and row duplication for frequency weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab import privacy
from cxlab.models.survival.engine import RiskSets
from cxlab.models.survival.km import kaplan_meier, km_product, km_read, km_steps

PACKAGE = Path(__file__).resolve().parents[1] / "cxlab"


def _delayed(n=400, seed=3):
    rng = np.random.default_rng(seed)
    entry = rng.integers(0, 24, n).astype(float)
    duration = entry + rng.integers(1, 36, n).astype(float)   # ties on purpose
    event = rng.random(n) < 0.55
    return entry, duration, event.astype(int)


def test_km_steps_matches_lifelines_with_delayed_entry():
    lifelines = pytest.importorskip("lifelines")
    entry, duration, event = _delayed()
    steps = km_steps(entry, duration, event)
    ref = lifelines.KaplanMeierFitter().fit(duration, event, entry=entry)
    expected = ref.survival_function_at_times(steps.times).to_numpy()
    np.testing.assert_allclose(steps.survival, expected, rtol=1e-12)
    for t in (5.0, 17.5, 30.0):
        s, lo, hi = km_read(steps, t, 0.95, "log-log")
        ci = ref.confidence_interval_.loc[:t].iloc[-1].to_numpy()
        np.testing.assert_allclose([s, lo, hi], [ref.predict(t), ci[0], ci[1]], rtol=1e-6)


def test_every_reader_of_the_one_km_agrees():
    # kaplan_meier's all-times curve, km_steps at the event times and the engine's risk sets
    entry, duration, event = _delayed(seed=11)
    curve = kaplan_meier(pd.DataFrame({"e": entry, "t": duration, "d": event}), "t", "d", entry_col="e",
                         min_cell=1).survival_
    steps = km_steps(entry, duration, event)
    at_events = curve[curve["events"] > 0]
    np.testing.assert_array_equal(at_events["time"].to_numpy(), steps.times)
    np.testing.assert_allclose(at_events["survival"].to_numpy(), steps.survival, rtol=1e-14)
    np.testing.assert_array_equal(at_events["at_risk"].to_numpy(), steps.at_risk)
    np.testing.assert_allclose(at_events["std_err"].to_numpy() ** 2, np.cumsum(steps.greenwood), rtol=1e-12)
    # at every observed time, the curve is km_steps read there (censor-only times carry it flat)
    np.testing.assert_allclose(curve["survival"].to_numpy(), steps.survival_at(curve["time"].to_numpy()),
                               rtol=1e-14)


def test_frequency_weights_are_duplicated_rows():
    entry, duration, event = _delayed(n=150, seed=5)
    w = np.random.default_rng(1).integers(0, 4, entry.size)
    weighted = km_steps(weights=w.astype(float), risk_sets=RiskSets(duration, event, entry))
    dup = km_steps(np.repeat(entry, w), np.repeat(duration, w), np.repeat(event, w))
    keep = weighted.events > 0                  # event times whose every defector drew weight 0 drop out
    np.testing.assert_array_equal(weighted.times[keep], dup.times)
    np.testing.assert_allclose(weighted.survival[keep], dup.survival, rtol=1e-13)
    np.testing.assert_allclose(weighted.at_risk[keep], dup.at_risk)


def test_km_product_by_hand():
    # 10 at risk, 2 defect; 8 at risk, 0 defect; 4 at risk, 4 defect (R: std.err Inf)
    surv, green = km_product([10, 8, 4], [2, 0, 4])
    np.testing.assert_allclose(surv, [0.8, 0.8, 0.0])
    np.testing.assert_allclose(green[:2], [2 / (10 * 8), 0.0])
    assert np.isinf(green[2])
    # nobody at risk leaves the curve unchanged
    np.testing.assert_allclose(km_product([5, 0], [1, 0])[0], [0.8, 0.8])


@pytest.mark.parametrize("min_cell", [5, 10])
def test_curve_suppression_boundary(min_cell):
    at_risk = np.array([min_cell + 1, min_cell, min_cell - 1, 0])
    np.testing.assert_array_equal(privacy.curve_suppressed(at_risk, 100, min_cell), [False, False, True, True])
    assert privacy.curve_suppressed(at_risk, min_cell - 1, min_cell).all()      # a small group: all of it
    assert not privacy.curve_suppressed(at_risk[:2], min_cell, min_cell).any()


def test_kaplan_meier_withholds_points_with_fewer_than_min_cell_at_risk():
    entry, duration, event = _delayed(n=60, seed=2)
    km = kaplan_meier(pd.DataFrame({"t": duration, "d": event}), "t", "d", min_cell=10).survival_
    np.testing.assert_array_equal(km["suppressed"].to_numpy(), km["at_risk"].to_numpy() < 10)
    assert km["suppressed"].any() and not km["suppressed"].all()


def test_no_second_kaplan_meier_in_the_package():
    # the product of (1 - d/n) is written once, in cxlab/models/survival/km.py
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "km.py" and path.parent.name == "survival":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bcumprod\(", text) or re.search(r"class \w*RiskSets?\b", text) and "engine.py" not in str(path):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


@pytest.mark.parametrize("still_at_risk, withheld", [(10, False), (9, True)])
def test_segment_table_reads_the_curve_only_where_min_cell_are_at_risk(still_at_risk, withheld):
    from cxlab.insight import segments

    # one cell of 20 respondents: `still_at_risk` followed 30 months after the survey, the others
    # defect at month 5 -> at 12 and 24 months exactly `still_at_risk` are at risk
    n = 20
    since = np.r_[np.full(still_at_risk, 30.0), np.full(n - still_at_risk, 5.0)]
    df = pd.DataFrame({"segment_2x2": segments.SEGMENTS_2X2[0], "entry": 3.0, "duration": 3.0 + since,
                       "event": (since == 5.0).astype(int), "value": 1.0})
    tab = segments.segment_table(df, min_cell=10, margin_col=None, horizons=(3, 24)).iloc[0]
    assert not tab["suppressed"] and tab["n"] == n
    assert tab["defection_3m"] == 0.0                    # 20 at risk at 3 months: shown
    assert np.isnan(tab["defection_24m"]) == withheld
    if not withheld:
        assert tab["defection_24m"] == pytest.approx((n - still_at_risk) / n)
