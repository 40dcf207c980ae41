"""Cox proportional-hazards models for perceptions -> defection, matching R's ``coxph``.

:class:`CoxModel` wraps lifelines' ``CoxPHFitter`` (Efron ties, delayed entry through
``entry_col``, strata, case weights, ridge penalty) and adds what a driver analysis needs:
construct effects per standard deviation and per scale point, named reference levels for
categorical controls, diagnostics (events per parameter, VIF, convergence) and plain-language
:class:`~cxlab.errors.ModelError` messages for data a Cox model cannot be fitted on.

Robust (sandwich) standard errors are computed here, not by lifelines: lifelines' score
residuals ignore tied event times and delayed entry, so they do not reproduce R. cxlab uses the
Efron score residuals of R's ``residuals.coxph(type="dfbeta")`` for counting-process data, summed
within ``cluster_col`` (R: ``coxph(..., robust=TRUE)`` / ``cluster=``).

:class:`TimeVaryingCoxModel` fits the same model on counting-process rows (start, stop, event,
customer id) with customer-clustered robust SEs (R: ``coxph(Surv(start, stop, event) ~ ...,
cluster=id)``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from cxlab.errors import ModelError, ParameterError

__all__ = ["CoxModel", "TimeVaryingCoxModel"]

_Z = stats.norm.ppf(0.975)


# ---- Efron partial-likelihood statistics (counting process, strata, weights) -----------------


def _efron_statistics_loop(start, stop, event, X, weights, strata, beta, gtime=None):
    """Reference implementation (a loop over event times) of :func:`efron_statistics`.

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


def efron_statistics(start, stop, event, X, weights, strata, beta, gtime=None):
    """Score, information and per-row score residuals of the Efron partial likelihood at ``beta``.

    Risk set at event time t: ``start < t <= stop`` within the row's stratum. Returns a dict with
    ``score`` (p), ``info`` (p x p), ``resid`` (n x p, unweighted, as R's ``coxscore``/``agscore``
    with Efron ties), ``loglik`` and, if ``gtime`` (a per-row transformed time) is given, the
    statistics of the expanded model ``[X, X * g(t)]`` at ``(beta, 0)`` used by ``cox.zph``:
    ``u_g`` (p) and ``imat_full`` (2p x 2p).

    Risk-set sums are windowed cumulative sums over the sorted event times (O(n p^2), no loop over
    rows or event times), so counting-process tables with many rows stay fast.
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
    u_g = np.zeros(p)
    ig = np.zeros((p, p))
    igg = np.zeros((p, p))
    pairs = [(a, b) for a in range(p) for b in range(a, p)]
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        st, sp, ev = start[rows], stop[rows], event[rows]
        x, w, r, wr_s = X[rows], weights[rows], risk[rows], wr[rows]
        times = np.unique(sp[ev == 1])
        T = len(times)
        if T == 0:
            continue
        kstart = np.searchsorted(times, st, side="right")  # first event time with t > start
        kstop = np.searchsorted(times, sp, side="right")  # at risk for event times with index < kstop

        def window(vals):
            a = np.bincount(kstart, weights=vals, minlength=T + 1) - np.bincount(kstop, weights=vals, minlength=T + 1)
            return np.cumsum(a)[:T]

        dead = np.flatnonzero(ev == 1)
        jd = np.searchsorted(times, sp[dead], side="left")

        def at_death(vals):
            return np.bincount(jd, weights=vals, minlength=T)

        s0 = window(wr_s)
        e0 = at_death(wr_s[dead])
        s1 = np.column_stack([window(wr_s * x[:, a]) for a in range(p)])
        e1 = np.column_stack([at_death(wr_s[dead] * x[dead, a]) for a in range(p)])
        s2 = np.zeros((T, p, p))
        e2 = np.zeros((T, p, p))
        for a, b in pairs:
            s2[:, a, b] = s2[:, b, a] = window(wr_s * x[:, a] * x[:, b])
            e2[:, a, b] = e2[:, b, a] = at_death(wr_s[dead] * x[dead, a] * x[dead, b])
        nd = np.bincount(jd, minlength=T).astype(float)
        meanwt = at_death(w[dead]) / nd
        wx_dead = np.column_stack([at_death(w[dead] * x[dead, a]) for a in range(p)])
        # one (event time, k) pair per death: Efron's k/d share of the tied deaths leaves the risk set
        order = np.argsort(jd, kind="stable")
        j = jd[order]
        k = np.arange(len(j)) - np.searchsorted(j, j, side="left")
        frac = k / nd[j]
        den = s0[j] - frac * e0[j]
        xbar = (s1[j] - frac[:, None] * e1[j]) / den[:, None]
        var = (s2[j] - frac[:, None, None] * e2[j]) / den[:, None, None] - xbar[:, :, None] * xbar[:, None, :]
        mw = meanwt[j]
        haz = mw / den

        def per_time(vals):
            out = np.zeros((T,) + vals.shape[1:])
            np.add.at(out, j, vals)
            return out

        score_t = wx_dead - per_time(mw[:, None] * xbar)
        info_t = per_time(mw[:, None, None] * var)
        loglik += float(w[dead] @ eta[rows][dead] - np.sum(mw * np.log(den)))
        H = per_time(haz)
        HX = per_time(haz[:, None] * xbar)
        Hd = per_time((1 - frac) * haz)
        HXd = per_time(((1 - frac) * haz)[:, None] * xbar)
        xbar_mean = per_time(xbar / nd[j][:, None])
        score += score_t.sum(0)
        info += info_t.sum(0)
        # score residuals: each row at risk loses r_i * dLambda(t) * (x_i - xbar(t)) over its window ...
        cH = np.r_[0.0, np.cumsum(H)]
        cHX = np.vstack([np.zeros(p), np.cumsum(HX, axis=0)])
        res = -r[:, None] * (x * (cH[kstop] - cH[kstart])[:, None] - (cHX[kstop] - cHX[kstart]))
        # ... and a death, at its own time, gets Efron's version instead
        rd, xd = r[dead][:, None], x[dead]
        res[dead] += rd * (xd * H[jd][:, None] - HX[jd])
        res[dead] += xd - xbar_mean[jd] - rd * (xd * Hd[jd][:, None] - HXd[jd])
        resid[rows] = res
        if gtime is not None:
            g = np.zeros(T)
            g[jd] = gtime[rows][dead]
            u_g += g @ score_t
            ig += np.tensordot(g, info_t, axes=1)
            igg += np.tensordot(g * g, info_t, axes=1)
    out = {"score": score, "info": info, "resid": resid, "loglik": loglik}
    if gtime is not None:
        out["u_g"] = u_g
        out["imat_full"] = np.block([[info, ig], [ig, igg]])
    return out


# ---- the model ----------------------------------------------------------------------------


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype)


class CoxModel:
    """Cox model of time to defection on survey constructs and controls.

    Parameters
    ----------
    constructs : perception scores (e.g. ``["recognition", "empathy"]``; names come from the
        study). Standardised internally (mean 0, SD 1 in the fitted rows), so ``log_hr``/``hr``
        are per SD; ``hr_per_point`` is per scale point (``hr_per_sd ** (1 / sd)``).
    controls : covariates. Numeric ones enter as they are; text/categorical ones are
        dummy-coded against a named reference level (the largest group).
    strata : column(s) whose levels get their own baseline hazard (R ``strata()``).
    robust : sandwich SEs (R ``robust=TRUE``); implied by ``cluster_col`` in :meth:`fit`.
    weights_col : case weights (R ``weights=``).
    ties : only ``"efron"`` (R's default) is supported.
    penalizer : lifelines' ridge penalty (0 = plain partial likelihood, as R).
    construct_scales : optional ``{construct: (mean, sd)}`` to reuse another model's
        standardisation (used by fallback models fitted on split rows).

    Fitted attributes: ``params_`` (log-HR per model column), ``variance_matrix_``,
    ``summary`` (tidy), ``diagnostics_`` (tidy), ``n_``, ``events_``, ``reference_levels_``,
    ``construct_scales_``, ``lifelines_model_``.
    """

    alpha = 0.05

    def __init__(
        self,
        constructs,
        controls=(),
        strata=None,
        robust=False,
        weights_col=None,
        ties="efron",
        penalizer=0.0,
        construct_scales=None,
    ):
        self.constructs = constructs
        self.controls = controls
        self.strata = strata
        self.robust = robust
        self.weights_col = weights_col
        self.ties = ties
        self.penalizer = penalizer
        self.construct_scales = construct_scales

    # -- input checks ---------------------------------------------------------------------

    def _validate_parameters(self):
        if self.ties != "efron":
            raise ParameterError(
                f"The 'ties' parameter of CoxModel must be 'efron' (lifelines implements Efron only). Got {self.ties!r} instead."
            )
        if not (isinstance(self.penalizer, (int, float)) and self.penalizer >= 0):
            raise ParameterError(f"The 'penalizer' parameter of CoxModel must be a number >= 0. Got {self.penalizer!r} instead.")
        constructs = [self.constructs] if isinstance(self.constructs, str) else list(self.constructs)
        controls = [self.controls] if isinstance(self.controls, str) else list(self.controls)
        strata = [] if self.strata is None else ([self.strata] if isinstance(self.strata, str) else list(self.strata))
        if not constructs and not controls:
            raise ParameterError("CoxModel needs at least one construct or control to model.")
        dup = set(constructs) & set(controls) | set(strata) & set(constructs + controls)
        if dup:
            raise ParameterError(f"Column(s) {sorted(dup)} appear in more than one of constructs/controls/strata.")
        return constructs, controls, strata

    def _check_data(self, df, needed, duration_col, event_col, entry_col):
        if not isinstance(df, pd.DataFrame):
            raise ParameterError(f"CoxModel.fit needs a pandas DataFrame. Got {type(df).__name__} instead.")
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ModelError(f"Cox model: column(s) {missing} not found in the table (columns: {list(df.columns)}).")
        if len(df) == 0:
            raise ModelError("Cox model: the table has no rows.")
        nan_rows = df[needed].isna().any(axis=1)
        if nan_rows.any():
            counts = {c: int(df[c].isna().sum()) for c in needed if df[c].isna().any()}
            raise ModelError(
                f"Cox model: {int(nan_rows.sum())} of {len(df)} rows have missing values in the model columns "
                f"(missing per column: {counts}). Drop them upstream (in the panel step, so the exclusion "
                "is counted in the exclusion flow) or impute them; the model does not drop rows silently."
            )
        for c in [duration_col, event_col] + ([entry_col] if entry_col else []):
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise ModelError(f"Cox model: column '{c}' must be numeric. Got dtype {df[c].dtype}.")
        ev = df[event_col].to_numpy(float)
        if not np.isin(ev, (0, 1)).all():
            raise ModelError(f"Cox model: column '{event_col}' must be 0/1 (1 = defected).")
        if (df[duration_col] <= 0).any() and entry_col is None:
            raise ModelError(
                f"Cox model: {int((df[duration_col] <= 0).sum())} row(s) have {duration_col} <= 0; durations must be positive."
            )
        if entry_col is not None:
            bad = df[entry_col].to_numpy(float) >= df[duration_col].to_numpy(float)
            if bad.any():
                raise ModelError(
                    f"Cox model: {int(bad.sum())} row(s) have {entry_col} >= {duration_col}; a customer must leave the "
                    "risk set after entering it. Fix or drop these rows upstream."
                )
        if ev.sum() == 0:
            raise ModelError(
                f"Cox model: no events — all {len(df)} customers are censored (column '{event_col}' is 0 everywhere), "
                "so there is no defection to explain. Check the snapshot date and the event definition, or "
                "use a longer follow-up."
            )

    # -- design -----------------------------------------------------------------------------

    def _design(self, df, constructs, controls, event_col, cluster_col=None):
        ev = df[event_col].to_numpy(float)
        cols, names, kinds, sources, refs = [], [], [], [], []
        scales = {}
        given = self.construct_scales or {}
        for c in constructs:
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise ModelError(f"Cox model: construct '{c}' must be numeric (a scale score). Got dtype {df[c].dtype}.")
            x = df[c].to_numpy(float)
            if c in given:
                mean, sd = given[c]
            else:
                base = x
                if cluster_col is not None:  # one value per customer (their first row)
                    base = df.loc[~df[cluster_col].duplicated(), c].to_numpy(float)
                mean, sd = float(np.mean(base)), float(np.std(base, ddof=1)) if len(base) > 1 else 0.0
            if not np.isfinite(sd) or sd <= 1e-12 or np.ptp(x) == 0:
                raise ModelError(
                    f"Cox model: construct '{c}' has zero variance (every respondent scored {x[0]:g}), so its "
                    "effect cannot be estimated. Drop it from the constructs or check how it was scored."
                )
            scales[c] = (mean, sd)
            cols.append((x - mean) / sd)
            names.append(c)
            kinds.append("construct")
            sources.append(c)
            refs.append(None)
        reference_levels = {}
        for c in controls:
            s = df[c]
            if _is_categorical(s) or pd.api.types.is_bool_dtype(s):
                if pd.api.types.is_bool_dtype(s):
                    s = s.astype(int)
                    x = s.to_numpy(float)
                else:
                    counts = s.astype(str).value_counts()
                    if len(counts) < 2:
                        raise ModelError(
                            f"Cox model: control '{c}' has a single level ({counts.index[0]!r}); it cannot be "
                            "estimated. Drop it from the controls."
                        )
                    top = counts.max()
                    ref = sorted(counts.index[counts == top])[0]
                    reference_levels[c] = ref
                    for level in sorted(counts.index):
                        if level == ref:
                            continue
                        cols.append((s.astype(str) == level).to_numpy(float))
                        names.append(f"{c}[{level}]")
                        kinds.append("control")
                        sources.append(c)
                        refs.append(ref)
                    continue
            x = s.to_numpy(float)
            if np.ptp(x) == 0:
                raise ModelError(
                    f"Cox model: control '{c}' has zero variance (always {x[0]:g}); drop it from the controls."
                )
            cols.append(x)
            names.append(c)
            kinds.append("control")
            sources.append(c)
            refs.append(None)
        X = np.column_stack(cols)
        # perfect separation on binary columns: a level with no events (or only events)
        for j, name in enumerate(names):
            x = X[:, j]
            vals = np.unique(x)
            if len(vals) == 2:
                for v in vals:
                    m = x == v
                    if ev[m].sum() == 0:
                        label = f"{name} = {v:g}" if "[" not in name else (name if v == 1 else f"the other levels of {sources[j]}")
                        raise ModelError(
                            f"Cox model: perfect separation on '{name}': no customer with {label} defected "
                            f"({int(m.sum())} rows), so its hazard ratio is zero or infinite and the fit cannot "
                            f"converge. Merge small levels of '{sources[j]}', drop it, or use a penalizer (e.g. 0.1)."
                        )
        return X, names, kinds, sources, refs, scales, reference_levels

    # -- fit ----------------------------------------------------------------------------------

    def fit(self, df, duration_col="duration", event_col="event", entry_col=None, cluster_col=None):
        """Fit on ``df`` (one row per respondent, or counting-process rows with ``entry_col``=start).

        ``entry_col``: tenure at which the row enters the risk set (R ``Surv(entry, duration, event)``).
        ``cluster_col``: group rows of one customer for cluster-robust SEs (R ``cluster=``).
        Returns self.
        """
        from lifelines import CoxPHFitter
        from lifelines.exceptions import ConvergenceError, ConvergenceWarning

        constructs, controls, strata = self._validate_parameters()
        needed = [duration_col, event_col] + [c for c in (entry_col, cluster_col, self.weights_col) if c]
        needed += constructs + controls + strata
        self._check_data(df, list(dict.fromkeys(needed)), duration_col, event_col, entry_col)
        X, names, kinds, sources, refs, scales, reference_levels = self._design(
            df, constructs, controls, event_col, cluster_col
        )
        n, p = X.shape
        events = int(df[event_col].sum())
        if events < p:
            raise ModelError(
                f"Cox model: {events} events for {p} parameters ({', '.join(names)}); a Cox model needs more "
                "events than parameters (and ideally 10 per parameter). Use fewer controls, merge levels, or "
                "a longer follow-up."
            )
        data = pd.DataFrame(X, columns=names)
        data["_duration"] = df[duration_col].to_numpy(float)
        data["_event"] = df[event_col].to_numpy(int)
        if entry_col:
            data["_entry"] = df[entry_col].to_numpy(float)
        weights = np.ones(n)
        if self.weights_col:
            weights = df[self.weights_col].to_numpy(float)
            if (weights <= 0).any():
                raise ModelError(f"Cox model: weights in '{self.weights_col}' must be positive.")
            data["_weight"] = weights
        strata_names = [f"_strata_{i}" for i in range(len(strata))]
        for sname, c in zip(strata_names, strata):
            data[sname] = df[c].astype(str).to_numpy()
        cph = CoxPHFitter(penalizer=self.penalizer, strata=strata_names or None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                cph.fit(
                    data,
                    duration_col="_duration",
                    event_col="_event",
                    entry_col="_entry" if entry_col else None,
                    weights_col="_weight" if self.weights_col else None,
                )
            except ConvergenceError as exc:
                raise ModelError(self._convergence_message(X, names, str(exc).splitlines()[0])) from None
        conv_warnings = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        beta = cph.params_.to_numpy(float)
        V = cph.variance_matrix_.to_numpy(float)
        if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(V))):
            raise ModelError(self._convergence_message(X, names, "non-finite estimates"))
        start = data["_entry"].to_numpy(float) if entry_col else np.full(n, -np.inf)
        stop = data["_duration"].to_numpy(float)
        event = data["_event"].to_numpy(int)
        if strata:
            strata_codes = pd.MultiIndex.from_frame(data[strata_names]).factorize()[0] if len(strata) > 1 else pd.factorize(data[strata_names[0]])[0]
        else:
            strata_codes = np.zeros(n, dtype=int)
        stats_ = efron_statistics(start, stop, event, X, weights, strata_codes, beta)
        # converged? the Newton step left at the estimate (0 at the maximum; penalised fits skip this)
        step = V @ stats_["score"] if self.penalizer == 0 else np.zeros(p)
        failed = [w for w in conv_warnings if "failed to converge" in str(w.message)]
        if failed or float(stats_["score"] @ step) > 1e-4 or np.any(np.abs(beta * X.std(axis=0)) > 15):
            detail = str(failed[0].message).split(".")[0] if failed else "the partial likelihood is not at its maximum"
            raise ModelError(self._convergence_message(X, names, detail, step))
        for w in conv_warnings:
            warnings.warn(f"Cox model: lifelines reported: {w.message}", stacklevel=2)
        robust = self.robust or cluster_col is not None
        if robust:
            dfbeta = (stats_["resid"] * weights[:, None]) @ V
            if cluster_col is not None:
                codes = pd.factorize(df[cluster_col])[0]
                dfbeta = pd.DataFrame(dfbeta).groupby(codes).sum().to_numpy()
            V_used = dfbeta.T @ dfbeta
        else:
            V_used = V
        self.params_ = pd.Series(beta, index=names, name="log_hr")
        self.variance_matrix_ = pd.DataFrame(V_used, index=names, columns=names)
        self.naive_variance_matrix_ = pd.DataFrame(V, index=names, columns=names)
        self.n_ = n
        self.events_ = events
        self.reference_levels_ = reference_levels
        self.construct_scales_ = scales
        self.lifelines_model_ = cph
        self.log_likelihood_ = float(cph.log_likelihood_)
        self.robust_ = robust
        self.terms_ = pd.DataFrame({"term": names, "kind": kinds, "variable": sources, "reference": refs})
        self._fit_data = {
            "start": start, "stop": stop, "event": event, "X": X, "weights": weights,
            "strata": strata_codes, "beta": beta, "names": names,
        }
        self.fit_columns_ = {
            "duration_col": duration_col, "event_col": event_col, "entry_col": entry_col, "cluster_col": cluster_col,
        }
        self.gradient_max_ = float(np.max(np.abs(stats_["score"]))) if self.penalizer == 0 else np.nan
        self.diagnostics_ = self._diagnostics(X, names)
        return self

    def _convergence_message(self, X, names, detail, step=None):
        if step is not None and np.any(step != 0):
            # the term whose coefficient still wants to move most (per SD of the column)
            worst = names[int(np.argmax(np.abs(step) * X.std(axis=0)))]
        else:
            worst = names[int(np.argmax(np.abs(X).max(axis=0) / (X.std(axis=0) + 1e-12)))]
        return (
            f"Cox model did not converge ({detail}). The likeliest cause is '{worst}': its coefficient runs off "
            "towards infinity, which happens under (quasi-)perfect separation (e.g. at every defection the defector "
            "has the most extreme value among those at risk) or near-collinearity with another term. Check events "
            "against that term, merge sparse levels, drop the term, or refit with a small penalizer "
            "(e.g. CoxModel(..., penalizer=0.1))."
        )

    def _diagnostics(self, X, names):
        p = X.shape[1]
        epp = self.events_ / p
        rows = [
            {"check": "events_per_parameter", "term": None, "value": epp, "threshold": 10.0,
             "status": "warn" if epp < 10 else "ok",
             "message": f"{self.events_} events for {p} parameters" + (" (< 10 per parameter: estimates may be unstable)" if epp < 10 else "")},
        ]
        if p > 1:
            corr = np.corrcoef(X, rowvar=False)
            try:
                vif = np.diag(np.linalg.inv(corr))
            except np.linalg.LinAlgError:
                vif = np.full(p, np.inf)
        else:
            vif = np.ones(1)
        for name, v in zip(names, vif):
            rows.append({"check": "vif", "term": name, "value": float(v), "threshold": 5.0,
                         "status": "warn" if v > 5 else "ok",
                         "message": "collinear with other terms" if v > 5 else ""})
        g = self.gradient_max_
        rows.append({"check": "convergence", "term": None, "value": g, "threshold": 1e-4,
                     "status": "ok" if (np.isnan(g) or g < 1e-4 * max(1, self.events_)) else "warn",
                     "message": "max |score| at the estimate (0 at the maximum)"})
        out = pd.DataFrame(rows)
        for r in out[out["status"] == "warn"].itertuples():
            warnings.warn(f"Cox model diagnostic '{r.check}'{' for ' + r.term if r.term else ''}: {r.message} "
                          f"(value {r.value:.3g}, threshold {r.threshold:g}).", stacklevel=3)
        return out

    # -- results ------------------------------------------------------------------------------

    @property
    def summary(self) -> pd.DataFrame:
        """One row per term: term, kind, variable, reference, log_hr, se, hr, lower, upper, z, p,
        hr_per_sd/lower_per_sd/upper_per_sd, hr_per_point/lower_per_point/upper_per_point, sd.

        For constructs ``log_hr``/``hr`` are per SD (the model is fitted on standardised scores);
        for controls they are per unit (or vs the reference level). 95% Wald CIs.
        """
        if not hasattr(self, "params_"):
            raise ModelError("CoxModel: call fit() before reading summary.")
        b = self.params_.to_numpy()
        se = np.sqrt(np.diag(self.variance_matrix_.to_numpy()))
        z = b / se
        out = self.terms_.copy()
        out["log_hr"] = b
        out["se"] = se
        out["hr"] = np.exp(b)
        out["lower"] = np.exp(b - _Z * se)
        out["upper"] = np.exp(b + _Z * se)
        out["z"] = z
        out["p"] = 2 * stats.norm.sf(np.abs(z))
        sd = np.array([self.construct_scales_.get(t, (np.nan, np.nan))[1] if k == "construct" else np.nan
                       for t, k in zip(out["term"], out["kind"])])
        is_c = out["kind"].to_numpy() == "construct"
        for col in ("hr", "lower", "upper"):
            per_sd = np.where(is_c, out[col], np.nan)
            out[f"{col}_per_sd"] = per_sd
            out[f"{col}_per_point"] = per_sd ** (1.0 / sd)
        out["sd"] = sd
        order = ["term", "kind", "variable", "reference", "log_hr", "se", "hr", "lower", "upper", "z", "p",
                 "hr_per_sd", "lower_per_sd", "upper_per_sd", "hr_per_point", "lower_per_point", "upper_per_point", "sd"]
        return out[order]

    def _repr_html_(self) -> str:
        cols = ["term", "kind", "hr", "lower", "upper", "p", "hr_per_point"]
        return self.summary[cols].to_html(index=False, float_format=lambda v: f"{v:.3g}")


class TimeVaryingCoxModel(CoxModel):
    """Cox model on counting-process rows (start, stop] with SEs clustered by customer.

    Same parameters and ``summary`` as :class:`CoxModel`; constructs are standardised with one
    value per customer (their first row). R: ``coxph(Surv(start, stop, event) ~ ..., cluster=id)``.
    The customer id is used for clustering only and never appears in any output.
    """

    def fit(self, df, start_col="start", stop_col="stop", event_col="event", id_col="customer_key"):  # noqa: D401
        """Fit on counting-process rows; returns self."""
        self.robust = True
        return super().fit(df, duration_col=stop_col, event_col=event_col, entry_col=start_col, cluster_col=id_col)
