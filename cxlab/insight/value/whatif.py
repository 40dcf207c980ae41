"""What would raising a perception be worth? :func:`what_if` on cxlab's Cox engine (Efron ties,
delayed entry), with a percentile bootstrap of refits on frequency weights (to convergence, or
one Newton step from the full-sample estimate)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxlab.errors import DataContractError, ModelError, ParameterError
from cxlab.models.survival.engine import CoxProblem, RiskSets, breslow_baseline
from cxlab.insight.value._inputs import _monthly_margin, _require_columns, _survival_arrays

__all__ = ["what_if", "BOOT_REFITS", "ONE_STEP_MIN_EVENTS"]

#: how a bootstrap draw of :func:`what_if` refits (see its ``boot_refit``)
BOOT_REFITS = ("auto", "one-step", "converge")
#: ``boot_refit="auto"`` takes one Newton step per draw from this many defections on (as the
#: driver bootstrap's chord draws, cxlab.models.drivers)
ONE_STEP_MIN_EVENTS = 500


@dataclass
class _CoxFit:
    beta: np.ndarray           # on the original covariate scale
    mean: np.ndarray           # covariate means used for the baseline
    times: np.ndarray          # distinct event times
    cumhaz: np.ndarray         # Breslow baseline cumulative hazard at ``times`` (covariates at ``mean``)
    loglik: float
    iterations: int
    converged: bool


def _cox_problem(X, entry, duration, event, risk=None, center=None):
    """The engine's problem on standardised covariates (``center`` = (mean, sd))."""
    if center is None:
        mean = X.mean(0)
        sd = X.std(0)
        sd[sd == 0] = 1.0
    else:
        mean, sd = center
    rs = RiskSets(duration, event, entry) if risk is None else risk
    return CoxProblem((X - mean) / sd, rs), (mean, sd)


def _cox_fit(X, entry, duration, event, beta0=None, freq=None, risk=None, center=None,
             step_tol=1e-8, max_iter=50, problem=None, one_step=False) -> _CoxFit:
    """Cox partial likelihood (Efron ties, delayed entry) by Newton-Raphson, with
    :mod:`cxlab.models.survival.engine` (one vectorised engine for all of cxlab).

    ``freq`` are integer frequency weights (a bootstrap draw: row i counted ``freq[i]`` times, tied
    copies of a death treated as separate tied deaths, exactly as if the rows were duplicated);
    ``risk`` (an engine :class:`RiskSets`) / ``center`` / ``problem`` let bootstrap draws reuse the
    full table's sorted risk sets and scaling. ``step_tol`` sets the convergence test (standardised
    covariates): the Newton decrement ``g'(-H)^-1 g`` below ``step_tol**2`` (times 1 + |loglik|;
    1e-10 for the default), after which the last Newton step is taken. ``loglik`` is exact for the
    default ``step_tol`` (from the quadratic model for looser ones, as the bootstrap uses).
    ``one_step``: a single Newton step from ``beta0`` with the information there, no iterations and
    no likelihood check (a bootstrap draw started at the full-sample estimate; ``loglik`` is then
    the value at ``beta0``). Checked against lifelines ``CoxPHFitter(entry_col=...)`` in
    tests/test_value.py.
    """
    if problem is None:
        problem, (mean, sd) = _cox_problem(X, entry, duration, event, risk, center)
    else:
        mean, sd = center
    problem.set_weights(freq=freq)
    tol = 1e-10 if step_tol <= 1e-6 else step_tol**2
    b0 = None if beta0 is None else np.asarray(beta0, float) * sd
    if one_step:
        ll, g, H = problem.loglik(b0)
        try:
            step = np.linalg.solve(-H, g) if g is not None else np.full(b0.shape, np.nan)
        except np.linalg.LinAlgError:
            step = np.full(b0.shape, np.nan)
        b, loglik, n_iter, converged = b0 + step, ll, 1, bool(np.all(np.isfinite(step)))
        if not converged:
            return _CoxFit(beta=b / sd, mean=mean, times=problem.rs.times, cumhaz=np.full(problem.rs.G, np.nan),
                           loglik=loglik, iterations=1, converged=False)
    else:
        res = problem.fit(beta0=b0, tol=tol, max_iter=max_iter, exact_final=step_tol <= 1e-6,
                          raise_on_failure=False, null_loglik=beta0 is None)
        b, loglik, n_iter, converged = res.coef, res.loglik, res.n_iter, res.converged
    # Breslow baseline hazard (as lifelines) at the covariate ``mean``; risk sets honour delayed entry
    times, cumhaz, _ = breslow_baseline(None, None, risk=np.exp(problem.XT.T @ b + problem.center @ b),
                                        weights=freq, risk_sets=problem.rs)
    return _CoxFit(beta=b / sd, mean=mean, times=times, cumhaz=cumhaz, loglik=loglik,
                   iterations=n_iter, converged=converged)


def _is_cxlab_cox(model) -> bool:
    from cxlab.models.survival.cox import CoxModel

    return isinstance(model, CoxModel)


def _model_columns(model):
    """(names, entry_col, duration_col, event_col, coefficients on the covariates' own scale) of a
    fitted cxlab :class:`~cxlab.models.survival.cox.CoxModel` or lifelines ``CoxPHFitter``."""
    if _is_cxlab_cox(model):
        if not hasattr(model, "params_"):
            raise ParameterError("what_if needs a fitted CoxModel: call fit(...) on the respondent table first.")
        if model.strata:
            raise ModelError("what_if does not support stratified Cox models; fit without strata=.")
        if model.penalizer:
            raise ModelError("what_if refits the model without penalty; fit the Cox model with penalizer=0.")
        if model.weights_col:
            raise ModelError("what_if refits the model without weights; fit the Cox model without weights_col=.")
        fc = model.fit_columns_
        if fc.get("cluster_col"):
            raise ModelError("what_if works on one row per respondent; fit CoxModel without cluster_col= "
                             "(counting-process rows are not supported).")
        beta = model.params_.to_numpy(dtype=float).copy()
        for j, (term, kind) in enumerate(zip(model.terms_["term"], model.terms_["kind"])):
            if kind == "construct":   # the model is per SD; what_if works on the scale points
                beta[j] /= model.construct_scales_[term][1]
        return list(model.params_.index), fc["entry_col"], fc["duration_col"], fc["event_col"], beta
    if not (type(model).__name__ == "CoxPHFitter" and hasattr(model, "params_")):
        raise ParameterError("what_if needs a fitted cxlab CoxModel (cxlab.models.survival.CoxModel, fitted on the "
                             "respondent table with entry_col='entry') or a fitted lifelines CoxPHFitter.")
    if getattr(model, "strata", None):
        raise ModelError("what_if does not support stratified Cox models; fit without strata=.")
    if getattr(model, "penalizer", 0):
        raise ModelError("what_if refits the model without penalty; fit the Cox model with penalizer=0.")
    return (list(model.params_.index), model.entry_col, model.duration_col, model.event_col,
            model.params_.to_numpy(dtype=float))


def _design(model, df: pd.DataFrame) -> np.ndarray:
    """The model's covariates on ``df``, on their own scale (scale points, 0/1 dummies)."""
    if _is_cxlab_cox(model):
        cols, coded = [], {}
        for term, kind, var, ref in model.terms_[["term", "kind", "variable", "reference"]].itertuples(index=False):
            _require_columns(df, [var], "what_if (covariates of the Cox model)")
            if ref is not None:   # a level of a categorical control: the model's own coding, same pooling rule
                coding = model.codings_[var]
                if var not in coded:
                    coded[var] = dict(zip(coding.terms, coding.encode(df[var]).T))
                cols.append(coded[var][term])
            elif pd.api.types.is_bool_dtype(df[var]):
                cols.append(df[var].astype(int).to_numpy(dtype=float))
            else:
                cols.append(df[var].to_numpy(dtype=float))
        return np.column_stack(cols)
    names = list(model.params_.index)
    if getattr(model, "formula", None):
        X = model.regressors.transform_df(df)["beta_"]
        return X[names].to_numpy(dtype=float)
    _require_columns(df, names, "what_if (covariates of the Cox model)")
    return df[names].to_numpy(dtype=float)


def _predict_survival(fit: _CoxFit, X, entry, months, index=None):
    """S(entry + m | x) / S(entry | x) for m in ``months`` (rows x months).

    ``index`` = (position of entry, positions of entry + m) in ``fit.times`` (searchsorted, right),
    precomputed once when many fits share the same event-time grid.
    """
    if index is None:
        index = (np.searchsorted(fit.times, entry, side="right"),
                 np.searchsorted(fit.times, entry[:, None] + months[None, :], side="right"))
    H = np.concatenate([[0.0], fit.cumhaz])
    risk = np.exp((X - fit.mean) @ fit.beta)
    out = H[index[1]]
    out -= H[index[0]][:, None]
    out *= -risk[:, None]
    return np.exp(out, out=out)


def _summaries(surv, monthly_margin, months, horizons, disc):
    """Sums over respondents from a (respondents x months) survival matrix, per horizon h:
    expected defections sum(1 - S(h)); retained months (trapezoid on the monthly grid, S(0) = 1);
    discounted margin sum(margin x S(m) x disc(m), m <= h)."""
    n = surv.shape[0]
    col = np.concatenate([[float(n)], surv.sum(0)])
    margin_col = None if monthly_margin is None else (monthly_margin @ surv) * disc
    out = {}
    for h in horizons:
        out[("expected defections", h)] = float(n - col[h])
        out[("retained months", h)] = float(0.5 * np.sum(col[:h] + col[1 : h + 1]))
        if margin_col is not None:
            out[("discounted margin", h)] = float(margin_col[:h].sum())
    return out


class _WhatIf:
    """Everything a bootstrap draw of :func:`what_if` needs (picklable for worker processes)."""

    def __init__(self, X0, X1, entry, duration, event, rows_changed, monthly, months, horizons, disc, share):
        self.X0, self.X1, self.entry, self.duration, self.event = X0, X1, entry, duration, event
        self.rows_changed, self.monthly, self.months = rows_changed, monthly, months
        self.horizons, self.disc, self.share = horizons, disc, share
        self.keys = [(metric, h) for h in horizons for metric in ("expected defections", "retained months",
                                                                   *(("discounted margin",) if monthly is not None
                                                                     else ()))]
        self.beta_hat = None
        sd = X0.std(0)
        self.center = (X0.mean(0), np.where(sd > 0, sd, 1.0))
        self.problem, _ = _cox_problem(X0, entry, duration, event, center=self.center)
        self.risk = self.problem.rs
        # positions of entry and entry + m on the event-time grid (shared by every draw's baseline)
        self.grid = (np.searchsorted(self.risk.times, entry, side="right").astype(np.int32),
                     np.searchsorted(self.risk.times, entry[:, None] + months[None, :], side="right").astype(np.int32))
        self.grid_changed = (self.grid[0][rows_changed], self.grid[1][rows_changed])
        self.m_changed = None if monthly is None else monthly[rows_changed]
        self.changed_rows = (X0[rows_changed], X1[rows_changed], entry[rows_changed])

    def fit(self, beta0=None, freq=None, step_tol=1e-8, one_step=False):
        return _cox_fit(self.X0, self.entry, self.duration, self.event, beta0=beta0, freq=freq,
                        center=self.center, step_tol=step_tol, problem=self.problem, one_step=one_step)

    def _changed(self, fit, before=None):
        """(summaries of the changed rows as today, with the change): the scenario differs from the
        baseline only there. ``before``: their survival as today, when already predicted."""
        X0, X1, entry = self.changed_rows
        if before is None:   # both from one pass over the baseline hazard (the same figures as _predict_survival)
            H = np.concatenate([[0.0], fit.cumhaz])
            dH = H[self.grid_changed[1]]
            dH -= H[self.grid_changed[0]][:, None]
            before, moved = (np.exp(dH * -np.exp((X - fit.mean) @ fit.beta)[:, None]) for X in (X0, X1))
        else:
            moved = _predict_survival(fit, X1, entry, self.months, self.grid_changed)
        if self.share is not None:
            moved = (1 - self.share) * before + self.share * moved
        return (_summaries(before, self.m_changed, self.months, self.horizons, self.disc),
                _summaries(moved, self.m_changed, self.months, self.horizons, self.disc))

    def evaluate(self, fit):
        """(baseline, scenario) sums over every respondent."""
        s_base = _predict_survival(fit, self.X0, self.entry, self.months, self.grid)
        base = _summaries(s_base, self.monthly, self.months, self.horizons, self.disc)
        if not self.rows_changed.size:
            return base, dict(base)
        before = s_base[self.rows_changed]
        del s_base
        old_part, new_part = self._changed(fit, before)
        return base, {k: base[k] - old_part[k] + new_part[k] for k in base}

    def delta(self, fit):
        """scenario - baseline per (metric, horizon), from the changed rows alone (a bootstrap draw
        needs only the change: the rows the scenario leaves alone cancel)."""
        if not self.rows_changed.size:
            return dict.fromkeys(self.keys, 0.0)
        old_part, new_part = self._changed(fit)
        return {k: new_part[k] - old_part[k] for k in old_part}

    def draws(self, seeds, refit="converge"):
        """For each seed, scenario - baseline after refitting on a resample of respondents
        (frequency weights), predicted on the observed table; None when the refit failed.
        ``refit="converge"``: Newton-Raphson from the full-sample estimate until its step is below
        1e-3 on the standardised scale (an error ~1e-6, far below the sampling error);
        ``"one-step"``: one Newton step from the full-sample estimate with the resample's own
        information (the first step of the former: an error O(1/n), against a spread O(1/sqrt n))."""
        out = []
        for ss in seeds:
            freq = _resample_counts(ss, self.duration.size)
            fit = self.fit(beta0=self.beta_hat, freq=freq, step_tol=1e-3, one_step=refit == "one-step")
            out.append(self.delta(fit) if fit.converged else None)
        return out


def _resample_counts(seed, n):
    """How many times each of the n respondents is drawn in the bootstrap resample of ``seed``."""
    return np.bincount(np.random.default_rng(seed).integers(0, n, n), minlength=n)


def what_if(df: pd.DataFrame, model, construct: str, delta_points: float = 1.0, segment=None, *,
            horizons=(12, 24), n_boot: int = 200, seed: int = 0, discount_rate: float = 0.1,
            move_share: float | None = None, scale=(1, 5), margin_col: str | None = "value",
            margin_months: float = 12, segment_col: str = "segment_2x2",
            moved_from: str = "disappointed good customers", moved_to: str = "recognised good customers",
            dgc_col: str = "dgc", ci: float = 0.95, n_jobs: int = 1,
            dgc_threshold: float | None = None, boot_refit: str = "auto") -> pd.DataFrame:
    """What would raising a perception be worth? Expected defections, retained months and margin.

    Scenario ``delta``: raise ``construct`` by ``delta_points`` scale points (capped at the scale
    maximum) for the respondents in ``segment`` (None = everyone; a boolean mask; or the name of a
    cell of ``segment_col``). Scenario ``move_share`` (a share in (0, 1]): that share of the
    ``moved_from`` cell gets the mean ``construct`` score of the ``moved_to`` cell and, if the model
    uses it, ``dgc_col`` set to 0; the expected outcome is used (no random draw of who moves).

    ``model`` is a :class:`cxlab.models.survival.CoxModel` fitted on the respondent table on the tenure
    clock with ``entry_col`` (its constructs and controls define the design; no strata, penalty,
    weights or clusters), or a lifelines ``CoxPHFitter`` fitted the same way (its covariates or
    formula define the design). Each respondent's survival is
    predicted from the survey on: ``S(entry + m | x) / S(entry | x)`` with a Breslow baseline whose
    risk sets honour delayed entry. The coefficients are re-estimated with cxlab's Efron
    Newton-Raphson (identical to lifelines to numerical precision), and the percentile bootstrap
    refits the model on ``n_boot`` resamples of respondents, predicting on the observed table.

    Each bootstrap draw has its own seed spawned from ``seed``, so results do not depend on
    ``n_jobs`` (number of worker processes for the draws; -1 = all cores). ``boot_refit``: how a
    draw refits, started at the full-sample estimate: ``"converge"`` (Newton-Raphson to a step
    below 1e-3 on the standardised scale), ``"one-step"`` (one Newton step with the resample's own
    information: the coefficients miss the resample's maximum by O(1/n), against a bootstrap
    spread O(1/sqrt(n)); the interval endpoints agree with ``"converge"`` within Monte-Carlo error,
    tests/test_value_whatif_boot.py), ``"auto"`` (default: ``"one-step"`` from
    :data:`ONE_STEP_MIN_EVENTS` defections on, else ``"converge"``). The point estimate does not
    depend on it.

    ``dgc_threshold``: when ``construct`` is the recognition construct, the score at which a
    customer counts as recognised; a disappointed good customer raised to it or above stops being
    one (``dgc_col`` set to 0 in the scenario). None leaves ``dgc_col`` unchanged.

    Returns one row per (metric, horizon): baseline, scenario, delta (scenario - baseline), lower,
    upper (bootstrap interval of delta), n, n_changed, n_boot. Retained months are the area under
    each respondent's curve (trapezoid on a monthly grid); margin is monthly margin x S(m)
    discounted at ``discount_rate`` per year, summed over months 1..h.
    """
    if boot_refit not in BOOT_REFITS:
        raise ParameterError(f"The 'boot_refit' parameter of what_if must be one of {BOOT_REFITS}. "
                             f"Got {boot_refit!r} instead.")
    names, entry_col, duration_col, event_col, beta_model = _model_columns(model)
    if entry_col is None:
        warnings.warn("The Cox model was fitted without entry_col: respondents are taken to be at risk from "
                      "tenure 0 (immortal time). Fit with entry_col='entry'.", stacklevel=2)
    horizons = tuple(int(h) for h in horizons)
    if not horizons or min(horizons) < 1:
        raise ParameterError(f"horizons must be positive whole months, got {horizons!r}.")
    _require_columns(df, [construct, margin_col], "what_if")
    S, T, E = _survival_arrays(df, entry_col, duration_col, event_col, "what_if")
    lo, hi = scale
    base = df.copy()
    scen = df.copy()
    share = None
    if move_share is not None:
        if not 0 < move_share <= 1:
            raise ParameterError(f"move_share must be a share in (0, 1], got {move_share!r}.")
        if segment_col not in df.columns:
            raise DataContractError(f"what_if(move_share=...) needs the column {segment_col!r}: "
                                    "run cxlab.insight.segments.perception_segments first.")
        changed = (df[segment_col] == moved_from).to_numpy()
        target = df.loc[df[segment_col] == moved_to, construct].mean()
        if not changed.any() or not np.isfinite(target):
            raise DataContractError(f"what_if: no respondents in cell {moved_from!r} or {moved_to!r}.")
        scen.loc[changed, construct] = target
        if dgc_col in df.columns:
            scen.loc[changed, dgc_col] = 0
        share = float(move_share)
    else:
        if segment is None:
            changed = np.ones(len(df), dtype=bool)
        elif isinstance(segment, str):
            _require_columns(df, [segment_col], "what_if")
            changed = (df[segment_col] == segment).to_numpy()
            if not changed.any():
                raise ParameterError(f"what_if: no respondents in segment {segment!r} of column {segment_col!r}.")
        else:
            changed = np.asarray(segment, dtype=bool)
            if changed.shape != (len(df),):
                raise ParameterError(f"segment mask has shape {changed.shape}; expected ({len(df)},).")
        scen.loc[changed, construct] = np.clip(df.loc[changed, construct] + delta_points, lo, hi)
        if dgc_threshold is not None and dgc_col in df.columns:
            now_recognised = changed & (scen[construct] >= dgc_threshold).to_numpy()
            scen.loc[now_recognised, dgc_col] = 0
    if df[construct].isna().any():
        raise DataContractError(f"what_if: column {construct!r} has missing values; drop those respondents first.")
    X0 = _design(model, base)
    X1 = _design(model, scen)
    rows_changed = np.flatnonzero(np.any(X0 != X1, axis=1))
    if not rows_changed.size:
        warnings.warn(f"what_if: the scenario changes no covariate of the model (is {construct!r} one of "
                      f"{names}, and below the scale maximum {hi} in the segment?); "
                      "every delta is 0.", stacklevel=2)
    monthly = None if margin_col is None else _monthly_margin(df, margin_col, margin_months, "what_if")
    hmax = max(horizons)
    months = np.arange(1, hmax + 1, dtype=float)
    disc = (1 + discount_rate) ** (-months / 12.0)
    if (S + hmax > T.max()).mean() > 0.5:
        warnings.warn(f"what_if: for most respondents entry + {hmax} months is beyond the longest follow-up "
                      f"({T.max():.1f}); the baseline hazard is carried flat there (no defections).", stacklevel=2)

    problem = _WhatIf(X0=X0, X1=X1, entry=S, duration=T, event=E, rows_changed=rows_changed, monthly=monthly,
                      months=months, horizons=horizons, disc=disc, share=share)
    fit = problem.fit(beta0=beta_model)
    if not fit.converged:
        raise ModelError("what_if: the Cox model did not converge on this table.")
    if np.max(np.abs(fit.beta - beta_model)) > 1e-3 * (1 + np.max(np.abs(fit.beta))):
        warnings.warn("what_if: the refitted coefficients differ from the model's (was it fitted on another table "
                      "or with other options?); the refit on this table is used.", stacklevel=2)
    b0, b1 = problem.evaluate(fit)
    keys = list(b0)
    problem.beta_hat = fit.beta
    n = T.size
    refit = boot_refit if boot_refit != "auto" else "one-step" if E.sum() >= ONE_STEP_MIN_EVENTS else "converge"
    seeds = np.random.SeedSequence(seed).spawn(int(n_boot))
    if n_jobs != 1 and n_boot > 1:
        from joblib import Parallel, delayed

        workers = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        chunks = [seeds[i::workers] for i in range(workers)]
        parts = Parallel(n_jobs=workers)(delayed(problem.draws)(chunk, refit) for chunk in chunks if chunk)
        results = [r for part in parts for r in part]
    else:
        results = problem.draws(seeds, refit)
    failed = sum(r is None for r in results)
    deltas = [[r[k] for k in keys] for r in results if r is not None]
    if failed:
        warnings.warn(f"what_if: {failed} of {n_boot} bootstrap refits did not converge and were dropped.",
                      stacklevel=2)
    deltas = np.array(deltas).reshape(-1, len(keys))
    a = (1 - ci) / 2
    rows = []
    for i, (metric, h) in enumerate(keys):
        lower = float(np.quantile(deltas[:, i], a)) if deltas.shape[0] else float("nan")
        upper = float(np.quantile(deltas[:, i], 1 - a)) if deltas.shape[0] else float("nan")
        rows.append({"metric": metric, "horizon": h, "baseline": b0[(metric, h)], "scenario": b1[(metric, h)],
                     "delta": b1[(metric, h)] - b0[(metric, h)], "lower": lower, "upper": upper, "n": n,
                     "n_changed": int(rows_changed.size), "n_boot": int(deltas.shape[0])})
    return pd.DataFrame(rows)
