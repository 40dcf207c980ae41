"""Perception segments: the 2x2 of self-status x recognition and the "disappointed good customers".

A respondent who rates themself a good customer (self-status top-two-box) but does not feel
recognised (recognition below the scale midpoint) is a *disappointed good customer*. This module
builds the 2x2, describes each cell (size, defection, margin) with small cells suppressed, compares
the cells' hazards, and tests whether a cell holds more than its share of would-be defectors.

Clocks: defection probabilities within 12/24 months and would-be defectors are on the survey
clock (months since the survey, ``duration - entry``); hazard ratios are on the tenure clock with
delayed entry at the survey.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cxlab.data.panel import perception_bands  # noqa: F401  (the panel bands the margin with it too)
from cxlab.errors import CxlabError, DataContractError, ModelError, ParameterError
from cxlab.models.survival.engine import RiskSets
from cxlab.models.survival.km import km_read, km_steps
from cxlab.insight.value._inputs import _require_columns, _survival_arrays

__all__ = [
    "SEGMENTS_2X2",
    "perception_segments",
    "segment_table",
    "segment_hazard_ratios",
    "dgc_contrasts",
    "would_be_defectors",
    "WouldBeDefectors",
    "perception_bands",
    "band_retention_table",
    "concentration_by_cell",
]

DGC = "disappointed good customers"
#: the four cells, in display order (good/recognised on the rows/columns of the 2x2)
SEGMENTS_2X2 = [DGC, "recognised good customers", "modest but recognised", "modest and unrecognised"]
UNCLASSIFIED = "unclassified"


def perception_segments(df: pd.DataFrame, recognition_col: str, self_status_col: str = "self_status",
                        scale=(1, 5), good_customer_min: float | None = None,
                        recognised_min: float | None = None, segment_col: str = "segment_2x2") -> pd.DataFrame:
    """Add the 2x2 perception segment to a copy of ``df`` (column ``segment_2x2``).

    * good customer: ``self_status >= good_customer_min`` (default: top-two-box, the two highest
      scale points, e.g. 4 or 5 on 1..5);
    * recognised: ``recognition >= recognised_min`` (default: the scale midpoint ``(lo + hi) / 2``,
      so "below the midpoint" means not recognised).

    Cells: "disappointed good customers" (good, not recognised), "recognised good customers",
    "modest but recognised", "modest and unrecognised"; rows with a missing input are
    "unclassified" (counted in a warning and in ``out.attrs["unclassified"]``).
    """
    _require_columns(df, [recognition_col, self_status_col], "perception_segments")
    lo, hi = scale
    if not hi > lo:
        raise ParameterError(f"The 'scale' parameter must be (lowest, highest) with highest > lowest. Got {scale!r}.")
    good_min = hi - 1 if good_customer_min is None else good_customer_min
    rec_min = (lo + hi) / 2 if recognised_min is None else recognised_min
    rec = pd.to_numeric(df[recognition_col], errors="coerce")
    status = pd.to_numeric(df[self_status_col], errors="coerce")
    for name, col in ((recognition_col, rec), (self_status_col, status)):
        out_of_scale = col.notna() & ((col < lo) | (col > hi))
        if out_of_scale.any():
            raise DataContractError(
                f"perception_segments: column {name!r} has {int(out_of_scale.sum())} values outside the scale "
                f"{scale} (e.g. rows {df.index[out_of_scale][:5].tolist()}); check missing codes or scale=.")
    good = status >= good_min
    recognised = rec >= rec_min
    cell = np.select([good & ~recognised, good & recognised, ~good & recognised, ~good & ~recognised],
                     SEGMENTS_2X2, default=UNCLASSIFIED)
    missing = rec.isna() | status.isna()
    cell = np.where(missing, UNCLASSIFIED, cell)
    out = df.copy()
    out[segment_col] = pd.Categorical(cell, categories=SEGMENTS_2X2 + [UNCLASSIFIED])
    n_unc = int(missing.sum())
    out.attrs["unclassified"] = n_unc
    out.attrs["segment_rule"] = {"good_customer_min": good_min, "recognised_min": rec_min, "scale": tuple(scale)}
    if n_unc:
        warnings.warn(f"perception_segments: {n_unc} of {len(df)} respondents have no {recognition_col!r} or "
                      f"{self_status_col!r} answer and are 'unclassified'.", stacklevel=2)
    return out


def _km_at(since, event, horizon, ci=0.95, min_cell=None):
    """KM defection probability within ``horizon`` with a log-log interval (as R/lifelines);
    withheld (NaN) where fewer than ``min_cell`` customers are still at risk (the curve's rule)."""
    s, s_lo, s_hi = km_read(km_steps(None, since, event), horizon, ci, "log-log", min_cell=min_cell)
    return 1 - s, 1 - s_hi, 1 - s_lo


def _cells(df, segment_col):
    _require_columns(df, [segment_col], "segments")
    cells = [c for c in SEGMENTS_2X2 if (df[segment_col] == c).any()]
    if (df[segment_col] == UNCLASSIFIED).any():
        cells.append(UNCLASSIFIED)
    return cells


def segment_table(df: pd.DataFrame, min_cell: int | None = None, *, segment_col: str = "segment_2x2",
                  entry_col: str = "entry", duration_col: str = "duration", event_col: str = "event",
                  margin_col: str | None = "value", horizons=(12, 24)) -> pd.DataFrame:
    """One row per cell: n, share, events, defection within 12/24 months (KM on months since the
    survey, log-log 95 % CI), margin total and share. Cells with fewer than ``min_cell``
    respondents have their numbers replaced by NaN and ``suppressed = True``; the next-smallest
    cell's n, share, events and margin are blanked too (complementary suppression: the cells add up
    to the respondents' total). A defection figure with fewer than ``min_cell`` respondents of the
    cell still at risk at its horizon is withheld (NaN), as a Kaplan–Meier curve stops there.
    ``min_cell=None``: the process-wide value (default 10).
    """
    from cxlab import privacy

    min_cell = privacy.resolve_min_cell(min_cell)
    S, T, E = _survival_arrays(df, entry_col, duration_col, event_col, "segment_table")
    since = T - S
    cells = _cells(df, segment_col)
    seg = df[segment_col].astype(object).to_numpy()
    margin = None
    if margin_col is not None:
        _require_columns(df, [margin_col], "segment_table")
        margin = df[margin_col].to_numpy(dtype=float)
    total_margin = np.nansum(margin) if margin is not None else np.nan
    rows = []
    for c in cells:
        m = seg == c
        n = int(m.sum())
        row = {"cell": c, "n": n, "share": n / len(df), "events": int(E[m].sum())}
        for h in horizons:
            est, lo, hi = _km_at(since[m], E[m], h, min_cell=min_cell)
            row[f"defection_{h}m"], row[f"defection_{h}m_lower"], row[f"defection_{h}m_upper"] = est, lo, hi
        if margin is not None:
            row["margin_total"] = float(np.nansum(margin[m]))
            row["margin_share"] = row["margin_total"] / total_margin if total_margin else np.nan
        row["suppressed"] = n < min_cell
        if row["suppressed"]:
            for k in list(row):
                if k not in ("cell", "suppressed"):
                    row[k] = np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    additive = [c for c in ("n", "share", "events", "margin_total", "margin_share") if c in out.columns]
    return privacy.complementary_suppression(out, "n", min_cell, columns=additive)


def segment_hazard_ratios(df: pd.DataFrame, reference: str = "recognised good customers", *,
                          segment_col: str = "segment_2x2", entry_col: str = "entry",
                          duration_col: str = "duration", event_col: str = "event", covariates=None,
                          min_cell: int | None = None, ci: float = 0.95) -> pd.DataFrame:
    """Cox hazard ratio of each cell against ``reference`` (tenure clock, delayed entry at the survey).

    cxlab's :class:`~cxlab.models.survival.CoxModel` (Efron ties, delayed entry at ``entry_col``) with one
    indicator per non-reference cell (plus optional numeric ``covariates``); "unclassified"
    respondents are left out. Columns: cell, hr, lower, upper, p, n, events, suppressed (cells
    under ``min_cell`` are not estimated).
    """
    from cxlab import privacy
    from cxlab.models.survival.cox import CoxModel

    min_cell = privacy.resolve_min_cell(min_cell)
    _require_columns(df, [segment_col, entry_col, duration_col, event_col] + list(covariates or []),
                     "segment_hazard_ratios")
    d = df[df[segment_col].astype(object) != UNCLASSIFIED]
    counts = d[segment_col].astype(object).value_counts()
    if reference not in SEGMENTS_2X2:
        raise ParameterError(f"segment_hazard_ratios: the reference {reference!r} is not a cell of the 2 x 2 grid; "
                             f"cells are {', '.join(SEGMENTS_2X2)}.")
    if counts.get(reference, 0) < min_cell:
        # every ratio would compare with a group below min_cell: none is shown (privacy: the
        # warning does not quote the small count)
        warnings.warn(f"The reference cell ({reference}) has fewer than {min_cell} respondents: no hazard "
                      f"ratio between the cells is shown.", stacklevel=2)
        out = pd.DataFrame([{"cell": c, "hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan,
                             "n": np.nan, "events": np.nan, "reference": c == reference, "suppressed": True}
                            for c in SEGMENTS_2X2])
        out.attrs.update(log_hr_cov=pd.DataFrame(), ci=ci)
        return out
    small = [c for c in SEGMENTS_2X2 if 0 < counts.get(c, 0) < min_cell]
    d = d[~d[segment_col].astype(object).isin(small)]
    cells = [c for c in SEGMENTS_2X2 if c != reference and counts.get(c, 0) >= min_cell]
    X = pd.DataFrame({f"cell_{i}": (d[segment_col].astype(object) == c).astype(float).to_numpy()
                      for i, c in enumerate(cells)}, index=d.index)
    for cov in covariates or []:
        X[cov] = pd.to_numeric(d[cov], errors="raise")
    X[entry_col], X[duration_col], X[event_col] = d[entry_col], d[duration_col], d[event_col]
    terms = [c for c in X.columns if c not in (entry_col, duration_col, event_col)]
    fitted = pd.DataFrame()
    if terms:   # else only the reference cell is large enough: nothing to compare it with
        try:
            cph = CoxModel([], controls=terms).fit(X, duration_col, event_col, entry_col=entry_col)
        except CxlabError as exc:  # separation, no events, ...
            raise ModelError(f"segment_hazard_ratios: the Cox model could not be fitted ({exc}).") from exc
        fitted = cph.summary.set_index("term")
    z = stats.norm.ppf(0.5 + ci / 2)
    rows = [{"cell": reference, "hr": 1.0, "lower": np.nan, "upper": np.nan, "p": np.nan,
             "n": int(counts[reference]), "events": int(d.loc[d[segment_col] == reference, event_col].sum()),
             "reference": True, "suppressed": False}]
    for i, c in enumerate(cells):
        b, se = fitted.loc[f"cell_{i}", "log_hr"], fitted.loc[f"cell_{i}", "se"]
        rows.append({"cell": c, "hr": float(np.exp(b)), "lower": float(np.exp(b - z * se)),
                     "upper": float(np.exp(b + z * se)), "p": float(fitted.loc[f"cell_{i}", "p"]),
                     "n": int(counts[c]), "events": int(d.loc[d[segment_col] == c, event_col].sum()),
                     "reference": False, "suppressed": False})
    for c in small:
        rows.append({"cell": c, "hr": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan,
                     "n": int(counts[c]), "events": np.nan, "reference": False, "suppressed": True})
    # privacy: the cells' n add up to the classified respondents, so a small cell's n is protected
    # by blanking the next-smallest cell's n and events too (complementary suppression)
    out = privacy.complementary_suppression(pd.DataFrame(rows), "n", min_cell, columns=["n", "events"])
    # the fit's covariance of the cells' log hazard ratios, for direct comparisons (dgc_contrasts)
    names = {f"cell_{i}": c for i, c in enumerate(cells)}
    out.attrs["log_hr_cov"] = (cph.variance_matrix_.loc[list(names), list(names)].rename(index=names, columns=names)
                               if terms else pd.DataFrame())
    out.attrs["ci"] = ci
    return out


def dgc_contrasts(hr: pd.DataFrame, focus: str = "disappointed good customers") -> pd.DataFrame:
    """The focus cell's hazard compared directly with each other cell's, from the fit behind ``hr``
    (a :func:`segment_hazard_ratios` table): log ratio b_focus - b_cell with variance
    v_focus + v_cell - 2 cov, so each interval uses the covariance of the two estimates, not the
    overlap of two intervals that both lean on the reference cell.

    Columns: cell, hr (focus cell's hazard / the cell's), lower, upper (at the table's level),
    suppressed. A cell withheld in ``hr`` is withheld here; every ratio is withheld when the focus
    cell itself is."""
    if "log_hr_cov" not in hr.attrs:
        raise ParameterError("dgc_contrasts takes the table segment_hazard_ratios returns (it carries the fit's "
                             "covariance).")
    cov, z = hr.attrs["log_hr_cov"], stats.norm.ppf(0.5 + hr.attrs["ci"] / 2)
    t = hr.set_index("cell")
    shown = t.index[~t["suppressed"].fillna(False).astype(bool) & np.isfinite(t["hr"].astype(float))]

    def log_hr(c):   # (estimate, variance index) of a cell; the reference cell is 0 with no variance
        return (0.0, None) if t.loc[c, "reference"] else (float(np.log(t.loc[c, "hr"])), c)

    rows = []
    for c in t.index.drop(focus, errors="ignore"):
        row = {"cell": c, "hr": np.nan, "lower": np.nan, "upper": np.nan, "suppressed": True}
        if focus in shown and c in shown:
            (bf, f), (bc, k) = log_hr(focus), log_hr(c)
            var = ((cov.loc[f, f] if f else 0.0) + (cov.loc[k, k] if k else 0.0)
                   - (2 * cov.loc[f, k] if f and k else 0.0))
            b, se = bf - bc, float(np.sqrt(var))
            row.update(hr=float(np.exp(b)), lower=float(np.exp(b - z * se)), upper=float(np.exp(b + z * se)),
                       suppressed=False)
        rows.append(row)
    return pd.DataFrame(rows, columns=["cell", "hr", "lower", "upper", "suppressed"])


@dataclass
class WouldBeDefectors:
    """Result of :func:`would_be_defectors`: a tidy ``table`` and a ``finding`` sentence."""

    table: pd.DataFrame
    finding: str

    @property
    def summary(self) -> pd.DataFrame:
        return self.table

    def _repr_html_(self):
        return f"<p>{self.finding}</p>" + self.table.to_html(index=False)


def _pct(x):
    from cxlab.insight import narrative

    return narrative.pct(x)   # the house format: "29 %"


def would_be_defectors(df: pd.DataFrame, horizon: float = 12, *, segment_col: str = "segment_2x2",
                       entry_col: str = "entry", duration_col: str = "duration", event_col: str = "event",
                       n_boot: int = 500, seed: int = 0, min_cell: int | None = None, ci: float = 0.95,
                       focus: str = DGC) -> WouldBeDefectors:
    """Which cell holds the would-be defectors? Share of defectors within ``horizon`` vs share of customers.

    Expected defectors of a cell = n_cell x F_cell(horizon), F = 1 - KM on months since the survey
    (censoring handled; a plain count of observed defections would miss those surveyed recently).
    ``ratio`` = defector share / customer share (> 1: the cell holds more than its share). Percentile
    bootstrap intervals resample respondents; ``p_highest_share`` / ``p_highest_ratio`` are the
    bootstrap probabilities that the cell ranks first. "unclassified" respondents are left out.

    Returns :class:`WouldBeDefectors` with ``table`` (cell, n, customer_share, expected_defectors,
    defector_share, defector_share_lower/upper, ratio, lower, upper, p_highest_share,
    p_highest_ratio, suppressed) and ``finding`` (a sentence about ``focus`` built from the numbers).
    """
    from cxlab import privacy

    min_cell = privacy.resolve_min_cell(min_cell)
    S, T, E = _survival_arrays(df, entry_col, duration_col, event_col, "would_be_defectors")
    seg = df[segment_col].astype(object).to_numpy() if segment_col in df.columns else None
    if seg is None:
        raise DataContractError(f"would_be_defectors: column {segment_col!r} not found; run perception_segments first.")
    keep = seg != UNCLASSIFIED
    since, E, seg = (T - S)[keep], E[keep], seg[keep]
    cells = [c for c in SEGMENTS_2X2 if (seg == c).any()]
    if len(cells) < 2:
        raise DataContractError("would_be_defectors: fewer than two segments have respondents.")
    risk = [RiskSets(since[seg == c], E[seg == c]) for c in cells]

    def shares(weights):
        n = np.array([w.sum() for w in weights])
        f = np.array([1 - km_steps(weights=w, risk_sets=r).survival_at(horizon) for r, w in zip(risk, weights)])
        exp_def = n * f
        cust = n / n.sum()
        dshare = exp_def / exp_def.sum() if exp_def.sum() > 0 else np.full(n.size, np.nan)
        return n, exp_def, cust, dshare, dshare / cust

    ones = [np.ones(r.n) for r in risk]
    n, exp_def, cust, dshare, ratio = shares(ones)
    if exp_def.sum() == 0:
        raise ModelError(f"would_be_defectors: no defections within {horizon} months of the survey.")
    rng = np.random.default_rng(seed)
    idx_cell = np.concatenate([np.full(r.n, i) for i, r in enumerate(risk)])
    pos = np.concatenate([np.arange(r.n) for r in risk])
    boot_d, boot_r = [], []
    for _ in range(int(n_boot)):
        pick = rng.integers(0, idx_cell.size, idx_cell.size)
        w = [np.bincount(pos[pick[idx_cell[pick] == i]], minlength=r.n).astype(float)
             for i, r in enumerate(risk)]
        if any(x.sum() == 0 for x in w):
            continue
        _, _, _, bd, br = shares(w)
        boot_d.append(bd)
        boot_r.append(br)
    boot_d, boot_r = np.array(boot_d), np.array(boot_r)
    a = (1 - ci) / 2
    small = n < min_cell
    rows = []
    for i, c in enumerate(cells):
        row = {"cell": c, "horizon": horizon, "n": int(n[i]), "customer_share": cust[i],
               "expected_defectors": exp_def[i], "defector_share": dshare[i]}
        if len(boot_d):
            row["defector_share_lower"], row["defector_share_upper"] = np.nanquantile(boot_d[:, i], [a, 1 - a])
            row["ratio"], (row["lower"], row["upper"]) = ratio[i], np.nanquantile(boot_r[:, i], [a, 1 - a])
            row["p_highest_share"] = float(np.mean(np.nanargmax(boot_d, axis=1) == i))
            row["p_highest_ratio"] = float(np.mean(np.nanargmax(boot_r, axis=1) == i))
        else:
            row.update(defector_share_lower=np.nan, defector_share_upper=np.nan, ratio=ratio[i], lower=np.nan,
                       upper=np.nan, p_highest_share=np.nan, p_highest_ratio=np.nan)
        row["suppressed"] = bool(small[i])
        if small[i]:
            for k in list(row):
                if k not in ("cell", "horizon", "suppressed"):
                    row[k] = np.nan
        rows.append(row)
    table = privacy.complementary_suppression(
        pd.DataFrame(rows), "n", min_cell, keep=["horizon"],
        columns=["n", "customer_share", "expected_defectors", "defector_share", "defector_share_lower",
                 "defector_share_upper"])
    finding = _finding(table, focus, horizon, ci)
    return WouldBeDefectors(table=table, finding=finding)


def _finding(table, focus, horizon, ci):
    shown = table[~table["suppressed"]]
    if focus not in set(shown["cell"]):
        return f"The cell {focus!r} has too few respondents to be reported."
    r = shown.set_index("cell").loc[focus]
    if not (np.isfinite(r["customer_share"]) and np.isfinite(r["defector_share"])):
        # its shares are blanked to protect a smaller cell (complementary suppression)
        return (f"The shares of the {focus} cell are not shown, to protect a cell of fewer respondents; "
                f"its ratio of defector share to customer share is {r['ratio']:.2f} "
                f"({100 * ci:.0f} % CI {r['lower']:.2f}–{r['upper']:.2f}).")
    top_share = shown.loc[shown["defector_share"].idxmax(), "cell"]
    top_ratio = shown.loc[shown["ratio"].idxmax(), "cell"]
    level = f"{100 * ci:.0f} %"
    s = (f"{focus[0].upper() + focus[1:]} are {_pct(r['customer_share'])} of classified respondents but hold "
         f"{_pct(r['defector_share'])} of the expected defectors within {horizon:g} months "
         f"({level} CI {_pct(r['defector_share_lower'])}–{_pct(r['defector_share_upper'])}); "
         f"ratio {r['ratio']:.2f} ({level} CI {r['lower']:.2f}–{r['upper']:.2f}). ")
    if top_share == focus:
        s += f"They hold the largest share of would-be defectors of the four cells (bootstrap probability " \
             f"{r['p_highest_share']:.2f}); "
    else:
        s += f"The largest share of would-be defectors is held by {top_share} (bootstrap probability " \
             f"{shown.set_index('cell').loc[top_share, 'p_highest_share']:.2f}), not {focus}; "
    if top_ratio == focus:
        s += (f"relative to its size, the {focus} cell is the most over-represented of the four "
              f"(probability {r['p_highest_ratio']:.2f}).")
    else:
        s += f"relative to its size, the most over-represented cell is {top_ratio}, not {focus}."
    if np.isfinite(r["lower"]) and r["lower"] > 1:
        s += f" Their over-representation is beyond sampling error at the {level} level."
    elif np.isfinite(r["upper"]) and r["upper"] < 1:
        s += f" They are under-represented beyond sampling error at the {level} level."
    else:
        s += f" The {level} interval of their ratio includes 1 (no clear over-representation)."
    return s


def band_retention_table(df: pd.DataFrame, constructs, horizon: float, *, band_quantiles=(1 / 3, 2 / 3),
                         duration_col: str = "time_since_survey", event_col: str = "event",
                         entry_col: str | None = None, min_cell: int | None = None) -> pd.DataFrame:
    """Retention at ``horizon`` in the low / middle / high band of every construct, with the log-rank p.

    One row per (perception, band): perception, band, time, estimate, lower, upper, at_risk,
    p (log-rank test of the bands, groups below ``min_cell`` left out), suppressed. Bands come from
    :func:`perception_bands`; the curves from :func:`cxlab.models.survival.km.kaplan_meier`, whose
    suppression (fewer than ``min_cell`` at risk at the horizon, or a band of fewer than
    ``min_cell`` respondents: every figure blank, complementary suppression of ``at_risk``) is kept.
    """
    from cxlab.models.survival.km import kaplan_meier, logrank

    _require_columns(df, list(constructs) + [duration_col, event_col], "band_retention_table")
    parts = []
    for construct in constructs:
        banded = df.assign(band=perception_bands(df[construct], band_quantiles)).dropna(subset=["band"])
        if banded.empty:
            continue
        km = kaplan_meier(banded, duration_col=duration_col, event_col=event_col, entry_col=entry_col,
                          group_col="band", min_cell=min_cell)
        ret = km.retention([horizon]).rename(columns={"group": "band"})
        p = np.nan
        if banded["band"].nunique() > 1 and banded[event_col].sum() > 0:
            p = logrank(banded, "band", duration_col=duration_col, event_col=event_col, entry_col=entry_col,
                        min_cell=km.min_cell)["p"].iloc[0]
        ret.insert(0, "perception", construct)
        ret["p"] = p
        parts.append(ret[["perception", "band", "time", "estimate", "lower", "upper", "at_risk", "p", "suppressed"]])
    if not parts:
        return pd.DataFrame(columns=["perception", "band", "time", "estimate", "lower", "upper", "at_risk", "p",
                                     "suppressed"])
    out = pd.concat(parts, ignore_index=True)
    out["band"] = out["band"].astype(str)
    return out


def concentration_by_cell(df: pd.DataFrame, value_col: str = "value", *, segment_col: str = "segment_2x2",
                          top: float = 0.2, n_boot: int = 0, seed: int = 0,
                          min_cell: int | None = None) -> pd.DataFrame:
    """Margin concentration within each cell: Gini (with bootstrap interval) and the top share.

    One row per cell present: cell, estimate (Gini), lower, upper, top20 (share of the cell's margin
    held by its top ``top`` fraction), n, suppressed. Privacy: a cell of fewer than ``min_cell``
    respondents is not measured (every figure blank); the next-smallest cell's n is blanked too
    (complementary suppression: the cells add up to the classified respondents).
    """
    from cxlab import privacy
    from cxlab.insight.value import gini, top_share

    m = privacy.resolve_min_cell(min_cell)
    _require_columns(df, [segment_col, value_col], "concentration_by_cell")
    rows = []
    for cell in _cells(df, segment_col):
        v = df.loc[df[segment_col].astype(object) == cell, value_col].dropna()
        row = {"cell": cell, "estimate": np.nan, "lower": np.nan, "upper": np.nan, "top20": np.nan, "n": len(v)}
        if len(v) >= m:
            g = gini(v, n_boot=n_boot, seed=seed).iloc[0]
            row.update(estimate=g["estimate"], lower=g["lower"], upper=g["upper"],
                       top20=top_share(v, top)["estimate"].iloc[0])
        rows.append(row)
    out = pd.DataFrame(rows, columns=["cell", "estimate", "lower", "upper", "top20", "n"])
    if len(out) > 1:
        return privacy.complementary_suppression(out, "n", m, columns=["n"])
    return privacy.suppress(out, "n", m)
