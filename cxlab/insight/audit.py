"""Data-audit tables: who answered, who is censored, how the perceptions are distributed.

Every function returns a tidy DataFrame of aggregates; cells over fewer than ``min_cell``
customers are suppressed (numbers blanked, ``suppressed`` = True) so a report can show them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab.insight import narrative

from cxlab import privacy
from cxlab.data.panel import Panel

__all__ = ["suppress_small_cells", "response_summary", "answers_per_respondent", "censoring_summary",
           "validation_overview", "exclusion_flow", "set_aside_total",
           "construct_distribution", "audit_findings", "population_metrics", "population_finding"]


def suppress_small_cells(table: pd.DataFrame, n_col: str = "n", min_cell: int | None = None,
                         columns: list[str] | None = None) -> pd.DataFrame:
    """Blank the numbers of rows describing fewer than ``min_cell`` customers
    (:func:`cxlab.privacy.suppress`; kept for existing callers).

    ``columns``: which columns to blank (default: every numeric column, ``n_col`` included).
    Adds a boolean ``suppressed`` column.
    """
    return privacy.suppress(table, n_col, min_cell, columns=columns)


#: the level under which a covariate's empty cells are counted
MISSING_LEVEL = "(missing)"


def _known_customers(customers, snapshot_date, covariates) -> tuple[int, dict[str, pd.Series]]:
    """Customers known at the snapshot (started on or before its day), overall and by each
    covariate's level (largest first). ``customers`` is a frame or an ibis table: on a table the
    counts are aggregate queries on its engine and no customer row comes back."""
    from cxlab.study import snapshot_cutoff, within_snapshot  # the snapshot day counts whole, as in the panel

    if not isinstance(customers, pd.DataFrame):   # an ibis table (a source study, the run's parquet copy)
        import ibis

        cutoff = ibis.literal(pd.Timestamp(snapshot_cutoff(snapshot_date)).to_pydatetime())
        known = customers.filter(customers["start"].cast("timestamp") < cutoff)
        n = int(known.count().to_pyarrow().as_py())
        by_level = {}
        for cov in covariates:
            level = known[cov].cast("string").fill_null(MISSING_LEVEL).name("level")
            counts = known.select(level).group_by("level").aggregate(n=ibis._.count()).to_pandas()
            by_level[cov] = _largest_first(counts.set_index("level")["n"])
        return n, by_level
    known = customers[within_snapshot(customers["start"], snapshot_date)]
    return len(known), {cov: _largest_first(known[cov].astype("string").fillna(MISSING_LEVEL).value_counts())
                        for cov in covariates}


def _largest_first(counts: pd.Series) -> pd.Series:
    """Counts by level, largest first and ties in the levels' order (the same on every engine)."""
    counts = counts.astype("int64").rename(None)
    counts.index = counts.index.astype(str)
    order = sorted(counts.index, key=lambda level: (-counts[level], level))
    return counts.loc[order]


def response_summary(panel: Panel, customers, min_cell: int | None = None) -> pd.DataFrame:
    """Customers known at the snapshot, respondents, response rate, by covariate level and overall.

    ``customers`` is the study's customer table as a frame, or as an ibis table (counted on its
    engine: nothing but the counts comes back). Privacy: a level with fewer than ``min_cell``
    customers or respondents has its figures blanked
    (``suppressed``); as the levels of a covariate add up to the "all customers" row, the
    next-smallest level's counts are blanked too (complementary suppression), for customers and
    for respondents.
    """
    min_cell = privacy.resolve_min_cell(min_cell)
    n_known, by_level = _known_customers(customers, panel.snapshot_date, panel.covariates)
    r = panel.respondents
    rows = [{"group": "all customers", "level": "", "customers": n_known, "respondents": len(r)}]
    for cov in panel.covariates:
        resp = r[cov].astype("string").fillna(MISSING_LEVEL).value_counts()
        for level, n in by_level[cov].items():
            rows.append({"group": cov, "level": str(level), "customers": int(n), "respondents": int(resp.get(level, 0))})
    out = pd.DataFrame(rows)
    out["response_rate"] = out["respondents"] / out["customers"]
    total = (out["group"] == "all customers").to_numpy()
    raw = out.copy()
    # respondents: blank the small levels' respondents and rate, then enough others
    resp = privacy.complementary_suppression(raw, "respondents", min_cell, total_row=total, by="group",
                                             columns=["respondents", "response_rate"])
    cust = privacy.complementary_suppression(raw, "customers", min_cell, total_row=total, by="group",
                                             columns=["customers", "response_rate"])
    out["suppressed"] = resp["suppressed"].to_numpy() | cust["suppressed"].to_numpy()
    for c in ("customers", "respondents", "response_rate"):
        out[c] = out[c].astype("float64").where(resp[c].notna() & cust[c].notna())
    out.attrs["complementary"] = sorted(set(resp.attrs["complementary"]) | set(cust.attrs["complementary"]))
    return out


def answers_per_respondent(panel: Panel, min_cell: int | None = None) -> pd.DataFrame:
    """How many survey answers (waves) respondents gave by the snapshot.

    Privacy: rows of fewer than ``min_cell`` respondents are blanked; as the rows add up to the
    respondents (shown in the report), the next-smallest row is blanked too (complementary).
    """
    counts = panel.respondents["n_answers"].clip(upper=3).value_counts().sort_index()
    out = pd.DataFrame({"answers": [f"{int(k)}" if k < 3 else "3 or more" for k in counts.index],
                        "n": counts.to_numpy()})
    out["share"] = out["n"] / out["n"].sum()
    return privacy.complementary_suppression(out, "n", min_cell, columns=["n", "share"])


def censoring_summary(panel: Panel) -> pd.DataFrame:
    """Events, censoring and follow-up after the survey (months)."""
    r = panel.respondents
    fu = r["time_since_survey"]
    # median potential follow-up by reverse Kaplan-Meier (censoring as the event)
    from cxlab.models.survival.km import kaplan_meier

    curve = kaplan_meier(pd.DataFrame({"t": fu.to_numpy(float), "c": 1 - r["event"].to_numpy(int)}), "t", "c",
                         min_cell=1, timefix=False).survival_
    below = curve.loc[curve["survival"] <= 0.5, "time"]   # first time the curve reaches 0.5 (as lifelines)
    median_follow_up = float(below.iloc[0]) if len(below) else float("inf")
    rows = [
        ("respondents", len(r), ""),
        ("defections by the snapshot", int(r["event"].sum()), ""),
        ("censored at the snapshot (still customers)", int((r["event"] == 0).sum()), ""),
        ("share censored", float(100 * (1 - r["event"].mean())), "%"),
        ("median follow-up after the survey (reverse Kaplan-Meier)", median_follow_up, "months"),
        ("longest follow-up after the survey", float(fu.max()), "months"),
        ("median tenure at the survey", float(r["tenure_at_survey"].median()), "months"),
    ]
    return pd.DataFrame(rows, columns=["quantity", "value", "unit"])  # counts have no unit


def construct_distribution(panel: Panel) -> pd.DataFrame:
    """Per construct: n, mean, SD, quartiles, and the shares at the floor and ceiling of the scale."""
    lo, hi = panel.scale
    rows = []
    for c in panel.constructs:
        x = panel.respondents[c].dropna()
        rows.append({"construct": c, "n": len(x), "mean": x.mean(), "sd": x.std(ddof=1),
                     "p25": x.quantile(0.25), "median": x.median(), "p75": x.quantile(0.75),
                     "share_at_floor": float((x <= lo).mean()), "share_at_ceiling": float((x >= hi).mean())})
    return pd.DataFrame(rows)


def audit_findings(panel: Panel, validation_summary: pd.DataFrame | None = None,
                   min_cell: int | None = None) -> list[str]:
    """Plain-language findings of the audit, generated from the numbers.

    Exclusion counts are quoted as :func:`exclusion_flow` shows them (``"fewer than 10"``,
    ``"withheld"``): every reason is named, no count of 1..``min_cell - 1`` is printed, and the
    total set aside is exact when it is at least ``min_cell`` (and follows from the flow's shown
    rows in / out, so it gives away no withheld count)."""
    r = panel.respondents
    out = [
        f"{len(r):,} respondents are analysed, of whom {int(r['event'].sum()):,} "
        f"({narrative.pct(r['event'].mean())}) defected by the snapshot ({panel.snapshot_date}); the others are "
        f"censored there.",
    ]
    flow = exclusion_flow(panel, min_cell)
    aside = flow[_aside_mask(panel.exclusions)]
    dropped = aside[aside["excluded"] != "0"]
    if len(dropped):
        parts = [f"{reason} ({n})" for reason, n in zip(dropped["reason"], dropped["excluded"])]
        total = set_aside_total(panel, min_cell)
        m = privacy.resolve_min_cell(min_cell)
        in_all = (f"{int(total):,} in all" if np.isfinite(total) else
                  f"fewer than {m} in all" if 0 < _set_aside(panel.exclusions)["excluded"].sum() < m
                  else "the total withheld")
        note = (f" Counts below the privacy threshold read 'fewer than {m}'; '{privacy.WITHHELD}' marks a count "
                "hidden so that they cannot be recovered by subtraction."
                if (dropped["small"] | dropped["withheld"]).any() else "")
        out.append("Respondents set aside, by reason: " + "; ".join(parts) + f"; {in_all}." + note)
    later = flow[panel.exclusions["reason"].str.contains("after the snapshot").to_numpy()
                 & (flow["excluded"] != "0").to_numpy()]
    if len(later):
        parts = [f"{t}: {n}" for t, n in zip(later["table"], later["excluded"])]
        out.append("Records dated after the snapshot were set aside (no look-ahead): " + "; ".join(parts) + ".")
    dist = construct_distribution(panel)
    ceiling = dist[dist["share_at_ceiling"] > 0.25]
    for _, row in ceiling.iterrows():
        out.append(f"{row['construct']}: {narrative.pct(row['share_at_ceiling'])} of respondents are at the top of the "
                   f"scale (ceiling effect: differences among the most satisfied are not measured).")
    return out


def _aside_mask(exclusions: pd.DataFrame) -> np.ndarray:
    ex = exclusions
    return ((ex["table"] == "respondents") & ~ex["reason"].str.contains("later answers")).to_numpy()


def _set_aside(exclusions: pd.DataFrame) -> pd.DataFrame:
    """The exclusion rows of respondents set aside (a respondent's later answers are not: the
    respondent is analysed on their first)."""
    return exclusions[_aside_mask(exclusions)]


def exclusion_flow(panel: Panel, min_cell: int | None = None) -> pd.DataFrame:
    """The panel's exclusion flow as a report shows it (:func:`cxlab.privacy.flow_suppression`,
    one block per table): counts of 1..``min_cell - 1`` read "fewer than <min_cell>", the
    next-smallest count of the table is withheld (taken among the respondents set aside first, so
    the total set aside stays exact), and rows in / out between withheld steps are blanked."""
    return privacy.flow_suppression(panel.exclusions, min_cell, prefer=_aside_mask(panel.exclusions))


def set_aside_total(panel: Panel, min_cell: int | None = None) -> float:
    """Respondents set aside (every reason), as a report may show it: exact when 0 or at least
    ``min_cell`` and the flow's shown rows in / out already give it; NaN otherwise."""
    m = privacy.resolve_min_cell(min_cell)
    ex = panel.exclusions
    mask = _aside_mask(ex)
    total = int(ex.loc[mask, "excluded"].sum())
    if total == 0:
        return 0.0
    if total < m or not mask.any():
        return float("nan")
    flow = exclusion_flow(panel, m)
    pos = np.flatnonzero(mask)
    shown = flow["rows_in"].iloc[pos[0]] != "–" and flow["rows_out"].iloc[pos[-1]] != "–"
    return float(total) if shown else float("nan")


def population_metrics(panel: Panel, customers: pd.DataFrame, min_cell: int | None = None) -> dict[str, float]:
    """Who was analysed, for the run's summary: ``panel.respondents``, ``panel.events``,
    ``panel.censored_share``, ``panel.customers`` (known at the snapshot), ``panel.response_rate``
    and ``panel.set_aside`` (respondents set aside, every reason; NaN when fewer than ``min_cell``:
    :func:`set_aside_total`). Customers and response rate
    come from :func:`response_summary` (NaN when it withholds them: fewer than ``min_cell``)."""
    everyone = response_summary(panel, customers, min_cell).iloc[0]
    return {
        "panel.respondents": panel.n_respondents,
        "panel.events": panel.n_events,
        "panel.censored_share": 1 - panel.n_events / panel.n_respondents,
        "panel.customers": everyone["customers"],
        "panel.response_rate": everyone["response_rate"],
        "panel.set_aside": set_aside_total(panel, min_cell),
    }


def population_finding(metrics: dict) -> str:
    """The sentence saying whom every figure is about, from :func:`population_metrics`."""
    n = int(metrics["panel.respondents"])
    customers, rate = metrics["panel.customers"], metrics["panel.response_rate"]
    if pd.isna(customers) or pd.isna(rate):
        return (f"{n:,} analysed respondents: every figure in these reports is about respondents, not about "
                "the whole customer base.")
    return (f"{n:,} of the {int(customers):,} customers known at the snapshot are analysed respondents "
            f"(response rate {narrative.pct(rate)}): every figure in these reports is about respondents, not about the "
            "whole customer base.")


def validation_overview(summary: pd.DataFrame, min_cell: int | None = None) -> pd.DataFrame:
    """The validation summary for a report: counts between 1 and ``min_cell - 1`` shown as
    "< min_cell" (a small count describes a small group of customers)."""
    min_cell = privacy.resolve_min_cell(min_cell)
    out = summary.copy()
    for col in ("missing_codes", "empty"):
        if col in out.columns:
            x = pd.to_numeric(out[col], errors="coerce")
            small = x.notna() & (x > 0) & (x < min_cell)
            shown = x.astype("object").where(x.notna(), None)
            shown[small] = f"< {min_cell}"
            out[col] = shown.map(lambda v: f"{int(v):,}" if isinstance(v, (int, float)) else ("–" if v is None else v))
    return out
