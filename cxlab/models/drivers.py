"""Key drivers: which perception matters most, by an exact Shapley decomposition of model fit.

:func:`shapley_importance` fits the model on every one of the ``2**k`` subsets of the ``k``
constructs (controls are always in; their fit is the baseline) and splits the full model's gain
in fit between the constructs with Shapley weights (dominance analysis, *general dominance*
weights; Budescu 1993, Azen & Budescu 2003). The fit measure is

* ``model="linear"``: R² of ordinary least squares;
* ``model="logit"``: McFadden's pseudo-R² (1 - LL / LL of the intercept-only model);
* ``model="ordinal"``: McFadden's pseudo-R² of the proportional-odds (cumulative logit) model
  against the thresholds-only model;
* ``model="cox"``: the Cox partial log-likelihood gain ``LL(subset + controls) - LL(controls)``
  (Efron ties, delayed entry through ``entry_col``).

The shares always add up to one and the importances to the full model's fit minus the baseline
(exactly, up to floating point). The bootstrap resamples respondents (multinomial frequency
weights, so the sort orders computed once are reused) and reports percentile intervals of the
shares and how often each construct keeps its rank. On large bases every draw takes one chord
step from the full-sample estimates (``boot_refit="chord"``): all draws at once, as matrix
products over the respondents (or over their distinct answer patterns), tested draw by draw
against refits to convergence.

The logit and ordinal fitters here are small Newton-Raphson solvers written for speed (thousands
of fits for a bootstrap); Cox fits use cxlab's engine (:mod:`cxlab.models.survival.engine`). The tests
check them against statsmodels (logit, ordinal) and lifelines (Cox) to 1e-6.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special
from threadpoolctl import threadpool_limits

from cxlab.errors import ModelError, ParameterError
from cxlab.models.survival.clock import resolve_entry
from cxlab.models.survival.design import dummy_code
from cxlab.models.survival.engine import CoxProblem, RiskSets

__all__ = ["shapley_importance", "shapley_values", "DriverImportance", "CoxFit", "cox_loglik_fit"]

_MODELS = ("linear", "logit", "ordinal", "cox")


# ---------------------------------------------------------------------------------------------
# Cox partial likelihood (Efron ties, delayed entry, frequency weights)
# ---------------------------------------------------------------------------------------------


class CoxFit:
    """Precomputed risk-set structure for repeated Cox fits on the same respondents.

    A thin adapter over :class:`cxlab.models.survival.engine.CoxProblem` (the one Cox engine of cxlab):
    the event times are sorted once, and every fit (any subset of columns, any weights) then
    costs a few matrix-vector products and ``bincount``/``cumsum`` passes per Newton step.

    Ties are handled with Efron's method; with non-unit weights the tied-event correction uses
    R ``survival``'s convention (the mean weight of the tied events multiplies the ``d`` terms).
    """

    def __init__(self, X, stop, event, entry=None):
        self.X = np.ascontiguousarray(np.asarray(X, dtype=float))
        self.stop = np.asarray(stop, dtype=float)
        self.event = np.asarray(event, dtype=float).astype(bool)
        self.n = len(self.stop)
        self.entry = np.zeros(self.n) if entry is None else np.asarray(entry, dtype=float)
        self._problem = CoxProblem(self.X, RiskSets(self.stop, self.event, self.entry))
        self._w = None

    def _weighted(self, w):
        if w is not self._w:
            self._problem.set_weights(w)
            self._w = w
        return self._problem

    def loglik(self, beta, cols=None, w=None, derivatives=True, XT=None):
        """Partial log-likelihood (and gradient, Hessian) at ``beta`` for columns ``cols``."""
        return self._weighted(w).loglik(np.asarray(beta, dtype=float), cols, derivatives=derivatives)

    def fit(self, cols=None, w=None, beta0=None, tol=1e-10, max_iter=50, one_step=False):
        """Newton-Raphson with step halving; returns (beta, loglik, n_iter).

        ``one_step=True`` takes a single Newton step from ``beta0`` and returns the exact
        log-likelihood there (a lower bound of the maximum, within O(step^3); used for bootstrap
        draws started at the full-sample estimate). With ``beta0`` and ``one_step=False`` the fit
        is :meth:`refit`: the same maximum (to ``tol``) at less cost.
        """
        if beta0 is not None and not one_step:
            return self.refit(cols, w, beta0, tol, max_iter)
        res = self._weighted(w).fit(beta0=beta0, cols=cols, tol=tol, max_iter=max_iter, exact_final=False,
                                    one_step=one_step, null_loglik=beta0 is None)
        return res.coef, res.loglik, res.n_iter

    def refit(self, cols, w, beta0, tol=1e-10, max_iter=50):
        """Maximum from a nearby start (a bootstrap draw from the full-sample estimate): Newton-Raphson
        from ``beta0`` without the null log-likelihood a first fit reports (a bootstrap draw does
        not use it). A chord variant (information kept from the first step) was measured no faster
        for Cox: its gradient costs most of a Newton step (benchmarks/bench_drivers.py)."""
        res = self._weighted(w).fit(beta0=beta0, cols=cols, tol=tol, max_iter=max_iter, exact_final=False,
                                    null_loglik=False)
        return res.coef, res.loglik, res.n_iter


def cox_loglik_fit(df, covariates, duration_col="duration", event_col="event", entry_col=None):
    """Fit a Cox model (Efron ties, delayed entry) and return ``(coefficients, log-likelihood)``.

    A thin wrapper around :class:`CoxFit`, exposed for checks against lifelines.
    """
    entry_col = resolve_entry(df, entry_col, duration_col)   # the table's delayed entry unless given / False
    cf = CoxFit(df[list(covariates)].to_numpy(float), df[duration_col], df[event_col],
                None if entry_col is None else df[entry_col])
    beta, ll, _ = cf.fit()
    return pd.Series(beta, index=list(covariates)), ll


# ---------------------------------------------------------------------------------------------
# Logistic and proportional-odds fitters (Newton-Raphson, frequency weights)
# ---------------------------------------------------------------------------------------------


def _damped_step(ll_of, params, step, ll, tol):
    """One Newton step, halved until the log-likelihood does not decrease.

    Returns (new params, new log-likelihood, converged)."""
    t = 1.0
    while True:
        new = params + t * step
        new_ll = ll_of(new)
        if new_ll >= ll - 1e-12:
            break
        t /= 2
        if t < 1e-8:
            break
    done = abs(new_ll - ll) < tol * (1 + abs(ll)) and np.max(np.abs(new - params)) < 1e-8
    return new, new_ll, done


def _logit_fit(Z, y, w, beta0=None, tol=1e-10, max_iter=100):
    """Weighted logistic regression by Newton-Raphson. ``Z`` includes the intercept."""
    beta = np.zeros(Z.shape[1]) if beta0 is None else beta0.copy()

    def ll_of(b):
        eta = Z @ b
        return float(np.sum(w * (y * eta - np.logaddexp(0, eta))))

    ll = ll_of(beta)
    for it in range(max_iter):
        mu = special.expit(Z @ beta)
        g = Z.T @ (w * (y - mu))
        H = (Z * (w * mu * (1 - mu))[:, None]).T @ Z
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            raise ModelError("Logistic fit: singular information matrix (a constant or collinear "
                             "column); drop or merge it.") from None
        beta, ll, done = _damped_step(ll_of, beta, step, ll, tol)
        if done:
            break
    else:
        raise ModelError("Logistic fit did not converge; look for (quasi-)complete separation: a "
                         "construct or control level that predicts the outcome perfectly.")
    if np.max(np.abs(beta)) > 30:
        raise ModelError("Logistic fit: a coefficient diverges (|b| > 30), the sign of (quasi-)"
                         "complete separation; merge sparse control levels or drop the column.")
    return beta, ll


def _ordinal_parts(X, y, K, beta, theta):
    eta = X @ beta if X.shape[1] else np.zeros(len(y))
    th = np.concatenate([[-np.inf], theta, [np.inf]])
    a = th[y + 1] - eta
    b = th[y] - eta
    Fa, Fb = special.expit(a), special.expit(b)
    P = Fa - Fb
    return a, b, Fa, Fb, P


def _ordinal_ll(X, y, K, w, par):
    """Log-likelihood and the parts the derivatives need (None when the thresholds are unordered)."""
    p = X.shape[1]
    th = par[p:]
    if np.any(np.diff(th) <= 0):
        return -np.inf, None
    parts = _ordinal_parts(X, y, K, par[:p], th)
    with np.errstate(divide="ignore"):
        return float(w @ np.log(parts[4])), parts


def _ordinal_derivatives(X, y, K, w, parts):
    """Gradient and Hessian of the proportional-odds log-likelihood, assembled from its blocks.

    With ``a = theta_y - x'b`` and ``b = theta_(y-1) - x'b`` (row ``i`` in category ``y_i``), the
    log-likelihood ``log(F(a) - F(b))`` has derivatives ``ga, gb`` and ``haa, hbb, hab`` in ``a``
    and ``b``, and the Hessian's blocks are (``w`` the case weights):

    * beta-beta: ``X' diag(w (haa + hbb + 2 hab)) X`` (one ``n x p`` product);
    * beta-theta_j: ``-sum_{y=j} x w (haa + hab) - sum_{y=j+1} x w (hbb + hab)``;
    * theta-theta: diagonal ``sum_{y=j} w haa + sum_{y=j+1} w hbb``, first off-diagonal
      ``sum_{y=j+1} w hab``, zero elsewhere (a row touches two neighbouring thresholds).

    The same matrix as the dense ``[U_a, U_b]`` products of the textbook form (tested to 1e-12),
    at the cost of one ``p x p`` product and ``p`` bincounts instead of four ``q x q`` products.
    """
    n, p = X.shape
    m = K - 1
    _, _, Fa, Fb, P = parts
    fa, fb = Fa * (1 - Fa), Fb * (1 - Fb)          # 0 exactly at the infinite thresholds
    ga, gb = fa / P, -fb / P
    haa = fa * (1 - 2 * Fa) / P - ga**2
    hbb = -fb * (1 - 2 * Fb) / P - gb**2
    hab = fa * fb / P**2
    wga, wgb = w * ga, w * gb
    wa, wb, wab = w * haa, w * hbb, w * hab
    g = np.empty(p + m)
    H = np.empty((p + m, p + m))
    g[:p] = -(X.T @ (wga + wgb))
    g[p:] = np.bincount(y, wga, K)[:m] + np.bincount(y, wgb, K)[1:]
    c = wa + wb + 2 * wab
    H[:p, :p] = (X.T * c) @ X
    ca, cb = wa + wab, wb + wab
    for j in range(p):
        xj = X[:, j]
        H[j, p:] = -(np.bincount(y, xj * ca, K)[:m] + np.bincount(y, xj * cb, K)[1:])
    H[p:, :p] = H[:p, p:].T
    tt = np.diag(np.bincount(y, wa, K)[:m] + np.bincount(y, wb, K)[1:])
    off = np.bincount(y, wab, K)[1:m]
    idx = np.arange(m - 1)
    tt[idx, idx + 1] = off
    tt[idx + 1, idx] = off
    H[p:, p:] = tt
    return g, H


def _ordinal_gradient(X, y, K, w, parts):
    """Gradient only (the first half of :func:`_ordinal_derivatives`)."""
    p = X.shape[1]
    m = K - 1
    _, _, Fa, Fb, P = parts
    wga = w * (Fa * (1 - Fa) / P)
    wgb = -w * (Fb * (1 - Fb) / P)
    g = np.empty(p + m)
    g[:p] = -(X.T @ (wga + wgb))
    g[p:] = np.bincount(y, wga, K)[:m] + np.bincount(y, wgb, K)[1:]
    return g


def _ordinal_refit(X, y, K, w, params0, covariance, tol=1e-10, max_iter=30):
    """Refit from ``params0`` with a fixed Hessian (the chord method): each step is
    ``covariance @ gradient`` with ``covariance = (-H)^-1`` of the full-sample fit at ``params0``.

    For a bootstrap draw (weights summing to ``n``) the Hessian moves by O(1/sqrt(n)) between the
    full-sample and the resampled fit, so each step shrinks the distance to the resample's maximum
    by that factor: three or four gradients (no Hessian) reach the same maximum as Newton-Raphson.
    Converged when ``g' covariance g < tol / 100 * (1 + |loglik|)``; the step is then taken and the
    log-likelihood increased by half that decrement (its quadratic model; the error is far below
    ``tol``). Falls back to Newton-Raphson (:func:`_ordinal_fit`) whenever a step does not increase
    the likelihood or ``max_iter`` is reached, so the result is always the maximum.
    """
    params = np.asarray(params0, dtype=float).copy()
    ll, parts = _ordinal_ll(X, y, K, w, params)
    if parts is None or not np.isfinite(ll):
        return _ordinal_fit(X, y, K, w, None, tol)
    for _ in range(max_iter):
        g = _ordinal_gradient(X, y, K, w, parts)
        step = covariance @ g
        decrement = float(g @ step)
        if 0 <= decrement < 1e-2 * tol * (1 + abs(ll)):   # linear convergence: 100x stricter
            return params + step, ll + decrement / 2
        new = params + step
        new_ll, new_parts = _ordinal_ll(X, y, K, w, new)
        if new_parts is None or not new_ll > ll - 1e-12 * (1 + abs(ll)):
            break
        params, ll, parts = new, new_ll, new_parts
    return _ordinal_fit(X, y, K, w, params, tol)


def _ordinal_fit(X, y, K, w, params0=None, tol=1e-10, max_iter=100, one_step=False):
    """Proportional-odds (cumulative logit) model ``P(y <= j) = F(theta_j - x'b)``, Newton-Raphson.

    ``y`` holds category codes 0..K-1; returns (params = [b, theta], loglik). Converged when the
    Newton decrement ``g'(-H)^-1 g`` is below ``tol * (1 + |loglik|)`` (the step is then taken and
    the log-likelihood evaluated there) or the score vanishes to round-off. ``one_step`` takes a
    single (damped) Newton step from ``params0`` and returns the exact log-likelihood there (for
    bootstrap draws started at the full-sample estimate).
    """
    n, p = X.shape
    if params0 is None:
        cum = np.cumsum(np.bincount(y, weights=w, minlength=K))[:-1] / w.sum()
        params = np.concatenate([np.zeros(p), special.logit(cum)])
    else:
        params = np.asarray(params0, dtype=float).copy()
    X = np.ascontiguousarray(X)
    ll, parts = _ordinal_ll(X, y, K, w, params)
    if parts is None:
        raise ModelError("Ordinal fit: the starting thresholds are not increasing.")
    for it in range(max_iter):
        g, H = _ordinal_derivatives(X, y, K, w, parts)
        if it and np.max(np.abs(g)) < 1e-9 * w.sum():
            break   # converged by the score: no line search can improve on round-off
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            raise ModelError("Ordinal fit: singular information matrix (a constant or collinear "
                             "column, or an empty outcome category).") from None
        decrement = float(g @ step)
        t = 1.0
        while True:
            new = params + t * step
            new_ll, new_parts = _ordinal_ll(X, y, K, w, new)
            if new_parts is not None and new_ll >= ll - 1e-12 * (1 + abs(ll)):
                break
            t /= 2
            if t < 1e-8:
                break
        if t < 1e-8:
            if decrement < 1e-6 * (1 + abs(ll)):
                break     # no step improves on round-off: converged (the likelihood is concave)
            raise ModelError("Ordinal fit: step halving failed far from the maximum; look for "
                             "separation or a (nearly) collinear column.")
        params, ll, parts = new, new_ll, new_parts
        if one_step or (t == 1.0 and decrement < tol * (1 + abs(ll))):
            break
    else:
        raise ModelError("Ordinal fit did not converge; look for separation or empty categories.")
    if p and np.max(np.abs(params[:p])) > 30:
        raise ModelError("Ordinal fit: a coefficient diverges (|b| > 30), the sign of separation; "
                         "merge sparse control levels or drop the column.")
    return params, ll


def _ordinal_null_ll(y, K, w):
    counts = np.bincount(y, weights=w, minlength=K)
    pr = counts / counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(np.where(counts > 0, counts * np.log(pr), 0.0)))


# ---------------------------------------------------------------------------------------------
# Design matrices
# ---------------------------------------------------------------------------------------------


def _design(df, columns, standardize=True, what="column"):
    """Numeric matrix for ``columns``: categorical/string/boolean columns become 0/1 dummies against
    the one reference level of every model (:func:`cxlab.models.survival.design.dummy_code`: rare
    levels pooled, the most frequent level left out), numeric ones are standardised. Returns
    (matrix, names)."""
    blocks, names = [], []
    for c in columns:
        s = df[c]
        if (s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype)
                or pd.api.types.is_string_dtype(s) or pd.api.types.is_bool_dtype(s)):
            if s.nunique(dropna=True) < 2:   # nothing to compare with: no column (as before)
                continue
            coded = dummy_code(s, c, style="=", what="Driver model")   # privacy: rare levels pooled
            if coded is None:
                continue
            coding, D = coded
            blocks.append(D)
            names += coding.terms
        else:
            v = s.to_numpy(float)
            sd = v.std(ddof=1)
            if not np.isfinite(sd) or sd == 0:
                raise ModelError(f"{what} {c!r} has no variance on the analysis sample "
                                 f"({len(v)} rows); drop it.")
            blocks.append(((v - v.mean()) / sd if standardize else v)[:, None])
            names.append(c)
    if not blocks:
        return np.zeros((len(df), 0)), []
    return np.column_stack(blocks), names


def _check_columns(df, cols, role):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParameterError(f"{role} column(s) {missing} not found in the data; available columns: "
                             f"{list(df.columns)}.")


# ---------------------------------------------------------------------------------------------
# Shapley decomposition
# ---------------------------------------------------------------------------------------------


def shapley_values(fit_by_mask: np.ndarray, k: int) -> np.ndarray:
    """Exact Shapley values from the fit of every subset (index = bit mask over ``k`` players).

    ``fit_by_mask[0]`` is the baseline (controls only); the values add up to
    ``fit_by_mask[-1] - fit_by_mask[0]``.
    """
    v = np.asarray(fit_by_mask, dtype=float)
    if v.shape[-1] != 2**k:
        raise ParameterError(f"fit_by_mask must have 2**k = {2**k} entries, got {v.shape[-1]}.")
    phi = np.zeros(v.shape[:-1] + (k,))
    fact = [math.factorial(i) for i in range(k + 1)]
    for j in range(k):
        bit = 1 << j
        for mask in range(2**k):
            if mask & bit:
                continue
            s = bin(mask).count("1")
            wgt = fact[s] * fact[k - s - 1] / fact[k]
            phi[..., j] += wgt * (v[..., mask | bit] - v[..., mask])
    return phi


class _Problem:
    """One model family on one analysis sample: computes the fit of every subset."""

    def __init__(self, model, C, X, y=None, K=None, cox=None):
        self.model, self.C, self.X, self.y, self.K, self.cox = model, C, X, y, K, cox
        self.n = len(X)
        self.k = X.shape[1]
        self.pc = C.shape[1]
        self.params = {}
        self.covariance = {}
        self.one_step = False

    def cols(self, mask):
        return list(range(self.pc)) + [self.pc + j for j in range(self.k) if mask >> j & 1]

    def fits(self, w=None, warm=None):
        """Fit measure (before subtracting the baseline) of every subset, as an array.

        Without ``warm`` (the full-sample fits) each subset's fit starts from the nearest smaller
        subset's estimate (the subset without its last construct, that construct's coefficient at
        0) and the estimates are kept in ``params``. With ``warm`` (a bootstrap draw) each subset
        starts from its own full-sample estimate ``warm[mask]``.
        """
        k, n = self.k, self.n
        w = np.ones(n) if w is None else w
        out = np.empty(2**k)
        if self.model == "linear":
            Z = np.column_stack([np.ones(n), self.C, self.X])
            M = (Z * w[:, None]).T @ Z
            zy = Z.T @ (w * self.y)
            ybar = np.sum(w * self.y) / w.sum()
            tss = np.sum(w * (self.y - ybar) ** 2)
            yy = np.sum(w * self.y**2)
            for mask in range(2**k):
                idx = [0] + [1 + c for c in self.cols(mask)]
                b = np.linalg.lstsq(M[np.ix_(idx, idx)], zy[idx], rcond=None)[0]
                out[mask] = 1 - (yy - b @ zy[idx]) / tss
            return out
        if self.model == "logit":
            Z = np.column_stack([np.ones(n), self.C, self.X])
            ybar = np.sum(w * self.y) / w.sum()
            ll0 = float(np.sum(w * (self.y * np.log(ybar) + (1 - self.y) * np.log(1 - ybar))))
            for mask in range(2**k):
                idx = [0] + [1 + c for c in self.cols(mask)]
                b0 = self._start(mask, warm, lambda par: np.concatenate([par, [0.0]]))
                b, ll = _logit_fit(Z[:, idx], self.y, w, b0)
                if warm is None:
                    self.params[mask] = b
                out[mask] = 1 - ll / ll0
            return out
        if self.model == "ordinal":
            Z = np.column_stack([self.C, self.X])
            ll0 = _ordinal_null_ll(self.y, self.K, w)
            K = self.K
            for mask in range(2**k):
                Zm = np.ascontiguousarray(Z[:, self.cols(mask)])
                if warm is None:
                    b0 = self._start(mask, None, lambda par: np.insert(par, len(par) - (K - 1), 0.0))
                    par, ll = _ordinal_fit(Zm, self.y, K, w, b0)
                    self.params[mask] = par
                    g, H = _ordinal_derivatives(Zm, self.y, K, w, _ordinal_ll(Zm, self.y, K, w, par)[1])
                    try:
                        self.covariance[mask] = np.linalg.inv(-H)
                    except np.linalg.LinAlgError:
                        self.covariance[mask] = None
                elif self.covariance.get(mask) is not None:
                    par, ll = _ordinal_refit(Zm, self.y, K, w, warm[mask], self.covariance[mask])
                else:
                    par, ll = _ordinal_fit(Zm, self.y, K, w, warm[mask])
                out[mask] = 1 - ll / ll0
            return out
        # cox: fit = partial log-likelihood
        ws = w
        for mask in range(2**k):
            cols = self.cols(mask)
            if not cols:
                out[mask] = self.cox.loglik(np.zeros(0), cols, ws, derivatives=False)
                continue
            b0 = self._start(mask, warm, lambda par: np.concatenate([par, [0.0]]))
            b, ll, _ = self.cox.fit(cols, ws, b0, one_step=warm is not None and self.one_step)
            if warm is None:
                self.params[mask] = b
            out[mask] = ll
        return out

    def prepare_chord(self):
        """``(-H)^-1`` at the full-sample estimate of every subset (after :meth:`fits`), for
        :meth:`chord_fits`; the ordinal model keeps the ones :meth:`fits` computed."""
        if self.model in ("linear", "ordinal"):
            return
        ones = np.ones(self.n)
        for mask in range(2**self.k):
            cols = self.cols(mask)
            if self.model == "logit":
                Z = np.column_stack([np.ones(self.n), self.C, self.X])[:, [0] + [1 + c for c in cols]]
                mu = special.expit(Z @ self.params[mask])
                H = -(Z * (mu * (1 - mu))[:, None]).T @ Z
            elif not cols:
                continue
            else:
                H = self.cox.loglik(self.params[mask], cols, ones)[2]
            self.covariance[mask] = _inverse_information(H)

    def chord_fits(self, W):
        """Fit measure of every subset for every draw (the columns of the n x B counts ``W``) after
        one chord step from the full-sample estimates (see the section on chord draws): B x 2**k."""
        k, n, B = self.k, self.n, W.shape[1]
        out = np.empty((B, 2**k))
        if self.model == "linear":             # exact and cheap already: sufficient statistics
            for j in range(B):
                out[j] = self.fits(W[:, j].astype(float))
            return out
        if self.model == "cox":
            draws = _CoxDraws(self.cox._weighted(None))
            for s, Wf in _blocks(W):
                draws.use(Wf)
                for mask in range(2**k):
                    cols = self.cols(mask)
                    if not cols:
                        out[s, mask] = draws.loglik_score(np.zeros(0), cols)[0]
                        continue
                    beta = self.params[mask]
                    ll, g = draws.loglik_score(beta, cols)
                    out[s, mask] = np.maximum(ll, draws.loglik_at(beta[:, None] + self.covariance[mask] @ g, cols))
            return out
        # logit and ordinal: McFadden's pseudo-R2. Respondents with the same answers (outcome and the
        # subset's columns) enter every sum alike: each subset works on its distinct rows, with the
        # draws' counts summed over each (the same sums, regrouped; 16 % of the rows on average for
        # four constructs and two controls)
        from scipy import sparse

        Z = np.column_stack([self.C, self.X])
        rows, first = _distinct_rows(np.column_stack([Z, self.y]))
        to_rows = sparse.csr_matrix((np.ones(n), (first, np.arange(n))), shape=(len(rows), n))
        y_rows = rows[:, -1].astype(int)
        K = self.K if self.model == "ordinal" else 2
        to_levels = sparse.csr_matrix((np.ones(len(rows)), (y_rows, np.arange(len(rows)))), shape=(K, len(rows)))
        subsets = {}
        for mask in range(1, 2**k) if self.pc == 0 else range(2**k):
            cols = self.cols(mask)
            V = self.covariance.get(mask)
            if V is None:
                raise ModelError("Bootstrap: singular information matrix of a full-sample fit (a constant "
                                 "or collinear column); drop or merge it.")
            distinct, inv = _distinct_rows(rows[:, cols + [-1]])
            merge = sparse.csr_matrix((np.ones(len(rows)), (inv, np.arange(len(rows)))),
                                      shape=(len(distinct), len(rows)))
            Zm, ym, par = np.ascontiguousarray(distinct[:, :-1]), distinct[:, -1].astype(int), self.params[mask]
            if self.model == "logit":
                Zm = np.column_stack([np.ones(len(Zm)), Zm])
                LT = np.ascontiguousarray(_logit_obs(Zm, ym.astype(float), par).T)
            else:
                LT = np.ascontiguousarray(_ordinal_obs(Zm, ym, K, par).T)
            subsets[mask] = (merge, Zm, ym, par, LT, V)
        out[:, 0] = 0.0                        # thresholds / intercept only: the null model, exactly
        for s, Wf in _blocks(W):
            Wr = to_rows @ Wf
            c = to_levels @ Wr
            with np.errstate(divide="ignore", invalid="ignore"):
                ll0 = np.sum(np.where(c > 0, c * np.log(c / c.sum(0)), 0.0), axis=0)
            for mask, (merge, Zm, ym, par, LT, V) in subsets.items():
                Wm = merge @ Wr
                R = LT @ Wm                    # row 0: log-likelihood at the estimate; then the score
                pars = par[:, None] + V @ R[1:]
                at = (_ordinal_ll_at(Zm, ym, K, Wm, pars) if self.model == "ordinal"
                      else _logit_ll_at(Zm, ym.astype(float), Wm, pars))
                out[s, mask] = 1 - np.maximum(R[0], at) / ll0
        return out

    def _start(self, mask, warm, extend):
        """Starting values: ``warm[mask]`` for a bootstrap draw, else the nearest smaller subset's
        estimate extended by ``extend`` with a zero for the construct added last (None if none)."""
        if warm is not None:
            return warm[mask]
        if mask == 0:
            return None
        parent = mask & ~(1 << (mask.bit_length() - 1))
        par = self.params.get(parent)
        return None if par is None else extend(np.asarray(par, dtype=float))


def _n_workers(n_jobs, n_tasks):
    """Worker processes for ``n_tasks`` draws: ``n_jobs`` > 0 as given, -1 = every core, -2 = all
    but one, ... (joblib's convention), never more than the draws."""
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ParameterError(f"The 'n_jobs' parameter must be a non-zero integer (-1 = every core). "
                             f"Got {n_jobs!r} instead.")
    if n_jobs < 0:
        from joblib import cpu_count

        n_jobs = max(1, cpu_count() + 1 + n_jobs)
    return max(1, min(int(n_jobs), int(n_tasks)))


def _boot_chunk(prob, seeds):
    """Bootstrap draws (frequency weights) for one worker: list of share vectors, failures."""
    draws, failed = [], 0
    n, k = prob.n, prob.k
    with threadpool_limits(1, "blas"):
        for ss in seeds:
            w = np.random.default_rng(ss).multinomial(n, np.full(n, 1.0 / n)).astype(float)
            try:
                bf = prob.fits(w, warm=prob.params)
            except ModelError:
                failed += 1
                continue
            draws.append(shapley_values(bf, k) / (bf[-1] - bf[0]))
    return draws, failed


# ---------------------------------------------------------------------------------------------
# Bootstrap draws by one chord step from the full-sample estimate, all draws at once
# ---------------------------------------------------------------------------------------------
#
# For a resample with frequency weights w, each subset's model takes one Newton step from its
# full-sample estimate t with the full-sample information I (the first step of the chord method):
# t_w = t + I^-1 g_w(t), and its fit is the exact log-likelihood there (or at t, if higher). Both are
# lower bounds of the resample's maximum; t_w is O(n^-1) from it (the resample's own information
# differs from I by O(n^-1/2) relatively, the step is O(n^-1/2)), so the log-likelihood falls short by
# O(n^-1) and a share moves by O(n^-2), as with a Newton step ("one-step"), far inside its bootstrap
# spread O(n^-1/2); tests/test_drivers.py checks it draw by draw against refits to convergence.
# The score g_w(t) is linear in w for the logit and ordinal models (one (1 + q) x n by n x B
# product per subset); for Cox the risk-set sums are linear in w (sparse products over an n x B
# block; Efron ties, delayed entry and R's case-weight convention, as CoxProblem; tested against
# CoxProblem.loglik). The log-likelihoods at the B new points are n x B array passes.

_BLOCK = 2_000_000       # elements of an n x draws float block (16 MB): the draws go in column blocks


def _boot_counts(seeds, n):
    """n x B resampling counts (multinomial, one seed per draw as the refits draw them), compact."""
    W = np.empty((n, len(seeds)), dtype=np.uint8)
    for j, ss in enumerate(seeds):
        c = np.random.default_rng(ss).multinomial(n, np.full(n, 1.0 / n))
        if c.max() > 255 and W.dtype == np.uint8:     # never seen (mean count 1), but exact
            W = W.astype(np.int32)
        W[:, j] = c
    return W


def _blocks(W):
    """Column blocks of W as float n x b arrays (b draws at a time)."""
    n, B = W.shape
    b = max(1, min(B, _BLOCK // max(n, 1)))
    for j in range(0, B, b):
        yield slice(j, min(j + b, B)), np.ascontiguousarray(W[:, j:j + b], dtype=float)


def _distinct_rows(M):
    """(the distinct rows of ``M``, the index of each row of ``M`` among them), by hashing."""
    code = np.zeros(len(M), dtype=np.int64)
    for j in range(M.shape[1]):
        c, u = pd.factorize(M[:, j])
        code, _ = pd.factorize(code * len(u) + c)
    _, first = np.unique(code, return_index=True)
    return M[first], code


def _logit_obs(Z, y, beta):
    """Per-respondent log-likelihood and score of the logistic model: n x (1 + q)."""
    eta = Z @ beta
    return np.column_stack([y * eta - np.logaddexp(0, eta), Z * (y - special.expit(eta))[:, None]])


def _logit_ll_at(Z, y, Wf, betas):
    """Weighted log-likelihood of each weight column of ``Wf`` at its own coefficients (q x b)."""
    eta = Z @ betas
    return np.sum(Wf * (y[:, None] * eta - np.logaddexp(0, eta)), axis=0)


def _ordinal_obs(X, y, K, par):
    """Per-respondent log-likelihood and score of the proportional-odds model: n x (1 + p + K - 1),
    the rows whose weighted sums are the log-likelihood and :func:`_ordinal_gradient`."""
    n, p = X.shape
    m = K - 1
    _, _, Fa, Fb, P = _ordinal_parts(X, y, K, par[:p], par[p:])
    ga, gb = Fa * (1 - Fa) / P, -Fb * (1 - Fb) / P
    L = np.zeros((n, 1 + p + m))
    L[:, 0] = np.log(P)
    L[:, 1:1 + p] = -X * (ga + gb)[:, None]
    rows = np.arange(n)
    top, bot = y < m, y > 0
    L[rows[top], 1 + p + y[top]] += ga[top]
    L[rows[bot], 1 + p + y[bot] - 1] += gb[bot]
    return L


def _ordinal_ll_at(X, y, K, Wf, pars):
    """Weighted log-likelihood of each weight column of ``Wf`` at its own parameters (q x b);
    -inf where the thresholds are not increasing."""
    p = X.shape[1]
    th = pars[p:]
    eta = X @ pars[:p] if p else np.zeros((len(y), pars.shape[1]))
    edge = np.full((1, pars.shape[1]), np.inf)
    T = np.concatenate([-edge, th, edge])
    P = special.expit(T[y + 1] - eta) - special.expit(T[y] - eta)
    ll = np.sum(Wf * np.log(np.maximum(P, 1e-300)), axis=0)
    return np.where(np.all(np.diff(th, axis=0) > 0, axis=0), ll, -np.inf)


class _CoxDraws:
    """Partial log-likelihood (and score) of many case-weight vectors (the columns of an n x b
    block, :meth:`use`): the sums over risk sets as sparse products, Efron's tied fractions per
    entry, the score pushed back onto rows (as :meth:`CoxProblem._information` does)."""

    def __init__(self, problem: CoxProblem):
        from scipy import sparse

        rs = problem.rs
        n, G = rs.n, rs.G
        self.problem, self.rs = problem, rs
        rows = np.arange(n)
        # S0[g] = cumulative sum over groups of (+ rows entering at lo) and (- rows leaving at hi)
        self.enter_leave = sparse.csr_matrix(
            (np.concatenate([np.ones(n), -np.ones(n)]), (np.concatenate([rs.lo, rs.hi]), np.concatenate([rows, rows]))),
            shape=(G + 1, n))
        self.deaths = sparse.csr_matrix((np.ones(rs.dead.size), (rs.dead_group, rs.dead)), shape=(G, n))
        d = rs.n_dead_rows                     # case weights: Efron's d counts the tied rows
        self.grp = np.repeat(np.arange(G), d)
        self.starts = np.concatenate([[0], np.cumsum(d)[:-1]])   # every group has a death
        frac = (np.arange(self.grp.size) - self.starts[self.grp]) / d[self.grp]
        self.efron = problem.ties == "efron" and bool(np.any(d > 1))
        self.frac = frac[:, None]
        self.d = d.astype(float)[:, None]

    def use(self, Wf):
        """Work on the weight columns of ``Wf`` (n x b) from now on."""
        self.Wf, self.W_dead = Wf, Wf[self.rs.dead]
        self.mw = (self.deaths @ Wf) / self.d              # mean weight of each group's tied deaths
        self.live = self.mw[self.grp] > 0                  # a time whose deaths were all left out adds 0

    def _loglik(self, eta):
        """Log-likelihood per weight column at linear predictors ``eta`` (n, or n x b), and the
        parts the score needs."""
        rs, Wf = self.rs, self.Wf
        eta = eta - eta.max(axis=0)            # ratios unchanged; no overflow
        r = np.exp(eta)
        RW = Wf * (r[:, None] if r.ndim == 1 else r)
        S0 = np.cumsum(self.enter_leave @ RW, axis=0)
        den = S0[self.grp]
        if self.efron:
            den -= self.frac * (self.deaths @ RW)[self.grp]
        np.putmask(den, ~self.live, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            logden = np.log(den)               # finite: a live time's risk set holds its deaths
        eta_dead = eta[rs.dead][:, None] if eta.ndim == 1 else eta[rs.dead]
        ll = (np.sum(eta_dead * self.W_dead, axis=0)
              - np.sum(self.mw * np.add.reduceat(logden, self.starts, axis=0), axis=0))
        return ll, r, RW, den

    def loglik_score(self, beta, cols):
        """(log-likelihood (b,), score (q x b)) of the weight columns at ``beta``."""
        rs, Wf = self.rs, self.Wf
        XT = self.problem.XT[cols]
        eta = beta @ XT if len(cols) else np.zeros(rs.n)
        ll, r, RW, den = self._loglik(eta)
        if not len(cols):
            return ll, np.zeros((0, Wf.shape[1]))
        inv = np.reciprocal(den, out=den)
        c = self.mw * np.add.reduceat(inv, self.starts, axis=0)
        cum = np.concatenate([np.zeros((1, Wf.shape[1])), np.cumsum(c, axis=0)])
        U = cum[rs.hi]
        U -= cum[rs.lo]
        U *= -r[:, None]
        U[rs.dead] += 1.0
        U *= Wf
        if self.efron:
            e = self.mw * np.add.reduceat(self.frac * inv, self.starts, axis=0)
            U[rs.dead] += RW[rs.dead] * e[rs.dead_group]
        return ll, XT @ U

    def loglik_at(self, betas, cols):
        """Log-likelihood of each weight column at its own coefficients (q x b)."""
        return self._loglik(self.problem.XT[cols].T @ betas)[0]


def _inverse_information(H):
    try:
        return np.linalg.inv(-H)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(-H)


def _boot_chunk_chord(prob, seeds):
    """Bootstrap draws for one worker by one chord step per subset (all its draws at once)."""
    with threadpool_limits(1, "blas"):
        fits = prob.chord_fits(_boot_counts(seeds, prob.n))
    gain = fits[:, -1] - fits[:, 0]
    return list(shapley_values(fits, prob.k) / gain[:, None]), 0


@dataclass
class DriverImportance:
    """Result of :func:`shapley_importance`.

    ``summary``: construct, importance, share, lower, upper, rank, rank_stability.
    ``subsets_``: the fit of every subset of constructs (above the controls-only baseline).
    ``full_fit_`` / ``baseline_fit_``: fit measure of the full and controls-only models;
    ``boot_shares_``: bootstrap draws of the shares (B x k), empty without bootstrap.
    """

    summary: pd.DataFrame
    model: str
    fit_measure: str
    full_fit_: float
    baseline_fit_: float
    subsets_: pd.DataFrame
    n_: int
    n_events_: int | None = None
    boot_shares_: pd.DataFrame = field(default_factory=pd.DataFrame)
    n_boot_failed_: int = 0

    @property
    def gain_(self) -> float:
        """Full model's fit minus the baseline: what the importances add up to."""
        return self.full_fit_ - self.baseline_fit_

    def _repr_html_(self):
        head = (f"<p><b>Driver importance</b> ({self.model}; fit measure: {self.fit_measure}; "
                f"n = {self.n_}; gain over controls = {self.gain_:.4g})</p>")
        return head + self.summary.to_html(index=False, float_format=lambda x: f"{x:.3f}")


_REFITS = ("auto", "chord", "converge", "one-step")
# "auto": chord draws from this many events on (defections for Cox, the rarer outcome for the
# logit, the answers outside the most common category for the ordinal model), refits to
# convergence below. A share's error shrinks as n^-2: ~1e-3 of a share (0.1 of its bootstrap
# spread) at 500 events, ~1e-4 at 1 200 (tests/test_drivers.py)
_CHORD_MIN_EVENTS = 500

_MEASURE = {"linear": "R²", "logit": "McFadden pseudo-R²", "ordinal": "McFadden pseudo-R²",
            "cox": "Cox partial log-likelihood (Efron)"}


def shapley_importance(df: pd.DataFrame, constructs, model: str = "linear", outcome: str | None = None,
                       controls=(), n_boot: int = 0, seed: int = 0, duration_col: str = "duration",
                       event_col: str = "event", entry_col: str | None = "entry", ci: float = 0.95,
                       min_n: int = 10, n_jobs: int = -1, boot_refit: str = "auto") -> DriverImportance:
    """Relative importance of ``constructs`` by exact Shapley decomposition of model fit.

    Parameters
    ----------
    df : respondent table (one row per respondent).
    constructs : construct columns (names come from the study; at most 12).
    model : ``"linear"`` (R²), ``"logit"`` (binary ``outcome``; McFadden), ``"ordinal"``
        (ordered ``outcome`` such as recommend 0..10; McFadden) or ``"cox"`` (time to defection:
        ``duration_col``, ``event_col``, delayed entry at ``entry_col``; fit = partial
        log-likelihood gain over the controls-only model).
    controls : always in the model; string/categorical columns become dummies.
    n_boot : bootstrap draws (respondents resampled) for percentile intervals of the shares and
        the rank stability; 0 = none. Each draw (multinomial frequency weights, no copied
        frame) refits every subset started at its full-sample estimate, as ``boot_refit`` says.
    boot_refit : how a draw refits each subset (linear models are always exact).
        ``"chord"``: one Newton step with the full-sample information matrix and the draw's own
        score, every draw at once (the scores are sums over respondents, or over risk sets for
        Cox), and the exact log-likelihood there (or at the full-sample estimate, if higher): a
        lower bound of the draw's maximum that misses it by O(1/n), so a share moves by O(1/n^2)
        (~1e-4 at 3 000 respondents, a few per cent of its bootstrap spread; tested against
        ``"converge"``). ``"converge"``: every refit iterated to convergence (Newton-Raphson for
        Cox and the logit, the chord method for the ordinal model). ``"one-step"`` (Cox only):
        one Newton step with the draw's own information, the exact partial log-likelihood there.
        ``"auto"`` (default): ``"chord"`` from 500 events on (defections for Cox, the rarer
        outcome for the logit, the answers outside the most common one for the ordinal model),
        else ``"converge"``.
    n_jobs : worker processes for the bootstrap (joblib): -1 (default) = every core, -2 = all but
        one, 1 = none. Draws are seeded one by one, so the result does not depend on ``n_jobs``;
        BLAS runs single-threaded inside each worker.

    Rows with a missing value in any used column are dropped (with a warning that counts them).
    """
    constructs = list(constructs)
    controls = list(controls)
    if model not in _MODELS:
        raise ParameterError(f"The 'model' parameter of shapley_importance must be one of {_MODELS}. "
                             f"Got {model!r} instead.")
    if not 1 <= len(constructs) <= 12:
        raise ParameterError(f"shapley_importance needs 1 to 12 constructs (2**k fits); got {len(constructs)}.")
    if len(set(constructs)) != len(constructs) or set(constructs) & set(controls):
        raise ParameterError("constructs must be distinct and must not also be controls.")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 0):
        raise ParameterError(f"The 'n_boot' parameter must be a non-negative integer. Got {n_boot!r}.")
    if boot_refit not in _REFITS:
        raise ParameterError(f"The 'boot_refit' parameter of shapley_importance must be one of {_REFITS}. "
                             f"Got {boot_refit!r} instead.")
    if model == "cox":
        entry_col = resolve_entry(df, entry_col, duration_col)   # the table's delayed entry unless given / False
        used = constructs + controls + [duration_col, event_col] + ([entry_col] if entry_col else [])
    else:
        if outcome is None:
            raise ParameterError(f"model={model!r} needs an 'outcome' column.")
        used = constructs + controls + [outcome]
    _check_columns(df, used, "shapley_importance:")
    non_numeric = [c for c in constructs if not pd.api.types.is_numeric_dtype(df[c])
                   or pd.api.types.is_bool_dtype(df[c])]
    if non_numeric:
        raise ParameterError(f"Construct columns must hold numeric scores; {non_numeric} do not "
                             "(pass categorical variables as controls).")
    data = df[used].dropna()
    dropped = len(df) - len(data)
    if dropped:
        warnings.warn(f"shapley_importance: {dropped} of {len(df)} rows dropped for missing values "
                      f"in {used}.", stacklevel=2)
    n = len(data)
    if n < max(min_n, len(constructs) + len(controls) + 2):
        raise ModelError(f"shapley_importance: only {n} complete rows; at least {min_n} are needed.")
    X, _ = _design(data, constructs, what="construct")
    C, _ = _design(data, controls, what="control")
    n_events = None
    if model == "linear":
        prob = _Problem(model, C, X, y=data[outcome].to_numpy(float))
    elif model == "logit":
        y = data[outcome].to_numpy(float)
        if not np.isin(y, (0, 1)).all():
            raise ModelError(f"model='logit' needs a 0/1 outcome; column {outcome!r} has values "
                             f"{sorted(np.unique(y))[:10]}.")
        n_events = int(y.sum())
        if min(n_events, n - n_events) < min_n:
            raise ModelError(f"Too few events for a logistic model: {n_events} ones and "
                             f"{n - n_events} zeros in {outcome!r} (need at least {min_n} of each).")
        prob = _Problem(model, C, X, y=y)
    elif model == "ordinal":
        levels = np.sort(data[outcome].unique())
        if len(levels) < 2:
            raise ModelError(f"Outcome {outcome!r} has a single observed category; nothing to model.")
        y = np.searchsorted(levels, data[outcome].to_numpy()).astype(int)
        prob = _Problem(model, C, X, y=y, K=len(levels))
    else:
        ev = data[event_col].to_numpy(float)
        stop = data[duration_col].to_numpy(float)
        entry = data[entry_col].to_numpy(float) if entry_col else np.zeros(n)
        if np.any(stop <= entry):
            bad = np.flatnonzero(stop <= entry)[:5].tolist()
            raise ModelError(f"{duration_col!r} must exceed {entry_col!r}; rows at positions {bad} do not.")
        n_events = int(ev.sum())
        if n_events < min_n:
            raise ModelError(f"Too few defections for a Cox model: {n_events} events (need {min_n}).")
        prob = _Problem(model, C, X, cox=CoxFit(np.column_stack([C, X]), stop, ev, entry))
        prob.one_step = boot_refit == "one-step"
    refit = boot_refit
    if refit == "auto":
        if model == "ordinal":
            events = n - int(np.bincount(prob.y).max())   # answers outside the most common one
        else:
            events = 0 if model == "linear" else min(n_events, n - n_events) if model == "logit" else n_events
        refit = "chord" if events >= _CHORD_MIN_EVENTS else "converge"
    k = len(constructs)
    with threadpool_limits(1, "blas"):
        fits = prob.fits()
        if n_boot and refit == "chord":
            prob.prepare_chord()
    chunk = _boot_chunk_chord if refit == "chord" else _boot_chunk
    phi = shapley_values(fits, k)
    gain = fits[-1] - fits[0]
    share = phi / gain if gain != 0 else np.full(k, np.nan)
    rank = pd.Series(-phi).rank(method="min").to_numpy().astype(int)
    lower = upper = stability = np.full(k, np.nan)
    boot = pd.DataFrame(columns=constructs, dtype=float)
    failed = 0
    if n_boot:
        seeds = np.random.SeedSequence(seed).spawn(n_boot)
        workers = _n_workers(n_jobs, n_boot)
        if workers > 1:
            from joblib import Parallel, delayed

            chunks = [seeds[i::workers] for i in range(workers)]
            parts = Parallel(n_jobs=workers)(delayed(chunk)(prob, part) for part in chunks)
        else:
            parts = [chunk(prob, seeds)]
        draws = [d for part in parts for d in part[0]]
        failed = sum(part[1] for part in parts)
        if failed:
            warnings.warn(f"shapley_importance: {failed} of {n_boot} bootstrap fits failed and were "
                          "skipped.", stacklevel=2)
        if draws:
            boot = pd.DataFrame(np.array(draws), columns=constructs)
            a = (1 - ci) / 2
            lower = boot.quantile(a).to_numpy()
            upper = boot.quantile(1 - a).to_numpy()
            branks = (-boot).rank(axis=1, method="min").to_numpy()
            stability = (branks == rank[None, :]).mean(0)
    summary = pd.DataFrame({"construct": constructs, "importance": phi, "share": share,
                            "lower": lower, "upper": upper, "rank": rank,
                            "rank_stability": stability})
    summary = summary.sort_values("rank", kind="stable").reset_index(drop=True)
    subsets = pd.DataFrame({
        "constructs": [", ".join(c for j, c in enumerate(constructs) if m >> j & 1) or "(controls only)"
                       for m in range(2**k)],
        "size": [bin(m).count("1") for m in range(2**k)],
        "fit": fits, "gain": fits - fits[0]})
    return DriverImportance(summary=summary, model=model, fit_measure=_MEASURE[model],
                            full_fit_=float(fits[-1]), baseline_fit_=float(fits[0]),
                            subsets_=subsets, n_=n, n_events_=n_events, boot_shares_=boot,
                            n_boot_failed_=failed)
