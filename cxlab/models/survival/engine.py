"""One Cox partial-likelihood engine for cxlab: Efron (R's default) or Breslow ties, counting-process
data (delayed entry), strata, case weights and frequency weights, vectorised over risk sets.

Every Cox fit in cxlab goes through here: :class:`~cxlab.models.survival.cox.CoxModel` and
:class:`~cxlab.models.survival.cox.TimeVaryingCoxModel`, the PH test (:func:`efron_statistics`), the
Shapley driver decomposition (:mod:`cxlab.models.drivers`), the what-if bootstrap (:mod:`cxlab.insight.value`)
and the cross-validated evaluation (:mod:`cxlab.models.survival.evaluate`).

**Risk sets.** A row is at risk at event time ``t`` of its stratum when ``entry < t <= stop``
(R ``Surv(entry, stop, event)``). :class:`RiskSets` sorts the event times once: each distinct
(stratum, event time) is a *group*, and each row is at risk over a contiguous range of groups
``[lo, hi)``. A sum over every risk set is then two ``bincount`` and one ``cumsum`` passes, and the
information matrix is pushed onto rows (``X' diag(c) X``), so a Newton step costs O(n p^2) BLAS
work with no loop over rows or event times (a million rows in about a second per step).

**Weights.** ``weights`` are case weights with R ``survival``'s Efron convention (the mean weight
of the tied events multiplies the ``d`` denominators; lifelines ``weights_col`` gives the same).
``freq`` are integer frequency weights: row ``i`` counts ``freq[i]`` times, exactly as if it were
duplicated (tied copies of a death are separate tied deaths) -- what a bootstrap draw needs.

**Checked against** R ``survival`` 3.x ``coxph``/``cox.zph``/``residuals(type="dfbeta")``
(tests/test_survival_reference.py) and lifelines 0.30 ``CoxPHFitter`` with ``entry_col``, ties,
weights and strata (tests/test_survival_engine.py), to 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from cxlab.errors import ModelError, ParameterError

__all__ = ["RiskSets", "CoxProblem", "CoxEngineResult", "fit_cox", "breslow_baseline", "efron_statistics"]

_TIES = ("efron", "breslow")


class RiskSets:
    """Sorted risk-set structure of counting-process data, computed once per table.

    ``groups``: the distinct (stratum, event time) pairs, ordered by stratum then time
    (``times``, ``group_stratum``). Row ``i`` is at risk at the groups ``lo[i] <= g < hi[i]``.
    ``dead``: rows with an event (ordered by group), ``dead_group``: their group.
    """

    def __init__(self, stop, event, entry=None, strata=None):
        stop = np.asarray(stop, dtype=float)
        n = stop.shape[0]
        event = np.asarray(event)
        if event.shape != (n,):
            raise ParameterError(f"event must have one value per row ({n}); got shape {event.shape}.")
        event = event.astype(bool)
        entry = None if entry is None else np.asarray(entry, dtype=float)
        if strata is None:
            codes = np.zeros(n, dtype=np.int64)
            n_strata = 1
        else:
            codes, uniq = _factorize(strata)
            n_strata = len(uniq)
        self.n, self.stop, self.event, self.entry, self.strata = n, stop, event, entry, codes
        self.n_strata = n_strata
        lo = np.zeros(n, dtype=np.int64)
        hi = np.zeros(n, dtype=np.int64)
        times, gstrat = [], []
        offset = 0
        rows_of = [slice(None)] if n_strata == 1 else None
        if n_strata > 1:
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(n_strata + 1))
            rows_of = [order[bounds[s]:bounds[s + 1]] for s in range(n_strata)]
        for s, rows in enumerate(rows_of):
            sp = stop[rows]
            t = np.unique(sp[event[rows]])
            hi[rows] = offset + np.searchsorted(t, sp, side="right")
            lo[rows] = offset + (0 if entry is None else np.searchsorted(t, entry[rows], side="right"))
            times.append(t)
            gstrat.append(np.full(t.size, s, dtype=np.int64))
            offset += t.size
        self.times = np.concatenate(times) if times else np.zeros(0)
        self.group_stratum = np.concatenate(gstrat) if gstrat else np.zeros(0, dtype=np.int64)
        self.G = offset
        dead = np.flatnonzero(event)
        dgrp = hi[dead] - 1  # an event row's own time is the last group of its window
        o = np.argsort(dgrp, kind="stable")
        self.dead, self.dead_group = dead[o], dgrp[o]
        self.lo, self.hi = lo, hi
        self._lo_varies = bool(np.any(lo))
        self._sorted = None   # stop and entry sorted, for at_risk_at
        self.n_dead_rows = np.bincount(self.dead_group, minlength=self.G)

    def risk_sums(self, v):
        """Sum of ``v`` (n,) or of each row of ``v`` (k x n) over the risk set of every group.

        As tail sums: ``#{hi > g} - #{lo > g}`` (the second term only with delayed entry or strata),
        each summed from the last group back, so a risk set is never the small difference of two
        large running totals (a forward sum of entries minus exits loses the small risk scores
        that remain once the large ones have left, as when a coefficient grows large)."""
        G = self.G
        if v.ndim == 1:
            out = _tail_sums(np.bincount(self.hi, v, G + 1))
            if self._lo_varies:
                out -= _tail_sums(np.bincount(self.lo, v, G + 1))
            return out
        return np.stack([self.risk_sums(row) for row in v]) if len(v) else np.zeros((0, G))

    def at_risk_at(self, t) -> np.ndarray:
        """Rows at risk (``entry < t <= stop``, strata pooled) at any times ``t``: ``#{stop >= t} -
        #{entry >= t}`` (the number-at-risk table under a KM plot, the log-rank test's counts)."""
        if self._sorted is None:
            self._sorted = (np.sort(self.stop), None if self.entry is None else np.sort(self.entry))
        stop, entry = self._sorted
        t = np.asarray(t, dtype=float)
        out = self.n - np.searchsorted(stop, t, side="left")
        if entry is not None:
            out = out - (self.n - np.searchsorted(entry, t, side="left"))
        return out

    def window_sums(self, cum_per_group):
        """For a per-group array ``a`` (G, or G x k): sum of ``a`` over each row's window [lo, hi)."""
        c = np.concatenate([np.zeros((1,) + cum_per_group.shape[1:]), np.cumsum(cum_per_group, axis=0)])
        return c[self.hi] - c[self.lo]


def _tail_sums(c):
    """``out[g] = sum(c[g + 1:])`` for g = 0 .. len(c) - 2, summed from the end."""
    return np.cumsum(c[::-1])[::-1][1:]


def _factorize(values):
    arr = np.asarray(values)
    if arr.ndim == 2:  # several strata columns
        arr = np.array(["\x1f".join(map(str, r)) for r in arr])
    uniq, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64), uniq


@dataclass
class _Entries:
    """One entry per (expanded) death: Efron's k/d fraction of the tied deaths that leave the risk set."""

    grp: np.ndarray   # group of each entry
    frac: np.ndarray  # k / d (0 for Breslow)
    d: np.ndarray     # entries per group


@dataclass
class CoxEngineResult:
    """Result of :func:`fit_cox` / :meth:`CoxProblem.fit` (arrays in the order of the columns of X).

    ``coef``, ``information`` (observed, ``-Hessian``), ``variance`` (its inverse; NaN if singular),
    ``loglik``, ``loglik_null`` (at beta = 0), ``score`` (gradient at ``coef``), ``n_iter``,
    ``converged``, ``message`` (why not converged), ``last_step`` (the Newton step still wanted at
    the end), ``score_residuals`` (n x p, unweighted, R's ``residuals(type="score")``; with
    ``residuals=True``), ``ties``, ``n``, ``n_events`` (weighted by ``freq``).
    """

    coef: np.ndarray
    information: np.ndarray
    variance: np.ndarray
    loglik: float
    loglik_null: float
    score: np.ndarray
    n_iter: int
    converged: bool
    message: str = ""
    last_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    score_residuals: np.ndarray | None = None
    ties: str = "efron"
    n: int = 0
    n_events: float = 0.0

    def robust_variance(self, weights=None, cluster=None):
        """Sandwich variance ``D'D`` from dfbeta residuals (R ``robust=TRUE`` / ``cluster=``).

        ``D = (weights * score residuals) @ variance``, summed within ``cluster`` codes if given.
        """
        if self.score_residuals is None:
            raise ModelError("robust_variance needs the score residuals: fit with residuals=True.")
        r = self.score_residuals if weights is None else self.score_residuals * np.asarray(weights, float)[:, None]
        dfbeta = r @ self.variance
        if cluster is not None:
            codes, uniq = _factorize(cluster)
            k = len(uniq)
            dfbeta = np.stack([np.bincount(codes, dfbeta[:, j], k) for j in range(dfbeta.shape[1])], axis=1)
        return dfbeta.T @ dfbeta


class CoxProblem:
    """The Efron/Breslow partial likelihood of one design on one :class:`RiskSets`.

    ``X`` (n x p) is centred internally (coefficients, likelihood and residuals do not depend on
    it). Methods: :meth:`loglik` (value, gradient, Hessian at ``beta``), :meth:`fit` (Newton-Raphson
    with step halving), :meth:`score_residuals`, :meth:`statistics` (score, information,
    residuals and the ``cox.zph`` expansion at ``beta``).
    """

    def __init__(self, X, risk_sets: RiskSets, weights=None, freq=None, ties="efron"):
        if ties not in _TIES:
            raise ParameterError(f"The 'ties' parameter must be one of {_TIES}. Got {ties!r} instead.")
        rs = risk_sets
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != rs.n:
            raise ParameterError(f"X must be a matrix with {rs.n} rows; got shape {X.shape}.")
        self.rs, self.ties = rs, ties
        self.p = X.shape[1]
        self.center = X.mean(0) if rs.n else np.zeros(self.p)
        self.XT = np.ascontiguousarray((X - self.center).T)
        self.set_weights(weights, freq)

    # -- weights ------------------------------------------------------------------------------

    def set_weights(self, weights=None, freq=None):
        """Case weights (R convention) and/or integer frequency weights (row duplication)."""
        rs = self.rs
        w = np.ones(rs.n) if weights is None else np.asarray(weights, dtype=float)
        if freq is None:
            self.freq = None
            self.tw = w
            d = rs.n_dead_rows
        else:
            self.freq = np.asarray(freq, dtype=float)
            self.tw = w * self.freq
            d = np.bincount(rs.dead_group, self.freq[rs.dead], minlength=rs.G).round().astype(np.int64)
        self.w = w
        grp = np.repeat(np.arange(rs.G), d)
        if self.ties == "efron" and grp.size and np.any(d > 1):
            first = np.concatenate([[0], np.cumsum(d)[:-1]])
            frac = (np.arange(grp.size) - first[grp]) / d[grp]
        else:
            frac = np.zeros(grp.size)
        self.ent = _Entries(grp=grp, frac=frac, d=d)
        # mean case weight of the tied deaths of each group, per entry
        wsum = np.bincount(rs.dead_group, self.tw[rs.dead], minlength=rs.G)
        with np.errstate(divide="ignore", invalid="ignore"):
            mw_g = np.where(d > 0, wsum / np.maximum(d, 1), 0.0)
        self.mw = mw_g[grp]
        self.twd = self.tw[rs.dead]

    # -- the likelihood -----------------------------------------------------------------------

    def _parts(self, beta, cols=None):
        rs, ent = self.rs, self.ent
        XT = self.XT if cols is None else self.XT[cols]
        eta = beta @ XT if XT.shape[0] else np.zeros(rs.n)
        eta = eta - (eta.max() if eta.size else 0.0)  # ratios unchanged; no overflow
        r = np.exp(eta)
        rt = self.tw * r
        S0 = rs.risk_sums(rt)
        D0 = np.bincount(rs.dead_group, rt[rs.dead], minlength=rs.G)
        den = S0[ent.grp] - ent.frac * D0[ent.grp]
        return XT, eta, r, rt, S0, D0, den

    def loglik(self, beta, cols=None, derivatives=True):
        """Log partial likelihood at ``beta`` (columns ``cols`` of X); with ``derivatives`` also the
        gradient and the Hessian."""
        rs, ent = self.rs, self.ent
        beta = np.asarray(beta, dtype=float)
        XT, eta, r, rt, S0, D0, den = self._parts(beta, cols)
        if np.any(den <= 0):
            if not np.any(beta):  # at beta = 0 this is the data, not the numerics of a diverging fit
                raise ModelError("Cox fit: an event time has an empty risk set (or only zero weights); "
                                 "check that entry < stop and that the weights are positive.")
            return (-np.inf, None, None) if derivatives else -np.inf
        ll = float(self.twd @ eta[rs.dead] - self.mw @ np.log(den))
        if not derivatives:
            return ll
        p = XT.shape[0]
        if p == 0:
            return ll, np.zeros(0), np.zeros((0, 0))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # a diverging fit: caught by fit
            A = self._xbar(XT, rt, den)
            grad = XT[:, rs.dead] @ self.twd - A @ self.mw
            info = self._information(XT, rt, den, A, self.mw)
        return ll, grad, -info

    def _xbar(self, XT, rt, den):
        """Efron-weighted mean of x over the risk set, per entry (p x entries)."""
        rs, ent = self.rs, self.ent
        rX = XT * rt
        S1 = rs.risk_sums(rX)
        D1 = np.stack([np.bincount(rs.dead_group, row[rs.dead], minlength=rs.G) for row in rX])
        if ent.frac.any():
            return (S1[:, ent.grp] - ent.frac * D1[:, ent.grp]) / den
        return S1[:, ent.grp] / den

    def _information(self, XT, rt, den, A, mult):
        """sum over entries of mult_j [(S2 - f_j D2)/den_j - A_j A_j'], with S2 and D2 pushed onto rows."""
        rs, ent = self.rs, self.ent
        c = np.bincount(ent.grp, mult / den, minlength=rs.G)
        cum = np.concatenate([[0.0], np.cumsum(c)])
        B = cum[rs.hi] - cum[rs.lo]
        if ent.frac.any():
            e = np.bincount(ent.grp, mult * ent.frac / den, minlength=rs.G)
            B[rs.dead] -= e[rs.dead_group]
        return (XT * (rt * B)) @ XT.T - (A * mult) @ A.T

    # -- Newton-Raphson ----------------------------------------------------------------------

    def fit(self, beta0=None, cols=None, tol=1e-9, max_iter=50, exact_final=True, residuals=False,
            raise_on_failure=True, one_step=False, ridge=None, null_loglik=True) -> CoxEngineResult:
        """Maximise the partial likelihood by Newton-Raphson with step halving.

        Converged when the Newton decrement ``g'(-H)^-1 g`` is below ``tol * (1 + |loglik|)``; one more
        Newton step is then taken (what is left is of second order in it) and, with ``exact_final``,
        the likelihood, gradient and information are evaluated there. ``one_step`` takes a single
        Newton step from ``beta0`` (bootstrap draws started at the full-sample estimate) and falls
        back to iterating if it does not increase the likelihood. Failures (singular information,
        step halving exhausted, ``max_iter`` reached) raise :class:`ModelError` unless
        ``raise_on_failure=False`` (then ``converged`` is False and ``message`` says why).
        ``ridge`` (p): maximise ``loglik - sum(ridge * beta**2) / 2`` instead (reported ``loglik``
        and ``information`` are the penalised ones, as lifelines' ``penalizer``).
        ``null_loglik=False`` skips the log-likelihood at beta = 0 when ``beta0`` is given
        (``loglik_null`` is then NaN; bootstrap refits do not need it).
        """
        p = self.p if cols is None else len(cols)
        beta = np.zeros(p) if beta0 is None else np.asarray(beta0, dtype=float).copy()
        if ridge is not None:
            lam = np.broadcast_to(np.asarray(ridge, dtype=float), (p,))
            raw = self.loglik

            def penalised(b, c=None, derivatives=True):
                out = raw(b, c, derivatives)
                pen = 0.5 * float(lam @ (b * b))
                if not derivatives:
                    return out - pen
                ll_, g_, H_ = out
                if g_ is None:
                    return out
                return ll_ - pen, g_ - lam * b, H_ - np.diag(lam)

            self.loglik = penalised
            try:
                return self.fit(beta0, cols, tol, max_iter, exact_final, residuals, raise_on_failure, one_step,
                                null_loglik=null_loglik)
            finally:
                del self.loglik
        ll, g, H = self.loglik(beta, cols)
        ll0 = (ll if beta0 is None else self.loglik(np.zeros(p), cols, derivatives=False) if null_loglik
               else float("nan"))
        if p == 0:
            return self._result(beta, ll, ll0, g, -H, 0, True, "", np.zeros(0), cols, residuals)
        step = np.zeros(p)
        msg = ""
        if g is None:  # beta0 so far out that the likelihood underflows
            beta = np.zeros(p)
            ll, g, H = self.loglik(beta, cols)
        for it in range(1, max_iter + 1):
            last = step   # the last finite step, reported when a diverging fit ends in a non-finite one
            try:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    step = np.linalg.solve(-H, g)
            except np.linalg.LinAlgError:
                msg = "singular information matrix (a column is constant or collinear with others)"
                break
            decrement = float(g @ step)
            if one_step:
                nll = self.loglik(beta + step, cols, derivatives=False)
                if np.isfinite(nll) and nll >= ll:
                    return self._result(beta + step, nll, ll0, g, -H, 1, True, "", step, cols, False, exact=False)
                one_step = False
            if not np.isfinite(decrement):
                msg = "non-finite Newton step"
                step = last
                break
            if decrement < tol * (1 + abs(ll)):
                beta = beta + step
                if exact_final:
                    ll, g, H = self.loglik(beta, cols)
                    if g is None:
                        msg = "the likelihood underflows at the estimate"
                        break
                else:
                    ll = ll + decrement / 2
                return self._result(beta, ll, ll0, g, -H, it, True, "", step, cols, residuals, exact=exact_final)
            t = 1.0
            while True:
                nb = beta + t * step
                nll, ng, nH = self.loglik(nb, cols)
                if ng is not None and np.isfinite(nll) and nll >= ll - 1e-12 * (1 + abs(ll)):
                    break
                t /= 2
                if t < 1e-8:
                    msg = "step halving failed"
                    break
            if msg:
                break
            beta, ll, g, H = nb, nll, ng, nH
        else:
            msg = f"no convergence in {max_iter} Newton steps"
        if raise_on_failure:
            raise ModelError(f"Cox fit did not converge ({msg}); look for separation (a construct or control "
                             "that predicts every defection), a constant or collinear column, or rescale the columns.")
        if H is None:  # the likelihood underflowed at the last point
            g, H = np.full(p, np.nan), np.full((p, p), np.nan)
        return self._result(beta, ll, ll0, g, -H, it, False, msg, step, cols, False)

    def _result(self, beta, ll, ll0, g, info, it, converged, msg, step, cols, residuals, exact=True):
        try:
            var = np.linalg.inv(info) if info.size else np.zeros((0, 0))
        except (np.linalg.LinAlgError, ValueError):
            var = np.full(info.shape, np.nan)
        res = CoxEngineResult(coef=beta, information=info, variance=var, loglik=float(ll), loglik_null=float(ll0),
                              score=g, n_iter=it, converged=converged, message=msg, last_step=step,
                              ties=self.ties, n=self.rs.n,
                              n_events=float(self.ent.grp.size))
        if residuals and converged:
            res.score_residuals = self.score_residuals(beta, cols)
        return res

    # -- residuals and the cox.zph expansion -----------------------------------------------

    def score_residuals(self, beta, cols=None):
        """Per-row score residuals (n x p, unweighted; R ``residuals.coxph(type="score")`` with Efron
        or Breslow ties, counting-process data); their weighted sum is the score."""
        return self.statistics(beta, cols, _resid_only=True)

    def statistics(self, beta, cols=None, gtime=None, _resid_only=False):
        """Score, information, log-likelihood and score residuals at ``beta``; with ``gtime`` (one value
        per row, used at the event rows: the transformed event time) also ``u_g`` and ``imat_full``,
        the score and information of the expanded model ``[X, X g(t)]`` at ``(beta, 0)`` (R cox.zph)."""
        rs, ent = self.rs, self.ent
        beta = np.asarray(beta, dtype=float)
        XT, eta, r, rt, S0, D0, den = self._parts(beta, cols)
        p = XT.shape[0]
        A = self._xbar(XT, rt, den)            # p x E
        haz = self.mw / den
        G = rs.G
        H = np.bincount(ent.grp, haz, minlength=G)
        HX = np.stack([np.bincount(ent.grp, haz * a, minlength=G) for a in A], axis=1)
        hd = (1 - ent.frac) * haz
        Hd = np.bincount(ent.grp, hd, minlength=G)
        HXd = np.stack([np.bincount(ent.grp, hd * a, minlength=G) for a in A], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            xbar_mean = np.stack([np.bincount(ent.grp, a, minlength=G) for a in A], axis=1) / np.maximum(ent.d, 1)[:, None]
        x = XT.T
        # every row at risk loses r_i dLambda(t) (x_i - xbar(t)) over its window ...
        resid = -r[:, None] * (x * rs.window_sums(H)[:, None] - rs.window_sums(HX))
        # ... and a death, at its own time, gets Efron's version instead
        dd, jd = rs.dead, rs.dead_group
        rd, xd = r[dd][:, None], x[dd]
        resid[dd] += rd * (xd * H[jd][:, None] - HX[jd])
        resid[dd] += xd - xbar_mean[jd] - rd * (xd * Hd[jd][:, None] - HXd[jd])
        if _resid_only:
            return resid
        ll = float(self.twd @ eta[dd] - self.mw @ np.log(den))
        score = XT[:, dd] @ self.twd - A @ self.mw
        info = self._information(XT, rt, den, A, self.mw)
        out = {"score": score, "info": info, "resid": resid, "loglik": ll}
        if gtime is not None:
            g_grp = np.zeros(G)
            g_grp[jd] = np.asarray(gtime, dtype=float)[dd]
            ge = g_grp[ent.grp]
            out["u_g"] = XT[:, dd] @ (self.twd * g_grp[jd]) - A @ (self.mw * ge)
            ig = self._information(XT, rt, den, A, self.mw * ge)
            igg = self._information(XT, rt, den, A, self.mw * ge * ge)
            out["imat_full"] = np.block([[info, ig], [ig, igg]])
        return out


def _check_inputs(X, stop, event, entry):
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    stop = np.asarray(stop, dtype=float)
    if X.shape[0] != stop.shape[0]:
        raise ParameterError(f"X has {X.shape[0]} rows but stop has {stop.shape[0]}.")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(stop))):
        raise ModelError("Cox fit: X and stop must be finite (no NaN); drop or impute the rows upstream.")
    if entry is not None:
        entry = np.asarray(entry, dtype=float)
        bad = np.flatnonzero(entry >= stop)
        if bad.size:
            raise ModelError(f"Cox fit: {bad.size} row(s) have entry >= stop (first positions {bad[:5].tolist()}); "
                             "a row must leave the risk set after entering it.")
    return X, stop, entry


def fit_cox(X, stop, event, entry=None, strata=None, weights=None, beta0=None, *, freq=None, ties="efron",
            tol=1e-9, max_iter=50, residuals=True, raise_on_failure=True) -> CoxEngineResult:
    """Fit a Cox model by Newton-Raphson on counting-process data; returns :class:`CoxEngineResult`.

    ``X`` (n x p), ``stop`` (exit time), ``event`` (0/1), ``entry`` (delayed entry / start of the
    interval; None = 0), ``strata`` (one label per row: its own baseline hazard), ``weights`` (case
    weights, R's Efron convention), ``freq`` (integer frequency weights), ``ties`` ("efron" as R's
    default, or "breslow"). ``residuals``: also compute the score residuals for the robust sandwich
    (:meth:`CoxEngineResult.robust_variance`).
    """
    X, stop, entry = _check_inputs(X, stop, event, entry)
    with threadpool_limits(1, "blas"):  # thin products (n x p): BLAS threads only add overhead
        problem = CoxProblem(X, RiskSets(stop, event, entry, strata), weights=weights, freq=freq, ties=ties)
        return problem.fit(beta0=beta0, tol=tol, max_iter=max_iter, residuals=residuals,
                           raise_on_failure=raise_on_failure)


def breslow_baseline(stop, event, entry=None, risk=None, weights=None, strata=None, risk_sets=None):
    """Breslow baseline cumulative hazard with delayed entry (risk set ``entry < t <= stop``).

    ``risk``: ``exp(linear predictor)`` per row (None = 1: the Nelson–Aalen estimate); the baseline
    is at the covariate value where the linear predictor is 0. ``weights``: case/frequency weights
    (weighted deaths over weighted risk). Returns ``(times, cumhaz, stratum)``: the distinct event
    times of each stratum in order, the cumulative hazard just after each, and the stratum code
    (``np.unique`` order of ``strata``). lifelines' ``baseline_cumulative_hazard_`` ignores
    ``entry_col`` in its risk sets; this does not (it equals lifelines' ``CoxTimeVaryingFitter``).
    """
    rs = risk_sets if risk_sets is not None else RiskSets(stop, event, entry, strata)
    w = np.ones(rs.n) if weights is None else np.asarray(weights, dtype=float)
    rr = w if risk is None else w * np.asarray(risk, dtype=float)
    S0 = rs.risk_sums(rr)
    deaths = np.bincount(rs.dead_group, w[rs.dead], minlength=rs.G)
    with np.errstate(divide="ignore", invalid="ignore"):
        dH = np.where(deaths > 0, deaths / S0, 0.0)
    cum = np.cumsum(dH)
    if rs.n_strata > 1:  # restart the cumulative sum in every stratum
        starts = np.searchsorted(rs.group_stratum, np.arange(rs.n_strata))
        before = np.concatenate([[0.0], cum])[starts]
        cum = cum - before[rs.group_stratum]
    return rs.times, cum, rs.group_stratum


def efron_statistics(start, stop, event, X, weights, strata, beta, gtime=None):
    """Score, information, log-likelihood and per-row score residuals of the Efron partial likelihood
    at ``beta`` (risk set ``start < t <= stop`` within the row's stratum; case weights); with
    ``gtime`` also ``u_g`` and ``imat_full`` of the expanded model ``[X, X g(t)]`` at ``(beta, 0)``
    used by ``cox.zph``. Returns a dict with keys score, info, resid, loglik (, u_g, imat_full)."""
    X = np.asarray(X, dtype=float)
    start = np.asarray(start, dtype=float)
    entry = None if np.all(np.isneginf(start)) else start
    with threadpool_limits(1, "blas"):
        problem = CoxProblem(X, RiskSets(stop, event, entry, strata), weights=weights, ties="efron")
        return problem.statistics(beta, gtime=gtime)


def _efron_statistics_loop(start, stop, event, X, weights, strata, beta, gtime=None):
    """Slow reference (a Python loop over event times) of :func:`efron_statistics`, kept only as
    the independent oracle the tests check the vectorised engine against.

    Score, information and per-row score residuals of the Efron partial likelihood at ``beta``.

    Risk set at event time t: ``start < t <= stop`` within the row's stratum. Returns a dict with
    ``score`` (p), ``info`` (p x p), ``resid`` (n x p, unweighted, as R's ``coxscore``/``agscore``
    with Efron ties), ``loglik`` and, if ``gtime`` (a per-row transformed time) is given, the
    statistics of the expanded model ``[X, X * g(t)]`` at ``(beta, 0)`` used by ``cox.zph``:
    ``u_g`` (p) and ``imat_full`` (2p x 2p).
    """
    X = np.asarray(X, float)
    n, p = X.shape
    eta = X @ beta
    eta = eta - eta.mean()  # ratios are unchanged; avoids overflow
    risk = np.exp(eta)
    wr = weights * risk
    score = np.zeros(p)
    info = np.zeros((p, p))
    resid = np.zeros((n, p))
    loglik = 0.0
    if gtime is not None:
        ig = np.zeros((p, p))
        igg = np.zeros((p, p))
        u_g = np.zeros(p)
    for s in np.unique(strata):
        in_s = strata == s
        ev_times = np.unique(stop[in_s & (event == 1)])
        for t in ev_times:
            atrisk = np.flatnonzero(in_s & (start < t) & (stop >= t))
            is_dead = (stop[atrisk] == t) & (event[atrisk] == 1)
            dead = atrisk[is_dead]
            xr = X[atrisk]
            wr_r = wr[atrisk]
            s0 = wr_r.sum()
            s1 = wr_r @ xr
            s2 = (xr * wr_r[:, None]).T @ xr
            xd = X[dead]
            wr_d = wr[dead]
            e0 = wr_d.sum()
            e1 = wr_d @ xd
            e2 = (xd * wr_d[:, None]).T @ xd
            d = len(dead)
            meanwt = weights[dead].sum() / d
            score_t = weights[dead] @ xd
            info_t = np.zeros((p, p))
            haz_sum = 0.0
            haz_xbar = np.zeros(p)
            haz_sum_d = 0.0
            haz_xbar_d = np.zeros(p)
            xbar_mean = np.zeros(p)
            for k in range(d):
                frac = k / d
                den = s0 - frac * e0
                xbar = (s1 - frac * e1) / den
                info_t += meanwt * ((s2 - frac * e2) / den - np.outer(xbar, xbar))
                score_t -= meanwt * xbar
                loglik -= meanwt * np.log(den)
                hazard = meanwt / den
                haz_sum += hazard
                haz_xbar += hazard * xbar
                haz_sum_d += (1 - frac) * hazard
                haz_xbar_d += (1 - frac) * hazard * xbar
                xbar_mean += xbar / d
            loglik += weights[dead] @ eta[dead]
            score += score_t
            info += info_t
            # score residuals: every row at risk loses r_i * dLambda * (x_i - xbar) ...
            alive = atrisk[~is_dead]
            resid[alive] -= risk[alive][:, None] * (X[alive] * haz_sum - haz_xbar)
            # ... and each death gains (x_i - xbar), Efron-weighted
            resid[dead] += xd - xbar_mean - risk[dead][:, None] * (xd * haz_sum_d - haz_xbar_d)
            if gtime is not None:
                g = gtime[dead[0]]
                u_g += g * score_t
                ig += g * info_t
                igg += g * g * info_t
    out = {"score": score, "info": info, "resid": resid, "loglik": loglik}
    if gtime is not None:
        out["u_g"] = u_g
        out["imat_full"] = np.block([[info, ig], [ig, igg]])
    return out
