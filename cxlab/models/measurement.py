"""Construct scores and their measurement quality: reliability (alpha, omega), item statistics.

A construct (``recognition``, ``empathy`` ...) is measured by several survey items. Its score is
the mean of the answered items, provided at least ``min_share`` of them are answered ("don't
know" answers are already NaN). Reliability is computed on the respondents who answered every
item of the construct (listwise):

* Cronbach's alpha with the Feldt (1965) analytic confidence interval, or a percentile bootstrap
  interval when ``n_boot > 0``;
* McDonald's omega total from a one-factor model fitted by maximum likelihood on the item
  correlation matrix (the convention of ``psych::omega``): ``omega = (sum lambda)^2 /
  ((sum lambda)^2 + sum psi)``;
* for two-item constructs, the Spearman-Brown coefficient ``2r / (1 + r)`` (omega is not
  identified: a one-factor model of two items has more parameters than correlations).

Checked against ``pingouin.cronbach_alpha`` and R ``psych`` (tests/reference/). Note that
``psych::omega(...)$omega.tot`` divides by the *observed* variance of the item sum; the
model-implied denominator used here differs from it in the third decimal on real data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cxlab.errors import DataContractError, ParameterError
from cxlab.privacy import resolve_min_cell

__all__ = ["score_constructs", "reliability", "reliability_findings", "item_statistics", "construct_correlations",
           "cronbach_alpha", "omega_total", "one_factor_ml"]

#: threshold under which alpha / omega are flagged
RELIABILITY_THRESHOLD = 0.7
#: the note of a construct measured by one item
SINGLE_ITEM_NOTE = "one item: reliability not defined"


def _check_constructs(answers_df, constructs):
    if not isinstance(constructs, dict) or not constructs:
        raise ParameterError("The 'constructs' parameter must be a non-empty dict "
                             "{construct name: [item columns]}. Got "
                             f"{type(constructs).__name__} instead.")
    problems = []
    for name, items in constructs.items():
        if isinstance(items, str) or not len(items):
            raise ParameterError(f"Construct {name!r}: items must be a non-empty list of columns, "
                                 f"got {items!r}.")
        for it in items:
            if it not in answers_df.columns:
                problems.append({"file": "answers", "column": it, "rule": "item column exists",
                                 "rows": None, "examples": f"construct {name!r}"})
            elif not pd.api.types.is_numeric_dtype(answers_df[it]):
                problems.append({"file": "answers", "column": it, "rule": "item is numeric",
                                 "rows": None, "examples": str(answers_df[it].dropna().head(3).tolist())})
    if problems:
        cols = [p["column"] for p in problems]
        raise DataContractError(f"Item columns missing or not numeric: {cols}. Check the study's "
                                "surveys.constructs mapping (and missing_codes for text answers).",
                                pd.DataFrame(problems))


def score_constructs(answers_df: pd.DataFrame, constructs: dict[str, list[str]],
                     min_share: float = 0.5) -> pd.DataFrame:
    """Construct scores: mean of the answered items, NaN when fewer than ``min_share`` answered.

    Returns a DataFrame with one column per construct, on ``answers_df``'s index.
    """
    _check_constructs(answers_df, constructs)
    if not 0 < min_share <= 1:
        raise ParameterError(f"The 'min_share' parameter of score_constructs must be a float in "
                             f"(0, 1]. Got {min_share!r} instead.")
    out = {}
    for name, items in constructs.items():
        block = answers_df[list(items)].astype(float)
        answered = block.notna().sum(axis=1)
        out[name] = block.mean(axis=1).where(answered >= min_share * len(items) - 1e-12)
    return pd.DataFrame(out, index=answers_df.index)


# ---------------------------------------------------------------------------------------------
# reliability coefficients
# ---------------------------------------------------------------------------------------------


def cronbach_alpha(items: np.ndarray) -> float:
    """Cronbach's alpha of a complete (n x k) item matrix (sample variances, ddof=1)."""
    x = np.asarray(items, dtype=float)
    k = x.shape[1]
    if k < 2:
        return np.nan
    total = x.sum(axis=1).var(ddof=1)
    if total == 0:
        return np.nan
    return k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / total)


def one_factor_ml(R: np.ndarray):
    """One-factor maximum-likelihood factor analysis of a correlation matrix.

    Minimises ``log|S| + tr(R S^-1) - log|R| - p`` with ``S = lambda lambda' + diag(psi)``, by
    the concentrated likelihood in ``psi`` (Joreskog 1967; the algorithm of R ``factanal`` and
    ``psych::fa(fm="ml")``). Returns ``(loadings, uniquenesses, heywood)``; ``heywood`` is True
    when a uniqueness hits its lower bound (0.005).
    """
    R = np.asarray(R, dtype=float)
    p = R.shape[0]

    def parts(psi):
        sc = 1 / np.sqrt(psi)
        e, v = np.linalg.eigh(R * sc[:, None] * sc[None, :])
        return e[::-1], v[:, ::-1]

    def objective(psi):
        e, _ = parts(psi)
        rest = e[1:]
        return -(np.sum(np.log(rest) - rest) - 1 + p)

    def gradient(psi):
        e, v = parts(psi)
        lam = np.sqrt(psi) * v[:, 0] * np.sqrt(max(e[0] - 1, 0))
        resid = lam**2 + psi - np.diag(R)
        return resid / psi**2

    start = np.clip((1 - 0.5 / p) / np.diag(np.linalg.inv(R)), 0.005, 1)  # as R factanal
    res = optimize.minimize(objective, start, jac=gradient, method="L-BFGS-B",
                            bounds=[(0.005, 1.0)] * p, options={"ftol": 1e-14, "gtol": 1e-10,
                                                                  "maxiter": 1000})
    psi = res.x
    e, v = parts(psi)
    lam = np.sqrt(psi) * v[:, 0] * np.sqrt(max(e[0] - 1, 0))
    if lam.sum() < 0:
        lam = -lam
    psi_out = 1 - lam**2  # on the correlation metric: uniqueness = 1 - communality
    heywood = bool(np.any(psi <= 0.005 + 1e-8))
    return lam, psi_out, heywood


def omega_total(items: np.ndarray) -> float:
    """McDonald's omega total of a complete (n x k) item matrix, k >= 3 (one-factor ML)."""
    x = np.asarray(items, dtype=float)
    if x.shape[1] < 3:
        return np.nan
    R = np.corrcoef(x, rowvar=False)
    lam, psi, _ = one_factor_ml(R)
    s = lam.sum() ** 2
    return s / (s + psi.sum())


def _min_cell(min_cell: int | None, min_n: int | None) -> int:
    """The privacy threshold: ``min_cell`` (``min_n`` is its old name), else the notebook's."""
    if min_n is not None:
        warnings.warn("'min_n' is now called 'min_cell'", DeprecationWarning, stacklevel=3)
        min_cell = min_n if min_cell is None else min_cell
    return resolve_min_cell(min_cell)


def _feldt_ci(alpha, n, k, ci):
    df1 = n - 1
    df2 = (n - 1) * (k - 1)
    a = 1 - ci
    lower = 1 - (1 - alpha) * stats.f.ppf(1 - a / 2, df1, df2)
    upper = 1 - (1 - alpha) * stats.f.ppf(a / 2, df1, df2)
    return lower, upper


def reliability(answers_df: pd.DataFrame, constructs: dict[str, list[str]], n_boot: int = 0,
                seed: int = 0, ci: float = 0.95, min_cell: int | None = None,
                min_n: int | None = None) -> pd.DataFrame:
    """Reliability of each construct on the respondents who answered all its items.

    Columns: construct, n, n_items, alpha, alpha_lower, alpha_upper (Feldt, or percentile
    bootstrap when ``n_boot > 0``), omega (omega total, one-factor ML; NaN for fewer than three
    items), spearman_brown (two-item constructs), flag (text; empty when alpha and omega are
    both at least 0.7), note.
    """
    _check_constructs(answers_df, constructs)
    min_cell = _min_cell(min_cell, min_n)
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 0):
        raise ParameterError(f"The 'n_boot' parameter of reliability must be a non-negative integer. "
                             f"Got {n_boot!r} instead.")
    rng = np.random.default_rng(seed)
    rows = []
    for name, items in constructs.items():
        x = answers_df[list(items)].astype(float).dropna().to_numpy()
        n, k = x.shape
        row = {"construct": name, "n": n, "n_items": k, "alpha": np.nan, "alpha_lower": np.nan,
               "alpha_upper": np.nan, "omega": np.nan, "spearman_brown": np.nan, "flag": "",
               "note": ""}
        if n < min_cell:
            row["n"] = np.nan   # a count of fewer than min_cell respondents is itself a small cell
            row["note"] = f"fewer than {min_cell} complete answers: not reported"
            rows.append(row)
            continue
        if k == 1:
            row["note"] = SINGLE_ITEM_NOTE
            rows.append(row)
            continue
        alpha = cronbach_alpha(x)
        row["alpha"] = alpha
        if n_boot:
            boots = [cronbach_alpha(x[rng.integers(0, n, n)]) for _ in range(n_boot)]
            row["alpha_lower"], row["alpha_upper"] = np.nanquantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
        else:
            row["alpha_lower"], row["alpha_upper"] = _feldt_ci(alpha, n, k, ci)
        notes = []
        if k == 2:
            r = np.corrcoef(x, rowvar=False)[0, 1]
            row["spearman_brown"] = 2 * r / (1 + r)
            notes.append("2 items: omega not identified, Spearman-Brown reported")
        else:
            R = np.corrcoef(x, rowvar=False)
            lam, psi, heywood = one_factor_ml(R)
            s = lam.sum() ** 2
            row["omega"] = s / (s + psi.sum())
            if heywood:
                notes.append("Heywood case in the one-factor model (a uniqueness at its bound)")
        flags = []
        if alpha < RELIABILITY_THRESHOLD:
            flags.append(f"alpha < {RELIABILITY_THRESHOLD}")
        if np.isfinite(row["omega"]) and row["omega"] < RELIABILITY_THRESHOLD:
            flags.append(f"omega < {RELIABILITY_THRESHOLD}")
        if np.isfinite(row["spearman_brown"]) and row["spearman_brown"] < RELIABILITY_THRESHOLD:
            flags.append(f"Spearman-Brown < {RELIABILITY_THRESHOLD}")
        row["flag"] = "; ".join(flags)
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)


def reliability_findings(rel: pd.DataFrame) -> list[tuple[str, str]]:
    """Findings on a :func:`reliability` table: ``(text, level)`` pairs, level finding|warning.

    Only constructs with an alpha (two items or more, enough complete answers) are judged; a
    single-item construct has no reliability, and the findings say so instead of reporting it.
    """
    judged = rel[np.isfinite(rel["alpha"].astype(float))]
    out = []
    weak = judged[(judged["alpha"] < RELIABILITY_THRESHOLD) | (judged["omega"] < RELIABILITY_THRESHOLD)]
    for _, r in weak.iterrows():
        stats_ = f"alpha {r['alpha']:.2f}" + (f", omega {r['omega']:.2f}" if np.isfinite(r["omega"]) else "")
        out.append((f"The {r['construct']} scale is not reliable enough ({stats_}; {RELIABILITY_THRESHOLD} "
                    f"wanted): read its results with care.", "warning"))
    single = rel.loc[rel["n_items"] == 1, "construct"].tolist()
    if not judged.empty and weak.empty:
        scope = "Every perception scale" if len(judged) == len(rel) else "Every perception scale of several items"
        out.append((f"{scope} is reliable (alpha from {judged['alpha'].min():.2f} to "
                    f"{judged['alpha'].max():.2f}).", "finding"))
    if single:
        names = ", ".join(single)
        what = "Every perception is" if len(single) == len(rel) else f"{names} {'is' if len(single) == 1 else 'are'}"
        what = what[0].upper() + what[1:]
        out.append((f"{what} measured by one item: reliability is not defined, so measurement error cannot be "
                    f"checked.", "finding"))
    return out


def item_statistics(answers_df: pd.DataFrame, constructs: dict[str, list[str]],
                    min_cell: int | None = None, min_n: int | None = None) -> pd.DataFrame:
    """Per item: construct, item, n (answered), mean, sd, share_missing, item_rest_r
    (correlation with the sum of the construct's other items) and alpha_if_deleted, the last
    two on the respondents who answered every item of the construct. Items answered by fewer
    than ``min_cell`` respondents show no figure (their ``n`` included)."""
    _check_constructs(answers_df, constructs)
    min_cell = _min_cell(min_cell, min_n)
    rows = []
    for name, items in constructs.items():
        block = answers_df[list(items)].astype(float)
        complete = block.dropna().to_numpy()
        nc = len(complete)
        for j, it in enumerate(items):
            col = block[it]
            n_ans = int(col.notna().sum())
            row = {"construct": name, "item": it, "n": n_ans if n_ans >= min_cell else np.nan,
                   "mean": col.mean() if n_ans >= min_cell else np.nan,
                   "sd": col.std(ddof=1) if n_ans >= min_cell else np.nan,
                   "share_missing": float(col.isna().mean()) if len(col) else np.nan,
                   "item_rest_r": np.nan, "alpha_if_deleted": np.nan}
            if len(items) >= 2 and nc >= min_cell:
                rest = np.delete(complete, j, axis=1)
                row["item_rest_r"] = np.corrcoef(complete[:, j], rest.sum(axis=1))[0, 1]
                row["alpha_if_deleted"] = cronbach_alpha(rest) if rest.shape[1] >= 2 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def construct_correlations(scores_df: pd.DataFrame, ci: float = 0.95, min_cell: int | None = None,
                           min_n: int | None = None) -> pd.DataFrame:
    """Pairwise Pearson correlations between construct scores (pairwise complete).

    Columns: construct_a, construct_b, r, lower, upper (Fisher z interval), p, n. Pairs answered
    by fewer than ``min_cell`` respondents are not reported (NaN, their ``n`` included) for privacy.
    """
    min_cell = _min_cell(min_cell, min_n)
    cols = list(scores_df.columns)
    z = stats.norm.ppf((1 + ci) / 2)
    rows = []
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            pair = scores_df[[a, b]].astype(float).dropna()
            n = len(pair)
            r = lo = hi = p = np.nan
            if n >= max(min_cell, 4):
                if pair[a].std() > 0 and pair[b].std() > 0:
                    r, p = stats.pearsonr(pair[a], pair[b])
                    fz = np.arctanh(np.clip(r, -0.9999999, 0.9999999))
                    se = 1 / np.sqrt(n - 3)
                    lo, hi = np.tanh(fz - z * se), np.tanh(fz + z * se)
            elif n:
                warnings.warn(f"construct_correlations: {a} x {b} has fewer than {max(min_cell, 4)} "
                              "complete pairs; not reported.", stacklevel=2)
            rows.append({"construct_a": a, "construct_b": b, "r": r, "lower": lo, "upper": hi,
                         "p": p, "n": n if n >= min_cell else np.nan})
    return pd.DataFrame(rows)
