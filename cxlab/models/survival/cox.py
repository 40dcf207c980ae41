"""Cox proportional-hazards models for perceptions -> defection, matching R's ``coxph``.

:class:`CoxModel` fits with cxlab's Cox engine (:mod:`cxlab.models.survival.engine`: Efron ties, delayed
entry through ``entry_col``, strata, case weights, lifelines' ridge penalty; a million rows in
seconds) and adds what a driver analysis needs:
construct effects per standard deviation and per scale point, named reference levels for
categorical controls, diagnostics (events per parameter, VIF, convergence) and plain-language
:class:`~cxlab.errors.ModelError` messages for data a Cox model cannot be fitted on.

Robust (sandwich) standard errors use the Efron score residuals of R's
``residuals.coxph(type="dfbeta")`` for counting-process data, summed within ``cluster_col`` (R: ``coxph(..., robust=TRUE)`` / ``cluster=``).

:class:`TimeVaryingCoxModel` fits the same model on counting-process rows (start, stop, event,
customer id) with customer-clustered robust SEs (R: ``coxph(Surv(start, stop, event) ~ ...,
cluster=id)``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from cxlab import privacy
from cxlab.errors import ModelError, ParameterError
from cxlab.models.survival.clock import resolve_entry
from cxlab.models.survival.design import dummy_code, is_categorical
from cxlab.models.survival.engine import CoxProblem, RiskSets, _efron_statistics_loop, efron_statistics  # noqa: F401

# efron_statistics is re-exported for the PH test (cxlab.models.survival.phtest); _efron_statistics_loop
# (the slow oracle) for tests/test_survival.py

__all__ = ["CoxModel", "TimeVaryingCoxModel"]

_Z = stats.norm.ppf(0.975)


# ---- the model ----------------------------------------------------------------------------




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
    penalizer : ridge penalty with lifelines' convention, ``n * penalizer / 2 * sum((beta * sd)**2)``
        (0 = plain partial likelihood, as R).
    construct_scales : optional ``{construct: (mean, sd)}`` to reuse another model's
        standardisation (used by fallback models fitted on split rows).

    Fitted attributes: ``params_`` (log-HR per model column), ``variance_matrix_``,
    ``summary`` (tidy), ``diagnostics_`` (tidy), ``n_``, ``events_``, ``reference_levels_``,
    ``codings_`` (categorical control -> :class:`~cxlab.models.survival.design.DummyCoding`), ``construct_scales_``, ``log_likelihood_``, ``log_likelihood_null_``, ``n_iterations_``.
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
                f"The 'ties' parameter of CoxModel must be 'efron' (R's default; cxlab's CoxModel implements Efron only). Got {self.ties!r} instead."
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

    def _check_data(self, df, needed, duration_col, event_col, entry_col, categorical=()):
        """Checks of the model columns, one pass over each; returns the text codes
        (:func:`cxlab.privacy.text_codes`) of the ``categorical`` controls, read for their missing
        values and reused by the design (pooling, dummy coding)."""
        if not isinstance(df, pd.DataFrame):
            raise ParameterError(f"CoxModel.fit needs a pandas DataFrame. Got {type(df).__name__} instead.")
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ModelError(f"Cox model: column(s) {missing} not found in the table (columns: {list(df.columns)}).")
        if len(df) == 0:
            raise ModelError("Cox model: the table has no rows.")
        codes, counts, nan_rows = {}, {}, None
        for c in needed:
            s = df[c]
            if c in categorical and is_categorical(s):
                codes[c] = privacy.text_codes(s)
                isna = codes[c][0] < 0
            elif pd.api.types.is_float_dtype(s) and not isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
                x = s.to_numpy()
                if np.isfinite(np.add.reduce(x)):   # one read: a NaN (or an infinity) makes the sum not finite
                    continue
                isna = np.isnan(x)
            else:
                isna = s.isna().to_numpy()
            if isna.any():
                counts[c] = int(isna.sum())
                nan_rows = isna if nan_rows is None else nan_rows | isna
        if counts:
            raise ModelError(
                f"Cox model: {int(nan_rows.sum())} of {len(df)} rows have missing values in the model columns "
                f"(missing per column: {counts}). Drop them upstream (in the panel step, so the exclusion "
                "is counted in the exclusion flow) or impute them; the model does not drop rows silently."
            )
        for c in [duration_col, event_col] + ([entry_col] if entry_col else []):
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise ModelError(f"Cox model: column '{c}' must be numeric. Got dtype {df[c].dtype}.")
        ev = df[event_col].to_numpy(float)
        if not ((ev == 0) | (ev == 1)).all():
            raise ModelError(f"Cox model: column '{event_col}' must be 0/1 (1 = defected).")
        stop = df[duration_col].to_numpy(float)
        if entry_col is None and (stop <= 0).any():
            raise ModelError(
                f"Cox model: {int((stop <= 0).sum())} row(s) have {duration_col} <= 0; durations must be positive."
            )
        if entry_col is not None:
            bad = df[entry_col].to_numpy(float) >= stop
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
        return codes

    # -- design -----------------------------------------------------------------------------

    def _design(self, df, constructs, controls, event_col, cluster_col=None, codes=None):
        """The model columns as rows of one ``p x n`` array (``XT``; ``X = XT.T`` is a view, no copy
        of the frame), with the names, kinds, variables and reference levels of the terms."""
        codes = codes or {}
        ev = df[event_col].to_numpy(float)
        for c in constructs:
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise ModelError(f"Cox model: construct '{c}' must be numeric (a scale score). Got dtype {df[c].dtype}.")
        names = list(constructs)
        kinds, sources, refs = ["construct"] * len(names), list(constructs), [None] * len(names)
        cols = []   # the controls' columns, after the constructs'
        reference_levels, codings = {}, {}
        for c in controls:
            s = df[c]
            if is_categorical(s) or pd.api.types.is_bool_dtype(s):
                if pd.api.types.is_bool_dtype(s):
                    s = s.astype(int)
                    x = s.to_numpy(float)
                else:   # the one builder: rare levels pooled, one reference chosen once
                    coded = dummy_code(s, c, ids=df[cluster_col] if cluster_col is not None else None,
                                       codes=codes.get(c))
                    if coded is None:
                        continue
                    coding, D = coded
                    reference_levels[c] = coding.reference
                    codings[c] = coding
                    cols.extend((True, column) for column in D.T)
                    names.extend(coding.terms)
                    kinds.extend(["control"] * len(coding.levels))
                    sources.extend([c] * len(coding.levels))
                    refs.extend([coding.reference] * len(coding.levels))
                    continue
            x = s.to_numpy(float)
            if np.ptp(x) == 0:
                raise ModelError(
                    f"Cox model: control '{c}' has zero variance (always {x[0]:g}); drop it from the controls."
                )
            cols.append((False, x))
            names.append(c)
            kinds.append("control")
            sources.append(c)
            refs.append(None)
        k = len(constructs)
        XT = np.empty((k + len(cols), len(df)))
        dummy = np.zeros(len(names), dtype=bool)
        for j, (is_dummy, x) in enumerate(cols, start=k):   # a dummy's 0/1 column, or a numeric control
            dummy[j] = is_dummy
            XT[j] = x
        del cols
        # constructs, standardised in their rows of XT (no other copy of the column)
        scales = {}
        given = self.construct_scales or {}
        for j, c in enumerate(constructs):
            x = df[c].to_numpy(float)
            row = XT[j]
            if c in given:
                mean, sd = given[c]
                np.subtract(x, mean, out=row)
            else:
                base = x
                if cluster_col is not None:  # one value per customer (their first row)
                    base = df.loc[~df[cluster_col].duplicated(), c].to_numpy(float)
                mean = float(np.mean(base))
                np.subtract(x, mean, out=row)
                if len(base) < 2:
                    sd = 0.0
                elif base is x:   # the SD from the centred row: one dot product
                    sd = float(np.sqrt((row @ row) / (len(base) - 1)))
                else:
                    d = base - mean
                    sd = float(np.sqrt((d @ d) / (len(base) - 1)))
            if not np.isfinite(sd) or sd <= 1e-12 or ((c in given or sd < 1e-6 * (1 + abs(mean))) and np.ptp(x) == 0):
                raise ModelError(
                    f"Cox model: construct '{c}' has zero variance (every respondent scored {x[0]:g}), so its "
                    "effect cannot be estimated. Drop it from the constructs or check how it was scored."
                )
            scales[c] = (mean, sd)
            row /= sd
        # perfect separation on binary columns: a level with no events (or only events)
        events = ev.sum()
        for j, name in enumerate(names):
            x = XT[j]
            if dummy[j]:   # 0/1 by construction, both values present
                lo, hi = 0.0, 1.0
                vals = (lo, hi)
            elif np.unique(x[:1000]).size > 2:   # not binary: no full pass needed
                continue
            else:
                lo, hi = x.min(), x.max()   # binary? (two passes instead of sorting the column)
                vals = (lo, hi) if lo != hi and np.all((x == lo) | (x == hi)) else ()
            if len(vals) == 2:
                hi_rows = x if dummy[j] else (x == hi).astype(float)   # 0/1
                hi_events = ev @ hi_rows
                n_hi = int(round(hi_rows.sum()))
                for v, m_events, m_rows in ((lo, events - hi_events, len(x) - n_hi), (hi, hi_events, n_hi)):
                    if m_events == 0:
                        label = f"{name} = {v:g}" if "[" not in name else (name if v == 1 else f"the other levels of {sources[j]}")
                        raise ModelError(
                            f"Cox model: perfect separation on '{name}': no customer with {label} defected "
                            f"({m_rows} rows), so its hazard ratio is zero or infinite and the fit cannot "
                            f"converge. Merge small levels of '{sources[j]}', drop it, or use a penalizer (e.g. 0.1)."
                        )
        self._codings = codings
        return XT, names, kinds, sources, refs, scales, reference_levels

    # -- fit ----------------------------------------------------------------------------------

    def fit(self, df, duration_col="duration", event_col="event", entry_col=None, cluster_col=None):
        """Fit on ``df`` (one row per respondent, or counting-process rows with ``entry_col``=start).

        ``entry_col``: tenure at which the row enters the risk set (R ``Surv(entry, duration, event)``);
        None (the default) takes the entry of a table that carries its clock (the panel's respondents:
        delayed entry at the survey) when ``duration_col`` is its duration, ``False`` fits without
        delayed entry (:func:`cxlab.models.survival.clock.resolve_entry`).
        ``cluster_col``: group rows of one customer for cluster-robust SEs (R ``cluster=``).
        Returns self.
        """

        # the table's delayed entry unless entry_col is given or False (cxlab.models.survival.clock)
        entry_col = resolve_entry(df, entry_col, duration_col)
        constructs, controls, strata = self._validate_parameters()
        needed = [duration_col, event_col] + [c for c in (entry_col, cluster_col, self.weights_col) if c]
        needed += constructs + controls + strata
        codes = self._check_data(df, list(dict.fromkeys(needed)), duration_col, event_col, entry_col,
                                 categorical=controls)
        XT, names, kinds, sources, refs, scales, reference_levels = self._design(
            df, constructs, controls, event_col, cluster_col, codes
        )
        X = XT.T   # n x p view
        p, n = XT.shape
        events = int(df[event_col].sum())
        if events < p:
            raise ModelError(
                f"Cox model: {events} events for {p} parameters ({', '.join(names)}); a Cox model needs more "
                "events than parameters (and ideally 10 per parameter). Use fewer controls, merge levels, or "
                "a longer follow-up."
            )
        start = df[entry_col].to_numpy(float) if entry_col else np.full(n, -np.inf)
        stop = df[duration_col].to_numpy(float)
        event = df[event_col].to_numpy(int)
        weights = np.ones(n)
        if self.weights_col:
            weights = df[self.weights_col].to_numpy(float)
            if (weights <= 0).any():
                raise ModelError(f"Cox model: weights in '{self.weights_col}' must be positive.")
        if strata:
            keys = df[strata].astype(str)
            strata_codes = (pd.MultiIndex.from_frame(keys).factorize()[0] if len(strata) > 1
                            else pd.factorize(keys[strata[0]])[0])
        else:
            strata_codes = np.zeros(n, dtype=int)
        problem = CoxProblem(X, RiskSets(stop, event, start if entry_col else None, strata_codes if strata else None),
                             weights=weights)
        # lifelines' ridge convention: n * penalizer / 2 * ||beta * sd||^2 (sd of the model columns)
        ridge = self.penalizer * n * X.std(axis=0, ddof=1) ** 2 if self.penalizer else None
        # covariance of the model columns from the engine's centred copy (one n x p product), for the
        # size check below and the VIFs
        with threadpool_limits(1, "blas"):
            cov = problem.XT @ problem.XT.T / max(n - 1, 1)
        sd0 = np.sqrt(np.diag(cov) * (max(n - 1, 1) / n))   # X.std(axis=0)
        try:
            with threadpool_limits(1, "blas"):  # thin products (n x p): BLAS threads only add overhead
                res = problem.fit(residuals=False, raise_on_failure=False, ridge=ridge)
        except ModelError as exc:  # an empty risk set or similar data problem
            raise ModelError(self._convergence_message(X, names, str(exc))) from None
        beta, V = res.coef, res.variance
        if not res.converged:
            raise ModelError(self._convergence_message(X, names, res.message, res.last_step))
        if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(V))):
            raise ModelError(self._convergence_message(X, names, "non-finite estimates"))
        robust = self.robust or cluster_col is not None
        # score residuals (an n x p pass costing a third of the fit) only for the sandwich; without
        # a penalty the engine's final score is the score at the estimate
        if robust:
            with threadpool_limits(1, "blas"):
                stats_ = problem.statistics(beta)
            score = stats_["score"]
        else:
            score = res.score
        # converged? the Newton step left at the estimate (0 at the maximum; penalised fits skip this)
        step = V @ score if self.penalizer == 0 else np.zeros(p)
        if float(score @ step) > 1e-4 or np.any(np.abs(beta * sd0) > 15):
            raise ModelError(self._convergence_message(X, names, "the partial likelihood is not at its maximum "
                                                       "(a coefficient keeps growing)", step))
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
        self.codings_ = dict(self._codings)   # variable -> DummyCoding (what_if re-encodes new rows)
        self.construct_scales_ = scales
        self.log_likelihood_ = float(res.loglik)
        self.log_likelihood_null_ = float(res.loglik_null)
        self.n_iterations_ = int(res.n_iter)
        self.robust_ = robust
        self.terms_ = pd.DataFrame({"term": names, "kind": kinds, "variable": sources, "reference": refs})
        self._fit_data = {
            "start": start, "stop": stop, "event": event, "X": X, "weights": weights,
            "strata": strata_codes, "beta": beta, "names": names,
        }
        self.fit_columns_ = {
            "duration_col": duration_col, "event_col": event_col, "entry_col": entry_col, "cluster_col": cluster_col,
        }
        self.gradient_max_ = float(np.max(np.abs(score))) if self.penalizer == 0 else np.nan
        self.diagnostics_ = self._diagnostics(cov, names)
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

    def _diagnostics(self, cov, names):
        """Events per parameter, VIFs (from ``cov``, the covariance of the model columns) and
        convergence, as a tidy table; warnings for the ones that fail."""
        p = cov.shape[0]
        epp = self.events_ / p
        rows = [
            {"check": "events_per_parameter", "term": None, "value": epp, "threshold": 10.0,
             "status": "warn" if epp < 10 else "ok",
             "message": f"{self.events_} events for {p} parameters" + (" (< 10 per parameter: estimates may be unstable)" if epp < 10 else "")},
        ]
        if p > 1:
            sd = np.sqrt(np.diag(cov))
            corr = cov / np.outer(sd, sd)
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
