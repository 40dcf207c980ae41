"""The executive summary that opens ``index.html``: the study's questions answered in sentences.

Built only from the run manifest (metrics, findings, omissions, notebook status, parameters):
the report layer never fits a model. Each answer links to its evidence (the notebook's key
findings). When the notebook that answers a question failed, or an analysis was left out, the
answer says so instead of guessing.

Metrics read (stable names, see the README's manifest section):

* 01: ``panel.customers``, ``panel.respondents``, ``panel.response_rate``, ``panel.set_aside``,
  ``panel.events``
* 02: ``cox.hr_per_sd.<construct>``, ``cox.respondents``, ``cox.hr.dgc``, ``ph.fallback``
* 03: ``drivers.importance.<construct>``, ``drivers.rank_stability.<construct>``
* 04: ``segments.hr.<cell>``, ``segments.disappointed.hr``,
  ``value.whatif.delta_defections``, ``value.whatif.delta_margin``, ``value.whatif.horizon_months``
"""

from __future__ import annotations

import json
import math
from urllib.parse import quote

from cxlab.insight import narrative
from cxlab.report.html import esc

__all__ = ["executive_summary", "summary_html"]

_NB = {"audit": "01-data-audit", "survival": "02-survival-drivers", "drivers": "03-measurement-loyalty",
       "segments": "04-segments-value"}

from cxlab.insight.segments import SEGMENTS_2X2 as _CELLS  # noqa: E402  (the cell names 04 records metrics under)


def _slug(text: str) -> str:
    try:
        from cxlab.study import slug
        return slug(text)
    except Exception:  # noqa: BLE001 - older study module
        return text


def _fin(*xs) -> bool:
    return all(x is not None and isinstance(x, (int, float)) and math.isfinite(x) for x in xs)


class _Run:
    def __init__(self, manifest: dict, run_dir=None):
        self.run_dir = run_dir
        self.m = manifest or {}
        self.metrics = self.m.get("metrics") or {}
        self.notebooks = {nb.get("name"): nb for nb in self.m.get("notebooks") or []}

    def metric(self, name):
        return self.metrics.get(name)

    def est(self, name):
        m = self.metrics.get(name)
        return None if m is None else m.get("estimate")

    def triple(self, name):
        m = self.metrics.get(name) or {}
        return m.get("estimate"), m.get("lower"), m.get("upper")

    def prefixed(self, prefix: str) -> dict[str, dict]:
        return {k[len(prefix):]: v for k, v in self.metrics.items() if k.startswith(prefix)}

    def nb(self, key):
        return self.notebooks.get(_NB[key])

    def href(self, key, anchor="cx-findings"):
        nb = self.nb(key)
        if not nb or not nb.get("html"):
            return None
        return f"{quote(str(nb['html']))}#{anchor}"

    def missing(self, key, what: str) -> str | None:
        """Why ``key``'s notebook cannot answer, or None if it can."""
        nb = self.nb(key)
        if nb is None:
            return f"Not answered: the notebook {_NB[key]} was not part of this run."
        if str(nb.get("status", "")).lower() != "succeeded":
            err = nb.get("error") or {}
            why = f" ({err.get('ename')}: {err.get('evalue')})" if err.get("ename") else ""
            return f"Not answered: the notebook {_NB[key]} failed{why}, so {what} is not known from this run."
        return None

    def omitted(self, key) -> list[str]:
        nb = self.nb(key) or {}
        return [str(o.get("text")) for o in nb.get("omissions") or [] if o.get("text")]

    def param(self, key, name, default=None):
        p = (self.m.get("parameters") or {}).get(_NB[key]) or {}
        return p.get(name, default) if isinstance(p, dict) else default


def _label(name: str, metric: dict) -> str:
    return str(metric.get("label") or name).split(".")[-1]


def _most_important(run: _Run) -> str:
    why = run.missing("drivers", "the ranking of the perceptions")
    if why:
        return why
    imp = {k: v for k, v in run.prefixed("drivers.importance.").items() if _fin(v.get("estimate"))}
    if not imp:
        left = run.omitted("drivers")
        return "Not answered: no importance was recorded." + (f" {left[0]}" if left else "")
    top = max(imp, key=lambda k: imp[k]["estimate"])
    t = imp[top]
    name = _label(top, t)
    s = (f"{narrative._cap(name)} carries the largest share of the explanation of time to defection: "
         f"{narrative.pct(t['estimate'])}")
    if _fin(t.get("lower"), t.get("upper")):
        s += f" (95 % CI {narrative.pct(t['lower'])}–{narrative.pct(t['upper'])})"
    p_first = run.est(f"drivers.rank_stability.{top}")
    if _fin(p_first):
        s += f"; it ranks first in {narrative.pct(p_first)} of bootstrap samples"
        if p_first < 0.5:
            s += ", so which perception matters most is uncertain"
    s += "."
    hr = run.triple(f"cox.hr_per_sd.{top}")
    if _fin(*hr):
        s += " " + narrative.hazard_sentence(name, *hr)
    unclear = [_label(k, v) for k, v in run.prefixed("cox.hr_per_sd.").items()
               if _fin(v.get("lower"), v.get("upper")) and v["lower"] <= 1 <= v["upper"] and k != top]
    if unclear:
        s += f" No clear link with defection (95 % CI includes 1): {', '.join(unclear)}."
    return s


def _dgc(run: _Run) -> str:
    why = run.missing("segments", "whether the disappointed good customers leave sooner")
    if why:
        return why
    cells = {}
    for c in _CELLS:
        t = run.triple(f"segments.hr.{_slug(c)}")
        if _fin(*t):
            cells[c] = t
    if "disappointed good customers" not in cells and _fin(*run.triple("segments.disappointed.hr")):
        cells["disappointed good customers"] = run.triple("segments.disappointed.hr")
    if not cells:
        left = run.omitted("segments")
        return ("Can't tell: the segment hazard ratios are not shown (withheld because a cell is smaller than "
                "the privacy threshold, or not estimable)." + (f" {left[0]}" if left else ""))
    direct = {c: run.triple(f"segments.dgc_vs.{_slug(c)}") for c in _CELLS}
    direct = {c: t for c, t in direct.items() if _fin(*t)}   # none in a manifest from an earlier cxlab
    _, sentence = narrative.dgc_answer(cells, contrasts=direct)
    adj = run.triple("cox.hr.dgc")
    crude = cells.get("disappointed good customers")
    if _fin(*adj):
        sentence += (" This is the crude comparison. Holding the perceptions and controls equal (survival "
                     f"notebook) their hazard ratio is {adj[0]:.2f} (95 % CI {adj[1]:.2f}–{adj[2]:.2f})")
        if crude and _fin(crude[0]) and adj[0] < crude[0]:
            sentence += (": smaller, because the perceptions that go with being in the cell (low recognition "
                         "among them) are then counted separately, and only what the flag adds beyond them remains.")
        else:
            sentence += "."
    return sentence


def _whatif(run: _Run) -> str:
    why = run.missing("segments", "what an improvement is worth")
    if why:
        return why
    d, m = run.metric("value.whatif.delta_defections"), run.metric("value.whatif.delta_margin")
    if not d:
        left = run.omitted("segments")
        return "Not answered: the what-if was not recorded." + (f" {left[0]}" if left else "")
    h = run.est("value.whatif.horizon_months")
    within = f" within {h:g} months of the survey" if _fin(h) else ""
    scenario = run.metric("value.whatif.delta_points") or {}
    delta = scenario.get("estimate")
    who = scenario.get("label") or "the chosen respondents"
    subject = (f"Raising recognition by {delta:g} scale points for {who}" if _fin(delta)
               else "The recognition what-if")
    s = narrative.effect_sentence("whatif", subject, d.get("estimate"), d.get("lower"), d.get("upper"),
                                  outcome=f"defections{within}")
    if m and _fin(m.get("estimate"), m.get("lower"), m.get("upper")):
        unit = m.get("unit")
        money = narrative.effect_sentence("whatif", "It", m["estimate"], m["lower"], m["upper"],
                                          outcome=f"discounted margin{within}", amount=True, money=unit)
        s += " " + money + ("" if unit else " The spec names no currency (customers.value_currency), so the "
                                            "margin is in its own unit.")
    return s


def _who(run: _Run) -> str:
    why = run.missing("audit", "who was analysed")
    if why:
        return why
    n, cust, rate = run.est("panel.respondents"), run.est("panel.customers"), run.est("panel.response_rate")
    if not _fin(n):
        return "Not answered: the audit recorded no sample size."
    s = f"{n:,.0f} respondents are analysed"
    if _fin(cust):
        s += f", out of {cust:,.0f} customers known at the snapshot"
    if _fin(rate):
        s += f" (response rate {narrative.pct(rate)})"
    s += "."
    aside = run.est("panel.set_aside")
    if _fin(aside):
        s += (f" {aside:,.0f} respondents were set aside (no usable score or no time at risk after the survey); "
              "the audit counts every excluded row by reason." if aside else " No respondent was set aside.")
    elif "panel.set_aside" in run.metrics:   # recorded but withheld: too few to show (privacy)
        s += (" Some respondents were set aside (too few to give their number); the audit names every reason.")
    ev = run.est("panel.events")
    if _fin(ev):
        s += f" {ev:,.0f} of the respondents defected by the snapshot."
    cox_n = run.est("cox.respondents")
    if "cox.respondents" in run.metrics and cox_n is None:   # withheld by 02: it leaves out too few to count
        m = (run.m.get("parameters") or {}).get("min_cell") or 10
        s += f" The survival models leave out fewer than {m:,.0f} of them: they lack a value of a control."
    elif _fin(cox_n) and cox_n < n:
        m = (run.m.get("parameters") or {}).get("min_cell") or 10   # privacy: the run's min_cell
        if n - cox_n < m:   # a count of fewer than min_cell respondents is not printed
            s += f" The survival models leave out fewer than {m:,.0f} of them: they lack a value of a control."
        else:
            s += (f" The survival models use {cox_n:,.0f} of them: {n - cox_n:,.0f} lack a value of a control.")
    return s


def notebook_notes(ipynb_path) -> list[str]:
    """The plain-language notes (warnings, stderr) of an executed notebook, as its page's
    Checks section shows them; library deprecation notices left out. [] if unreadable."""
    from pathlib import Path

    from cxlab.report.html import _split_warnings, plain_note, tidy_stderr

    try:
        nb = json.loads(Path(ipynb_path).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return []
    out = []
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []) or []:
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = o.get("text", "")
                for chunk in _split_warnings(tidy_stderr("".join(text) if isinstance(text, list) else text)):
                    n = plain_note(chunk)
                    if not n["technical"] and n["text"] not in out:
                        out.append(n["text"])
    return out


def _checks(run: _Run) -> str:
    notes = []
    for name, nb in run.notebooks.items():
        if str(nb.get("status", "")).lower() != "succeeded":
            err = nb.get("error") or {}
            notes.append(f"The notebook {name} failed ({err.get('ename') or 'error'}); its figures are missing.")
        for f in nb.get("findings") or []:
            if f.get("level") == "warning":
                notes.append(str(f.get("text")))
        for o in nb.get("omissions") or []:
            if o.get("text"):
                notes.append(f"Left out: {o['text']}")
        if run.run_dir is not None and nb.get("ipynb"):
            texts = [t.rstrip(".") for t in dict.fromkeys(notebook_notes(run.run_dir / str(nb["ipynb"])))][:3]
            if texts:   # one sentence per notebook, named by its title, each note once
                notes.append(f"Notes from {nb.get('title') or name}: {'; '.join(texts)}")
    if not notes:
        return ("No notebook failed and no model check warned (events per parameter, collinearity, convergence, "
                "proportional hazards, scale reliability); each notebook's \"Checks and notes\" lists what the "
                "software reported while it ran.")
    return " ".join(n if n.endswith(".") else n + "." for n in dict.fromkeys(notes))


QUESTIONS = (
    ("importance", "Which perception matters most?", _most_important, "drivers"),
    ("dgc", "Are the disappointed good customers the likeliest to leave?", _dgc, "segments"),
    ("whatif", "What is an improvement in recognition worth?", _whatif, "segments"),
    ("who", "Who was analysed, and what was set aside?", _who, "audit"),
    ("checks", "Which checks failed, and what was done?", _checks, "survival"),
)


def executive_summary(manifest: dict, run_dir=None) -> list[dict]:
    """[{key, question, answer, href}] from a run manifest (see module docstring); with
    ``run_dir`` (the run folder) the checks answer also lists the notes the notebooks raised."""
    from pathlib import Path

    run = _Run(manifest, None if run_dir is None else Path(run_dir))
    out = []
    for key, question, fn, nb in QUESTIONS:
        try:
            answer = fn(run)
        except Exception as exc:  # noqa: BLE001 - a summary never breaks the index
            answer = f"Not answered: the figures for this question could not be read ({type(exc).__name__})."
        href = run.href(nb, "cx-checks" if key == "checks" else "cx-findings") if nb else None
        out.append({"key": key, "question": question, "answer": answer, "href": href})
    return out


def summary_html(manifest: dict, run_dir=None) -> str:
    items = []
    for a in executive_summary(manifest, run_dir):
        link = f' <a class="cx-evidence" href="{esc(a["href"])}">Evidence</a>' if a["href"] else ""
        items.append(f'<div class="cx-answer" id="cx-answer-{esc(a["key"])}"><dt>{esc(a["question"])}</dt>'
                     f"<dd>{esc(a['answer'])}{link}</dd></div>")
    return ('<section class="cx-box cx-findings cx-summary" id="cx-summary"><h2>Answers</h2>'
            f'<dl class="cx-answers">{"".join(items)}</dl></section>')
