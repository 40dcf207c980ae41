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
shares and how often each construct keeps its rank.

The logit and ordinal fitters here are small Newton-Raphson solvers written for speed (thousands
of fits for a bootstrap); Cox fits use cxlab's engine (:mod:`cxlab.survival.engine`). The tests
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

from cxlab import privacy
from cxlab.errors import ModelError, ParameterError
from cxlab.survival.engine import CoxProblem, RiskSets

__all__ = ["shapley_importance", "shapley_values", "DriverImportance", "CoxFit", "cox_loglik_fit"]

_MODELS = ("linear", "logit", "ordinal", "cox")


# ---------------------------------------------------------------------------------------------
# Cox partial likelihood (Efron ties, delayed entry, frequency weights)
# ---------------------------------------------------------------------------------------------


class CoxFit:
    """Precomputed risk-set structure for repeated Cox fits on the same respondents.

    A thin adapter over :class:`cxlab.survival.engine.CoxProblem` (the one Cox engine of cxlab):
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
    """Numeric matrix for ``columns``: categorical/string columns become 0/1 dummies
    (first level dropped), numeric ones are standardised. Returns (matrix, names)."""
    blocks, names = [], []
    for c in columns:
        s = df[c]
        if (s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype)
                or pd.api.types.is_string_dtype(s) or pd.api.types.is_bool_dtype(s)):
            s, usable = privacy.pool_for_model(s, c)  # privacy: rare levels pooled into "other"
            if not usable:
                continue
            d = pd.get_dummies(s.astype("category"), prefix=c, prefix_sep="=", drop_first=True,
                               dtype=float)
            d = d.loc[:, d.sum() > 0]
            blocks.append(d.to_numpy())
            names += list(d.columns)
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


# "auto": one Newton step per Cox bootstrap refit from this many defections on (its error, third
# order in the bootstrap perturbation, is ~1e-5 of a share at 3 000 respondents and shrinks with n)
_ONE_STEP_MIN_EVENTS = 2000

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
        frame) refits every subset started at its full-sample estimate: Newton-Raphson for Cox,
        the chord method (the full-sample Hessian, new gradients) for the ordinal model, both to
        convergence.
    boot_refit : ``"converge"`` iterates every bootstrap refit to convergence; ``"one-step"``
        (Cox only) takes one Newton step from the full-sample estimate and uses the exact partial
        log-likelihood there — for large bases, where the bootstrap perturbation is small and the
        error (third order in it) is negligible; tested to agree with ``"converge"``.
        ``"auto"`` (default): ``"one-step"`` from 2 000 defections on, else ``"converge"``.
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
    if boot_refit not in ("auto", "converge", "one-step"):
        raise ParameterError(f"The 'boot_refit' parameter of shapley_importance must be 'auto', "
                             f"'converge' or 'one-step'. Got {boot_refit!r} instead.")
    if model == "cox":
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
        prob.one_step = boot_refit == "one-step" or (boot_refit == "auto" and n_events >= _ONE_STEP_MIN_EVENTS)
    k = len(constructs)
    with threadpool_limits(1, "blas"):
        fits = prob.fits()
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
            parts = Parallel(n_jobs=workers)(delayed(_boot_chunk)(prob, chunk) for chunk in chunks)
        else:
            parts = [_boot_chunk(prob, seeds)]
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
