"""Profit concentration: Lorenz curve, Gini coefficient, share of the top customers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from cxlab import privacy
from cxlab.errors import ParameterError
from cxlab.insight.value._inputs import _values

__all__ = ["lorenz", "gini", "top_share"]


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


def _with_ci(stat, x, n_boot, seed, ci):
    """(estimate, lower, upper): ``stat(x)`` and, with ``n_boot`` resamples, its percentile bootstrap
    interval (NaN without)."""
    lower = upper = float("nan")
    if n_boot:
        lower, upper = _bootstrap_ci(stat, x, int(n_boot), seed, ci)
    return stat(x), lower, upper


def gini(values, *, unbiased: bool = False, n_boot: int = 0, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Gini coefficient of margin concentration (one-row tidy DataFrame).

    Convention: ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)`` (one minus twice the area under the
    Lorenz curve), so ``[1, 1, 1, 1] -> 0`` and ``[0, 0, 0, 1] -> 0.75`` (the maximum for n customers
    is ``(n-1)/n``). ``unbiased=True`` multiplies by ``n / (n - 1)`` (then ``[0, 0, 0, 1] -> 1``).
    ``n_boot > 0`` adds a percentile bootstrap interval (resampling customers).
    """
    x = _values(values)
    est, lower, upper = _with_ci(lambda v: _gini(v, unbiased), x, n_boot, seed, ci)
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
    est, lower, upper = _with_ci(lambda v: _top_share(v, top), x, n_boot, seed, ci)
    return pd.DataFrame([{"metric": "top_share", "top": top, "estimate": est, "lower": lower,
                          "upper": upper, "n": x.size}])
