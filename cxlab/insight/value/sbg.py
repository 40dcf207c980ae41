"""Shifted-beta-geometric retention (Fader & Hardie 2007) and the cohort survivor counts it is
fitted on."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from cxlab import privacy
from cxlab.errors import DataContractError, ModelError, ParameterError
from cxlab.insight.value._inputs import _require_columns

__all__ = ["SBGResult", "fit_sbg", "cohort_survivors"]

_Z95 = stats.norm.ppf(0.975)


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
    if snapshot is None:
        raise ParameterError("cohort_survivors needs snapshot= (the data cut date).")
    snapshot = pd.Timestamp(snapshot)
    step = 12 if period == "year" else 1
    counts = (_cohort_counts_engine if _is_ibis(df) else _cohort_counts_frame)(df, start_col, end_col, snapshot,
                                                                              period, step)
    from cxlab.study import within_snapshot  # the snapshot day counts whole, whatever the time

    rows = []
    for c, (size, last_start, alive) in sorted(counts.items()):
        if size < min_cell:
            # privacy: the warning never quotes the small cohort's size
            warnings.warn(f"cohort_survivors: cohort {c} has fewer than {min_cell} customers; dropped.", stacklevel=2)
            continue
        for k in range(len(alive)):
            if not within_snapshot(pd.Series([last_start + pd.DateOffset(months=step * k)]), snapshot).all():
                break  # period k not fully observed for every member (by the snapshot day)
            if privacy.curve_suppressed(alive[k], size, min_cell):
                break  # privacy: as a KM curve stops before fewer than min_cell are at risk
            rows.append({"cohort": c, "period": k, "survivors": int(alive[k]), "cohort_size": size,
                         "survival": alive[k] / size})
    return pd.DataFrame(rows, columns=["cohort", "period", "survivors", "cohort_size", "survival"])


def _is_ibis(df) -> bool:
    return type(df).__module__.startswith("ibis.")


def _periods(first_start: pd.Timestamp, snapshot: pd.Timestamp, step: int) -> int:
    """How many periods (0, 1, ...) can be fully observed at most, from the earliest start."""
    months = (snapshot.year - first_start.year) * 12 + snapshot.month - first_start.month
    return max(months // step + 1, 0)


def _cohort_counts_frame(df: pd.DataFrame, start_col, end_col, snapshot, period, step) -> dict:
    """{cohort: (size, last start, [alive at period 0, 1, ...])} from a pandas frame."""
    from cxlab.study import within_snapshot

    _require_columns(df, [start_col, end_col], "cohort_survivors")
    start = pd.to_datetime(df[start_col])
    end = pd.to_datetime(df[end_col])
    if start.isna().any():
        raise DataContractError(f"cohort_survivors: {int(start.isna().sum())} rows have no {start_col!r}.")
    keep = within_snapshot(start, snapshot)
    start, end = start[keep], end[keep]
    end = end.where(within_snapshot(end, snapshot))  # later ends are invisible at the snapshot
    if start.empty:
        return {}
    cohort = start.dt.to_period("Y" if period == "year" else "M").astype(str)
    out = {}
    for c in cohort.unique():
        m = (cohort == c).to_numpy()
        s_c, e_c = start[m], end[m]
        alive = [int((e_c.isna() | (e_c > s_c + pd.DateOffset(months=step * k))).sum())
                 for k in range(_periods(s_c.max(), snapshot, step))]   # no period past the cohort's last observable one
        out[c] = (int(m.sum()), s_c.max(), alive)
    return out


def _cohort_counts_engine(t, start_col, end_col, snapshot, period, step) -> dict:
    """The same counts as one aggregate on the table's engine (one row per cohort comes back)."""
    import ibis

    from cxlab.study import snapshot_cutoff

    missing = [c for c in (start_col, end_col) if c not in t.columns]
    if missing:
        raise DataContractError(f"cohort_survivors: the table has no column {missing[0]!r}.")
    s, e = t[start_col].cast("timestamp"), t[end_col].cast("timestamp")
    n_missing = int(t.filter(s.isnull()).count().to_pyarrow().as_py())
    if n_missing:
        raise DataContractError(f"cohort_survivors: {n_missing} rows have no {start_col!r}.")
    cutoff = ibis.literal(pd.Timestamp(snapshot_cutoff(snapshot)).to_pydatetime())
    # an end after the snapshot needs no masking here: every horizon counted is before the cut
    known = t.filter(s < cutoff).select(s=s, e=e)
    first = known.aggregate(first=known.s.min()).to_pyarrow().column("first")[0].as_py()
    if first is None:
        return {}
    n_k = _periods(pd.Timestamp(first), snapshot, step)
    label = (known.s.year().cast("string") if period == "year"
             else known.s.strftime("%Y-%m"))
    alive = {f"a{k}": ibis.ifelse(known.e.isnull() | (known.e > known.s + ibis.interval(months=step * k)), 1, 0).sum()
             for k in range(n_k)}
    res = (known.mutate(cohort=label).group_by("cohort")
           .aggregate(size=known.s.count(), last=known.s.max(), **alive).to_pyarrow().to_pylist())
    return {r["cohort"]: (int(r["size"]), pd.Timestamp(r["last"]), [int(r[f"a{k}"]) for k in range(n_k)])
            for r in res}
