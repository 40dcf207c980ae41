"""How well does a Cox model on the constructs predict defection? Cross-validated discrimination,
overall accuracy and calibration.

Metrics (each computed on the held-out fold of a stratified K-fold split with a fixed seed; the
Cox model and the censoring distribution are estimated on the training folds only):

* ``harrell_c`` — Harrell's concordance (Harrell et al. 1982): among comparable pairs, the share
  where the customer who defects first has the higher risk score (ties in risk count 1/2).
* ``uno_c`` — Uno's IPCW concordance (Uno et al. 2011, Stat Med 30:1105), weights ``G(T_i)^-2``
  from the Kaplan–Meier estimate of the censoring distribution in the training folds,
  truncated at ``tau`` = the largest follow-up time in the training folds.
* ``auc_<t>m`` — cumulative/dynamic AUC at ``t`` months (Uno et al. 2007; Hung & Chiang 2010),
  ``sksurv.metrics.cumulative_dynamic_auc``.
* ``integrated_brier_score`` — IPCW Brier score (Graf et al. 1999) integrated over a grid of 50
  times between the 5th and 95th percentile of follow-up, ``sksurv.metrics.integrated_brier_score``.

The table reports the mean over folds with a t-interval over folds (``mean ± t(K-1) · sd/√K``);
folds share training data, so this interval is a rough guide, not an exact confidence interval.

**Delayed entry.** The Cox model is fitted on the tenure clock with delayed entry at the survey
(``entry_col``), so no time before the survey is credited to the perception. Evaluation is done on
**time since entry** (``duration - entry``, i.e. months since the survey), the horizon a
researcher predicts over: the risk score is the linear predictor, and the predicted probability of
staying ``t`` more months is the conditional survival ``S(entry + t | x) / S(entry | x)`` of the
fitted model. The censoring distribution and Kaplan–Meier in the calibration table are on the same
time-since-entry clock. Without ``entry_col`` both clocks coincide.

Harrell's and Uno's C are computed by an O(n log² n) pair count (merge-sort counting) so they scale
to a million respondents; tests check them against ``lifelines.utils.concordance_index`` and
``sksurv.metrics.concordance_index_ipcw``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cxlab.errors import ModelError, ParameterError
from cxlab.survival.aft import _prepare_design

__all__ = [
    "EvaluationResult",
    "evaluate_survival",
    "calibration",
    "harrell_c",
    "uno_c",
]

MIN_CELL = 10


# ---- concordance by pair counting ------------------------------------------------------------


def _later_smaller_counts(rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position i: #{j > i: rank_j < rank_i} and #{j > i: rank_j == rank_i}.

    Bottom-up merge counting, vectorised per level: O(n log² n) time, O(n) memory.
    """
    n = rank.shape[0]
    less = np.zeros(n, dtype=np.int64)
    leq = np.zeros(n, dtype=np.int64)
    rank = rank.astype(np.int64)
    m = np.int64(rank.max() + 2) if n else np.int64(1)
    idx = np.arange(n, dtype=np.int64)
    width = 1
    while width < n:
        run = idx // width
        pair = run // 2
        left = (run % 2) == 0
        right_keys = np.sort(pair[~left] * m + rank[~left])
        li = idx[left]
        base = pair[li] * m
        key = base + rank[li]
        start = np.searchsorted(right_keys, base, side="left")
        less[li] += np.searchsorted(right_keys, key, side="left") - start
        leq[li] += np.searchsorted(right_keys, key, side="right") - start
        width *= 2
    return less, leq - less


def _weighted_concordance(time, event, risk, weights) -> tuple[float, float, float]:
    """Weighted concordance sum over events i of ``w_i`` times the pairs (i, j) that are comparable.

    A pair is comparable when ``T_j > T_i`` or ``T_j == T_i`` and j is censored (Harrell's and
    sksurv's convention). Concordant: ``risk_i > risk_j``; tied risks count 1/2.
    Returns (numerator, denominator, number of comparable pairs).
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    risk = np.asarray(risk, dtype=float)
    weights = np.asarray(weights, dtype=float)
    n = time.shape[0]
    _, rank = np.unique(risk, return_inverse=True)
    # key order: time ascending, events before censored at the same time, then risk descending
    order = np.lexsort((-rank, ~event, time))
    t, e, r, w = time[order], event[order], rank[order], weights[order]
    less, ties = _later_smaller_counts(r)
    # groups of equal key (same time, same event status): pairs inside a group are not comparable
    new_group = np.r_[True, (t[1:] != t[:-1]) | (e[1:] != e[:-1])]
    group = np.cumsum(new_group) - 1
    group_end = np.r_[np.flatnonzero(new_group)[1:], n]  # one past the last index of each group
    end = group_end[group]
    comparable = n - end  # positions after my group: strictly later keys
    # remove later members of my own group from the counts (sorted by risk descending inside)
    pos = np.arange(n)
    # inside a group risk ranks descend, so key2 = group*M - rank is non-decreasing overall
    key2 = group.astype(np.int64) * np.int64(r.max() + 2) - r
    first_smaller = np.searchsorted(key2, key2, side="right")  # first later member with a lower risk
    less_in_group = end - first_smaller
    ties_in_group = first_smaller - 1 - pos
    less = less - less_in_group
    ties = ties - ties_in_group
    ev = e & (w != 0)
    numerator = float(np.sum(w[ev] * (less[ev] + 0.5 * ties[ev])))
    denominator = float(np.sum(w[ev] * comparable[ev]))
    return numerator, denominator, float(np.sum(comparable[ev]))


def harrell_c(time, event, risk) -> float:
    """Harrell's C of a risk score (higher = defects sooner). Equals
    ``lifelines.utils.concordance_index(time, -risk, event)``."""
    num, den, _ = _weighted_concordance(time, event, risk, np.ones(len(time)))
    if den == 0:
        raise ModelError("There are no comparable pairs (no events before the last follow-up time): C is undefined.")
    return num / den


def _censoring_km(train_time, train_event):
    from sksurv.nonparametric import CensoringDistributionEstimator

    y = np.empty(len(train_time), dtype=[("event", bool), ("time", float)])
    y["event"], y["time"] = np.asarray(train_event, bool), np.asarray(train_time, float)
    return CensoringDistributionEstimator().fit(y)


def uno_c(train_time, train_event, time, event, risk, tau: float | None = None) -> float:
    """Uno's C: concordance with weights ``G(T_i)^-2`` for events ``T_i < tau``, where ``G`` is the
    Kaplan–Meier estimate of the censoring distribution in the training data. ``tau`` defaults to
    the largest training time. Equals ``sksurv.metrics.concordance_index_ipcw(..., tau)``."""
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    train_time = np.asarray(train_time, float)
    if tau is None:
        tau = float(train_time.max())
    cens = _censoring_km(train_time, train_event)
    use = event & (time < tau)
    w = np.zeros(len(time))
    if use.any():
        g = cens.predict_proba(time[use])
        if (g <= 0).any():
            raise ModelError("The censoring distribution reaches zero before tau: choose a smaller tau.")
        w[use] = 1.0 / g**2
    num, den, _ = _weighted_concordance(time, event, risk, w)
    if den == 0:
        raise ModelError("There are no comparable pairs before tau: Uno's C is undefined.")
    return num / den


# ---- the cross-validated evaluation ----------------------------------------------------------


def _structured(event, time):
    y = np.empty(len(time), dtype=[("event", bool), ("time", float)])
    y["event"], y["time"] = np.asarray(event, bool), np.asarray(time, float)
    return y


def _fit_cox(train: pd.DataFrame, covariates, duration_col, event_col, entry_col):
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    cph = CoxPHFitter()
    try:
        cph.fit(
            train[covariates + [duration_col, event_col] + ([entry_col] if entry_col else [])],
            duration_col=duration_col,
            event_col=event_col,
            entry_col=entry_col,
        )
    except (ConvergenceError, np.linalg.LinAlgError) as exc:
        raise ModelError(f"The Cox model did not converge on a training fold: {str(exc).splitlines()[0]}") from exc
    return cph


def _predict(cph, test: pd.DataFrame, covariates, entry, horizons) -> tuple[np.ndarray, np.ndarray]:
    """Linear predictor and conditional survival P(T > entry + h | T > entry, x) for each horizon."""
    lp = cph.predict_log_partial_hazard(test[covariates]).to_numpy(float)  # centred, as the baseline
    bch = cph.baseline_cumulative_hazard_.iloc[:, 0]
    grid, h0 = bch.index.to_numpy(float), bch.to_numpy(float)

    def cumhaz(t):
        i = np.searchsorted(grid, t, side="right") - 1
        return np.where(i >= 0, h0[np.clip(i, 0, None)], 0.0)

    h_entry = cumhaz(entry)
    horizons = np.atleast_1d(np.asarray(horizons, float))
    dh = cumhaz(entry[:, None] + horizons[None, :]) - h_entry[:, None]
    surv = np.exp(-dh * np.exp(lp)[:, None])
    return lp, surv


def _fold_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, int]:
    v = values[np.isfinite(values)]
    k = len(v)
    if k == 0:
        return np.nan, np.nan, np.nan, 0
    est = float(v.mean())
    if k < 2:
        return est, np.nan, np.nan, k
    half = stats.t.ppf(0.5 + level / 2, k - 1) * v.std(ddof=1) / np.sqrt(k)
    return est, est - half, est + half, k


@dataclass
class EvaluationResult:
    """Cross-validated evaluation of a Cox model on the constructs.

    ``summary``: metric, estimate, lower, upper, n_folds. ``folds_``: one row per fold and metric
    (fold, metric, value, tau). ``times``: horizons (months since entry) of the AUC rows.
    ``ibs_times_``: the grid the integrated Brier score is integrated over.
    """

    summary: pd.DataFrame
    folds_: pd.DataFrame
    times: tuple
    ibs_times_: np.ndarray
    n_: int
    n_events_: int
    clock: str = "time since entry (months since the survey)"
    notes: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:
        return (
            f"<p><b>Cross-validated evaluation</b> ({self.summary['n_folds'].max()} folds, n = {self.n_}, "
            f"events = {self.n_events_}; clock: {self.clock})</p>"
            + self.summary.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        )


def _check_eval_params(n_splits, times, n_events):
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ParameterError(f"The 'n_splits' parameter must be an int >= 2. Got {n_splits!r} instead.")
    if n_events < n_splits:
        raise ModelError(f"Only {n_events} events: too few for {n_splits}-fold cross-validation.")
    try:
        t = tuple(float(x) for x in np.atleast_1d(times))
    except (TypeError, ValueError):
        raise ParameterError(f"The 'times' parameter must be a sequence of positive numbers (months). Got {times!r}.")
    if any(x <= 0 for x in t):
        raise ParameterError(f"The 'times' parameter must be positive numbers (months). Got {times!r} instead.")
    return t


def _folds(frame: pd.DataFrame, event_col: str, n_splits: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(frame)), frame[event_col].to_numpy()))


def evaluate_survival(
    df: pd.DataFrame,
    constructs: Sequence[str],
    controls: Sequence[str] = (),
    duration_col: str = "duration",
    event_col: str = "event",
    entry_col: str | None = None,
    n_splits: int = 5,
    times: Sequence[float] = (12, 24),
    seed: int = 0,
) -> EvaluationResult:
    """Cross-validated Harrell's C, Uno's C, cumulative/dynamic AUC at ``times`` and the
    integrated Brier score of a Cox model on ``constructs`` (+ ``controls``).

    Stratified K-fold (by event) with ``seed``; the Cox model (tenure clock, delayed entry at
    ``entry_col``) and the censoring distribution come from the training folds only. Metrics are
    computed on time since entry (see the module docstring). An AUC horizon outside a test fold's
    follow-up is left out for that fold (with a warning).
    """
    from sksurv.metrics import cumulative_dynamic_auc, integrated_brier_score

    design = _prepare_design(df, constructs, controls, duration_col, event_col, entry_col)
    frame, covs = design.frame, design.covariates
    n_events = int(frame[event_col].sum())
    times = _check_eval_params(n_splits, times, n_events)
    entry = frame[entry_col].to_numpy(float) if entry_col else np.zeros(len(frame))
    since = frame[duration_col].to_numpy(float) - entry
    event = frame[event_col].to_numpy(bool)
    ibs_grid = np.linspace(*np.percentile(since, [5, 95]), 50)

    rows, skipped = [], []
    for k, (tr, te) in enumerate(_folds(frame, event_col, n_splits, seed)):
        cph = _fit_cox(frame.iloc[tr], covs, duration_col, event_col, entry_col)
        horizons = np.r_[ibs_grid, times]
        lp, surv = _predict(cph, frame.iloc[te], covs, entry[te], horizons)
        t_tr, e_tr, t_te, e_te = since[tr], event[tr], since[te], event[te]
        tau = float(t_tr.max())
        rows.append((k, "harrell_c", harrell_c(t_te, e_te, lp), np.nan))
        rows.append((k, "uno_c", uno_c(t_tr, e_tr, t_te, e_te, lp, tau=tau), tau))
        # sksurv needs test times within the training follow-up: a test customer followed beyond
        # the last training time is censored there (only matters for horizons < tau).
        clip = t_te > tau
        t_te_c = np.where(clip, tau, t_te)
        e_te_c = e_te & ~clip
        y_tr, y_te = _structured(e_tr, t_tr), _structured(e_te_c, t_te_c)
        lo, hi = t_te_c.min(), t_te_c.max()
        for j, t in enumerate(times):
            if not (lo <= t < hi) or t >= tau:
                skipped.append((k, t))
                rows.append((k, f"auc_{t:g}m", np.nan, np.nan))
                continue
            auc, _ = cumulative_dynamic_auc(y_tr, y_te, lp, [t])
            rows.append((k, f"auc_{t:g}m", float(auc[0]), np.nan))
        grid_ok = (ibs_grid >= lo) & (ibs_grid < hi) & (ibs_grid < tau)
        if grid_ok.sum() >= 2:
            ibs = integrated_brier_score(y_tr, y_te, surv[:, : len(ibs_grid)][:, grid_ok], ibs_grid[grid_ok])
        else:
            ibs = np.nan
        rows.append((k, "integrated_brier_score", float(ibs), np.nan))
    if skipped:
        warnings.warn(
            f"AUC horizons outside a test fold's follow-up were left out: {sorted(set(t for _, t in skipped))} "
            f"months in {len(set(k for k, _ in skipped))} fold(s).",
            stacklevel=2,
        )
    folds = pd.DataFrame(rows, columns=["fold", "metric", "value", "tau"])
    order = ["harrell_c", "uno_c"] + [f"auc_{t:g}m" for t in times] + ["integrated_brier_score"]
    summary = []
    for metric in order:
        est, lower, upper, k = _fold_ci(folds.loc[folds["metric"] == metric, "value"].to_numpy(float))
        summary.append({"metric": metric, "estimate": est, "lower": lower, "upper": upper, "n_folds": k})
    return EvaluationResult(
        summary=pd.DataFrame(summary),
        folds_=folds,
        times=times,
        ibs_times_=ibs_grid,
        n_=len(frame),
        n_events_=n_events,
        notes=["CI over folds: mean ± t(K-1)·sd/√K; folds share training data, so it is approximate."],
    )


def calibration(
    df: pd.DataFrame,
    constructs: Sequence[str],
    controls: Sequence[str] = (),
    duration_col: str = "duration",
    event_col: str = "event",
    entry_col: str | None = None,
    time: float = 12,
    bins: int = 10,
    n_splits: int = 5,
    seed: int = 0,
    min_cell: int = MIN_CELL,
) -> pd.DataFrame:
    """Calibration of the Cox model's predicted defection within ``time`` months of the survey.

    Each respondent's predicted defection ``1 - S(entry + time | x) / S(entry | x)`` comes from
    the Cox model fitted without their fold (out-of-fold, same K-fold as
    :func:`evaluate_survival`). Respondents are grouped into ``bins`` risk groups (deciles by
    default) of the predicted defection; in each group the observed defection is
    ``1 - KM(time)`` on time since entry, with the Kaplan–Meier 95 % CI (exponential Greenwood).

    Columns: decile, n, predicted_defection, observed_defection, lower, upper, suppressed.
    ``n`` is always shown (the column sums to the analysed number of respondents); in a group of
    fewer than ``min_cell`` respondents every other figure is suppressed (NaN). The observed
    figure is also NaN when nobody in the group is followed ``time`` months.
    """
    from lifelines import KaplanMeierFitter

    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ParameterError(f"The 'bins' parameter must be an int >= 2. Got {bins!r} instead.")
    design = _prepare_design(df, constructs, controls, duration_col, event_col, entry_col)
    frame, covs = design.frame, design.covariates
    n_events = int(frame[event_col].sum())
    (time,) = _check_eval_params(n_splits, (time,), n_events)
    entry = frame[entry_col].to_numpy(float) if entry_col else np.zeros(len(frame))
    since = frame[duration_col].to_numpy(float) - entry
    event = frame[event_col].to_numpy(bool)
    predicted = np.empty(len(frame))
    for tr, te in _folds(frame, event_col, n_splits, seed):
        cph = _fit_cox(frame.iloc[tr], covs, duration_col, event_col, entry_col)
        _, surv = _predict(cph, frame.iloc[te], covs, entry[te], [time])
        predicted[te] = 1.0 - surv[:, 0]
    group = pd.qcut(pd.Series(predicted).rank(method="first"), bins, labels=False).to_numpy() + 1
    rows = []
    for g in range(1, bins + 1):
        m = group == g
        n = int(m.sum())
        row = {"decile": g, "n": n, "predicted_defection": np.nan, "observed_defection": np.nan,
               "lower": np.nan, "upper": np.nan, "suppressed": n < min_cell}
        if n >= min_cell:
            row["predicted_defection"] = float(predicted[m].mean())
            if since[m].max() >= time:
                km = KaplanMeierFitter().fit(since[m], event[m])
                s = float(km.survival_function_at_times(time).iloc[0])
                ci = km.confidence_interval_survival_function_
                i = np.searchsorted(ci.index.to_numpy(float), time, side="right") - 1
                s_lo, s_hi = ci.iloc[i, 0], ci.iloc[i, 1]
                row.update(observed_defection=1 - s, lower=float(1 - s_hi), upper=float(1 - s_lo))
        rows.append(row)
    return pd.DataFrame(rows)
