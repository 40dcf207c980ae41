"""The engine's one risk-set structure (cxlab.models.survival.engine.RiskSets): risk-set sums against a
brute-force sum over {entry < t <= stop} (math.fsum, exact to rounding), including risk scores
spanning hundreds of orders of magnitude, where a forward running total of entries minus exits
keeps nothing of the small scores left once the large ones have gone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxlab.models.survival.engine import RiskSets


def _brute(stop, event, entry, strata, v):
    out = []
    for s in np.unique(strata):
        m = strata == s
        for t in np.unique(stop[m & (event == 1)]):
            at = m & (stop >= t) & (entry < t)
            out.append(math.fsum(v[at]))
    return np.array(out)


@pytest.mark.parametrize("with_entry, n_strata", [(False, 1), (True, 1), (False, 3), (True, 3)])
def test_risk_sums_equal_brute_force(with_entry, n_strata):
    rng = np.random.default_rng(7)
    n = 300
    stop = rng.integers(1, 40, n).astype(float)
    entry = np.where(rng.random(n) < 0.5, stop - rng.integers(1, 10, n), -np.inf) if with_entry else np.full(n, -np.inf)
    entry = np.minimum(entry, stop - 1)
    event = (rng.random(n) < 0.6).astype(int)
    strata = rng.integers(0, n_strata, n)
    v = rng.exponential(1.0, n)
    rs = RiskSets(stop, event, np.where(np.isfinite(entry), entry, 0.0) if with_entry else None,
                  strata if n_strata > 1 else None)
    expected = _brute(stop, event, np.where(np.isfinite(entry), entry, 0.0) if with_entry else entry, strata, v)
    np.testing.assert_allclose(rs.risk_sums(v), expected, rtol=1e-12)


def test_small_scores_left_after_the_large_ones_have_gone():
    # the defector always has the highest score: scores fall by e^-5 per month of follow-up
    stop = np.arange(1.0, 61.0)
    event = (stop <= 40).astype(int)
    v = np.exp(-5.0 * stop)
    got = RiskSets(stop, event).risk_sums(v)
    expected = _brute(stop, event, np.full(stop.size, -np.inf), np.zeros(stop.size), v)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert (got > 0).all()


def test_at_risk_at_any_time_counts_entry_below_t_up_to_stop():
    rng = np.random.default_rng(3)
    entry = rng.integers(0, 10, 200).astype(float)
    stop = entry + rng.integers(1, 20, 200)
    rs = RiskSets(stop, rng.random(200) < 0.5, entry)
    t = np.r_[entry[:20], stop[:20], 0.0, 5.5, 40.0]          # the boundaries themselves
    expected = [int(((entry < x) & (x <= stop)).sum()) for x in t]
    np.testing.assert_array_equal(rs.at_risk_at(t), expected)
    no_entry = RiskSets(stop, np.zeros(200, bool))
    np.testing.assert_array_equal(no_entry.at_risk_at(t), [int((x <= stop).sum()) for x in t])
