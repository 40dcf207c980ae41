"""Retained months and their value: RMST on the tenure clock; CLV and value at risk on the survey
clock (months since the survey). Every curve is cxlab's one Kaplan–Meier
(:func:`cxlab.models.survival.km.km_steps`)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from cxlab import privacy
from cxlab.errors import ParameterError
from cxlab.models.survival.engine import RiskSets
from cxlab.models.survival.km import km_steps
from cxlab.insight.value._inputs import _monthly_margin, _protect, _require_columns, _survival_arrays

__all__ = ["rmst", "clv", "value_at_risk"]


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
            lower, upper, method = float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a)), "area under the Kaplan–Meier curve, bootstrap interval"
        else:
            z = stats.norm.ppf(1 - a)
            lower, upper, method = est - z * se, est + z * se, "area under the Kaplan–Meier curve, normal-approximation interval"
        rows.append({"group": level, "horizon": horizon, "estimate": est, "se": se, "lower": lower,
                     "upper": upper, "n": int(m.sum()), "events": int(E[m].sum()), "method": method})
    return _protect(pd.DataFrame(rows), min_cell, additive=["n", "events"], keep=["horizon"])


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
