"""Kaplan–Meier curves and log-rank tests on the tenure clock, with delayed entry.

**The one Kaplan–Meier of cxlab.** Every KM in the package is :func:`km_product` (the product
``prod (1 - d/n)`` and its Greenwood terms) on risk sets counted by the engine's
:class:`~cxlab.models.survival.engine.RiskSets` (``entry < t <= duration``): :func:`kaplan_meier` (curves
at every observed time, suppression by :func:`cxlab.privacy.suppress_curve`), :func:`km_steps`
(at the event times, with case or bootstrap weights: RMST, CLV, value at risk, the segment
tables, the PH test's transform) and :func:`km_read` (the curve and its CI read at a time).

Matches R's ``survival`` package: ``survfit`` (Greenwood variance, ``conf.type`` "log" (default),
"log-log", "plain"), ``quantile.survfit`` (median and its CI), ``survdiff`` (log-rank). With an
``entry_col`` the risk set at time t is ``{entry < t <= duration}`` (left truncation), as R's
``Surv(entry, duration, event)``; the log-rank test is then the counting-process version
(observed minus expected events and the hypergeometric variance over those risk sets).
"""

from __future__ import annotations

import functools
import inspect
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cxlab import privacy
from cxlab.errors import ModelError, ParameterError
from cxlab.models.survival.clock import resolve_entry
from cxlab.models.survival.engine import RiskSets

__all__ = ["KaplanMeierResult", "kaplan_meier", "logrank", "pairwise_logrank", "KMSteps", "km_product",
           "km_steps", "km_read"]

_CONF_TYPES = ("log", "log-log", "plain")
_TOL = float(np.sqrt(np.finfo(float).eps))


def _check_columns(df: pd.DataFrame, cols: list[str], what: str, numeric: int = 0) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{what} needs a pandas DataFrame. Got {type(df).__name__} instead.")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ModelError(f"{what}: column(s) {missing} not found in the table (columns: {list(df.columns)}).")
    nan_rows = df[cols].isna().any(axis=1)
    if nan_rows.any():
        bad = [c for c in cols if df[c].isna().any()]
        raise ModelError(
            f"{what}: {int(nan_rows.sum())} row(s) have missing values in {bad}. "
            "Drop or impute them upstream (in the panel step) so the exclusion is counted."
        )
    for c in cols[:numeric]:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise ModelError(f"{what}: column '{c}' must be numeric (months or 0/1). Got dtype {df[c].dtype}.")


_TIMEFIX_TOL = float(np.sqrt(np.finfo(float).eps))


def _timefix(entry, time, what):
    """Treat times that differ only by round-off as tied, as R's ``aeqSurv`` (survfit/survdiff
    ``timefix=TRUE``): sorted distinct finite times closer than sqrt(eps), absolutely or relative to
    their mean magnitude, are binned onto the first of their run."""
    both = np.concatenate([time, entry[np.isfinite(entry)]])
    y = np.unique(both[np.isfinite(both)])
    if len(y) < 2:
        return entry, time
    dy = np.diff(y)
    tied = (dy <= _TIMEFIX_TOL) | (dy / np.mean(np.abs(y)) <= _TIMEFIX_TOL)
    if not tied.any():
        return entry, time
    cuts = y[np.concatenate([[True], ~tied])]
    snap = lambda x: cuts[np.searchsorted(cuts, x, side="right") - 1]  # noqa: E731  (R findInterval)
    new_time = snap(time)
    new_entry = entry.copy()
    finite = np.isfinite(entry)
    new_entry[finite] = snap(entry[finite])
    if np.any(new_entry >= new_time):
        raise ModelError(f"{what}: an entry and an exit time differ only by round-off (interval of length 0 "
                         "after treating near-equal times as tied); fix the times upstream or pass timefix=False.")
    return new_entry, new_time


def _arrays(df, duration_col, event_col, entry_col, what, timefix=True):
    entry_col = resolve_entry(df, entry_col, duration_col)   # the table's delayed entry unless given / False
    cols = [duration_col, event_col] + ([entry_col] if entry_col else [])
    _check_columns(df, cols, what, numeric=len(cols))
    time = df[duration_col].to_numpy(float)
    event = df[event_col].to_numpy(float)
    if not np.isin(event, (0, 1)).all():
        raise ModelError(f"{what}: column '{event_col}' must be 0/1 (1 = defected).")
    if entry_col:
        entry = df[entry_col].to_numpy(float)
        bad = entry >= time
        if bad.any():
            raise ModelError(
                f"{what}: {int(bad.sum())} row(s) have {entry_col} >= {duration_col}; every respondent must "
                "leave the risk set after entering it. Fix or drop these rows upstream."
            )
    else:
        entry = np.full(len(time), -np.inf)
    if timefix:
        entry, time = _timefix(entry, time, what)
    return entry, time, event.astype(int)


def _n_at_risk(entry, time, t):
    """#{entry < t <= time} at the times ``t``: the engine's risk sets (``entry = -inf``: none)."""
    return RiskSets(time, np.zeros(time.size, bool), None if np.all(np.isneginf(entry)) else entry).at_risk_at(t)


def km_product(at_risk, events):
    """The Kaplan–Meier product and its Greenwood terms, from the number at risk ``n`` and the
    (weighted) events ``d`` at each time: ``S = cumprod(1 - d/n)`` (a time with nobody at risk
    leaves S unchanged) and ``d / (n (n - d))`` (0 without an event; infinite where everyone at
    risk defects, as R's ``std.err``). ``cumsum`` of the terms is the Greenwood variance of log S."""
    n = np.asarray(at_risk, float)
    d = np.asarray(events, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(n > 0, 1.0 - d / np.where(n > 0, n, 1), 1.0))
        greenwood = np.where(d > 0, d / (n * (n - d)), 0.0)
    return surv, greenwood


@dataclass(frozen=True)
class KMSteps:
    """A Kaplan–Meier curve at its event times (see :func:`km_steps`): ``times``, ``at_risk``,
    ``events`` (weighted), ``survival`` and ``greenwood`` (per-time terms of :func:`km_product`)."""

    times: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    survival: np.ndarray
    greenwood: np.ndarray
    risk_sets: RiskSets | None = None   # the rows' risk sets (number at risk at any time)

    def survival_at(self, t, left: bool = False) -> np.ndarray:
        """S(t), right-continuous (1 before the first event time); ``left=True``: S(t-)."""
        idx = np.searchsorted(self.times, t, side="left" if left else "right")
        return np.concatenate([[1.0], self.survival])[idx]

    def variance_at(self, t) -> np.ndarray:
        """Greenwood variance of log S(t) (0 before the first event time)."""
        idx = np.searchsorted(self.times, t, side="right")
        return np.concatenate([[0.0], np.cumsum(self.greenwood)])[idx]


def km_steps(entry=None, time=None, event=None, weights=None, *, risk_sets: RiskSets | None = None) -> KMSteps:
    """Kaplan–Meier at the event times, risk set ``entry < t <= time`` (``entry=None``: from 0).

    ``weights``: case or integer bootstrap weights (a row counted ``w`` times); ``risk_sets``: the
    engine's sorted structure of the same rows, computed once and reused (bootstrap draws)."""
    rs = RiskSets(time, event, entry) if risk_sets is None else risk_sets
    w = np.ones(rs.n) if weights is None else np.asarray(weights, float)
    n = rs.risk_sums(w)
    d = np.bincount(rs.dead_group, w[rs.dead], rs.G)
    surv, greenwood = km_product(n, d)
    return KMSteps(rs.times, n, d, surv, greenwood, rs)


def km_read(steps: KMSteps, t: float, ci: float = 0.95, conf_type: str = "log-log",
            min_cell: int | None = None) -> tuple[float, float, float]:
    """(S(t), lower, upper): the curve read at ``t`` with its ``ci`` interval (R ``survfit``'s
    ``conf.type``; "log-log" is lifelines' exponential Greenwood). Where S is 0 or 1, or its
    variance 0 or infinite, the interval is the point (nothing to spread).

    ``min_cell``: the curve's privacy rule (:func:`cxlab.privacy.curve_suppressed`, as
    :func:`kaplan_meier` and ``plot_km``): with fewer than ``min_cell`` customers at risk at ``t``,
    or in the whole group, the reading is withheld (NaN). None: no rule (a caller whose group is
    shown whole, e.g. the calibration deciles)."""
    if min_cell is not None and steps.risk_sets is not None:
        rs = steps.risk_sets
        if privacy.curve_suppressed(rs.at_risk_at([t])[0], rs.n, min_cell):
            return np.nan, np.nan, np.nan
    s = float(steps.survival_at(t))
    v = float(steps.variance_at(t))
    if not (0 < s < 1 and 0 < v < np.inf):
        return s, s, s
    lower, upper = _confint(np.array([s]), np.array([np.sqrt(v)]), stats.norm.ppf(0.5 + ci / 2), conf_type)
    return s, float(lower[0]), float(upper[0])


def _km_curve(entry, time, event, z, conf_type):
    """KM at every distinct observed time (events and censorings), as R's survfit; the number at
    risk from the engine's risk sets (:meth:`RiskSets.at_risk_at`)."""
    times, inv = np.unique(time, return_inverse=True)
    at_risk = _n_at_risk(entry, time, times).astype(np.int64)
    events = np.bincount(inv, weights=(event == 1), minlength=len(times)).astype(np.int64)
    censored = np.bincount(inv, weights=(event == 0), minlength=len(times)).astype(np.int64)
    surv, green = km_product(at_risk, events)
    with np.errstate(invalid="ignore"):
        std_err = np.sqrt(np.cumsum(green))  # standard error of log S (R: survfit's std.err)
    lower, upper = _confint(surv, std_err, z, conf_type)
    return pd.DataFrame(
        {
            "time": times,
            "at_risk": at_risk,
            "events": events,
            "censored": censored,
            "survival": surv,
            "std_err": std_err,
            "lower": lower,
            "upper": upper,
        }
    )


def _confint(p, se, z, conf_type):
    """R survival:::survfit_confint with logse=TRUE."""
    p = np.asarray(p, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            se2 = se * p * z
            lower = np.maximum(p - se2, 0.0)
            upper = np.minimum(p + se2, 1.0)
        elif conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            lower = np.exp(np.log(xx) - z * se)
            upper = np.minimum(np.exp(np.log(xx) + z * se), 1.0)
        else:  # log-log
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            se2 = z * se / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def _findq(x, y, p, tol=_TOL):
    """R survival:::findq for one probability ``p`` (x: times with 0 first, y: 1 - curve)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return np.nan
    xmax = x[-1]
    keep = ~pd.Series(y).duplicated().to_numpy()
    x, y = x[keep], y[keep]
    ok = ~np.isnan(y)
    idx = np.flatnonzero(ok)

    def approx_right(v):  # approx(v, idx, p, method="constant", f=1)
        vv = v[ok]
        if p < vv[0] or p > vv[-1]:
            return None
        return idx[np.searchsorted(vv, p, side="left")]

    i1, i2 = approx_right(y + tol), approx_right(y - tol)
    if i1 is None or i2 is None:
        quant = np.nan
    else:
        quant = (x[i1] + x[i2]) / 2
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol and i1 is not None:
        quant = (x[i1] + xmax) / 2
    return float(quant)


@dataclass
class KaplanMeierResult:
    """Kaplan–Meier curves by group (see :func:`kaplan_meier`).

    Attributes: ``survival_`` (tidy curve: group, time, at_risk, events, censored, survival,
    std_err, lower, upper, suppressed), ``median_`` (group, median, lower, upper, suppressed),
    ``conf_type``, ``alpha``, ``min_cell``.
    """

    survival_: pd.DataFrame
    median_: pd.DataFrame
    conf_type: str
    alpha: float
    min_cell: int
    _data: pd.DataFrame  # group, entry, time, event (kept for at-risk counts; never shown)

    def _risk_counts(self, times) -> pd.DataFrame:
        parts = []
        for g, d in self._data.groupby("group", sort=False):
            tm, ev = d["time"].to_numpy(), d["event"].to_numpy()
            ev_times = np.sort(tm[ev == 1])
            parts.append(pd.DataFrame({
                "group": g, "time": times.astype(float),
                "at_risk": _n_at_risk(d["entry"].to_numpy(), tm, times).astype(int),
                "cum_events": np.searchsorted(ev_times, times, side="right").astype(int)}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["group", "time", "at_risk", "cum_events"])

    def at_risk_table(self, times) -> pd.DataFrame:
        """Number at risk (``entry < t <= duration``) and cumulative events at ``times``, per group.

        ``at_risk`` counts the customers at risk at exactly ``t``; R's ``summary(survfit, times=)``
        reports the risk set at the next observed time instead, which differs under delayed entry
        when someone enters in between. Tidy: one row per (group, time); ``pivot(index="group", columns="time", values="at_risk")``
        gives the table drawn under a KM plot. ``suppressed`` flags cells under ``min_cell``.
        """
        out = self._risk_counts(np.atleast_1d(np.asarray(times, float)))
        out["suppressed"] = self._small_group(out["group"])
        return self._protect(out, "at_risk", ["at_risk", "cum_events"])

    def _group_sizes(self) -> pd.Series:
        return self._data.groupby("group", sort=False)["event"].size()

    def _small_group(self, groups: pd.Series) -> np.ndarray:
        """True for rows of a group of fewer than ``min_cell`` customers."""
        sizes = self._group_sizes()
        return groups.map(sizes).fillna(0).to_numpy() < self.min_cell

    def _protect(self, out: pd.DataFrame, count_col: str, counts: list[str]) -> pd.DataFrame:
        """Privacy: rows of a small group or with fewer than ``min_cell`` at risk have every figure
        blanked (``suppressed``); with several groups, the groups' counts at one time add up to the
        overall count (shown elsewhere), so the next-smallest group's counts are blanked too."""
        by = "time" if "time" in out.columns else None
        if out["group"].nunique() > 1:
            return privacy.complementary_suppression(out, count_col, self.min_cell, by=by, columns=counts,
                                                     keep=["time"])
        return privacy.suppress(out, count_col, self.min_cell, keep=["time"])

    def retention(self, times) -> pd.DataFrame:
        """Survival (share still a customer) at ``times``: group, time, estimate, lower, upper, at_risk.

        Matches R ``summary(survfit(...), times=times, extend=TRUE)`` (curve value at the last
        step at or before each time). Privacy: a row with fewer than ``min_cell`` at risk, or of a
        group of fewer than ``min_cell`` customers, has every figure blanked (NaN) and
        ``suppressed = True``; with several groups the next-smallest group's ``at_risk`` is blanked
        too when needed (complementary suppression: the groups add up to the overall count).
        """
        times = np.atleast_1d(np.asarray(times, float))
        counts = self._risk_counts(times)
        rows = []
        for g, curve in self.survival_.groupby("group", sort=False):
            ct = curve["time"].to_numpy()
            for t in times:
                k = np.searchsorted(ct, t, side="right") - 1
                if k < 0:
                    est, lo, up = 1.0, 1.0, 1.0
                else:
                    est, lo, up = curve["survival"].iloc[k], curve["lower"].iloc[k], curve["upper"].iloc[k]
                rows.append({"group": g, "time": float(t), "estimate": est, "lower": lo, "upper": up})
        out = pd.DataFrame(rows).merge(counts[["group", "time", "at_risk"]], on=["group", "time"], how="left")
        out["suppressed"] = self._small_group(out["group"])
        return self._protect(out, "at_risk", ["at_risk"])

    @property
    def summary(self) -> pd.DataFrame:
        """One row per group: n, events, median (with CI), suppressed (n < min_cell: figures blanked;
        with several groups the next-smallest group's n and events are blanked too, as they add up
        to the respondents' total)."""
        d = self._data.groupby("group", sort=False).agg(n=("event", "size"), events=("event", "sum")).reset_index()
        out = d.merge(self.median_.drop(columns="suppressed"), on="group", how="left")
        out = out.rename(columns={"lower": "median_lower", "upper": "median_upper"})
        out["suppressed"] = out["n"] < self.min_cell
        if len(out) > 1:
            return privacy.complementary_suppression(out, "n", self.min_cell, columns=["n", "events"])
        return privacy.suppress(out, "n", self.min_cell)

    def _repr_html_(self) -> str:
        return self.summary.to_html(index=False, float_format=lambda v: f"{v:.3g}")


def kaplan_meier(
    df: pd.DataFrame,
    duration_col: str = "duration",
    event_col: str = "event",
    entry_col: str | None = None,
    group_col: str | None = None,
    alpha: float = 0.05,
    conf_type: str = "log",
    min_cell: int | None = None,
    timefix: bool = True,
) -> KaplanMeierResult:
    """Kaplan–Meier survival with Greenwood CIs, by group, honouring delayed entry.

    R equivalent: ``survfit(Surv(entry, duration, event) ~ group, conf.type=conf_type)``
    (``Surv(duration, event)`` without ``entry_col``; ``entry_col=None`` takes the entry of a table
    that carries its clock when ``duration_col`` is its duration, ``False`` none:
    :func:`cxlab.models.survival.clock.resolve_entry`). ``conf_type``: "log" (R's default:
    ``S * exp(+-z se(log S))``, upper capped at 1), "log-log", "plain". The median and its CI
    follow R's ``quantile.survfit``: the first time the curve (lower band, upper band) reaches
    0.5 (the midpoint of a flat stretch at exactly 0.5); NaN when it never does.
    Privacy: curve rows with fewer than ``min_cell`` customers at risk, and every row of a group
    of fewer than ``min_cell`` customers, are flagged ``suppressed`` (never drawn by ``plot_km``);
    the group's median is blanked. ``min_cell=None``: the process-wide value
    (:func:`cxlab.privacy.set_min_cell`, default 10).
    ``timefix``: times differing only by round-off are tied, as R's default ``timefix=TRUE``.
    """
    if conf_type not in _CONF_TYPES:
        raise ParameterError(f"The 'conf_type' parameter of kaplan_meier must be one of {_CONF_TYPES}. Got {conf_type!r} instead.")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ParameterError(f"The 'alpha' parameter of kaplan_meier must be a float in (0, 1). Got {alpha!r} instead.")
    min_cell = privacy.resolve_min_cell(min_cell)
    entry, time, event = _arrays(df, duration_col, event_col, entry_col, "kaplan_meier", timefix)
    if group_col is not None:
        _check_columns(df, [group_col], "kaplan_meier")
        groups = df[group_col].to_numpy()
    else:
        groups = np.full(len(df), "all", dtype=object)
    if len(df) == 0:
        raise ModelError("kaplan_meier: the table has no rows.")
    data = pd.DataFrame({"group": groups, "entry": entry, "time": time, "event": event})
    z = stats.norm.ppf(1 - alpha / 2)
    curves, medians = [], []
    levels = _levels(df[group_col]) if group_col is not None else ["all"]
    for g in levels:
        d = data[data["group"] == g]
        c = _km_curve(d["entry"].to_numpy(), d["time"].to_numpy(), d["event"].to_numpy(), z, conf_type)
        c.insert(0, "group", g)
        c["suppressed"] = privacy.curve_suppressed(c["at_risk"].to_numpy(), len(d), min_cell)
        curves.append(c)
        x = np.r_[0.0, c["time"].to_numpy()]
        medians.append(
            {
                "group": g,
                "median": _findq(x, np.r_[0.0, 1 - c["survival"].to_numpy()], 0.5),
                "lower": _findq(x, np.r_[0.0, 1 - c["lower"].to_numpy()], 0.5),
                "upper": _findq(x, np.r_[0.0, 1 - c["upper"].to_numpy()], 0.5),
                "suppressed": len(d) < min_cell,
            }
        )
    survival = pd.concat(curves, ignore_index=True)
    medians = pd.DataFrame(medians)
    medians.loc[medians["suppressed"], ["median", "lower", "upper"]] = np.nan
    rank = {g: i for i, g in enumerate(levels)}
    data = data.sort_values("group", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)
    return KaplanMeierResult(survival, medians, conf_type, alpha, min_cell, data)


def _levels(groups: pd.Series) -> list:
    """Group levels in display order: a categorical's own order (e.g. low < middle < high), else
    sorted as text. Only levels present in the data."""
    present = pd.unique(groups.dropna())
    if isinstance(groups.dtype, pd.CategoricalDtype):
        return [c for c in groups.cat.categories if c in set(present)]
    return sorted(present, key=str)


def _logrank_stat(entry, time, event, groups):
    levels = sorted(pd.unique(groups), key=str)
    k = len(levels)
    gidx = pd.Index(levels).get_indexer(groups)
    ev_times, inv = np.unique(time[event == 1], return_inverse=True)
    # per event time and group: number at risk (entry < t <= time) and deaths
    N = np.column_stack([_n_at_risk(entry[gidx == j], time[gidx == j], ev_times) for j in range(k)]).astype(float)
    D = np.zeros((len(ev_times), k))
    np.add.at(D, (inv, gidx[event == 1]), 1.0)
    n, d = N.sum(1), D.sum(1)
    o_e = (D - (d / n)[:, None] * N).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(n > 1, d * (n - d) / (n - 1) / n, 0.0)
        v = np.diag(f @ N) - (N * (f / n)[:, None]).T @ N
    sub = slice(0, k - 1)
    vv = v[sub, sub]
    chi2 = float(o_e[sub] @ np.linalg.pinv(vv) @ o_e[sub])
    df = int(np.linalg.matrix_rank(vv)) if k > 1 else 0
    p = float(stats.chi2.sf(chi2, df)) if df > 0 else np.nan
    return chi2, df, p


def _small_levels(groups: np.ndarray, min_cell: int) -> list:
    counts = pd.Series(groups).value_counts()
    return [g for g, n in counts.items() if n < min_cell]


def _grouped(df, group_col, duration_col, event_col, entry_col, timefix, min_cell, what):
    """The inputs of a log-rank test: ``(min_cell, entry, time, event, groups)``, checked."""
    entry, time, event = _arrays(df, duration_col, event_col, entry_col, what, timefix)
    _check_columns(df, [group_col], what)
    return privacy.resolve_min_cell(min_cell), entry, time, event, df[group_col].to_numpy()


def _parameters_of(model):
    """The decorated function takes the parameters of ``model`` (one list, one set of defaults; its
    signature is ``model``'s) and receives every one of them by name."""
    signature = inspect.signature(model)

    def wrap(f):
        @functools.wraps(f)
        def call(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return f(**bound.arguments)

        call.__signature__ = signature
        return call

    return wrap


def logrank(
    df: pd.DataFrame,
    group_col: str,
    duration_col: str = "duration",
    event_col: str = "event",
    entry_col: str | None = None,
    timefix: bool = True,
    min_cell: int | None = None,
) -> pd.DataFrame:
    """Global log-rank test of equal survival across the groups of ``group_col``.

    R: ``survdiff(Surv(duration, event) ~ group)``; with ``entry_col`` the counting-process
    version (O - E and hypergeometric variance over ``{entry < t <= duration}``), which R's
    survdiff does not offer. One row: test, chi2, df, p, n, events, groups, groups_left_out,
    suppressed.

    Privacy: groups of fewer than ``min_cell`` customers (default: the process-wide value) are
    left out of the test (``groups_left_out``); ``n`` and ``events`` are then blanked, since the
    total minus them would give the left-out groups' counts. With fewer than two groups left, no
    test is reported (``suppressed``).
    """
    min_cell, entry, time, event, groups = _grouped(df, group_col, duration_col, event_col, entry_col, timefix,
                                                    min_cell, "logrank")
    if len(pd.unique(groups)) < 2:
        raise ModelError(f"logrank: column '{group_col}' has fewer than two groups; nothing to compare.")
    if event.sum() == 0:
        raise ModelError("logrank: no events (every customer is censored); the test is undefined.")
    small = _small_levels(groups, min_cell)
    keep = ~pd.Series(groups).isin(small).to_numpy()
    row = {"test": "log-rank", "chi2": np.nan, "df": np.nan, "p": np.nan, "n": np.nan, "events": np.nan,
           "groups": len(pd.unique(groups[keep])), "groups_left_out": len(small), "suppressed": False}
    if len(pd.unique(groups[keep])) < 2 or event[keep].sum() == 0:
        row["suppressed"] = True
        return pd.DataFrame([row])
    chi2, dof, p = _logrank_stat(entry[keep], time[keep], event[keep], groups[keep])
    row.update(chi2=chi2, df=dof, p=p)
    if not small:
        row.update(n=len(df), events=int(event.sum()))
    return pd.DataFrame([row])


@_parameters_of(logrank)
def pairwise_logrank(df, group_col, duration_col, event_col, entry_col, timefix, min_cell) -> pd.DataFrame:
    """Log-rank test for every pair of groups, with Holm-adjusted p (R: ``p.adjust(p, "holm")``).

    Columns: group_a, group_b, chi2, df, p, p_holm, n, events, suppressed. Privacy: a pair with a
    group of fewer than ``min_cell`` customers is not tested (every figure blank, ``suppressed``)
    and is not counted in the Holm adjustment.
    """
    min_cell, entry, time, event, groups = _grouped(df, group_col, duration_col, event_col, entry_col, timefix,
                                                    min_cell, "pairwise_logrank")
    small = set(_small_levels(groups, min_cell))
    rows = []
    for a, b in itertools.combinations(sorted(pd.unique(groups), key=str), 2):
        m = (groups == a) | (groups == b)
        if a in small or b in small:
            rows.append({"group_a": a, "group_b": b, "chi2": np.nan, "df": np.nan, "p": np.nan, "n": np.nan,
                         "events": np.nan, "suppressed": True})
            continue
        if event[m].sum() == 0:
            chi2, dof, p = np.nan, 1, np.nan
        else:
            chi2, dof, p = _logrank_stat(entry[m], time[m], event[m], groups[m])
        rows.append({"group_a": a, "group_b": b, "chi2": chi2, "df": dof, "p": p, "n": int(m.sum()),
                     "events": int(event[m].sum()), "suppressed": False})
    out = pd.DataFrame(rows, columns=["group_a", "group_b", "chi2", "df", "p", "n", "events", "suppressed"])
    out["p_holm"] = _holm(out["p"].to_numpy())
    return out[["group_a", "group_b", "chi2", "df", "p", "p_holm", "n", "events", "suppressed"]]


def _holm(p: np.ndarray) -> np.ndarray:
    """R ``p.adjust(p, method="holm")`` (NaNs kept, not counted)."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out
