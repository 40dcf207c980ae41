"""Proportional-hazards tests (R survival 3.x ``cox.zph``) and the documented fallbacks.

:func:`ph_test` reproduces ``cox.zph(fit, transform="km", terms=FALSE)`` of R's survival 3.x:
for each coefficient, the score test of adding ``x * g(t)`` to the fitted model, evaluated at
``(beta_hat, 0)``, where ``g`` is the transformed event time centred on its mean over events
(transform "km": 1 - the left-continuous Kaplan–Meier estimate, delayed entry honoured). The
statistic uses the full information matrix of the expanded model (Efron ties), not the
Grambsch–Therneau approximation of survival 2.x or lifelines' ``proportional_hazard_test``.

:func:`check_and_fallback` applies the documented fallback for every term that fails the test:
stratify on a failing categorical (text) control, add a time interaction
``x * log(t / t_ref)`` for a failing numeric term (construct, numeric control, 0/1 flag) (rows split at every event time, so the
time-varying effect is fitted exactly), and labels which model the findings use and why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from cxlab.errors import ModelError, ParameterError
from cxlab.models.survival.clock import NO_ENTRY
from cxlab.models.survival.cox import CoxModel, efron_statistics
from cxlab.models.survival.engine import RiskSets
from cxlab.models.survival.km import km_steps

__all__ = ["ph_test", "check_and_fallback", "FallbackResult", "split_at_event_times"]

_TRANSFORMS = ("km", "identity", "log", "rank")


def _left_km_transform(start, stop, event):
    """1 - S(t-) at every row's stop time, S = KM with risk set {start < t <= stop} (R cox.zph 'km')."""
    rs = RiskSets(stop, event, None if np.all(np.isneginf(start)) else start)
    surv = km_steps(risk_sets=rs).survival
    idx = np.searchsorted(rs.times, stop, side="left")  # number of event times strictly before t
    return 1.0 - np.r_[1.0, surv][idx]


def ph_test(model: CoxModel, transform: str = "km") -> pd.DataFrame:
    """Test proportional hazards for every coefficient of a fitted :class:`CoxModel`, and globally.

    Reproduces R survival 3.x ``cox.zph(fit, transform="km", terms=FALSE)`` (default
    ``transform="km"``; also "identity", "log", "rank"): a score test of ``x * g(t)`` per
    coefficient (1 df) and for all coefficients together (GLOBAL, p df). Returns a tidy table:
    term, variable, chi2, df, p, transform. A small p means the hazard ratio of that term changes
    over tenure. With a penalizer the penalty is ignored (R adds it to the information).
    """
    if transform not in _TRANSFORMS:
        raise ParameterError(f"The 'transform' parameter of ph_test must be one of {_TRANSFORMS}. Got {transform!r} instead.")
    if not hasattr(model, "_fit_data"):
        raise ModelError("ph_test needs a fitted CoxModel: call fit() first.")
    fd = model._fit_data
    start, stop, event = fd["start"], fd["stop"], fd["event"]
    if transform == "km":
        ttimes = _left_km_transform(start, stop, event)
    elif transform == "identity":
        ttimes = stop.astype(float)
    elif transform == "log":
        ttimes = np.log(stop)
    else:
        ttimes = stats.rankdata(stop)
    gtime = ttimes - ttimes[event == 1].mean()
    st = efron_statistics(start, stop, event, fd["X"], fd["weights"], fd["strata"], fd["beta"], gtime=gtime)
    p = len(fd["beta"])
    u = np.r_[np.zeros(p), st["u_g"]]
    imat = st["imat_full"]
    rows = []
    terms = model.terms_
    for i, name in enumerate(fd["names"]):
        kk = list(range(p)) + [p + i]
        chi2 = float(u[kk] @ np.linalg.solve(imat[np.ix_(kk, kk)], u[kk]))
        rows.append({"term": name, "variable": terms["variable"].iloc[i], "chi2": chi2, "df": 1})
    chi2 = float(u @ np.linalg.solve(imat, u))
    rows.append({"term": "GLOBAL", "variable": "GLOBAL", "chi2": chi2, "df": p})
    out = pd.DataFrame(rows)
    out["p"] = stats.chi2.sf(out["chi2"], out["df"])
    out["transform"] = transform
    return out


def split_at_event_times(df, duration_col, event_col, entry_col=None, cut_times=None):
    """Split rows into (start, stop] pieces at every event time (lifelines-style episode split).

    Returns the rows with columns ``_start``, ``_stop``, ``_event`` (event only on the last piece)
    and ``_row`` (the position of the source row), all other columns copied.
    """
    stop = df[duration_col].to_numpy(float)
    event = df[event_col].to_numpy(int)
    start = df[entry_col].to_numpy(float) if entry_col else np.zeros(len(df))
    cuts = np.unique(stop[event == 1]) if cut_times is None else np.unique(np.asarray(cut_times, float))
    # row i is cut at the cuts strictly inside (start_i, stop_i): a contiguous run of ``cuts``
    first = np.searchsorted(cuts, start, side="right")
    n_inner = np.maximum(np.searchsorted(cuts, stop, side="left") - first, 0)
    k = n_inner + 1  # pieces per row
    row = np.repeat(np.arange(len(df)), k)
    piece = np.arange(row.size) - np.repeat(np.cumsum(k) - k, k)  # 0..k_i-1 within the row
    last = piece == k[row] - 1
    cut_lo = cuts[np.minimum(first[row] + piece - 1, max(len(cuts) - 1, 0))] if len(cuts) else np.zeros(row.size)
    cut_hi = cuts[np.minimum(first[row] + piece, max(len(cuts) - 1, 0))] if len(cuts) else np.zeros(row.size)
    p_start = np.where(piece == 0, start[row], cut_lo)
    p_stop = np.where(last, stop[row], cut_hi)
    p_event = np.where(last, event[row], 0)
    rows = row
    out = df.iloc[rows].reset_index(drop=True)
    out["_start"] = p_start
    out["_stop"] = p_stop
    out["_event"] = p_event.astype(int)
    out["_row"] = rows
    return out


@dataclass
class FallbackResult:
    """Outcome of :func:`check_and_fallback`.

    ``cox``: the original model; ``fallback``: the refitted model (None if PH held);
    ``ph_``: the PH test table of the original model; ``actions_``: one row per failing term
    (term, variable, p, action); ``uses``: "cox" or "fallback"; ``label``: a sentence for the
    report saying which model the findings use and why.
    """

    cox: CoxModel
    fallback: CoxModel | None
    ph_: pd.DataFrame
    actions_: pd.DataFrame
    uses: str
    label: str
    t_ref: float | None = None
    notes: list = field(default_factory=list)

    @property
    def model(self) -> CoxModel:
        """The model the findings use."""
        return self.fallback if self.uses == "fallback" else self.cox

    @property
    def summary(self) -> pd.DataFrame:
        """Summary of the model the findings use, with a ``model`` column naming it."""
        out = self.model.summary.copy()
        out.insert(0, "model", "fallback" if self.uses == "fallback" else "cox")
        return out


def check_and_fallback(
    model: CoxModel, df: pd.DataFrame, alpha: float = 0.05, transform: str = "km", max_rows: int = 200_000
) -> FallbackResult:
    """Run :func:`ph_test` and, for every term with p < ``alpha``, apply the documented fallback.

    * categorical (dummy-coded) control -> stratify on it (its own baseline hazard; no HR reported);
    * numeric term (construct, numeric control, 0/1 flag such as ``dgc``) -> add ``x * log(t / t_ref)``: rows are split
      at every event time (exact for the partial likelihood), ``t_ref`` = median event time, so the
      main effect is the HR at ``t_ref`` and the interaction row is the change in log-HR per unit
      of log tenure. If splitting at every event time would exceed ``max_rows`` rows, rows are
      split at (at most) as many event-time quantiles as fit instead, with ``log t`` held at the
      interval's geometric midpoint — an approximation that is warned about and stated in the label.

    ``df`` must be the table ``model`` was fitted on. Returns a :class:`FallbackResult` whose
    ``label`` says which model the findings use and why.
    """
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ParameterError(f"The 'alpha' parameter of check_and_fallback must be a float in (0, 1). Got {alpha!r} instead.")
    ph = ph_test(model, transform=transform)
    # several terms are tested at once: Holm's step-down correction keeps the chance of switching
    # the fallback on by luck at ``alpha`` for the whole model (issue 9)
    is_term = ph["term"] != "GLOBAL"
    p_sorted = np.sort(ph.loc[is_term, "p"].to_numpy(float))
    k = len(p_sorted)
    holm_sorted = np.minimum(1.0, np.maximum.accumulate(p_sorted * (k - np.arange(k))))
    ph["p_holm"] = ph["p"]
    ph.loc[is_term, "p_holm"] = holm_sorted[np.searchsorted(p_sorted, ph.loc[is_term, "p"].to_numpy(float))]
    failing = ph[is_term & (ph["p_holm"] < alpha)]
    empty = pd.DataFrame(columns=["term", "variable", "p", "action"])
    rule = (f"An effect is treated as changing with tenure when its proportional-hazards test is below "
            f"{100 * alpha:g} % after correcting for testing {k} terms at once (Holm).")
    if failing.empty:
        label = f"Findings use the Cox model: no effect was found to change with tenure. {rule}"
        return FallbackResult(model, None, ph, empty, "cox", label)

    cols = model.fit_columns_
    constructs, controls, strata = model._validate_parameters()
    terms = model.terms_.set_index("term")
    to_stratify, to_interact, actions = [], [], []
    for r in failing.itertuples():
        var = r.variable
        kind = terms.loc[r.term, "kind"]
        # dummy-coded (text/categorical) controls are stratified; numeric ones, including 0/1 flags
        # such as `dgc`, keep an estimate through a time interaction
        is_cat = terms.loc[r.term, "reference"] is not None
        if kind == "control" and is_cat:
            if var not in to_stratify:
                to_stratify.append(var)
            actions.append({"term": r.term, "variable": var, "p": r.p, "action": f"stratify on {var}"})
        else:
            to_interact.append(var)
            actions.append({"term": r.term, "variable": var, "p": r.p,
                            "action": f"time interaction: the hazard ratio of {var} may change with tenure"})
    actions = pd.DataFrame(actions)

    new_controls = [c for c in controls if c not in to_stratify]
    new_strata = strata + to_stratify
    if not new_controls and not constructs and not to_interact:
        raise ModelError(
            f"check_and_fallback: every term failed the PH test and would become a stratum ({to_stratify}); no "
            "effect would be left to estimate. Report the stratified Kaplan–Meier curves instead."
        )
    t_ref = None
    data = df
    duration_col, event_col, entry_col = cols["duration_col"], cols["event_col"], cols["entry_col"]
    cluster_col = cols["cluster_col"]
    if to_interact:
        events_t = df.loc[df[event_col] == 1, duration_col].to_numpy(float)
        t_ref = float(np.median(events_t))
        cuts = np.unique(events_t)
        lo = df[entry_col].to_numpy(float) if entry_col else np.zeros(len(df))
        hi = df[duration_col].to_numpy(float)
        def rows_after_split(c):
            return int(np.sum(np.searchsorted(c, hi, "left") - np.searchsorted(c, lo, "right")) + len(df))

        n_rows = rows_after_split(cuts)
        exact = n_rows <= max_rows
        if not exact:
            k = max(1, int(len(cuts) * max_rows / n_rows))
            while True:
                cuts = np.unique(np.quantile(events_t, np.linspace(0, 1, k + 2)[1:-1]))
                if k == 1 or rows_after_split(cuts) <= max_rows:
                    break
                k = max(1, int(k * 0.8))
            warnings.warn(
                f"check_and_fallback: splitting at all {len(np.unique(events_t))} event times would create {n_rows} rows "
                f"(> max_rows={max_rows}); the time interaction uses {len(cuts)} event-time quantiles instead.",
                stacklevel=2,
            )
        data = split_at_event_times(df, duration_col, event_col, entry_col, cut_times=cuts)
        t_eval = data["_stop"].to_numpy(float)
        if not exact:  # piecewise-constant log t at the geometric midpoint of each piece
            t_eval = np.sqrt(np.maximum(data["_start"].to_numpy(float), 1e-9 * t_ref) * t_eval)
        log_t = np.log(t_eval / t_ref)
        names = []
        for var in to_interact:
            x = data[var].to_numpy(float)
            if var in model.construct_scales_:
                mean, sd = model.construct_scales_[var]
                x = (x - mean) / sd
            name = f"{var} x log(t/{t_ref:g})"
            data[name] = x * log_t
            names.append(name)
        new_controls = new_controls + names
        duration_col, event_col, entry_col = "_stop", "_event", "_start"
        if cluster_col is None and model.robust_:
            cluster_col = "_row"
    fallback = CoxModel(
        constructs,
        controls=new_controls,
        strata=new_strata or None,
        robust=model.robust_,
        weights_col=model.weights_col,
        ties=model.ties,
        penalizer=model.penalizer,
        construct_scales=model.construct_scales_,
    ).fit(data, duration_col, event_col, entry_col=entry_col or NO_ENTRY, cluster_col=cluster_col)   # the model's own clock
    if to_interact:
        is_int = fallback.terms_["term"].str.contains(" x log(t/", regex=False)
        fallback.terms_.loc[is_int, "kind"] = "time_interaction"
        fallback.terms_.loc[is_int, "variable"] = [n.split(" x log(t/")[0] for n in fallback.terms_.loc[is_int, "term"]]
    changing = ", ".join(dict.fromkeys(actions["variable"]))
    label = f"Findings use the fallback model: the effect of {changing} changes with tenure. {rule}"
    if to_interact:
        label += (f" The hazard ratio of {', '.join(to_interact)} is allowed to change with tenure and is "
                  f"stated at {t_ref:.0f} months of tenure (the median tenure at defection).")
    if to_interact and not exact:
        label += (f" The change is approximated as a step over {len(cuts) + 1} tenure intervals (an approximation "
                  "used because the exact fit would be too large).")
    if to_stratify:
        label += (f" {', '.join(to_stratify)} gets its own baseline risk instead (stratified), so no hazard ratio is "
                  "reported for it.")
    return FallbackResult(model, fallback, ph, actions, "fallback", label, t_ref)
