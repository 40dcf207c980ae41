"""Loyalty models: intention to recommend (ordinal) and retention at a horizon (logistic).

* :func:`ordinal_model` — proportional-odds (cumulative logit) model of an ordered outcome such as
  ``recommend`` 0..10, or of promoter (9-10) / passive (7-8) / detractor (0-6) with
  ``bins="nps"``, fitted with statsmodels ``OrderedModel``. Constructs enter per standard
  deviation; ``.summary`` gives odds ratios, ``.ame_`` the average marginal effect of one SD on
  the probability of the top category (promoter), with delta-method intervals.
* :func:`retention_logit` — logistic model of "still a customer ``H`` months after the survey",
  on the respondent table (``time_since_survey``, ``event``). Respondents censored before ``H``
  have an unknown status: ``method="observable"`` drops them (and counts them),
  ``method="ipcw"`` keeps every respondent with a known status and weights them by the inverse
  probability of remaining uncensored (Kaplan-Meier of the censoring distribution on time since
  survey), with robust (sandwich) standard errors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from cxlab.errors import ModelError, ParameterError
from cxlab.models.survival.design import dummy_code

__all__ = ["ordinal_model", "retention_logit", "LoyaltyResult", "censoring_survival", "NPS_LABELS"]

NPS_LABELS = ("detractor", "passive", "promoter")


@dataclass
class LoyaltyResult:
    """A fitted loyalty model.

    ``summary``: term, reference, odds_ratio, lower, upper, p (constructs per SD; categorical
    controls as dummies ``control=level`` against ``reference``, the most frequent level: the one
    rule of :func:`cxlab.models.survival.design.reference_level`).
    ``ame_``: term, ame, lower, upper, p — average marginal effect of +1 SD of each construct on
    the probability of the top category (ordinal) or of being retained (retention).
    """

    summary: pd.DataFrame
    ame_: pd.DataFrame
    model: str
    outcome: str
    n_: int
    n_excluded_: int
    result_: object = field(repr=False, default=None)
    categories_: list = field(default_factory=list)
    sd_: dict = field(default_factory=dict)
    notes_: list = field(default_factory=list)

    def _repr_html_(self):
        head = (f"<p><b>{self.model}</b> of {self.outcome} (n = {self.n_}; excluded = "
                f"{self.n_excluded_})</p>")
        fmt = lambda x: f"{x:.3f}"  # noqa: E731
        return (head + self.summary.to_html(index=False, float_format=fmt)
                + "<p>Average marginal effects (per SD)</p>"
                + self.ame_.to_html(index=False, float_format=fmt))


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _check(df, cols, fn):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParameterError(f"{fn}: column(s) {missing} not found in the respondent table; "
                             f"available: {list(df.columns)}.")


def _design(data, constructs, controls, fn):
    """Constructs standardised (per SD), controls: text/category/boolean -> 0/1 dummies against the
    one reference level of every model (:func:`cxlab.models.survival.design.dummy_code`: rare levels
    pooled, the most frequent level left out), numbers as they are. Returns (X, sds, references:
    term -> reference level)."""
    parts, sds, references = [], {}, {}
    for c in constructs:
        v = data[c].astype(float)
        sd = v.std(ddof=1)
        if not np.isfinite(sd) or sd == 0:
            raise ModelError(f"{fn}: construct {c!r} has no variance on the {len(v)} analysed "
                             "respondents; drop it.")
        sds[c] = sd
        parts.append(((v - v.mean()) / sd).rename(c))
    for c in controls:
        s = data[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            parts.append(s.astype(float).rename(c))
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            empty = [str(k) for k in s.cat.categories.difference(s.dropna().unique())]
            if empty:
                warnings.warn(f"{fn}: control {c!r} has empty levels {empty}; they are dropped.",
                              stacklevel=3)
        if s.nunique(dropna=True) < 2:   # nothing to compare with (as before the one builder: no column)
            warnings.warn(f"{fn}: control {c!r} has a single level on the analysed respondents; "
                          "it is left out.", stacklevel=3)
            continue
        coded = dummy_code(s, c, style="=", what=fn)   # privacy: rare levels pooled
        if coded is None:
            continue
        coding, D = coded
        parts.append(pd.DataFrame(D, index=data.index, columns=coding.terms))
        references.update(dict.fromkeys(coding.terms, coding.reference))
    X = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=data.index)
    return X, sds, references


def _complete(df, cols, fn):
    data = df[cols].dropna()
    dropped = len(df) - len(data)
    if dropped:
        warnings.warn(f"{fn}: {dropped} of {len(df)} respondents dropped for missing values in "
                      f"{cols}.", stacklevel=3)
    return data, dropped


def _separation_check(params, bse, names, fn):
    bad = [n for n, b, s in zip(names, params, bse) if abs(b) > 15 or not np.isfinite(s) or s > 50]
    if bad:
        raise ModelError(f"{fn}: (quasi-)complete separation on {bad} (huge coefficient or "
                         "standard error): a control level or construct predicts the outcome "
                         "perfectly. Merge sparse levels or drop the term.")


def _num_jacobian(f, x, eps=1e-6):
    f0 = np.asarray(f(x))
    J = np.empty((f0.size, x.size))
    for i in range(x.size):
        h = eps * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        J[:, i] = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * h)
    return J


def _table(names, est, se, ci, transform=np.exp, est_name="odds_ratio", references=None):
    """term, [reference (the level a dummy term is compared with; None for other terms),] estimate,
    lower, upper, p."""
    z = stats.norm.ppf((1 + ci) / 2)
    est, se = np.asarray(est, float), np.asarray(se, float)
    out = pd.DataFrame({"term": names, est_name: transform(est), "lower": transform(est - z * se),
                        "upper": transform(est + z * se), "p": 2 * stats.norm.sf(np.abs(est / se))})
    if references is not None:
        out.insert(1, "reference", [references.get(t) for t in names])
    return out


# ---------------------------------------------------------------------------------------------
# ordinal model
# ---------------------------------------------------------------------------------------------


def _nps_bins(y):
    return pd.Series(np.select([y <= 6, y <= 8], [0, 1], 2), index=y.index)


def _ordinal_start(X, codes, K):
    """The maximum likelihood estimate by cxlab's Newton-Raphson for the proportional-odds model
    (:func:`cxlab.models.drivers._ordinal_fit`: analytic block Hessian, seconds at a million rows where
    statsmodels' BFGS takes minutes), in statsmodels' ``OrderedModel`` parametrisation
    ``[b, t_1, log(t_2 - t_1), ...]``; None if it fails (statsmodels then fits from scratch)."""
    from cxlab.models.drivers import _ordinal_fit

    try:
        par, _ = _ordinal_fit(X, codes, K, np.ones(len(codes)))
    except ModelError:
        return None
    p = X.shape[1]
    theta = par[p:]
    if not np.all(np.isfinite(par)) or np.any(np.diff(theta) <= 0):
        return None
    return np.concatenate([par[:p], theta[:1], np.log(np.diff(theta))])


def _analytic_derivatives(X, codes, K):
    """Score and Hessian of the proportional-odds log-likelihood in statsmodels' ``OrderedModel``
    parametrisation ``phi = [b, t_1, log(t_2 - t_1), ...]``, analytic: cxlab's block derivatives
    in ``theta = [b, t_1, t_2, ...]`` (:func:`cxlab.models.drivers._ordinal_derivatives`) through the chain
    rule ``g_phi = J' g_theta``, ``H_phi = J' H_theta J + diag(e^phi_k sum_{j >= k} g_theta_j)``
    (``dt_j / dphi_k = e^phi_k`` for ``2 <= k <= j``). statsmodels' own are numerical (hundreds of
    log-likelihood passes per Hessian: minutes at a million respondents)."""
    from cxlab.models.drivers import _ordinal_derivatives, _ordinal_ll

    p = X.shape[1]
    w = np.ones(len(codes))

    def parts(phi):
        phi = np.asarray(phi, dtype=float)
        steps = np.concatenate([phi[p:p + 1], np.exp(phi[p + 1:])])
        theta = np.concatenate([phi[:p], np.cumsum(steps)])
        J = np.eye(len(phi))
        slope = np.concatenate([[1.0], steps[1:]])           # d step_k / d phi_k
        J[p:, p:] = np.tril(np.ones((K - 1, K - 1))) * slope[None, :]
        _, lp = _ordinal_ll(X, codes, K, w, theta)
        g, H = _ordinal_derivatives(X, codes, K, w, lp)
        return J, g, H, slope

    def score(phi):
        J, g, _, _ = parts(phi)
        return J.T @ g

    def hessian(phi):
        J, g, H, slope = parts(phi)
        out = J.T @ H @ J
        tail = np.cumsum(g[p:][::-1])[::-1]           # sum_{j >= k} g_theta_j
        out[p + 1:, p + 1:] += np.diag(slope[1:] * tail[1:])
        return out

    return score, hessian


def ordinal_model(df: pd.DataFrame, outcome: str, constructs, controls=(), bins=None,
                  ci: float = 0.95, min_per_category: int = 10) -> LoyaltyResult:
    """Proportional-odds model of ``outcome`` on the constructs (per SD) and controls.

    ``bins=None`` models the observed levels of ``outcome`` (e.g. 0..10); ``bins="nps"`` models
    detractor (0-6) < passive (7-8) < promoter (9-10). The AME is the average derivative of
    P(top category) with respect to each construct in SD units (delta-method interval).
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    fn = "ordinal_model"
    constructs, controls = list(constructs), list(controls)
    if bins not in (None, "nps"):
        raise ParameterError(f"The 'bins' parameter of ordinal_model must be None or 'nps'. "
                             f"Got {bins!r} instead.")
    _check(df, [outcome] + constructs + controls, fn)
    data, dropped = _complete(df, [outcome] + constructs + controls, fn)
    y = data[outcome].astype(float)
    if bins == "nps":
        if y.min() < 0 or y.max() > 10:
            raise ModelError(f"{fn}: bins='nps' needs a 0..10 outcome; {outcome!r} ranges "
                             f"{y.min()}..{y.max()}.")
        codes = _nps_bins(y)
        labels = list(NPS_LABELS)
    else:
        levels = np.sort(y.unique())
        codes = pd.Series(np.searchsorted(levels, y.to_numpy()), index=y.index)
        labels = [float(v) for v in levels]
    counts = np.bincount(codes, minlength=len(labels))
    if len(labels) < 2 or (counts > 0).sum() < 2:
        raise ModelError(f"{fn}: {outcome!r} has a single observed category; nothing to model.")
    empty = [labels[i] for i, c in enumerate(counts) if c == 0]
    if empty:
        raise ModelError(f"{fn}: outcome categories {empty} of {outcome!r} are empty; merge them "
                         "(e.g. bins='nps').")
    sparse = [labels[i] for i, c in enumerate(counts) if c < min_per_category]
    if sparse:
        raise ModelError(f"{fn}: outcome categories {sparse} of {outcome!r} have fewer than "
                         f"{min_per_category} respondents; merge categories (bins='nps').")
    X, sds, references = _design(data, constructs, controls, fn)
    if X.shape[1] == 0:
        raise ParameterError(f"{fn}: give at least one construct or control.")
    K = len(labels)
    endog = pd.Series(pd.Categorical.from_codes(codes.to_numpy(), categories=[str(v) for v in labels],
                                                ordered=True), index=data.index)
    model = OrderedModel(endog, X, distr="logit")
    # statsmodels' Newton steps and covariance with analytic derivatives (tested against its numerical ones)
    model.score, model.hessian = _analytic_derivatives(X.to_numpy(float), codes.to_numpy(), K)
    start = _ordinal_start(X.to_numpy(float), codes.to_numpy(), K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if start is not None:   # at the maximum already: statsmodels confirms it and gives its covariance
            res = model.fit(start_params=start, method="newton", maxiter=100, disp=False)
        if start is None or not res.mle_retvals.get("converged", True):
            res = model.fit(method="bfgs", maxiter=2000, disp=False, gtol=1e-6)
            if not res.mle_retvals.get("converged", True):  # polish with Newton from there
                res = model.fit(start_params=res.params, method="newton", maxiter=100, disp=False)
    if not res.mle_retvals.get("converged", True):
        raise ModelError(f"{fn}: the ordinal model did not converge; look for separation or "
                         "sparse categories.")
    p = X.shape[1]
    names = list(X.columns)
    params = np.asarray(res.params)
    cov = np.asarray(res.cov_params())
    bse = np.sqrt(np.diag(cov))
    _separation_check(params[:p], bse[:p], names, fn)
    summary = _table(names, params[:p], bse[:p], ci, references=references)
    Xv = X.to_numpy(float)

    def ame(par):
        th = model.transform_threshold_params(par)  # -inf, t1.., inf
        eta = Xv @ par[:p]
        F = special.expit(th[K - 1] - eta)  # P(y <= K-2) -> P(top) = 1 - F
        dens = F * (1 - F)
        return np.array([np.mean(dens * par[j]) for j in range(len(constructs))])

    est = ame(params)
    J = _num_jacobian(ame, params)
    se = np.sqrt(np.diag(J @ cov @ J.T))
    ame_df = _table(constructs, est, se, ci, transform=lambda v: v, est_name="ame")
    ame_df.insert(1, "category", str(labels[-1]))
    return LoyaltyResult(summary=summary, ame_=ame_df, model="proportional-odds logit",
                         outcome=outcome if bins is None else f"{outcome} (NPS groups)",
                         n_=len(data), n_excluded_=dropped, result_=res,
                         categories_=labels, sd_=sds)


# ---------------------------------------------------------------------------------------------
# retention at a horizon
# ---------------------------------------------------------------------------------------------


def censoring_survival(time, event, at, left_limit=True):
    """Kaplan-Meier estimate of the censoring survival G at times ``at``.

    Censorings (``event == 0``) are the "events" of this KM and everyone with ``time >= t`` is at
    risk (as ``lifelines.KaplanMeierFitter(time, 1 - event)``). ``left_limit=True`` returns
    ``G(t-)``, the probability of being still under observation just before ``t``.
    """
    from cxlab.models.survival.km import km_steps   # cxlab's one Kaplan–Meier; censorings are its events

    g = km_steps(None, np.asarray(time, float), 1 - np.asarray(event, int))
    return g.survival_at(np.asarray(at, float), left=left_limit)


def retention_logit(df: pd.DataFrame, horizon_months: float, constructs, controls=(),
                    method: str = "observable", time_col: str = "time_since_survey",
                    event_col: str = "event", ci: float = 0.95, min_events: int = 10) -> LoyaltyResult:
    """Logistic model of "still a customer ``horizon_months`` after the survey".

    ``retained = 0`` if the respondent defected within the horizon, ``1`` if followed at least
    ``horizon_months`` without defecting; respondents censored earlier have an unknown status.

    * ``method="observable"``: they are dropped (``n_excluded_`` counts them) — simple, but biased
      when follow-up depends on covariates.
    * ``method="ipcw"``: the known-status respondents are weighted by ``1 / G(min(T, H)-)``
      where G is the Kaplan-Meier survival of the censoring time (time since survey); odds
      ratios come with robust (HC0 sandwich) standard errors, which treat the weights as known.

    Odds ratios are per SD of each construct; AMEs are average derivatives of P(retained).
    """
    import statsmodels.api as sm

    fn = "retention_logit"
    constructs, controls = list(constructs), list(controls)
    if method not in ("observable", "ipcw"):
        raise ParameterError(f"The 'method' parameter of retention_logit must be 'observable' or "
                             f"'ipcw'. Got {method!r} instead.")
    if not (isinstance(horizon_months, (int, float, np.number)) and horizon_months > 0):
        raise ParameterError(f"The 'horizon_months' parameter of retention_logit must be a "
                             f"positive number. Got {horizon_months!r} instead.")
    H = float(horizon_months)
    _check(df, [time_col, event_col] + constructs + controls, fn)
    data, dropped = _complete(df, [time_col, event_col] + constructs + controls, fn)
    T = data[time_col].to_numpy(float)
    E = data[event_col].to_numpy(float)
    if np.any(T < 0):
        raise ModelError(f"{fn}: {time_col!r} has negative values; it must be months since survey.")
    defected = (E == 1) & (T <= H)
    followed = T >= H
    known = defected | followed
    n_unknown = int((~known).sum())
    if known.sum() == 0:
        raise ModelError(f"{fn}: nobody has a known status at {H} months (every respondent is "
                         "censored earlier); choose a shorter horizon.")
    weights = None
    if method == "ipcw":
        G = censoring_survival(T, E, np.minimum(T, H)[known], left_limit=True)
        if np.any(G <= 0):
            raise ModelError(f"{fn}: the censoring survival reaches 0 before {H} months; choose a "
                             "shorter horizon.")
        weights = 1 / G
    sub = data.loc[known]
    y = (~defected[known]).astype(float)
    n_def, n_ret = int((y == 0).sum()), int((y == 1).sum())
    if min(n_def, n_ret) < min_events:
        raise ModelError(f"{fn}: too few events at {H} months: {n_def} defected and {n_ret} "
                         f"retained among {len(y)} respondents with known status (need at least "
                         f"{min_events} of each); choose another horizon.")
    X, sds, references = _design(sub, constructs, controls, fn)
    Xc = sm.add_constant(X, has_constant="add")
    p_all = Xc.shape[1]
    epv = min(n_def, n_ret) / max(p_all - 1, 1)
    notes = []
    if epv < 10:
        msg = f"{fn}: only {epv:.1f} events per variable (< 10); estimates may be unstable."
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if weights is None:
            res = sm.Logit(y, Xc).fit(disp=False, maxiter=200, method="newton")
            converged = res.mle_retvals.get("converged", True)
        else:
            res = sm.GLM(y, Xc, family=sm.families.Binomial(), var_weights=weights).fit(
                cov_type="HC0", maxiter=200, tol=1e-12)
            converged = res.converged
    params = np.asarray(res.params)
    cov = np.asarray(res.cov_params())
    bse = np.sqrt(np.diag(cov))
    names = list(X.columns)
    if not converged:
        raise ModelError(f"{fn}: the logistic model did not converge; look for separation.")
    _separation_check(params[1:], bse[1:], names, fn)
    summary = _table(names, params[1:], bse[1:], ci, references=references)
    Xv = Xc.to_numpy(float)
    w = np.ones(len(y)) if weights is None else weights
    idx = [1 + names.index(c) for c in constructs]

    def ame(par):
        mu = special.expit(Xv @ par)
        dens = mu * (1 - mu)
        return np.array([np.sum(w * dens) / w.sum() * par[j] for j in idx])

    est = ame(params)
    J = _num_jacobian(ame, params)
    se = np.sqrt(np.diag(J @ cov @ J.T))
    ame_df = _table(constructs, est, se, ci, transform=lambda v: v, est_name="ame")
    label = f"retained {H:g} months after the survey"
    return LoyaltyResult(summary=summary, ame_=ame_df,
                         model=f"logistic ({'IPCW, robust SE' if weights is not None else 'observable status'})",
                         outcome=label, n_=len(y), n_excluded_=n_unknown + dropped, result_=res,
                         categories_=["defected", "retained"], sd_=sds,
                         notes_=notes + [f"{n_unknown} respondents censored before {H:g} months "
                                         + ("excluded" if weights is None else
                                            "carried by inverse-probability-of-censoring weights"),
                                         f"{dropped} dropped for missing values"])
