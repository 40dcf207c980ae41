"""Findings in words, generated from result tables (never typed by hand).

Each function takes a tidy result and returns a list of plain sentences a reviewer who never saw
Python can read: what the estimate means, how large it is, and how sure we are.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["hazard_sentence", "cox_findings", "retention_findings", "diagnostic_warnings", "pct"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def _ci(lo: float, hi: float, fmt="{:.2f}") -> str:
    return f"95 % CI {fmt.format(lo)}–{fmt.format(hi)}"


def hazard_sentence(construct: str, hr: float, lower: float, upper: float, unit: str = "SD") -> str:
    """One construct's hazard ratio per ``unit`` in words."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (hr, lower, upper)):
        return f"{construct}: the effect could not be estimated."
    if lower <= 1 <= upper:
        return (f"{construct}: no clear link with defection (hazard ratio {hr:.2f} per {unit}, "
                f"{_ci(lower, upper)}, which includes no effect).")
    if hr < 1:
        return (f"Customers one {unit} higher on {construct} are {pct(1 - hr)} less likely to defect at "
                f"any given time (hazard ratio {hr:.2f}, {_ci(lower, upper)}).")
    return (f"Customers one {unit} higher on {construct} are {pct(hr - 1)} more likely to defect at any "
            f"given time (hazard ratio {hr:.2f}, {_ci(lower, upper)}).")


def cox_findings(summary: pd.DataFrame, model_label: str | None = None) -> list[str]:
    """Findings from a :class:`cxlab.survival.cox.CoxModel` summary (per-SD hazard ratios)."""
    c = summary[summary["kind"] == "construct"].copy()
    if c.empty:
        return []
    c = c.sort_values("hr_per_sd")
    out = []
    protective = c[c["upper_per_sd"] < 1]
    if len(protective):
        top = protective.iloc[0]
        rest_terms = list(protective["term"].iloc[1:])
        others = (", ".join(rest_terms[:-1]) + " and " + rest_terms[-1]) if len(rest_terms) > 1 else "".join(rest_terms)
        verb = "protect" if len(rest_terms) > 1 else "protects"
        first = hazard_sentence(top["term"], top["hr_per_sd"], top["lower_per_sd"], top["upper_per_sd"])
        out.append(f"{_cap(top['term'])} matters most: {first[:1].lower()}{first[1:]}"
                   + (f" {_cap(others)} also {verb}, less strongly." if others else ""))
        rest = c[c["term"] != top["term"]]
    else:
        out.append("No perception is clearly linked to defection once the others are held equal.")
        rest = c
    out += [hazard_sentence(r["term"], r["hr_per_sd"], r["lower_per_sd"], r["upper_per_sd"])
            for _, r in rest.iterrows()]
    if model_label:
        out.append(model_label)
    return out


def retention_findings(retention: pd.DataFrame, label: str = "of respondents") -> list[str]:
    """Sentences from a retention table (time, estimate, lower, upper) for one group."""
    out = []
    for _, r in retention.iterrows():
        if r.get("suppressed", False):
            continue
        out.append(f"{pct(r['estimate'])} {label} were still customers {r['time']:.0f} months after the survey "
                   f"({_ci(r['lower'], r['upper'], '{:.0%}')}).")
    return out


def diagnostic_warnings(diagnostics: pd.DataFrame) -> list[str]:
    """Failed or borderline checks from a ``diagnostics_`` table, in words."""
    out = []
    for _, d in diagnostics[diagnostics["status"] != "ok"].iterrows():
        what = {"events_per_parameter": "Few events per model parameter",
                "vif": f"Collinearity on {d['term']}",
                "convergence": "The model did not converge cleanly"}.get(d["check"], d["check"])
        msg = f": {d['message']}" if isinstance(d.get("message"), str) and d["message"] else ""
        out.append(f"{what} (value {d['value']:.3g}, threshold {d['threshold']:.3g}){msg}.")
    return out
