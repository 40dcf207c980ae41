"""Findings in words, generated from result tables (never typed by hand).

Each function takes a tidy result and returns plain sentences a reviewer who never saw Python can
read: what the estimate means, how large it is, and how sure we are.

Every effect sentence (Cox, time-varying Cox, AFT, logistic, ordinal, disappointed good customers,
what-if) goes through one grammar, :func:`effect_sentence`:

* the **direction** comes from the estimate, never from the author: "higher"/"lower" risk or odds,
  "longer"/"shorter" stay, "more"/"fewer" defections;
* when the 95 % interval includes the null (1 for a ratio, 0 for a difference) the sentence says
  **"no clear link"** (or "no clear change" for a what-if) and states no direction;
* a ratio above 2 is said as "2.5-fold", never "1.5 times higher"; a ratio below 1 as "% lower";
* when the ratio depends on time (the proportional-hazards fallback with a time interaction) the
  sentence says at which tenure it holds; otherwise a hazard ratio holds "at any given time".
"""

from __future__ import annotations

import math
import re
from typing import Mapping

import pandas as pd

__all__ = [
    "EFFECT_KINDS",
    "cox_findings",
    "diagnostic_warnings",
    "effect_sentence",
    "format_money",
    "hazard_sentence",
    "human_label",
    "pct",
    "per_unit_subject",
    "retention_findings",
    "direction",
]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f} %"


def _ci(lo: float, hi: float, fmt="{:.2f}") -> str:
    return f"95 % CI {fmt.format(lo)}–{fmt.format(hi)}"


# ---- labels ------------------------------------------------------------------------------------

#: code names -> words a reviewer reads (one place for every header and term; see human_label)
LABELS: dict[str, str] = {
    "dgc": "disappointed good customer",
    "complaint_open": "a complaint open",
    "complaint_resolved_no_goodwill": "a complaint resolved without a goodwill gesture",
    "complaint_resolved_goodwill": "a complaint resolved with a goodwill gesture",
    "tenure_at_survey": "tenure at the survey",
    "value_band": "margin band",
    "hr": "hazard ratio", "HR": "hazard ratio",
    "hr_per_sd": "hazard ratio per SD", "hr_per_point": "hazard ratio per scale point",
    "lower_per_sd": "lower bound (per SD)", "upper_per_sd": "upper bound (per SD)",
    "lower_per_point": "lower bound (per point)", "upper_per_point": "upper bound (per point)",
    "log_hr": "log hazard ratio", "se": "standard error", "z": "z statistic",
    "lower": "lower bound", "upper": "upper bound", "estimate": "estimate",
    "p": "p-value", "p_holm": "p-value (Holm-adjusted)", "p_adj": "p-value (adjusted)",
    "ame": "average marginal effect", "or": "odds ratio", "odds_ratio": "odds ratio",
    "time_ratio": "time ratio", "n": "customers", "n_events": "defections", "events": "defections",
    "at_risk": "at risk", "share": "share", "margin_share": "share of margin",
    "margin_total": "margin (total)", "rank_stability": "probability of this rank",
    "harrell_c": "Harrell's C", "uno_c": "Uno's C", "integrated_brier_score": "integrated Brier score",
    "chi2": "chi-square", "df": "degrees of freedom", "kind": "kind", "term": "term",
    "variable": "variable", "transform": "time scale of the test",
    "customer_share": "share of customers", "defector_share": "share of expected defectors",
    "defector_share_lower": "lower bound", "defector_share_upper": "upper bound",
    "p_highest_share": "probability of the largest share", "p_highest_ratio": "probability of the highest ratio",
    "ratio": "ratio", "suppressed": "too few to show", "baseline": "as today", "scenario": "with the change",
    "delta": "change", "n_changed": "customers changed", "n_boot": "bootstrap draws",
    "response_rate": "response rate", "rows_in": "rows in", "rows_out": "rows out",
    "alpha": "Cronbach's alpha", "omega": "McDonald's omega", "alpha_lower": "alpha lower bound",
    "alpha_upper": "alpha upper bound", "share_missing": "share missing",
    "share_at_floor": "share at the lowest answer", "share_at_ceiling": "share at the highest answer",
    "aic": "AIC", "distribution": "distribution", "construct": "perception", "segment_2x2": "cell",
    "defection_rate": "defection rate", "rmst": "expected months", "clv": "lifetime value",
    "discount_rate": "discount rate", "horizon": "horizon (months)", "metric": "figure",
    "clv_per_customer": "lifetime value per customer", "clv_total": "lifetime value (total)",
    "top_share": "share held by the top", "gini": "Gini coefficient",
    "events_per_parameter": "events per parameter", "vif": "collinearity (VIF)",
    "convergence": "convergence", "GLOBAL": "all terms together",
}

_DEFECTION_COL = re.compile(r"^defection_(\d+)m(?:_(lower|upper))?$")


def _level_words(m) -> str:
    return f"{human_label(m.group(1))}: {m.group(2)}"


def _defection_words(m) -> str:
    base = f"defection within {m.group(1)} months"
    return f"{base}, {m.group(2)} bound" if m.group(2) else base


#: code-name patterns and their words, for :func:`human_label` (the first that matches)
_LABEL_PATTERNS = (
    (re.compile(r"^(.+?)\[(?:T\.)?(.+)\]$"), _level_words),                   # channel[online], channel[T.online]
    (re.compile(r"^([A-Za-z_]\w*)=(.+)$"), _level_words),                       # channel=online
    (re.compile(r"^(.+?) x log\(t/[^)]*\)$"), lambda m: f"{human_label(m.group(1))}: change with tenure"),
    (re.compile(r"^auc_(\d+)m$"), lambda m: f"AUC at {m.group(1)} months"),
    (_DEFECTION_COL, _defection_words),
)


def human_label(name: str) -> str:
    """A code name in words: ``channel[online]`` -> ``channel: online``, ``p_holm`` ->
    ``p-value (Holm-adjusted)``, ``defection_12m_lower`` -> ``defection within 12 months, lower
    bound``, ``affect x log(t/24)`` -> ``affect: change with tenure``. Unknown names are returned
    with underscores as spaces."""
    text = str(name)
    if text in LABELS:
        return LABELS[text]
    for pattern, words in _LABEL_PATTERNS:
        m = pattern.match(text)
        if m:
            return words(m)
    if "_" in text and not text.startswith("_"):
        return text.replace("_", " ")
    return text


# ---- numbers ------------------------------------------------------------------------------------

def _months(t: float) -> str:
    return f"{t:.0f}" if abs(t) >= 10 else f"{t:.1f}"


def _num(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def format_money(x: float, currency: str | None = None, signed: bool = False) -> str:
    """Whole currency units with thousand separators: ``EUR 12,345`` (no unit if ``currency`` is
    None: ``12,345``); ``signed`` adds + / −."""
    v = int(round(float(x)))
    sign = ("+" if v > 0 else "−" if v < 0 else "") if signed else ("−" if v < 0 else "")
    body = f"{abs(v):,}"
    return f"{sign}{currency} {body}" if currency else f"{sign}{body}"


def _finite(*xs) -> bool:
    try:
        return all(x is not None and math.isfinite(float(x)) for x in xs)
    except (TypeError, ValueError):
        return False


# ---- the grammar --------------------------------------------------------------------------------

#: what each model kind's estimate is, its null value and its words
_HAZARD = {"stat": "hazard ratio", "null": 1.0, "ratio": True, "up": "higher", "down": "lower",
           "outcome": "risk of defecting"}
EFFECT_KINDS: dict[str, dict] = {
    "cox": _HAZARD,
    "tv_cox": _HAZARD,      # time-varying Cox: the same words
    "dgc": _HAZARD,         # the disappointed-good-customer cell or flag
    "aft": {"stat": "time ratio", "null": 1.0, "ratio": True, "up": "longer", "down": "shorter",
            "outcome": "how long they stay"},
    "logistic": {"stat": "odds ratio", "null": 1.0, "ratio": True, "up": "higher", "down": "lower",
                 "outcome": "odds of still being a customer"},
    "ordinal": {"stat": "odds ratio", "null": 1.0, "ratio": True, "up": "higher", "down": "lower",
                "outcome": "odds of a better recommendation answer"},
    "whatif": {"stat": "change", "null": 0.0, "ratio": False, "up": "more", "down": "fewer",
               "outcome": "defections"},
}


def direction(kind: str, estimate: float, lower: float, upper: float) -> str | None:
    """The direction word of an estimate ("higher", "shorter", "fewer", ...), or None when the
    95 % interval includes the null (or the figures are missing)."""
    spec = EFFECT_KINDS[kind]
    if not _finite(estimate, lower, upper):
        return None
    null = spec["null"]
    if lower <= null <= upper:
        return None
    return spec["up"] if estimate > null else spec["down"]


def _ratio_size(est: float) -> str:
    """"30 %" for 0.70 or 1.30; "2.5-fold" for 2.5 (never "0.44 times higher")."""
    if est >= 2:
        return f"{est:.1f}-fold"
    return pct(abs(est - 1))


def _article(figure: str) -> str:
    """ "an " before a figure said with a vowel sound (8, 11, 18, 80–89, 8.5-fold), else "a "."""
    whole = re.match(r"\d+", figure)
    n = whole.group(0) if whole else ""
    return "an " if n.startswith("8") or n in ("11", "18") else "a "


def effect_sentence(kind: str, subject: str, estimate: float, lower: float, upper: float, *,
                    outcome: str | None = None, comparison: str = "", at_tenure: float | None = None,
                    scope: str | None = None, digits: int = 2, money: str | None = None,
                    amount: bool = False) -> str:
    """One effect in words, with its direction, size, 95 % interval and scope.

    ``kind``: one of :data:`EFFECT_KINDS` (cox, tv_cox, aft, logistic, ordinal, dgc, whatif).
    ``subject``: who the effect is about, starting the sentence ("Customers one SD higher on
    recognition", "Disappointed good customers", "Raising recognition by 0.5 points").
    ``comparison``: who they are compared with (" than recognised good customers").
    ``at_tenure``: for a hazard ratio that changes with tenure (time-interaction fallback), the
    tenure in months at which it holds. ``scope`` overrides the default scope phrase.
    What-if only: ``outcome`` names what changes ("defections within 24 months"); ``amount=True``
    for a quantity of money (words "more"/"less") formatted with ``money`` as currency.

    The direction is read from the estimate; when the interval includes the null the sentence
    says "no clear link" ("no clear change" for a what-if) and gives no direction.
    """
    if kind not in EFFECT_KINDS:
        raise ValueError(f"The 'kind' parameter of effect_sentence must be one of {sorted(EFFECT_KINDS)}. "
                         f"Got {kind!r} instead.")
    spec = EFFECT_KINDS[kind]
    outcome = outcome or spec["outcome"]
    subject = _cap(subject.strip())
    if not _finite(estimate, lower, upper):
        return f"{subject}: the effect could not be estimated."
    estimate, lower, upper = float(estimate), float(lower), float(upper)
    if lower > upper:
        lower, upper = upper, lower
    if not (lower - 1e-9 * max(1.0, abs(lower)) <= estimate <= upper + 1e-9 * max(1.0, abs(upper))):
        raise ValueError(f"effect_sentence: the estimate {estimate:g} lies outside its interval "
                         f"[{lower:g}, {upper:g}] ({subject}); check the columns passed.")
    if spec["ratio"] and lower <= 0:
        raise ValueError(f"effect_sentence: a {spec['stat']} must be positive; got a lower bound of {lower:g}.")
    word = direction(kind, estimate, lower, upper)

    if spec["ratio"]:
        stat = f"{spec['stat']} {_num(estimate, digits)}, {_ci(lower, upper, '{:.%df}' % digits)}"
        if kind in ("cox", "tv_cox", "dgc"):
            if scope is None:
                scope = ("at any given time" if at_tenure is None else
                         f"at a tenure of {_months(at_tenure)} months only, as the ratio changes with tenure")
        scope_txt = f" {scope}" if scope else ""
        if word is None:
            versus = f", compared with {comparison[len(' than '):]}" if comparison.startswith(" than ") else comparison
            the = "" if outcome.startswith(("how ", "the ")) else "the "
            return (f"{subject}: no clear link with {the}{outcome}{scope_txt}{versus} "
                    f"({stat}, which includes 1, the value for no difference).")
        size = _ratio_size(estimate)
        if kind == "aft":
            return f"{subject} stay {size} {word}{comparison}{scope_txt} ({stat})."
        article = "" if outcome.startswith("odds") else _article(size)
        return f"{subject} have {article}{size} {word} {outcome}{comparison}{scope_txt} ({stat})."

    # differences (what-if)
    up, down = ("more", "less") if amount else (spec["up"], spec["down"])
    whole = max(abs(estimate), abs(lower), abs(upper)) >= 10  # one precision for the three figures

    def fmt(x: float, signed: bool = False) -> str:
        if amount:
            return format_money(x, money, signed=signed)
        s = f"{abs(x):,.0f}" if whole else f"{abs(x):.1f}"
        if signed:
            return ("+" if x > 0 else "−" if x < 0 else "") + s
        return s

    if word is None:
        return (f"{subject} would bring no clear change in {outcome} (change {fmt(estimate, True)}, "
                f"95 % CI {fmt(lower, True)} to {fmt(upper, True)}, which includes no change).")
    word = up if estimate > 0 else down
    a, b = sorted((abs(lower), abs(upper)))
    return (f"{subject} would mean {fmt(estimate)} {word} {outcome} "
            f"(95 % CI {fmt(a)} to {fmt(b)} {word}).")


def per_unit_subject(term: str, unit: str = "SD") -> str:
    """"Customers one SD higher on recognition" for a scale score; "Customers with a complaint
    open" for a 0/1 flag named in :data:`LABELS`; "Customers in channel: online" for a level."""
    if term in ("complaint_open", "complaint_resolved_no_goodwill", "complaint_resolved_goodwill"):
        return f"Customers with {LABELS[term]}"
    if term == "dgc":
        return "Disappointed good customers"
    if "[" in term:
        return f"Customers with {human_label(term)}"
    return f"Customers one {unit} higher on {human_label(term)}"


def hazard_sentence(construct: str, hr: float, lower: float, upper: float, unit: str = "SD",
                    at_tenure: float | None = None) -> str:
    """One construct's hazard ratio per ``unit`` in words (see :func:`effect_sentence`)."""
    return effect_sentence("cox", per_unit_subject(construct, unit), hr, lower, upper, at_tenure=at_tenure)


def cox_findings(summary: pd.DataFrame, model_label: str | None = None, t_ref: float | None = None,
                 kind: str = "cox") -> list[str]:
    """Findings from a :class:`cxlab.models.survival.cox.CoxModel` summary (per-SD hazard ratios).

    The perception with the lowest clearly-below-1 hazard ratio is named first ("matters most");
    when none is clearly linked the first sentence says so. Constructs with a time interaction
    (rows of ``kind == "time_interaction"``, the PH fallback) are stated at tenure ``t_ref``.
    """
    c = summary[summary["kind"] == "construct"].copy()
    if c.empty:
        return []
    varying = set(summary.loc[summary["kind"] == "time_interaction", "variable"]) \
        if "variable" in summary.columns else set()
    c = c.sort_values("hr_per_sd")

    def sentence(r):
        return effect_sentence(kind, per_unit_subject(r["term"]), r["hr_per_sd"], r["lower_per_sd"],
                               r["upper_per_sd"], at_tenure=t_ref if r["term"] in varying else None)

    out = []
    protective = c[c["upper_per_sd"] < 1]
    if len(protective):
        top = protective.iloc[0]
        rest_terms = [human_label(t) for t in protective["term"].iloc[1:]]
        others = (", ".join(rest_terms[:-1]) + " and " + rest_terms[-1]) if len(rest_terms) > 1 else "".join(rest_terms)
        verb = "protect" if len(rest_terms) > 1 else "protects"
        first = sentence(top)
        # "matters most" only when no other perception's interval reaches this one's (whether or not
        # that other interval includes 1: an uncertain perception may be as strong)
        reach = c[(c["term"] != top["term"]) & (c["lower_per_sd"] <= top["upper_per_sd"])]
        second = reach.iloc[0] if len(reach) else None
        if second is not None:
            lead = (f"{_cap(human_label(top['term']))} has the strongest estimated link, though its interval "
                    f"overlaps that of {human_label(second['term'])}, so which matters most is uncertain")
            also = f" {_cap(others)} also {verb}." if others else ""
        else:
            lead = f"{_cap(human_label(top['term']))} matters most"
            also = f" {_cap(others)} also {verb}, less strongly." if others else ""
        out.append(f"{lead}: {first[:1].lower()}{first[1:]}{also}")
        rest = c[c["term"] != top["term"]]
    else:
        out.append("No perception is clearly linked to a lower risk of defecting once the others are held equal.")
        rest = c
    out += [sentence(r) for _, r in rest.iterrows()]
    if model_label:
        out.append(model_label)
    return out


def flag_findings(summary: pd.DataFrame, terms, kind: str = "tv_cox", t_ref: float | None = None,
                  comparison: Mapping[str, str] | None = None) -> list[str]:
    """Sentences for 0/1 flags and levels of a Cox-type summary (columns term, hr, lower, upper),
    e.g. the complaint states of the time-varying model: "Customers with a complaint open have
    a 56 % lower risk ..." or "no clear link"."""
    s = summary.set_index("term")
    varying = set(summary.loc[summary.get("kind", pd.Series(dtype=object)) == "time_interaction", "variable"]) \
        if "kind" in summary.columns and "variable" in summary.columns else set()
    out = []
    for t in terms:
        if t not in s.index:
            continue
        r = s.loc[t]
        out.append(effect_sentence(kind, per_unit_subject(t), r["hr"], r["lower"], r["upper"],
                                   comparison=(comparison or {}).get(t, ""),
                                   at_tenure=t_ref if t in varying else None))
    return out


__all__.append("flag_findings")


def retention_findings(retention: pd.DataFrame, label: str = "of respondents") -> list[str]:
    """Sentences from a retention table (time, estimate, lower, upper) for one group."""
    out = []
    for _, r in retention.iterrows():
        if r.get("suppressed", False):
            continue
        out.append(f"{pct(r['estimate'])} {label} were still customers {r['time']:.0f} months after the survey "
                   f"(95 % CI {pct(r['lower'])}–{pct(r['upper'])}).")
    return out


def diagnostic_warnings(diagnostics: pd.DataFrame) -> list[str]:
    """Failed or borderline checks from a ``diagnostics_`` table, in words."""
    out = []
    for _, d in diagnostics[diagnostics["status"] != "ok"].iterrows():
        what = {"events_per_parameter": "Few events per model parameter",
                "vif": f"Collinearity on {human_label(d['term'])}",
                "convergence": "The model did not converge cleanly"}.get(d["check"], d["check"])
        msg = f": {d['message']}" if isinstance(d.get("message"), str) and d["message"] else ""
        out.append(f"{what} (value {d['value']:.3g}, threshold {d['threshold']:.3g}){msg}.")
    return out


def dgc_answer(cells: Mapping[str, tuple], focus: str = "disappointed good customers",
               reference: str = "recognised good customers",
               contrasts: Mapping[str, tuple] | None = None) -> tuple[str, str]:
    """Are the disappointed good customers the likeliest to leave? -> ("yes" | "no" | "can't tell",
    sentence).

    ``cells``: cell -> (hazard ratio, lower, upper) against ``reference`` (the reference itself
    may be omitted: its ratio is 1).

    ``contrasts`` (from :func:`cxlab.insight.segments.dgc_contrasts`): cell -> (focus cell's hazard / the
    cell's, 95 % lower, upper), each compared directly. The rule then is: "yes" when every one of
    these intervals lies above 1 (an intersection–union test: each comparison at the 5 % level
    gives the joint claim at 5 %); "no" when some cell's hazard is clearly above the focus cell's
    (its interval, widened for the number of comparisons by Bonferroni, lies below 1); otherwise
    "can't tell", naming the closest cell.

    Without ``contrasts`` (e.g. a manifest from an earlier cxlab) the answer rests on the
    intervals against ``reference``: "yes" when the focus cell's interval lies above 1, its ratio
    is the highest and no other interval reaches it; "no" when its interval lies below 1 or another
    cell's lies entirely above it; otherwise "can't tell". Overlapping intervals are a
    conservative reading: it says "can't tell" more often than the direct comparison."""
    if focus not in cells or not _finite(*cells[focus]):
        return "can't tell", (f"Can't tell: the hazard ratio of {focus} could not be estimated "
                              "(too few respondents in the cell, or the model failed).")
    hr, lo, hi = (float(v) for v in cells[focus])
    others = {c: tuple(float(v) for v in t) for c, t in cells.items() if c != focus and _finite(*t)}
    others.setdefault(reference, (1.0, 1.0, 1.0))
    effect = effect_sentence("dgc", _cap(focus), hr, lo, hi, comparison=f" than {reference}")
    tail = f"{effect[:1].lower()}{effect[1:]}"
    direct = {c: tuple(float(v) for v in t) for c, t in (contrasts or {}).items() if c != focus and _finite(*t)}
    if direct:
        return _dgc_direct(direct, focus, tail)
    top_other = max(others, key=lambda c: others[c][0])
    clearly_above = [c for c, t in others.items() if t[1] > hi]
    if hi < 1:
        return "no", f"No: {effect}"
    if clearly_above:
        return "no", f"No: {clearly_above[0]} leave sooner. {effect}"
    if lo > 1 and hr >= others[top_other][0]:
        close = [c for c, t in others.items() if c != reference and t[2] >= hr]
        if close:
            c = close[0]
            return "can't tell", (f"Can't tell: {tail} Theirs is the highest estimated "
                                  f"risk of the four cells, but not clearly higher than that of {c} (hazard ratio "
                                  f"{others[c][0]:.2f}, 95 % CI {others[c][1]:.2f}–{others[c][2]:.2f}), whose "
                                  f"interval includes it.")
        return "yes", (f"Yes: {tail} This is the highest estimated risk of the four "
                       f"cells, and no other cell's interval reaches it.")
    if lo > 1:
        return "can't tell", (f"Can't tell: {tail} But {top_other} have a higher "
                              f"estimated risk (hazard ratio {others[top_other][0]:.2f}) and the intervals overlap.")
    return "can't tell", f"Can't tell: {tail}"


def _dgc_direct(direct: Mapping[str, tuple], focus: str, tail: str) -> tuple[str, str]:
    """dgc_answer's rule on direct comparisons (see there)."""
    from scipy import stats

    m = len(direct)
    z95 = stats.norm.ppf(0.975)
    z_adj = stats.norm.ppf(1 - 0.025 / m)       # Bonferroni over the m comparisons, for "no"

    def adjusted(t):
        r, lo, hi = t
        se = (math.log(hi) - math.log(lo)) / (2 * z95)
        return math.exp(math.log(r) - z_adj * se), math.exp(math.log(r) + z_adj * se)

    def times(c, t):
        r, lo, hi = t
        return f"{r:.2f} times that of {c} (95 % CI {lo:.2f}–{hi:.2f})"

    closest = min(direct, key=lambda c: direct[c][0])            # the cell whose risk is nearest (or above)
    above = [c for c, t in direct.items() if adjusted(t)[1] < 1]  # clearly riskier than the focus cell
    if above:
        c = min(above, key=lambda c: direct[c][0])
        lo_a, hi_a = adjusted(direct[c])
        return "no", (f"No: {c} leave sooner. Compared directly, the {focus}' risk of defecting is "
                      f"{direct[c][0]:.2f} times theirs (95 % CI {direct[c][1]:.2f}–{direct[c][2]:.2f}; "
                      f"{lo_a:.2f}–{hi_a:.2f} allowing for {m} comparisons). {tail[:1].upper()}{tail[1:]}")
    if all(t[1] > 1 for t in direct.values()):
        return "yes", (f"Yes: {tail} Compared directly with each other cell, their risk is clearly higher; "
                       f"the closest is {times(closest, direct[closest])}.")
    unclear = [c for c, t in direct.items() if t[1] <= 1]
    c = min(unclear, key=lambda c: direct[c][0])
    r, lo, hi = direct[c]
    ci = f"95 % CI {lo:.2f}–{hi:.2f}, which includes 1"
    if hi < 1:   # below 1 on its own, not once the other comparisons are allowed for
        lo_a, hi_a = adjusted(direct[c])
        ci = (f"95 % CI {lo:.2f}–{hi:.2f}; {lo_a:.2f}–{hi_a:.2f} allowing for {m} comparisons, which "
              f"includes 1")
    if r >= 1:
        return "can't tell", (f"Can't tell: {tail} Theirs is the highest estimated risk of the four cells, but not "
                              f"clearly higher than that of {c}: compared directly, {r:.2f} times theirs ({ci}).")
    return "can't tell", (f"Can't tell: {tail} Their estimated risk is not the highest: compared directly, it is "
                          f"{r:.2f} times that of {c} ({ci}).")


__all__.append("dgc_answer")


def ci_table(df: pd.DataFrame, columns: Mapping[str, tuple[str, str, str]], *, term_col: str = "term",
             term_header: str = "term", p_col: str | None = "p", digits: int = 2,
             percent: bool = False) -> pd.DataFrame:
    """A narrow table for a report: one human-labelled term per row and, per estimate, one
    column "0.72 (0.65–0.80)" (estimate and 95 % CI) instead of three numeric columns;
    ``percent=True`` for shares: "23.7 % (21.1–26.6 %)".

    ``columns``: header -> (estimate, lower, upper) column names of ``df``. Missing values show
    as "–", and so does every estimate of a row flagged in a ``suppressed`` column (privacy);
    ``p_col`` (if present) is kept as "p-value", formatted "< 0.001" below 0.001. A text
    ``reference`` column (a model table's reference level) is stated in the label: "channel:
    online (vs branch)"."""
    labels = [human_label(t) for t in df[term_col]]
    if "reference" in df.columns:   # a dummy term says what it is compared with (model tables)
        labels = [f"{label} (vs {ref})" if isinstance(ref, str) and ref else label
                  for label, ref in zip(labels, df["reference"])]
    out = pd.DataFrame({term_header: labels})
    hidden = (df["suppressed"].fillna(False).astype(bool).to_numpy() if "suppressed" in df.columns
              else [False] * len(df))

    def num(x):
        return f"{100 * x:.1f}" if percent else f"{x:.{digits}f}"

    def cell(e, lo, hi, hide):
        if hide or not _finite(e):
            return "–"
        unit = " %" if percent else ""
        if not _finite(lo, hi):
            return f"{num(e)}{unit}"
        return f"{num(e)}{unit} ({num(lo)}–{num(hi)}{unit})"

    for header, (e, lo, hi) in columns.items():
        out[header] = [cell(a, b, c, h) for a, b, c, h in zip(df[e], df[lo], df[hi], hidden)]
    if p_col and p_col in df.columns:
        out["p-value"] = ["–" if not _finite(p) else "< 0.001" if p < 0.001 else f"{p:.3f}" for p in df[p_col]]
    return out


__all__.append("ci_table")

#: the Cox model table's estimate columns for :func:`ci_table`: per SD, per scale point, per unit
COX_CI_COLUMNS = {
    "hazard ratio per SD (95 % CI)": ("hr_per_sd", "lower_per_sd", "upper_per_sd"),
    "per scale point (95 % CI)": ("hr_per_point", "lower_per_point", "upper_per_point"),
    "per unit of the term (95 % CI)": ("hr", "lower", "upper"),
}


def defector_table(would_be: pd.DataFrame) -> pd.DataFrame:
    """Notebook 04's would-be defectors by cell as a narrow table (:func:`ci_table`): the share of
    expected defectors and its ratio to the cell's share of respondents, each "estimate (95 % CI)",
    beside the respondents, their share and the probability that the cell holds the largest share;
    a suppressed cell's estimates blank. ``would_be``: ``would_be_defectors(...).table``."""
    view = ci_table(would_be, {"share of expected defectors (95 % CI)": ("defector_share", "defector_share_lower",
                                                                         "defector_share_upper")},
                    term_col="cell", term_header="cell", p_col=None, percent=True)
    view["ratio to its share of respondents (95 % CI)"] = ci_table(
        would_be, {"r": ("ratio", "lower", "upper")}, term_col="cell", p_col=None)["r"]
    view.insert(1, "respondents", would_be["n"].to_numpy())
    view.insert(2, "share of respondents", would_be["customer_share"].to_numpy())
    view["probability of the largest share"] = would_be["p_highest_share"].to_numpy()
    view["suppressed"] = would_be["suppressed"].to_numpy()
    return view


__all__ += ["COX_CI_COLUMNS", "defector_table"]


# ---- answers first, evidence one click away --------------------------------------------------

#: the most findings a notebook leads with (the rest are evidence, folded)
MAX_LEAD_FINDINGS = 6


def split_findings(lead, evidence=(), *, limit: int = MAX_LEAD_FINDINGS) -> tuple[list[str], list[str]]:
    """(findings to record, evidence to fold): the ``lead`` answers first, at most ``limit`` of
    them (any beyond join the evidence, in order), then ``evidence``; blanks and repeats dropped."""
    def clean(texts):
        return [str(t).strip() for t in texts if str(t or "").strip()]

    lead = list(dict.fromkeys(clean(lead)))
    evidence = [t for t in dict.fromkeys(clean(evidence)) if t not in lead]
    return lead[:limit], lead[limit:] + evidence


def evidence_fold(texts, summary: str = "More findings") -> str:
    """The evidence behind a notebook's answers as one closed fold (HTML, every sentence escaped),
    for the findings cell to display under the recorded answers; "" when there is none."""
    from html import escape

    items = [str(t).strip() for t in texts if str(t or "").strip()]
    if not items:
        return ""
    lis = "".join(f"<li>{escape(t)}</li>" for t in items)
    return (f'<details class="cx-evidence-fold"><summary>{escape(summary)} ({len(items)}: the evidence behind '
            f"these answers)</summary><ul>{lis}</ul></details>")


__all__ += ["MAX_LEAD_FINDINGS", "split_findings", "evidence_fold"]


def fallback_sentence(variables) -> str:
    """The proportional-hazards decision when the fallback model is used, in words, once:
    "Findings use the fallback model: the effects of affect and segment change with tenure"."""
    names = [human_label(v) for v in dict.fromkeys(variables)]
    if not names:
        return "Findings use the fallback model"
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "effect of {} changes" if len(names) == 1 else "effects of {} change"
    return f"Findings use the fallback model: the {verb.format(joined)} with tenure"


__all__.append("fallback_sentence")
