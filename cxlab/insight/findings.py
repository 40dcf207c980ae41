"""Each notebook's findings and headline metrics, assembled from its result tables.

A notebook's last cell used to build its sentences and metric names inline; here each notebook has
one function that returns a :class:`Findings`: the sentences to record (in order, with their level),
the evidence to fold under them, and the metrics (dotted names, estimate and 95 % interval). The
notebook records them with :func:`cxlab.workbook.record_findings` (this layer does not talk to the
runner). The words come from :mod:`cxlab.insight.narrative`; the rules stated in each function are
tested in tests/test_findings.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from cxlab import privacy
from cxlab.insight import narrative
from cxlab.models.measurement import reliability_findings

__all__ = ["Metric", "Findings", "survival_findings", "driver_findings", "segment_value_findings",
           "COMPLAINT_TERMS", "WHATIF_METRICS"]

#: the complaint states of the time-varying Cox model, in the order the findings name them
COMPLAINT_TERMS = ("complaint_open", "complaint_resolved_no_goodwill", "complaint_resolved_goodwill")

#: what-if table figure -> the metric's name (value.whatif.<name>)
WHATIF_METRICS = {"expected defections": "delta_defections", "retained months": "delta_months",
                  "discounted margin": "delta_margin"}

_DGC = "disappointed good customers"


@dataclass
class Metric:
    """One headline figure, as :func:`cxlab.report.record_metric` takes it."""

    name: str
    estimate: object
    lower: object = None
    upper: object = None
    unit: str | None = None
    label: str | None = None


@dataclass
class Findings:
    """What a notebook records: ``findings`` ((text, level) in order; level "finding" or
    "warning"), the ``evidence`` folded under them, and the ``metrics``."""

    findings: list[tuple[str, str]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)

    def add(self, text: str, level: str = "finding") -> None:
        self.findings.append((text, level))

    def metric(self, name: str, estimate, lower=None, upper=None, *, unit: str | None = None,
               label: str | None = None) -> None:
        self.metrics.append(Metric(name, estimate, lower, upper, unit, label))

    def value(self, name: str):
        """The estimate recorded under ``name`` (None when it is not recorded, or withheld)."""
        return next((m.estimate for m in self.metrics if m.name == name), None)

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.findings]


# ---- notebook 02: survival drivers -------------------------------------------------------------

def survival_findings(checked, *, cox, retention: pd.DataFrame, aft, tv, tv_terms, evaluation,
                      constructs, n_respondents: int, model_controls) -> Findings:
    """Notebook 02's answers, evidence and metrics.

    Answers first (at most :data:`narrative.MAX_LEAD_FINDINGS`, :func:`narrative.split_findings`):
    which perception matters most (Cox), retention at the main horizon (the first row of
    ``retention``), the same answer in time (the AFT sentence of the perception with the lowest
    hazard ratio), the complaint states of the time-varying model; the rest is evidence. Warnings
    besides: the proportional-hazards fallback when it is used (else its sentence is evidence) and
    the failed diagnostics. When fewer than ``min_cell`` respondents lack a model term, the
    sentence says "fewer than N" and ``cox.respondents`` / ``cox.events`` are withheld (None):
    ``panel.respondents`` minus either would count them.

    ``checked``: :func:`cxlab.models.survival.check_and_fallback`'s result (its ``model`` is the
    one the findings use); ``cox``: the Cox model fitted first; ``aft``: :func:`fit_aft`'s result;
    ``tv``: the time-varying Cox model, ``tv_terms`` the terms whose ratios are recorded;
    ``evaluation``: :func:`evaluate_survival`'s result.
    """
    out = Findings()
    summary = checked.model.summary
    lead, evidence = [], []
    cox_text = narrative.cox_findings(summary, t_ref=checked.t_ref)
    lead += cox_text[:1]
    evidence += cox_text[1:]
    ret_text = narrative.retention_findings(retention)   # horizons in order: the first is the main one
    lead += ret_text[:1]
    evidence += ret_text[1:]
    best = aft.summary[aft.summary["distribution"] == aft.best_]
    by_hr = summary[summary["kind"] == "construct"].sort_values("hr_per_sd")["term"].tolist()
    for _, row in best[best["term"].isin(constructs)].iterrows():
        text = narrative.effect_sentence("aft", narrative.per_unit_subject(row["term"]), row["time_ratio"],
                                         row["lower"], row["upper"])
        text = f"{text[:-2]}; {aft.best_.replace('weibull', 'Weibull')} accelerated failure time model)."
        (lead if by_hr and row["term"] == by_hr[0] else evidence).append(text)
    lead += narrative.flag_findings(tv.summary, COMPLAINT_TERMS, kind="tv_cox",
                                    comparison={t: " than customers without a complaint" for t in COMPLAINT_TERMS})
    ev = evaluation.summary.set_index("metric")
    c = ev.loc["harrell_c"]
    evidence.append(f"The model ranks customers by risk correctly {c['estimate']:.0%} of the time "
                    f"(cross-validated Harrell's C, 95 % CI {c['lower']:.2f}–{c['upper']:.2f}; 0.5 = chance).")
    # the PH decision in one sentence (the rule behind it is stated once, under Checks): a warning
    # when the fallback is used, else evidence
    if checked.fallback is None:
        ph_sentence = checked.label.split(". ")[0] + " (the rule is stated under Checks)."
        evidence.append(ph_sentence)
    else:   # the terms in words: "the effects of affect and segment change with tenure"
        ph_sentence = narrative.fallback_sentence(checked.actions_["variable"]) + " (the rule is stated under Checks)."
    left_out = n_respondents - cox.n_
    few_left_out = 0 < left_out < privacy.get_min_cell()   # privacy: neither that count nor one it follows from
    terms = ", ".join(narrative.human_label(t) for t in model_controls)
    if few_left_out:
        evidence.append(f"The survival models leave out {privacy.count_text(left_out)} of the {n_respondents:,} "
                        f"respondents: they lack a value of a model term ({terms}).")
    elif left_out:
        evidence.append(f"The survival models use {cox.n_:,} of the {n_respondents:,} respondents: "
                        f"{left_out:,} lack a value of a model term ({terms}).")
    answers, out.evidence = narrative.split_findings(lead, evidence)
    for text in answers:
        out.add(text)
    if checked.fallback is not None:
        out.add(ph_sentence, level="warning")
    for text in narrative.diagnostic_warnings(cox.diagnostics_):
        out.add(text, level="warning")

    for _, row in summary[summary["kind"] == "construct"].iterrows():
        out.metric(f"cox.hr_per_sd.{row['term']}", row["hr_per_sd"], row["lower_per_sd"], row["upper_per_sd"])
        out.metric(f"cox.hr_per_point.{row['term']}", row["hr_per_point"], row["lower_per_point"],
                   row["upper_per_point"])
    for _, row in retention.iterrows():
        out.metric(f"km.retention_{row['time']:.0f}m", row["estimate"], row["lower"], row["upper"])
    out.metric("ph.global_p", checked.ph_.set_index("term").loc["GLOBAL", "p"])
    for _, row in best[best["term"].isin(constructs)].iterrows():
        out.metric(f"aft.time_ratio_per_sd.{row['term']}", row["time_ratio"], row["lower"], row["upper"])
    tvs = tv.summary.set_index("term")
    for term in tv_terms:
        if term in tvs.index:
            out.metric(f"tv.hr.{term}", tvs.loc[term, "hr"], tvs.loc[term, "lower"], tvs.loc[term, "upper"])
    out.metric("eval.c_index", c["estimate"], c["lower"], c["upper"])
    out.metric("eval.uno_c", ev.loc["uno_c", "estimate"], ev.loc["uno_c", "lower"], ev.loc["uno_c", "upper"])
    for metric in ev.index:
        if metric.startswith("auc_") or metric == "integrated_brier_score":
            out.metric(f"eval.{metric}", ev.loc[metric, "estimate"], ev.loc[metric, "lower"], ev.loc[metric, "upper"])
    out.metric("cox.events", None if few_left_out else cox.events_)      # withheld: panel.events - it
    out.metric("cox.respondents", None if few_left_out else cox.n_)      # would count the few left out
    out.metric("ph.fallback", 0 if checked.fallback is None else 1)
    fs = summary.set_index("term")
    if "dgc" in fs.index:
        out.metric("cox.hr.dgc", fs.loc["dgc", "hr"], fs.loc["dgc", "lower"], fs.loc["dgc", "upper"])
    return out


# ---- notebook 03: measurement, loyalty and key drivers -------------------------------------------

def _top_driver(summary: pd.DataFrame) -> pd.Series:
    return summary.sort_values("rank").iloc[0]


def driver_findings(cox_drivers, retention, constructs, horizon, reliability: pd.DataFrame, *,
                    ordinal=None, rec_drivers=None, recommend_outcome: str | None = None) -> Findings:
    """Notebook 03's findings and metrics: the perception with the largest share of the explanation
    of time to defection (with how often it ranks first; below one time in two the sentence says
    which matters most is uncertain), the retention model's odds ratio per SD of each perception at
    ``horizon`` months, with the recommendation outcome (``ordinal`` and ``rec_drivers`` given) its
    odds ratios and its top driver, then the reliability findings
    (:func:`cxlab.models.measurement.reliability_findings`). Metrics: drivers.rank_stability.*, drivers.importance.*, loyalty.importance.*
    and measurement.alpha.*."""
    out = Findings()
    drivers = cox_drivers.summary
    top = _top_driver(drivers)
    first = (f"it ranks first in {top['rank_stability']:.0%} of bootstrap samples"
             + (", so which perception matters most is uncertain" if top["rank_stability"] < 0.5 else ""))
    out.add(f"{top['construct'][:1].upper() + top['construct'][1:]} carries the largest share of the explanation "
            f"of time to defection: {top['share']:.0%} (95 % CI {top['lower']:.0%}–{top['upper']:.0%}); {first}.")
    for _, r in drivers.iterrows():
        out.metric(f"drivers.rank_stability.{r['construct']}", r["rank_stability"])
    # odds ratios per SD of each perception, in the one grammar of effect sentences
    ret = retention.summary
    for _, r in ret[ret["term"].isin(constructs)].iterrows():
        out.add(narrative.effect_sentence(
            "logistic", narrative.per_unit_subject(r["term"]), r["odds_ratio"], r["lower"], r["upper"],
            outcome=f"odds of still being a customer {horizon} months after the survey"))
    for _, r in drivers.iterrows():
        out.metric(f"drivers.importance.{r['construct']}", r["share"], r["lower"], r["upper"])
    if ordinal is not None:
        o = ordinal.summary
        for _, r in o[o["term"].isin(constructs)].iterrows():
            out.add(narrative.effect_sentence(
                "ordinal", narrative.per_unit_subject(r["term"]), r["odds_ratio"], r["lower"], r["upper"],
                outcome=f"odds of a better {recommend_outcome} answer"))
    if rec_drivers is not None:
        rtop = _top_driver(rec_drivers.summary)
        out.add(f"For the intention to recommend, {rtop['construct']} matters most: {rtop['share']:.0%} of the "
                f"model's explanatory power (95 % CI {rtop['lower']:.0%}–{rtop['upper']:.0%}).")
        for _, r in rec_drivers.summary.iterrows():
            out.metric(f"loyalty.importance.{r['construct']}", r["share"], r["lower"], r["upper"])
    for text, level in reliability_findings(reliability):
        out.add(text, level=level)
    for _, r in reliability.dropna(subset=["alpha"]).iterrows():
        out.metric(f"measurement.alpha.{r['construct']}", r["alpha"], r["alpha_lower"], r["alpha_upper"])
    return out


# ---- notebook 04: segments and value -------------------------------------------------------------

def _dgc_part(out: Findings, table, hr, contrasts, dgc_share, wbd) -> dict | None:
    """Metrics of the 2 × 2 grid; returns what the DGC sentences need (None: the DGC figures are
    withheld, their cell or one that would reveal it being too small)."""
    cells = table.set_index("cell")
    hr_cells = hr.set_index("cell")
    dgc_row = hr_cells.loc[_DGC]
    shown_dgc = pd.notna(cells.loc[_DGC, "share"]) and pd.notna(dgc_row["hr"])   # False: withheld
    if shown_dgc:
        out.metric("segments.disappointed.share", dgc_share,
                   label="share of the respondents in the 2 × 2 grid who are disappointed good customers")
        out.metric("segments.disappointed.hr", dgc_row["hr"], dgc_row["lower"], dgc_row["upper"])
    shown = hr_cells[~hr_cells["suppressed"].fillna(False).astype(bool)] if "suppressed" in hr_cells else hr_cells
    for cell, row in shown.iterrows():
        out.metric(f"segments.hr.{cell}", row["hr"], row["lower"], row["upper"])
    direct = contrasts[~contrasts["suppressed"]].set_index("cell")
    for cell, row in direct.iterrows():
        out.metric(f"segments.dgc_vs.{cell}", row["hr"], row["lower"], row["upper"],
                   label=f"hazard of the disappointed good customers relative to {cell}")
    d = wbd.table.set_index("cell").loc[_DGC]
    if pd.notna(d["ratio"]):
        out.metric("segments.disappointed.defector_ratio", d["ratio"], d["lower"], d["upper"])
    if not shown_dgc:
        return None
    return {"cells": {c: (r["hr"], r["lower"], r["upper"]) for c, r in shown.iterrows()},
            "contrasts": {c: (r["hr"], r["lower"], r["upper"]) for c, r in direct.iterrows()}}


def _whatif_metrics(out: Findings, raise_, move, horizon: int, currency: str | None) -> None:
    """value.whatif.<figure> for the raise at the main horizon; every other horizon and the move
    scenario carry a suffix (.raise_24m, .move_12m); the margin in the study's currency."""
    for frame, name in ((raise_, "raise"), (move, "move")):
        for _, r in (frame if frame is not None else pd.DataFrame()).iterrows():
            metric = WHATIF_METRICS[r["metric"]]
            suffix = "" if (name == "raise" and r["horizon"] == horizon) else f".{name}_{r['horizon']}m"
            out.metric(f"value.whatif.{metric}{suffix}", r["delta"], r["lower"], r["upper"],
                       unit=currency if metric == "delta_margin" else None)


def segment_value_findings(*, horizon: int, min_cell: int, currency: str | None = None, classified=None,
                           table=None, hr=None, contrasts=None, wbd=None, concentration=None,
                           raise_=None, move=None, whatif_segment: str = "all", delta_points: float = 0.0,
                           construct: str | None = None, sbg=None) -> Findings:
    """Notebook 04's findings and metrics.

    With the 2 × 2 grid (``classified``: the respondents in it, with their ``segment_2x2``; ``table``:
    :func:`segment_table`, ``hr``: :func:`segment_hazard_ratios`, ``contrasts``:
    :func:`dgc_contrasts`, ``wbd``: :func:`would_be_defectors`): the DGC share and hazard ratios,
    the answer to "are they the likeliest to leave?" (:func:`narrative.dgc_answer`, crude) and the
    would-be-defectors sentence; when their cell or one that would reveal it is below ``min_cell``,
    a warning that their figures are withheld instead. ``concentration``: the margin concentration
    (:func:`cxlab.workbook.margin_concentration`; its sentence is the last finding). ``raise_`` /
    ``move``: the what-if tables (:func:`recognition_what_if`): the change in defections and in
    discounted margin at ``horizon`` for raising ``construct`` by ``delta_points`` for
    ``whatif_segment`` ("all" = every respondent). ``sbg``: the cohort projection (alpha, beta)."""
    out = Findings()
    dgc = None
    if classified is not None:
        dgc_share = (classified["segment_2x2"] == _DGC).mean()
        dgc = _dgc_part(out, table, hr, contrasts, dgc_share, wbd)
    if concentration is not None and concentration.gini is not None:
        g, t = concentration.gini.iloc[0], concentration.top_share.iloc[0]
        scope = concentration.scope
        out.metric("value.gini", g["estimate"], g["lower"], g["upper"], label=f"Gini of the margin among {scope}")
        out.metric("value.top20_share", t["estimate"], t["lower"], t["upper"],
                   label=f"share of the margin held by the top 20 % of {scope}")
    _whatif_metrics(out, raise_, move, horizon, currency)
    who = "every respondent" if whatif_segment == "all" else whatif_segment
    if raise_ is not None:
        out.metric("value.whatif.horizon_months", horizon)
        out.metric("value.whatif.delta_points", delta_points, label=who)
    if sbg is not None:
        for name in ("alpha", "beta"):
            out.metric(f"sbg.{name}", *sbg.params_.loc[name, ["estimate", "lower", "upper"]])

    if classified is not None and dgc is None:
        out.add(f"The disappointed good customers' figures are withheld: their cell, or a cell that would reveal it, "
                f"has fewer than {min_cell} customers.", level="warning")
    elif classified is not None:
        _, sentence = narrative.dgc_answer(dgc["cells"], contrasts=dgc["contrasts"])
        out.add(f"Disappointed good customers are {narrative.pct(dgc_share)} of the respondents in the 2 × 2 grid. "
                f"Are they the likeliest to leave? {sentence} (Crude comparison: nothing else held equal.)")
        out.add(wbd.finding)
    if raise_ is not None:
        r = raise_.set_index(["metric", "horizon"])
        subject = f"Raising {construct} by {delta_points:g} scale points for {who}"
        row = r.loc[("expected defections", horizon)]
        out.add(narrative.effect_sentence("whatif", subject, row["delta"], row["lower"], row["upper"],
                                          outcome=f"defections within {horizon} months of the survey"))
        if ("discounted margin", horizon) in r.index:
            row = r.loc[("discounted margin", horizon)]
            out.add(narrative.effect_sentence(
                "whatif", "It", row["delta"], row["lower"], row["upper"], amount=True, money=currency,
                outcome=f"discounted margin within {horizon} months"))
    if concentration is not None:
        out.add(concentration.sentence)
    return out
