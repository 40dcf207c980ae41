"""Value of retention: profit concentration, expected retained months, CLV, what-if, sBG projection.

Time unit: months. Two clocks are used and each function says which:

* **tenure clock** (months since the customer's start, delayed entry at the survey): :func:`rmst`
  and the Cox model behind :func:`what_if` (a respondent's future is predicted from their entry
  onward: ``S(entry + h | x) / S(entry | x)``);
* **survey clock** (months since the survey, ``duration - entry``): :func:`clv` and
  :func:`value_at_risk`, which answer "from the survey onward, what is a respondent worth".

Every function returns a tidy DataFrame (estimate, lower, upper, n, ...).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from cxlab import privacy
from cxlab.errors import DataContractError, ModelError, ParameterError
from cxlab.survival.engine import CoxProblem, RiskSets, breslow_baseline
from cxlab.survival.km import km_steps

__all__ = [
    "lorenz",
    "gini",
    "top_share",
    "rmst",
    "clv",
    "value_at_risk",
    "what_if",
    "fit_sbg",
    "SBGResult",
    "cohort_survivors",
]

_Z95 = stats.norm.ppf(0.975)


# ---- input checks -----------------------------------------------------------------------------


def _values(values, what="values") -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ParameterError(f"{what} is empty: pass at least one customer's margin.")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise DataContractError(
            f"{what} has {bad.size} missing or infinite values (positions {bad[:5].tolist()}...): "
            "drop or impute them before measuring concentration."
        )
    return x


def _require_columns(df: pd.DataFrame, cols, what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{what} needs a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in cols if c is not None and c not in df.columns]
    if missing:
        raise DataContractError(
            f"{what}: column(s) {missing} not found in the table (columns: {list(df.columns)[:20]}). "
            "Pass the right names with duration_col=/entry_col=/event_col=/... ."
        )


def _survival_arrays(df, entry_col, duration_col, event_col, what):
    _require_columns(df, [entry_col, duration_col, event_col], what)
    T = df[duration_col].to_numpy(dtype=float)
    E = df[event_col].to_numpy(dtype=float)
    S = np.zeros_like(T) if entry_col is None else df[entry_col].to_numpy(dtype=float)
    bad = ~np.isfinite(T) | ~np.isfinite(E) | ~np.isfinite(S)
    if bad.any():
        rows = df.index[bad][:5].tolist()
        raise DataContractError(
            f"{what}: {int(bad.sum())} rows have missing {entry_col}/{duration_col}/{event_col} "
            f"(e.g. rows {rows}); drop them first."
        )
    if not np.isin(E, (0, 1)).all():
        raise DataContractError(f"{what}: column {event_col!r} must be 0/1.")
    wrong = T <= S
    if wrong.any():
        rows = df.index[wrong][:5].tolist()
        raise DataContractError(
            f"{what}: {int(wrong.sum())} rows have {duration_col} <= {entry_col} (e.g. rows {rows}); "
            "a respondent must be followed for some time after the survey."
        )
    return S, T, E.astype(int)


# ---- concentration: Lorenz, Gini, top share ---------------------------------------------------


def lorenz(values, groups=None, *, min_cell: int | None = None) -> pd.DataFrame:
    """Lorenz curve of margin: cumulative share of customers (least profitable first) vs of margin.

    Returns one row per point (starting at (0, 0)) with columns ``group``, ``customer_share``,
    ``margin_share``, ``n``. With ``groups`` (same length as ``values``) one curve per group plus
    ``"all"``. Negative margins (loss-making customers) make the curve dip below zero.
    Privacy: a group of fewer than ``min_cell`` customers (default: the process-wide value) gets no
    curve (its rows are left out; ``out.attrs["suppressed"]`` names it).
    """
    min_cell = privacy.resolve_min_cell(min_cell)
    x = _values(values)
    frames = []
    labels = {"all": np.ones(x.size, dtype=bool)}
    if groups is not None:
        g = pd.Series(np.asarray(groups)).astype("string").fillna("unknown").to_numpy()
        if g.size != x.size:
            raise ParameterError(f"groups has {g.size} entries but values has {x.size}.")
        for level in pd.unique(g):
            labels[str(level)] = g == level
    hidden = [name for name, mask in labels.items() if mask.sum() < min_cell]
    for name, mask in labels.items():
        if name in hidden:
            continue
        v = np.sort(x[mask])
        total = v.sum()
        if total == 0:
            warnings.warn(f"Lorenz curve for {name!r}: total margin is 0; shares are undefined.", stacklevel=2)
        share = np.concatenate([[0.0], np.cumsum(v) / total if total != 0 else np.full(v.size, np.nan)])
        frames.append(pd.DataFrame({
            "group": name,
            "customer_share": np.arange(v.size + 1) / v.size,
            "margin_share": share,
            "n": v.size,
        }))
    if (x < 0).any():
        warnings.warn(f"{int((x < 0).sum())} customers have a negative margin; the Lorenz curve dips below 0 "
                      "and the Gini can exceed 1.", stacklevel=2)
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=["group", "customer_share", "margin_share", "n"]))
    out.attrs["suppressed"] = hidden
    return out


def _gini(x: np.ndarray, unbiased: bool) -> float:
    n = x.size
    mean = x.mean()
    if mean == 0:
        return float("nan")
    v = np.sort(x)
    # sum_i sum_j |x_i - x_j| = 2 * sum_i (2i - n - 1) x_(i)   (i = 1..n)
    mad_sum = 2.0 * np.sum((2 * np.arange(1, n + 1) - n - 1) * v)
    g = mad_sum / (2.0 * n * n * mean)
    if unbiased:
        g *= n / (n - 1) if n > 1 else float("nan")
    return float(g)


def _bootstrap_ci(stat, x, n_boot, seed, ci=0.95):
    rng = np.random.default_rng(seed)
    draws = np.array([stat(x[rng.integers(0, x.size, x.size)]) for _ in range(n_boot)])
    draws = draws[np.isfinite(draws)]
    a = (1 - ci) / 2
    return float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a))


def gini(values, *, unbiased: bool = False, n_boot: int = 0, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Gini coefficient of margin concentration (one-row tidy DataFrame).

    Convention: ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)`` (one minus twice the area under the
    Lorenz curve), so ``[1, 1, 1, 1] -> 0`` and ``[0, 0, 0, 1] -> 0.75`` (the maximum for n customers
    is ``(n-1)/n``). ``unbiased=True`` multiplies by ``n / (n - 1)`` (then ``[0, 0, 0, 1] -> 1``).
    ``n_boot > 0`` adds a percentile bootstrap interval (resampling customers).
    """
    x = _values(values)
    est = _gini(x, unbiased)
    lower = upper = float("nan")
    if n_boot:
        lower, upper = _bootstrap_ci(lambda v: _gini(v, unbiased), x, int(n_boot), seed, ci)
    return pd.DataFrame([{"metric": "gini", "estimate": est, "lower": lower, "upper": upper,
                          "n": x.size, "convention": "n/(n-1)" if unbiased else "population (no n/(n-1))"}])


def _top_share(x: np.ndarray, top: float) -> float:
    v = np.sort(x)[::-1]
    k = top * v.size
    whole = int(math.floor(k))
    part = v[:whole].sum() + (k - whole) * (v[whole] if whole < v.size else 0.0)
    total = v.sum()
    return float(part / total) if total != 0 else float("nan")


def top_share(values, top: float = 0.2, *, n_boot: int = 0, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Share of total margin earned by the top ``top`` fraction of customers (e.g. 0.2 = top 20 %).

    A fractional customer at the cut counts pro rata (so the result is the Lorenz curve read at
    ``1 - top``). One-row DataFrame: metric, top, estimate, lower, upper, n.
    """
    if not 0 < top <= 1:
        raise ParameterError(f"The 'top' parameter of top_share must be a float in (0, 1]. Got {top!r} instead.")
    x = _values(values)
    est = _top_share(x, top)
    lower = upper = float("nan")
    if n_boot:
        lower, upper = _bootstrap_ci(lambda v: _top_share(v, top), x, int(n_boot), seed, ci)
    return pd.DataFrame([{"metric": "top_share", "top": top, "estimate": est, "lower": lower,
                          "upper": upper, "n": x.size}])


# ---- restricted mean survival (tenure clock) -------------------------------------------------


def _rmst_from_km(times, surv, gw, horizon):
    keep = times <= horizon
    t = np.concatenate([[0.0], times[keep], [horizon]])
    s = np.concatenate([[1.0], surv[keep]])
    rect = np.diff(t) * s                                # area of each rectangle
    mean = rect.sum()
    # R survival (print.survfit rmean / survmean): var = sum_i A_i^2 d_i / (n_i (n_i - d_i)),
    # A_i = area under the curve from event time t_i to the horizon
    tail = np.cumsum(rect[::-1])[::-1][1:]
    g = gw[keep]
    var = float(np.sum(tail ** 2 * np.where(np.isfinite(g), g, 0.0)))   # R survmean: 0 where n == d
    return float(mean), math.sqrt(var)


def rmst(df: pd.DataFrame, horizon: float, group_col: str | None = None, *, entry_col: str | None = "entry",
         duration_col: str = "duration", event_col: str = "event", n_boot: int = 0, seed: int = 0,
         ci: float = 0.95, min_cell: int | None = None) -> pd.DataFrame:
    """Restricted mean survival time: expected months retained within ``horizon`` (tenure clock).

    The area under the Kaplan-Meier curve from 0 to ``horizon``; delayed entry (``entry_col``) is
    honoured (a respondent is at risk from the survey on). The standard error is the analytic one of
    R ``print(survfit(Surv(entry, duration, event) ~ g), rmean = horizon)``; ``n_boot > 0`` replaces
    the normal interval with a percentile bootstrap interval (resampling respondents within group).

    Columns: group, horizon, estimate, se, lower, upper, n, events, method, suppressed.
    Privacy: a group of fewer than ``min_cell`` customers (default: the process-wide value) is not
    estimated (every figure blank, ``suppressed``); the next-smallest group's n and events are
    blanked too (complementary suppression: the groups add up to the respondents' total).
    """
    if not horizon > 0:
        raise ParameterError(f"The 'horizon' parameter of rmst must be a positive number of months. Got {horizon!r}.")
    min_cell = privacy.resolve_min_cell(min_cell)
    S, T, E = _survival_arrays(df, entry_col, duration_col, event_col, "rmst")
    if group_col is not None:
        _require_columns(df, [group_col], "rmst")
        groups = df[group_col].astype("string").fillna("unknown").to_numpy()
        levels = sorted(pd.unique(groups))
    else:
        groups, levels = np.full(T.size, "all", dtype=object), ["all"]
    rng = np.random.default_rng(seed)
    a = (1 - ci) / 2
    rows = []
    for level in levels:
        m = groups == level
        if m.sum() < min_cell:   # privacy: no figure (not even a warning) about a small group
            rows.append({"group": level, "horizon": horizon, "estimate": np.nan, "se": np.nan, "lower": np.nan,
                         "upper": np.nan, "n": int(m.sum()), "events": int(E[m].sum()), "method": ""})
            continue
        rs = RiskSets(T[m], E[m], S[m])
        km = km_steps(risk_sets=rs)
        est, se = _rmst_from_km(km.times, km.survival, km.greenwood, horizon)
        if horizon > T[m].max():
            warnings.warn(f"rmst: horizon {horizon} is beyond the longest follow-up ({T[m].max():.1f}) in group "
                          f"{level!r}; the KM curve is carried flat.", stacklevel=2)
        if n_boot:
            nm = int(m.sum())
            draws = []
            for _ in range(int(n_boot)):
                w = np.bincount(rng.integers(0, nm, nm), minlength=nm).astype(float)
                sb = km_steps(weights=w, risk_sets=rs).survival
                draws.append(_rmst_from_km(rs.times, sb, np.zeros_like(sb), horizon)[0])
            lower, upper, method = float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a)), "bootstrap"
        else:
            z = stats.norm.ppf(1 - a)
            lower, upper, method = est - z * se, est + z * se, "analytic (R survival rmean)"
        rows.append({"group": level, "horizon": horizon, "estimate": est, "se": se, "lower": lower,
                     "upper": upper, "n": int(m.sum()), "events": int(E[m].sum()), "method": method})
    return _protect(pd.DataFrame(rows), min_cell, additive=["n", "events"], keep=["horizon"])


def _protect(table: pd.DataFrame, min_cell: int, additive, keep) -> pd.DataFrame:
    """Privacy step of the group tables: rows of fewer than ``min_cell`` customers blanked; with
    several groups, complementary suppression of the ``additive`` columns (they add up to totals a
    reader knows)."""
    if len(table) > 1:
        return privacy.complementary_suppression(table, "n", min_cell, columns=additive, keep=keep)
    return privacy.suppress(table, "n", min_cell, keep=keep)


# ---- CLV and value at risk (survey clock) ----------------------------------------------------


def _survey_clock_curves(df, entry_col, duration_col, event_col, group_col, horizon, what, min_cell):
    S, T, E = _survival_arrays(df, entry_col, duration_col, event_col, what)
    since = T - S
    if group_col is not None:
        _require_columns(df, [group_col], what)
        groups = df[group_col].astype("string").fillna("unknown").to_numpy()
        levels = sorted(pd.unique(groups))
    else:
        groups, levels = np.full(T.size, "all", dtype=object), ["all"]
    months = np.arange(1, int(horizon) + 1)
    out = {}
    for level in levels:
        m = groups == level
        if m.sum() < min_cell:   # privacy: not estimated, and no warning quoting its follow-up
            out[level] = (m, np.full(months.size, np.nan))
            continue
        km = km_steps(None, since[m], E[m])
        if horizon > since[m].max():
            warnings.warn(f"{what}: horizon {horizon} months is beyond the longest follow-up since the survey "
                          f"({since[m].max():.1f}) in group {level!r}; the survival curve is carried flat.",
                          stacklevel=3)
        out[level] = (m, km.survival_at(months))
    return months, out


def _monthly_margin(df, margin_col, margin_months, what):
    _require_columns(df, [margin_col], what)
    v = df[margin_col].to_numpy(dtype=float)
    if np.isnan(v).any():
        raise DataContractError(f"{what}: column {margin_col!r} has {int(np.isnan(v).sum())} missing values; "
                                "impute them or drop those respondents.")
    return v / float(margin_months)


def clv(df: pd.DataFrame, margin_col: str = "value", horizon_months: int = 36, annual_discount_rate: float = 0.1,
        group_col: str | None = None, *, margin_months: float = 12, entry_col: str | None = "entry",
        duration_col: str = "duration", event_col: str = "event", min_cell: int | None = None) -> pd.DataFrame:
    """Expected discounted margin over the next ``horizon_months`` after the survey, per group.

    ``CLV = monthly margin x sum_{m=1..H} S(m) / (1 + r)^(m/12)``, where S is the Kaplan-Meier
    curve of months since the survey within the group and the margin column covers
    ``margin_months`` months (12 for an annual margin). Columns: group, n, horizon_months,
    discount_rate, expected_months (undiscounted sum of S), clv_per_customer, clv_total, suppressed.
    Privacy: a group of fewer than ``min_cell`` customers has every figure blank (``suppressed``);
    the next-smallest group's n and clv_total are blanked too (complementary suppression).
    """
    if annual_discount_rate < 0:
        raise ParameterError(f"annual_discount_rate must be >= 0, got {annual_discount_rate!r}.")
    min_cell = privacy.resolve_min_cell(min_cell)
    monthly = _monthly_margin(df, margin_col, margin_months, "clv")
    months, curves = _survey_clock_curves(df, entry_col, duration_col, event_col, group_col, horizon_months, "clv",
                                          min_cell)
    disc = (1 + annual_discount_rate) ** (-months / 12.0)
    rows = []
    for level, (m, s) in curves.items():
        factor = float(np.sum(s * disc))
        rows.append({"group": level, "n": int(m.sum()), "horizon_months": int(horizon_months),
                     "discount_rate": annual_discount_rate, "expected_months": float(s.sum()),
                     "clv_per_customer": float(monthly[m].mean() * factor),
                     "clv_total": float(monthly[m].sum() * factor)})
    return _protect(pd.DataFrame(rows), min_cell, additive=["n", "clv_total"],
                    keep=["horizon_months", "discount_rate"])


def value_at_risk(df: pd.DataFrame, margin_col: str = "value", horizon_months: int = 12, group_col: str | None = None,
                  *, annual_discount_rate: float = 0.0, margin_months: float = 12, entry_col: str | None = "entry",
                  duration_col: str = "duration", event_col: str = "event",
                  min_cell: int | None = None) -> pd.DataFrame:
    """Margin expected to be lost to defection within ``horizon_months`` of the survey, per group.

    ``expected_defectors = n F(H)`` with F = 1 - KM (months since the survey);
    ``margin_lost`` = monthly margin x sum_{m=1..H} (1 - S(m)) (discounted): the margin the group
    would have earned in the window had nobody left; ``annual_margin_at_risk`` = annual margin of
    the expected defectors (``F(H) x`` total margin scaled to 12 months).
    Privacy: a group of fewer than ``min_cell`` customers has every figure blank (``suppressed``);
    the next-smallest group's n and totals are blanked too (complementary suppression).
    """
    min_cell = privacy.resolve_min_cell(min_cell)
    monthly = _monthly_margin(df, margin_col, margin_months, "value_at_risk")
    months, curves = _survey_clock_curves(df, entry_col, duration_col, event_col, group_col, horizon_months,
                                          "value_at_risk", min_cell)
    disc = (1 + annual_discount_rate) ** (-months / 12.0)
    rows = []
    for level, (m, s) in curves.items():
        f_h = float(1 - s[-1])
        rows.append({"group": level, "n": int(m.sum()), "horizon_months": int(horizon_months),
                     "defection_rate": f_h, "expected_defectors": f_h * m.sum(),
                     "margin_lost": float(monthly[m].sum() * np.sum((1 - s) * disc)),
                     "annual_margin_at_risk": float(f_h * monthly[m].sum() * 12)})
    return _protect(pd.DataFrame(rows), min_cell, additive=["n", "expected_defectors", "margin_lost",
                                                           "annual_margin_at_risk"], keep=["horizon_months"])


# ---- Cox (Efron ties, delayed entry) used by what_if: cxlab's engine ---------------------------


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
             step_tol=1e-8, max_iter=50, problem=None) -> _CoxFit:
    """Cox partial likelihood (Efron ties, delayed entry) by Newton-Raphson, with
    :mod:`cxlab.survival.engine` (one vectorised engine for all of cxlab).

    ``freq`` are integer frequency weights (a bootstrap draw: row i counted ``freq[i]`` times, tied
    copies of a death treated as separate tied deaths, exactly as if the rows were duplicated);
    ``risk`` (an engine :class:`RiskSets`) / ``center`` / ``problem`` let bootstrap draws reuse the
    full table's sorted risk sets and scaling. ``step_tol`` sets the convergence test (standardised
    covariates): the Newton decrement ``g'(-H)^-1 g`` below ``step_tol**2`` (times 1 + |loglik|;
    1e-10 for the default), after which the last Newton step is taken. ``loglik`` is exact for the
    default ``step_tol`` (from the quadratic model for looser ones, as the bootstrap uses).
    Checked against lifelines ``CoxPHFitter(entry_col=...)`` in tests/test_value.py.
    """
    if problem is None:
        problem, (mean, sd) = _cox_problem(X, entry, duration, event, risk, center)
    else:
        mean, sd = center
    problem.set_weights(freq=freq)
    tol = 1e-10 if step_tol <= 1e-6 else step_tol**2
    b0 = None if beta0 is None else np.asarray(beta0, float) * sd
    res = problem.fit(beta0=b0, tol=tol, max_iter=max_iter, exact_final=step_tol <= 1e-6, raise_on_failure=False)
    b = res.coef
    # Breslow baseline hazard (as lifelines) at the covariate ``mean``; risk sets honour delayed entry
    times, cumhaz, _ = breslow_baseline(None, None, risk=np.exp(problem.XT.T @ b + problem.center @ b),
                                        weights=freq, risk_sets=problem.rs)
    return _CoxFit(beta=b / sd, mean=mean, times=times, cumhaz=cumhaz, loglik=res.loglik,
                   iterations=res.n_iter, converged=res.converged)


def _is_cxlab_cox(model) -> bool:
    from cxlab.survival.cox import CoxModel

    return isinstance(model, CoxModel)


def _model_columns(model):
    """(names, entry_col, duration_col, event_col, coefficients on the covariates' own scale) of a
    fitted cxlab :class:`~cxlab.survival.cox.CoxModel` or lifelines ``CoxPHFitter``."""
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
        raise ParameterError("what_if needs a fitted cxlab CoxModel (cxlab.survival.CoxModel, fitted on the "
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
        from cxlab import privacy

        cols, text = [], {}
        for term, kind, var, ref in model.terms_[["term", "kind", "variable", "reference"]].itertuples(index=False):
            _require_columns(df, [var], "what_if (covariates of the Cox model)")
            if ref is not None:   # a level of a categorical control, against its reference
                if var not in text:   # rare levels pooled as CoxModel pooled them (same table, same rule)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        text[var] = privacy.pool_for_model(df[var], var)[0].astype(str)
                level = term[len(var) + 1:-1]
                cols.append((text[var] == level).to_numpy(dtype=float))
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

    def fit(self, beta0=None, freq=None, step_tol=1e-8):
        return _cox_fit(self.X0, self.entry, self.duration, self.event, beta0=beta0, freq=freq,
                        center=self.center, step_tol=step_tol, problem=self.problem)

    def evaluate(self, fit):
        """(baseline, scenario) sums; the scenario differs from the baseline only on changed rows."""
        s_base = _predict_survival(fit, self.X0, self.entry, self.months, self.grid)
        base = _summaries(s_base, self.monthly, self.months, self.horizons, self.disc)
        if not self.rows_changed.size:
            return base, dict(base)
        before = s_base[self.rows_changed]
        del s_base
        moved = _predict_survival(fit, self.X1[self.rows_changed], self.entry[self.rows_changed], self.months,
                                  self.grid_changed)
        if self.share is not None:
            moved = (1 - self.share) * before + self.share * moved
        old_part = _summaries(before, self.m_changed, self.months, self.horizons, self.disc)
        new_part = _summaries(moved, self.m_changed, self.months, self.horizons, self.disc)
        return base, {k: base[k] - old_part[k] + new_part[k] for k in base}

    def draws(self, seeds):
        """Refit on a resample of respondents (frequency weights) and predict on the observed table."""
        out = []
        n = self.duration.size
        for ss in seeds:
            rng = np.random.default_rng(ss)
            freq = np.bincount(rng.integers(0, n, n), minlength=n)
            # bootstrap refits start at the full-data estimate; stopping at a Newton step of 1e-3
            # (standardised scale) leaves an error ~1e-6, far below the sampling error
            fit = self.fit(beta0=self.beta_hat, freq=freq, step_tol=1e-3)
            out.append(self.evaluate(fit) if fit.converged else None)
        return out


def what_if(df: pd.DataFrame, model, construct: str, delta_points: float = 1.0, segment=None, *,
            horizons=(12, 24), n_boot: int = 200, seed: int = 0, discount_rate: float = 0.1,
            move_share: float | None = None, scale=(1, 5), margin_col: str | None = "value",
            margin_months: float = 12, segment_col: str = "segment_2x2",
            moved_from: str = "disappointed good customers", moved_to: str = "recognised good customers",
            dgc_col: str = "dgc", ci: float = 0.95, n_jobs: int = 1,
            dgc_threshold: float | None = None) -> pd.DataFrame:
    """What would raising a perception be worth? Expected defections, retained months and margin.

    Scenario ``delta``: raise ``construct`` by ``delta_points`` scale points (capped at the scale
    maximum) for the respondents in ``segment`` (None = everyone; a boolean mask; or the name of a
    cell of ``segment_col``). Scenario ``move_share`` (a share in (0, 1]): that share of the
    ``moved_from`` cell gets the mean ``construct`` score of the ``moved_to`` cell and, if the model
    uses it, ``dgc_col`` set to 0; the expected outcome is used (no random draw of who moves).

    ``model`` is a :class:`cxlab.survival.CoxModel` fitted on the respondent table on the tenure
    clock with ``entry_col`` (its constructs and controls define the design; no strata, penalty,
    weights or clusters), or a lifelines ``CoxPHFitter`` fitted the same way (its covariates or
    formula define the design). Each respondent's survival is
    predicted from the survey on: ``S(entry + m | x) / S(entry | x)`` with a Breslow baseline whose
    risk sets honour delayed entry. The coefficients are re-estimated with cxlab's Efron
    Newton-Raphson (identical to lifelines to numerical precision), and the percentile bootstrap
    refits the model on ``n_boot`` resamples of respondents, predicting on the observed table.

    Each bootstrap draw has its own seed spawned from ``seed``, so results do not depend on
    ``n_jobs`` (number of worker processes for the draws; -1 = all cores).

    ``dgc_threshold``: when ``construct`` is the recognition construct, the score at which a
    customer counts as recognised; a disappointed good customer raised to it or above stops being
    one (``dgc_col`` set to 0 in the scenario). None leaves ``dgc_col`` unchanged.

    Returns one row per (metric, horizon): baseline, scenario, delta (scenario - baseline), lower,
    upper (bootstrap interval of delta), n, n_changed, n_boot. Retained months are the area under
    each respondent's curve (trapezoid on a monthly grid); margin is monthly margin x S(m)
    discounted at ``discount_rate`` per year, summed over months 1..h.
    """
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
                                    "run cxlab.segments.perception_segments first.")
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
    seeds = np.random.SeedSequence(seed).spawn(int(n_boot))
    if n_jobs != 1 and n_boot > 1:
        from joblib import Parallel, delayed

        workers = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        chunks = [seeds[i::workers] for i in range(workers)]
        parts = Parallel(n_jobs=workers)(delayed(problem.draws)(chunk) for chunk in chunks if chunk)
        results = [r for part in parts for r in part]
    else:
        results = problem.draws(seeds)
    failed = sum(r is None for r in results)
    deltas = [[r[1][k] - r[0][k] for k in keys] for r in results if r is not None]
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


# ---- shifted-beta-geometric retention (Fader & Hardie 2007) ---------------------------------


def _sbg_terms(log_a, log_b, n):
    a, b = np.exp(log_a), np.exp(log_b)
    t = np.arange(1, n + 1)
    log_p = special.betaln(a + 1, b + t - 1) - special.betaln(a, b)
    log_s = special.betaln(a, b + n) - special.betaln(a, b)
    return log_p, log_s


class SBGResult:
    """Shifted-beta-geometric model of contractual retention, fitted by maximum likelihood.

    ``P(T = t) = B(a + 1, b + t - 1) / B(a, b)``, ``S(t) = B(a, b + t) / B(a, b)`` (Fader & Hardie
    2007, "How to project customer retention"). Fitted attributes: ``params_`` (alpha, beta with
    standard errors from the inverse Hessian), ``log_likelihood_``, ``survivors_``, ``fit_on_``.
    """

    def __init__(self):
        self.params_ = None

    def fit(self, survivors, fit_on: int | None = None) -> "SBGResult":
        s = np.asarray(survivors, dtype=float)
        if s.ndim != 1 or s.size < 3 or np.any(~np.isfinite(s)):
            raise ParameterError("survivors must be counts still active at the end of periods 0, 1, ..., n "
                                 "(at least 3 numbers, the first being the cohort size).")
        if np.any(np.diff(s) > 0) or np.any(s < 0):
            raise DataContractError("survivors must be non-negative and never increase from one period to the next.")
        n = s.size - 1 if fit_on is None else int(fit_on)
        if not 1 <= n <= s.size - 1:
            raise ParameterError(f"fit_on must be between 1 and {s.size - 1}, got {fit_on!r}.")
        lost = -np.diff(s[: n + 1])
        alive = s[n]

        def nll(theta):
            log_p, log_s = _sbg_terms(theta[0], theta[1], n)
            return -(np.sum(lost * log_p) + alive * log_s)

        res = optimize.minimize(nll, x0=np.zeros(2), method="BFGS", options={"gtol": 1e-10})
        res = optimize.minimize(nll, x0=res.x, method="Nelder-Mead",
                                options={"xatol": 1e-12, "fatol": 1e-12, "maxiter": 4000})
        a, b = np.exp(res.x)

        def nll_ab(ab):
            return nll(np.log(ab))

        hess = _numeric_hessian(nll_ab, np.array([a, b]))
        try:
            cov = np.linalg.inv(hess)
            se = np.sqrt(np.diag(cov))
        except np.linalg.LinAlgError:
            warnings.warn("sBG: the Hessian is singular; standard errors are not available.", stacklevel=2)
            cov, se = np.full((2, 2), np.nan), np.full(2, np.nan)
        self.survivors_ = s
        self.fit_on_ = n
        self.log_likelihood_ = float(-res.fun)
        self.variance_matrix_ = pd.DataFrame(cov, index=["alpha", "beta"], columns=["alpha", "beta"])
        # alpha and beta are positive: the 95 % interval is Wald on the log scale (delta method,
        # se(log a) = se(a) / a), so it can never reach below zero as a plain Wald interval can
        est = np.array([a, b])
        spread = np.exp(_Z95 * se / est)
        self.params_ = pd.DataFrame({"estimate": est, "se": se, "lower": est / spread, "upper": est * spread},
                                    index=pd.Index(["alpha", "beta"], name="parameter"))
        return self

    @property
    def alpha_(self) -> float:
        return float(self.params_.loc["alpha", "estimate"])

    @property
    def beta_(self) -> float:
        return float(self.params_.loc["beta", "estimate"])

    def survival(self, periods) -> np.ndarray:
        t = np.asarray(periods, dtype=float)
        a, b = self.alpha_, self.beta_
        return np.exp(special.betaln(a, b + t) - special.betaln(a, b))

    def project(self, periods: int | None = None) -> pd.DataFrame:
        """Retention curve for periods 0..``periods`` (default: the observed ones + as many again).

        Columns: period, survival (share of the cohort still active), expected_survivors,
        observed_survivors (NaN where not observed), retention_rate (S(t)/S(t-1)), fitted (period
        within the estimation window).
        """
        if self.params_ is None:
            raise ModelError("Fit the sBG model first: fit_sbg(survivors).")
        s = self.survivors_
        periods = 2 * (s.size - 1) if periods is None else int(periods)
        t = np.arange(0, periods + 1)
        surv = self.survival(t)
        observed = np.full(t.size, np.nan)
        k = min(t.size, s.size)
        observed[:k] = s[:k]
        return pd.DataFrame({"period": t, "survival": surv, "expected_survivors": surv * s[0],
                             "observed_survivors": observed,
                             "retention_rate": np.concatenate([[np.nan], surv[1:] / surv[:-1]]),
                             "fitted": t <= self.fit_on_})

    @property
    def summary(self) -> pd.DataFrame:
        out = self.params_.copy()
        out["n"] = self.survivors_[0]
        out["log_likelihood"] = self.log_likelihood_
        out["fit_on_periods"] = self.fit_on_
        return out

    def _repr_html_(self):
        return self.summary.to_html()


def _numeric_hessian(f, x, rel=1e-4):
    k = x.size
    h = rel * np.maximum(np.abs(x), 1e-3)
    H = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
    return (H + H.T) / 2


def fit_sbg(survivors, fit_on: int | None = None) -> SBGResult:
    """Fit the shifted-beta-geometric model to cohort survivor counts (periods 0..n).

    ``fit_on``: number of periods used for estimation (default all); later periods are only for
    checking the projection. See :class:`SBGResult`.
    """
    return SBGResult().fit(survivors, fit_on=fit_on)


def cohort_survivors(df: pd.DataFrame, start_col: str = "start", end_col: str = "end", snapshot=None, *,
                     period: str = "year", min_cell: int | None = None) -> pd.DataFrame:
    """Survivor counts by acquisition cohort, ready for :func:`fit_sbg`.

    Customers are grouped by the calendar year (``period="year"``) or month (``"month"``) of
    ``start_col``; ``survivors`` at period k counts those still active k periods after their start
    (``end`` missing or later than start + k periods). Only periods fully observed before
    ``snapshot`` are reported (no look-ahead). Cohorts under ``min_cell`` customers are dropped
    with a warning, and a cohort's series stops before the first period with fewer than
    ``min_cell`` survivors (as a Kaplan-Meier curve stops). Tidy columns: cohort, period, survivors, cohort_size, survival.
    """
    if period not in ("year", "month"):
        raise ParameterError(f"The 'period' parameter must be 'year' or 'month'. Got {period!r} instead.")
    min_cell = privacy.resolve_min_cell(min_cell)
    _require_columns(df, [start_col, end_col], "cohort_survivors")
    if snapshot is None:
        raise ParameterError("cohort_survivors needs snapshot= (the data cut date).")
    snapshot = pd.Timestamp(snapshot)
    start = pd.to_datetime(df[start_col])
    end = pd.to_datetime(df[end_col])
    if start.isna().any():
        raise DataContractError(f"cohort_survivors: {int(start.isna().sum())} rows have no {start_col!r}.")
    from cxlab.study import within_snapshot  # the snapshot day counts whole, whatever the time

    keep = within_snapshot(start, snapshot)
    start, end = start[keep], end[keep]
    end = end.where(within_snapshot(end, snapshot))  # later ends are invisible at the snapshot
    step = 12 if period == "year" else 1
    cohort = start.dt.to_period("Y" if period == "year" else "M")
    rows = []
    for c in sorted(cohort.unique()):
        m = (cohort == c).to_numpy()
        size = int(m.sum())
        if size < min_cell:
            # privacy: the warning never quotes the small cohort's size
            warnings.warn(f"cohort_survivors: cohort {c} has fewer than {min_cell} customers; dropped.", stacklevel=2)
            continue
        s_c, e_c = start[m], end[m]
        k = 0
        while True:
            horizon = s_c + pd.DateOffset(months=step * k)
            if (~within_snapshot(horizon, snapshot)).any():
                break  # period k not fully observed for every member (by the snapshot day)
            alive = int((e_c.isna() | (e_c > horizon)).sum())
            if privacy.curve_suppressed(alive, size, min_cell):
                break  # privacy: as a KM curve stops before fewer than min_cell are at risk
            rows.append({"cohort": str(c), "period": k, "survivors": alive, "cohort_size": size,
                         "survival": alive / size})
            k += 1
    return pd.DataFrame(rows, columns=["cohort", "period", "survivors", "cohort_size", "survival"])
