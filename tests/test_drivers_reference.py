"""Shapley importance of the drivers against a brute-force reference that shares no code with cxlab.

For each model the fit of every subset of constructs (controls always in) is computed with an
independent fitter, and the exact Shapley values come from the permutation-weight formula
phi_j = sum_{S not containing j} |S|! (k - |S| - 1)! / k! * (v(S + j) - v(S)):
- linear: statsmodels 0.14 OLS ``rsquared``;
- logit: statsmodels Logit, McFadden ``prsquared`` (1 - llf / llnull, llnull = intercept only);
- ordinal: statsmodels OrderedModel(distr="logit") ``llf``, McFadden against the thresholds-only
  model (log-likelihood sum_k n_k log(n_k / n), by hand);
- cox: lifelines 0.30 CoxPHFitter (Efron, delayed entry at ``entry_col``) ``log_likelihood_``.
"Shares add up to 1" holds for any fits; these checks fail when a fit, a baseline or a weight is
wrong.
"""

from __future__ import annotations

import itertools
import warnings
from math import factorial

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from cxlab.models.drivers import shapley_importance
from test_drivers import CONSTRUCTS, _respondents


def _brute_force_shapley(v: dict[frozenset, float], players: list[str]) -> dict[str, float]:
    k = len(players)
    phi = {}
    for j in players:
        others = [p for p in players if p != j]
        phi[j] = sum(factorial(len(s)) * factorial(k - len(s) - 1) / factorial(k)
                     * (v[frozenset(s) | {j}] - v[frozenset(s)])
                     for r in range(k) for s in itertools.combinations(others, r))
    return phi


def _subset_fits(df, fit) -> dict[frozenset, float]:
    dummies = pd.get_dummies(df["segment"], prefix="segment", drop_first=True, dtype=float)
    return {frozenset(s): fit(dummies.join(df[list(s)]))
            for r in range(len(CONSTRUCTS) + 1) for s in itertools.combinations(CONSTRUCTS, r)}


def _ols_r2(df):
    return lambda X: sm.OLS(df["satisfaction"], sm.add_constant(X)).fit().rsquared


def _logit_mcfadden(df):
    return lambda X: sm.Logit(df["promoter"], sm.add_constant(X)).fit(disp=False, maxiter=200, tol=1e-12).prsquared


def _ordinal_mcfadden(df):
    counts = df["recommend_band"].value_counts().to_numpy(float)
    ll0 = float(np.sum(counts * np.log(counts / counts.sum())))
    y = pd.Series(pd.Categorical(df["recommend_band"], ordered=True))

    def fit(X):
        model = OrderedModel(y, X, distr="logit")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = model.fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-9)
        # a maximum, whatever BFGS's flag says (statsmodels 0.15 reports "not converged" when its
        # numerical gradient cannot reach gtol=1e-9): the score there is ~1e-6, so the
        # log-likelihood is off by ~1e-12, far inside the test's tolerance
        assert np.abs(model.score(res.params)).max() < 1e-4, res.mle_retvals
        return 1 - res.llf / ll0
    return fit


def _cox_loglik(df):
    def fit(X):
        d = X.join(df[["entry", "duration", "event"]])
        return CoxPHFitter().fit(d, "duration", "event", entry_col="entry").log_likelihood_
    return fit


CASES = {"linear": ("satisfaction", _ols_r2, 1e-10), "logit": ("promoter", _logit_mcfadden, 1e-7),
         "ordinal": ("recommend_band", _ordinal_mcfadden, 1e-6), "cox": (None, _cox_loglik, 1e-5)}


@pytest.mark.parametrize("model", list(CASES))
def test_shapley_importance_equals_brute_force_over_independent_fits(model):
    outcome, make_fit, tol = CASES[model]
    df = _respondents(600, seed=7)
    # recommend 0-10 in four ordered bands (0-6, 7-8, 9, 10): few thresholds, so that statsmodels'
    # numerical-derivative fit stays fast and converges
    df["recommend_band"] = pd.cut(df["recommend"], [-1, 6, 8, 9, 10], labels=False)
    v = _subset_fits(df, make_fit(df))
    phi = _brute_force_shapley(v, CONSTRUCTS)
    gain = v[frozenset(CONSTRUCTS)] - v[frozenset()]
    res = shapley_importance(df, CONSTRUCTS, model=model, outcome=outcome, controls=["segment"])
    s = res.summary.set_index("construct")
    assert res.baseline_fit_ == pytest.approx(v[frozenset()], abs=tol)
    assert res.full_fit_ == pytest.approx(v[frozenset(CONSTRUCTS)], abs=tol)
    for c in CONSTRUCTS:
        assert s.loc[c, "importance"] == pytest.approx(phi[c], abs=tol), c
        assert s.loc[c, "share"] == pytest.approx(phi[c] / gain, abs=max(tol / abs(gain), 1e-9)), c
    # the simulation's true driver of every outcome is recognition
    assert s["rank"].idxmin() == "recognition"
