"""Data-audit tables: who answered, who is censored, how the perceptions are distributed.

Every function returns a tidy DataFrame of aggregates; cells over fewer than ``min_cell``
customers are suppressed (numbers blanked, ``suppressed`` = True) so a report can show them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab import privacy
from cxlab.panel import Panel

__all__ = ["suppress_small_cells", "response_summary", "answers_per_respondent", "censoring_summary",
           "validation_overview",
           "construct_distribution", "audit_findings", "population_metrics", "population_finding"]


def suppress_small_cells(table: pd.DataFrame, n_col: str = "n", min_cell: int | None = None,
                         columns: list[str] | None = None) -> pd.DataFrame:
    """Blank the numbers of rows describing fewer than ``min_cell`` customers
    (:func:`cxlab.privacy.suppress`; kept for existing callers).

    ``columns``: which columns to blank (default: every numeric column, ``n_col`` included).
    Adds a boolean ``suppressed`` column.
    """
    return privacy.suppress(table, n_col, min_cell, columns=columns)


def response_summary(panel: Panel, customers: pd.DataFrame, min_cell: int | None = None) -> pd.DataFrame:
    """Customers known at the snapshot, respondents, response rate, by covariate level and overall.

    Privacy: a level with fewer than ``min_cell`` customers or respondents has its figures blanked
    (``suppressed``); as the levels of a covariate add up to the "all customers" row, the
    next-smallest level's counts are blanked too (complementary suppression), for customers and
    for respondents.
    """
    min_cell = privacy.resolve_min_cell(min_cell)
    from cxlab.study import within_snapshot  # the snapshot day counts whole, as in the panel

    known = customers[within_snapshot(customers["start"], panel.snapshot_date)]
    r = panel.respondents
    rows = [{"group": "all customers", "level": "", "customers": len(known), "respondents": len(r)}]
    for cov in panel.covariates:
        base = known[cov].astype("string").fillna("(missing)").value_counts()
        resp = r[cov].astype("string").fillna("(missing)").value_counts()
        for level, n in base.items():
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
    from cxlab.survival.km import kaplan_meier

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


def audit_findings(panel: Panel, validation_summary: pd.DataFrame | None = None) -> list[str]:
    """Plain-language findings of the audit, generated from the numbers."""
    r = panel.respondents
    ex = panel.exclusions
    out = [
        f"{len(r):,} respondents are analysed, of whom {int(r['event'].sum()):,} "
        f"({r['event'].mean():.0%}) defected by the snapshot ({panel.snapshot_date}); the others are "
        f"censored there.",
    ]
    dropped = _set_aside(ex)
    dropped = dropped[dropped["excluded"] > 0]
    if len(dropped):
        parts = [f"{reason} ({int(n):,})" for reason, n in zip(dropped["reason"], dropped["excluded"])]
        if parts:
            out.append("Respondents set aside, by reason: " + "; ".join(parts) + ".")
    later = ex[ex["reason"].str.contains("after the snapshot")]["excluded"].sum()
    if later:
        out.append(f"{int(later):,} records dated after the snapshot were set aside (no look-ahead).")
    dist = construct_distribution(panel)
    ceiling = dist[dist["share_at_ceiling"] > 0.25]
    for _, row in ceiling.iterrows():
        out.append(f"{row['construct']}: {row['share_at_ceiling']:.0%} of respondents are at the top of the "
                   f"scale (ceiling effect: differences among the most satisfied are not measured).")
    return out


def _set_aside(exclusions: pd.DataFrame) -> pd.DataFrame:
    """The exclusion rows of respondents set aside (a respondent's later answers are not: the
    respondent is analysed on their first)."""
    ex = exclusions
    return ex[(ex["table"] == "respondents") & ~ex["reason"].str.contains("later answers")]


def population_metrics(panel: Panel, customers: pd.DataFrame, min_cell: int | None = None) -> dict[str, float]:
    """Who was analysed, for the run's summary: ``panel.respondents``, ``panel.events``,
    ``panel.censored_share``, ``panel.customers`` (known at the snapshot), ``panel.response_rate``
    and ``panel.set_aside`` (respondents set aside, every reason). Customers and response rate
    come from :func:`response_summary` (NaN when it withholds them: fewer than ``min_cell``)."""
    everyone = response_summary(panel, customers, min_cell).iloc[0]
    return {
        "panel.respondents": panel.n_respondents,
        "panel.events": panel.n_events,
        "panel.censored_share": 1 - panel.n_events / panel.n_respondents,
        "panel.customers": everyone["customers"],
        "panel.response_rate": everyone["response_rate"],
        "panel.set_aside": _set_aside(panel.exclusions)["excluded"].sum(),
    }


def population_finding(metrics: dict) -> str:
    """The sentence saying whom every figure is about, from :func:`population_metrics`."""
    n = int(metrics["panel.respondents"])
    customers, rate = metrics["panel.customers"], metrics["panel.response_rate"]
    if pd.isna(customers) or pd.isna(rate):
        return (f"{n:,} analysed respondents: every figure in these reports is about respondents, not about "
                "the whole customer base.")
    return (f"{n:,} of the {int(customers):,} customers known at the snapshot are analysed respondents "
            f"(response rate {rate:.0%}): every figure in these reports is about respondents, not about the "
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
