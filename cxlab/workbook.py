"""One call that every notebook starts with: study -> validation -> panel.

The :class:`Workbook` also knows which optional parts of the study spec are present, so that a
notebook never fails on a study without complaints, self-status, a recognition construct,
outcomes, a value column or covariates. Where an analysis needs a part the spec does not give,
the notebook calls :meth:`Workbook.omit`, which states, in one plain sentence where the analysis
would be, what was left out and which spec key would enable it, and records the omission for
the run's manifest and index (:func:`cxlab.report.record_omission`)::

    if wb.has("complaints"):
        ...  # the complaint analysis
    else:
        wb.omit("complaints", "the complaint terms of the time-varying Cox model")
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxlab.errors import ParameterError
from cxlab.data.panel import Panel, build_panel
from cxlab.study import Study, load_study

__all__ = ["Workbook", "open_study", "start_notebook", "PARTS", "has_part", "omission_sentence", "outcome_for_role",
           "dgc_definition", "dgc_comparison", "resolve_horizon", "resolve_n_jobs", "varying_terms", "recognition_what_if",
           "Concentration", "margin_concentration", "cox_terms", "recommend_setup", "dgc_grid", "record_findings"]

#: optional part -> (what is missing, in words; the spec key that enables it)
PARTS: dict[str, tuple[str, str]] = {
    "complaints": ("no complaints file", "`complaints:`"),
    "self_status": ("no self-status item", "`surveys.self_status:` (the item \"I consider myself a good customer\")"),
    "recognition": ("no construct playing recognition",
                    "a construct named `recognition` (or name one under `segments: {disappointed: {recognition: ...}}`)"),
    "value": ("no value column", "`customers.value:` (the customer's margin)"),
    "covariates": ("no covariates", "`customers.covariates:`"),
    "outcomes": ("no outcome", "`surveys.outcomes:`"),
}

#: parts made of other parts: the disappointed good customers need a self-status item and recognition
_COMPOUND = {"dgc": ("self_status", "recognition")}

#: environment variable through which the runner gives notebooks their share of the cores
N_JOBS_ENV = "CXLAB_N_JOBS"


def outcome_for_role(study: Study, role: str) -> str | None:
    """The outcome (its name in the spec) that plays ``role`` ("recommend", "satisfaction", ...):
    found by its declared role, never by the literal key (``study.outcome_for_role``)."""
    return study.outcome_for_role(role)


def has_part(study: Study, part: str) -> bool:
    """Whether the study spec gives ``part`` (a key of :data:`PARTS`, ``"dgc"``, or
    ``"outcome:<role>"``)."""
    if part in _COMPOUND:
        return all(has_part(study, p) for p in _COMPOUND[part])
    if part.startswith("outcome:"):
        return outcome_for_role(study, part.split(":", 1)[1]) is not None
    if part == "complaints":
        return study.complaints is not None
    if part == "self_status":
        return study.surveys.self_status is not None
    if part == "recognition":
        return study.recognition_construct is not None
    if part == "value":
        return study.customers.value is not None
    if part == "covariates":
        return bool(study.customers.covariates)
    if part == "outcomes":
        return bool(study.surveys.outcomes)
    raise ParameterError(f"Unknown study part {part!r}; known parts: "
                         f"{', '.join([*PARTS, *_COMPOUND, 'outcome:<role>'])}.")


def _missing(study: Study, part: str) -> list[tuple[str, str]]:
    """(what is missing, spec key) for every missing piece of ``part``."""
    if part in _COMPOUND:
        return [m for p in _COMPOUND[part] for m in _missing(study, p)]
    if part.startswith("outcome:"):
        role = part.split(":", 1)[1]
        if has_part(study, part):
            return []
        return [(f"no outcome with the role `{role}`", f"an outcome with `role: {role}` under `surveys.outcomes:`")]
    return [] if has_part(study, part) else [PARTS[part]]


def omission_sentence(study: Study, part: str, analysis: str) -> str | None:
    """One plain sentence: what is missing, what is left out, which spec key enables it.

    None when nothing of ``part`` is missing. ``analysis`` names what is left out ("the complaint
    analysis"); the sentence reads "No complaints file in the study spec: the complaint analysis is
    left out. Add `complaints:` to the spec to enable it."
    """
    missing = _missing(study, part)
    if not missing:
        return None
    what = " and ".join(w for w, _ in missing)
    what = what[0].upper() + what[1:] + " in the study spec"
    keys = " and ".join(key for _, key in missing)
    analysis = analysis.strip().rstrip(".")
    return f"{what}: {analysis} is left out. Add {keys} to the spec to enable it."


# --------------------------------------------------------------------------------------------
# one definition per concept per run


def dgc_definition(study: Study):
    """The run's definition of the disappointed good customers: the study spec's
    (:attr:`cxlab.study.Study.dgc_definition`, with ``good_customer_min``, ``recognised_min`` and
    ``sentence``), the one the panel's ``dgc`` column follows. None when the study cannot have
    them (no self-status item or no recognition construct)."""
    if not has_part(study, "dgc"):
        return None
    return study.dgc_definition


_DGC_HR = {
    "adjusted": ("The disappointed-good-customer hazard ratio here is adjusted: it compares them with every other "
                 "respondent at equal perception scores and controls, so it is the risk beyond what their lower "
                 "recognition score already explains. Notebook 04 reports the crude ratio (against the recognised "
                 "good customers, nothing else held equal), which also carries the effect of that lower score and is "
                 "usually larger."),
    "crude": ("The hazard ratios here are crude: each cell is compared with the recognised good customers with "
              "nothing else held equal, so the disappointed good customers' ratio carries the effect of their lower "
              "recognition score too. Notebook 02 reports the adjusted ratio (at equal perception scores and "
              "controls), which is the risk beyond that and usually smaller."),
}


def dgc_comparison(definition, kind: str) -> str:
    """The run's DGC definition, then which DGC hazard ratio a notebook reports ("adjusted" in 02,
    "crude" in 04) and why the two differ."""
    if kind not in _DGC_HR:
        raise ParameterError(f"The 'kind' parameter of dgc_comparison must be 'adjusted' or 'crude'. Got {kind!r} instead.")
    sentence = getattr(definition, "sentence", "") or ""
    return f"{sentence} {_DGC_HR[kind]}".strip()


def resolve_horizon(value, horizons, name: str) -> int | float:
    """A per-notebook horizon parameter: ``None`` means the run's main horizon ``horizons[0]``."""
    if not horizons:
        raise ParameterError("The 'horizons' parameter must list at least one horizon in months, e.g. [12, 24].")
    h = horizons[0] if value is None else value
    if not (isinstance(h, (int, float)) and h > 0):
        raise ParameterError(f"The {name!r} parameter must be a positive number of months or None "
                             f"(= horizons[0]). Got {h!r} instead.")
    return h


def resolve_n_jobs(n_jobs: int = 0) -> int:
    """Worker processes for a notebook's bootstraps: ``n_jobs`` when positive; 0 = the runner's
    share of the cores (environment variable ``CXLAB_N_JOBS``), else every core."""
    if not isinstance(n_jobs, int) or n_jobs < 0:
        raise ParameterError(f"The 'n_jobs' parameter must be a non-negative integer (0 = all cores). "
                             f"Got {n_jobs!r} instead.")
    if n_jobs > 0:
        return n_jobs
    env = os.environ.get(N_JOBS_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, os.cpu_count() or 1)


def varying_terms(df: pd.DataFrame, terms) -> tuple[list[str], list[str]]:
    """(terms that vary in ``df``, terms constant there): a constant column cannot be estimated."""
    keep, constant = [], []
    for t in terms:
        (keep if t in df.columns and df[t].nunique(dropna=True) > 1 else constant).append(t)
    return keep, constant


def cox_terms(constructs, controls, *, dgc: bool = False, strata=(), weights_col: str = ""):
    """Notebook 02's Cox model terms: ``(columns, controls)``. ``columns`` are what its rows need
    (the perceptions, the DGC flag when ``dgc``, the controls, then the strata and the weights
    column, each once); ``controls`` are the model's controls: every column but the perceptions,
    the strata and the weights (a stratum gets its own baseline, weights weigh rows: neither is a
    term)."""
    columns = [*constructs, *(["dgc"] if dgc else []), *controls]
    columns += [c for c in [*strata, weights_col] if c and c not in columns]
    model_controls = [t for t in columns if t not in constructs and t not in strata and t != weights_col]
    return columns, model_controls


def recommend_setup(wb: "Workbook", outcome: str = "", bins: str = "nps"):
    """Notebook 03's recommendation model: ``(outcome, has_outcome, bins, note)``.

    ``outcome``: the parameter ("" = the study's outcome with the role recommend); ``has_outcome``:
    whether the panel has it; ``bins``: "nps" (detractor / passive / promoter) only on a 0-10
    outcome, else "" (the answers as given), and then ``note`` says why in one sentence ("" when
    nothing needs saying)."""
    outcome = outcome or wb.outcome("recommend") or ""
    has_outcome = outcome in wb.panel.outcomes
    note = ""
    if has_outcome and bins == "nps" and tuple(wb.study.surveys.outcome_scale(outcome)) != (0, 10):
        bins = ""  # the NPS bands are defined on 0-10 only
        scale = "–".join(f"{x:g}" for x in wb.study.surveys.outcome_scale(outcome))
        note = (f"The recommendation outcome `{outcome}` is answered on {scale}, not 0–10: the NPS bands do not "
                f"apply, so its model uses the answers as given.")
    return outcome, has_outcome, bins, note


def dgc_grid(wb: "Workbook"):
    """Notebook 04's 2 × 2 grid of self-status and recognition on the analysed respondents, with
    the run's DGC definition: ``(grid, classified)``, every respondent with its ``segment_2x2``
    cell and those in a cell (the unclassified left out); ``(None, None)`` when the study cannot
    have disappointed good customers."""
    from cxlab.insight.segments import UNCLASSIFIED, perception_segments

    dgc, panel = wb.dgc_definition, wb.panel
    if dgc is None:
        return None, None
    grid = perception_segments(panel.respondents, panel.recognition, scale=panel.scale,
                               good_customer_min=dgc.good_customer_min, recognised_min=dgc.recognised_min)
    return grid, grid[grid["segment_2x2"] != UNCLASSIFIED]


def record_findings(found) -> None:
    """Record a notebook's :class:`cxlab.insight.findings.Findings` for the run: each finding in
    order (with its level), then its evidence shown as one closed fold, then each metric."""
    from cxlab.insight.narrative import evidence_fold
    from cxlab.report import record_finding, record_metric

    for text, level in found.findings:
        record_finding(text, level=level)
    if found.evidence:
        from IPython.display import HTML, display

        display(HTML(evidence_fold(found.evidence)))
    for m in found.metrics:
        record_metric(m.name, m.estimate, m.lower, m.upper, unit=m.unit, label=m.label)


def recognition_what_if(panel: Panel, dgc, *, delta_points: float, segment: str | None, move_share: float,
                        horizons, n_boot: int, discount_rate: float, n_jobs: int = 1, with_value: bool = True,
                        seed: int = 0, boot_refit: str = "auto"):
    """Notebook 04's two what-if scenarios on the recognition construct.

    Fits one Cox model of defection (tenure clock, delayed entry at the survey) on the perceptions
    and, when the study has disappointed good customers (``dgc`` is the run's definition, None
    otherwise), their flag; then :func:`cxlab.insight.value.what_if` raises recognition by
    ``delta_points`` for ``segment`` (None or "all" = every respondent) and, with ``dgc``, moves
    ``move_share`` of the disappointed good customers to the recognised good customers' level.
    Returns ``(raise_table, move_table)``; ``move_table`` is None without ``dgc``. Money rows
    (discounted margin) only ``with_value``. ``boot_refit``: how the bootstrap draws refit
    (:func:`cxlab.insight.value.what_if`; "auto" takes one Newton step per draw on large tables).
    """
    from cxlab.insight.segments import perception_segments
    from cxlab.models.survival import CoxModel
    from cxlab.insight.value import what_if

    segment = None if segment == "all" else segment
    if panel.recognition is None:
        raise ParameterError("recognition_what_if needs a recognition construct; check wb.has('recognition') first.")
    if dgc is None and segment is not None:
        raise ParameterError(f"The what-if segment {segment!r} needs the disappointed good customers, which this study "
                             f"cannot give; use segment=None (every respondent).")
    controls = ["dgc"] if dgc is not None else []
    rows = panel.model_table([*panel.constructs, *controls, "entry", "duration", "event",
                              *(["value"] if with_value else [])], label="what-if model")
    if dgc is not None:
        rows = perception_segments(rows, panel.recognition, scale=panel.scale,
                                   good_customer_min=dgc.good_customer_min, recognised_min=dgc.recognised_min)
    cox = CoxModel(panel.constructs, controls=controls).fit(rows, duration_col="duration", event_col="event",
                                                            entry_col="entry")
    common = dict(horizons=horizons, n_boot=n_boot, discount_rate=discount_rate, scale=panel.scale, n_jobs=n_jobs,
                  margin_col="value" if with_value else None, seed=seed, boot_refit=boot_refit)
    raised = what_if(rows, cox, panel.recognition, delta_points, segment=segment,
                     dgc_threshold=dgc.recognised_min if dgc is not None else None, **common)
    moved = what_if(rows, cox, panel.recognition, move_share=move_share, **common) if dgc is not None else None
    return raised, moved


@dataclass
class Concentration:
    """Margin concentration on one stated population (see :func:`margin_concentration`)."""

    scope: str                 # the population in words ("respondents in the 2 × 2 grid")
    rows: pd.DataFrame         # that population, one row per respondent with a margin
    group_col: str | None      # the cell column of the Lorenz curves (None: one curve)
    n: int
    gini: pd.DataFrame | None  # value.gini (None: fewer than min_cell respondents)
    top_share: pd.DataFrame | None
    lorenz: pd.DataFrame
    top: float = 0.2

    def table(self) -> pd.DataFrame:
        """The two figures as a narrow table for the report: figure, estimate (95 % CI), respondents."""
        from cxlab.insight.narrative import pct

        def ci(e, lo, hi, fmt):
            return fmt(e) + (f" ({fmt(lo)}–{fmt(hi)})" if pd.notna(lo) and pd.notna(hi) else "")

        rows = []
        if self.gini is not None:
            g = self.gini.iloc[0]
            rows.append({"figure": "Gini coefficient of the margin (0: everyone the same; near 1: a few hold it all)",
                         "estimate (95 % CI)": ci(g["estimate"], g["lower"], g["upper"], lambda x: f"{x:.2f}")})
        if self.top_share is not None:
            t = self.top_share.iloc[0]
            rows.append({"figure": f"share of the margin held by the top {pct(self.top)}",
                         "estimate (95 % CI)": ci(t["estimate"], t["lower"], t["upper"], pct)})
        out = pd.DataFrame(rows, columns=["figure", "estimate (95 % CI)"])
        out["respondents"] = self.n
        out["who"] = self.scope
        return out

    @property
    def title(self) -> str:
        return f"Margin concentration among {self.n:,} {self.scope}" + (", by cell" if self.group_col else "")

    @property
    def sentence(self) -> str:
        """The finding: names the population and its size, with the top share's interval and the Gini."""
        if self.gini is None or self.top_share is None:
            return f"Margin concentration is withheld: the {self.scope} are fewer than the privacy threshold."
        from cxlab.insight.narrative import pct

        g, t = self.gini.iloc[0], self.top_share.iloc[0]
        ci = (f"95 % CI {pct(t['lower'])}–{pct(t['upper'])}; " if pd.notna(t["lower"]) and pd.notna(t["upper"]) else "")
        return (f"Among the {self.n:,} {self.scope}, the top {pct(self.top)} hold {pct(t['estimate'])} of the margin "
                f"({ci}Gini {g['estimate']:.2f}).")


def margin_concentration(wb: "Workbook", *, top: float = 0.2, n_boot: int = 0, seed: int = 0,
                         min_cell: int | None = None) -> Concentration:
    """Notebook 04's profit concentration (Gini, top-``top`` share, Lorenz curves), all three on one
    population: the respondents the audit kept (``wb.panel.respondents``, never ``wb.data.customers``:
    non-respondents and the respondents set aside are not in it), classified into the 2 × 2 grid of
    the run's DGC definition when the study has one (the unclassified left out), with a known margin.
    The Lorenz curves (one per cell, plus "all") are drawn from the same rows as the figures."""
    from cxlab import privacy
    from cxlab.insight.segments import UNCLASSIFIED, perception_segments
    from cxlab.insight.value import gini, lorenz, top_share

    m = privacy.resolve_min_cell(min_cell)
    panel, dgc = wb.panel, wb.dgc_definition
    rows, group_col = panel.respondents, None
    scope = "respondents analysed"
    if dgc is not None:
        with warnings.catch_warnings():   # the unclassified are counted where the notebook builds its grid
            warnings.simplefilter("ignore", UserWarning)
            rows = perception_segments(rows, panel.recognition, scale=panel.scale,
                                       good_customer_min=dgc.good_customer_min, recognised_min=dgc.recognised_min)
        rows = rows[rows["segment_2x2"] != UNCLASSIFIED]
        group_col, scope = "segment_2x2", "respondents in the 2 × 2 grid"
    known = rows["value"].notna()
    if not known.all():
        scope += " with a known margin"
    rows = rows[known].reset_index(drop=True)
    n = len(rows)
    g = t = None
    if n >= m:
        g = gini(rows["value"], n_boot=n_boot, seed=seed).assign(scope=scope)
        t = top_share(rows["value"], top, n_boot=n_boot, seed=seed).assign(scope=scope)
    curves = (lorenz(rows["value"], groups=rows[group_col] if group_col else None, min_cell=m) if n
              else pd.DataFrame(columns=["group", "customer_share", "margin_share", "n"]))
    return Concentration(scope=scope, rows=rows, group_col=group_col, n=n, gini=g, top_share=t, lorenz=curves,
                         top=top)


# --------------------------------------------------------------------------------------------


@dataclass
class Workbook:
    """A study with its validated data and analysis tables."""

    study: Study
    validation: "object"   # cxlab.data.validate.ValidationReport
    panel: Panel
    omissions: list[str] = field(default_factory=list)

    @property
    def data(self):
        if self.validation.data is None and getattr(self.validation, "engine", None) is not None:
            self.validation.data = self.validation.engine.to_study_data()   # a source: collected on first use
        return self.validation.data

    def table(self, role: str):
        """The study's typed ``role`` table ("customers", "surveys", "complaints") where it lives, for
        aggregate queries that bring back counts, not rows: a source study's table on its engine, the
        run's shared Parquet copy under ``cxlab run`` (scanned by DuckDB), else the frame already in
        memory. :func:`cxlab.insight.audit.response_summary` and
        :func:`cxlab.insight.value.cohort_survivors` take any of them."""
        data = self.validation.data
        engine = getattr(self.validation, "engine", None)
        if data is None and engine is not None:
            return getattr(engine, role)
        if hasattr(data, "table"):
            return data.table(role)
        return getattr(self.data, role)

    def has(self, part: str) -> bool:
        """Whether the study spec gives ``part``: "complaints", "self_status", "recognition",
        "value", "covariates", "outcomes", "dgc" (self-status and recognition) or
        "outcome:<role>" (e.g. "outcome:recommend")."""
        return has_part(self.study, part)

    def outcome(self, role: str) -> str | None:
        """The outcome playing ``role`` (e.g. "recommend"), or None."""
        return outcome_for_role(self.study, role)

    @property
    def dgc_definition(self):
        return dgc_definition(self.study)

    def omission(self, part: str, analysis: str) -> str | None:
        """The omission sentence for ``part`` (None when the part is present); nothing recorded."""
        return omission_sentence(self.study, part, analysis)

    def omit(self, part: str, analysis: str) -> str | None:
        """State and record that ``analysis`` is left out because ``part`` is missing.

        Shows the sentence where the analysis would be (as Markdown), records it for the run's
        manifest and index, and returns it. None (and nothing shown) when the part is present.
        """
        text = self.omission(part, analysis)
        if text is None:
            return None
        from cxlab.report.record import record_omission

        if text not in self.omissions:
            self.omissions.append(text)
        record_omission(text, part=part)
        return text


def start_notebook(study_path: str | Path, min_cell: int, **panel_options) -> Workbook:
    """A notebook's first call: the report's plot style, ``min_cell`` as the one privacy threshold
    for every table, curve and model, then :func:`open_study`."""
    from cxlab import privacy
    from cxlab.report.plots import use_style

    use_style()
    privacy.set_min_cell(min_cell)
    return open_study(study_path, **panel_options)


def open_study(study_path: str | Path, **panel_options) -> Workbook:
    """Load a study spec, check its data against the contract, and build the panel.

    Raises :class:`cxlab.errors.DataContractError` listing every data problem at once.
    ``panel_options`` go to :func:`cxlab.data.panel.build_panel`.
    """
    from cxlab.data.validate import validate_engine, validate_study

    study = load_study(study_path)

    def validate():
        if study.source is not None:     # checked by queries where the tables live; they stay there
            from cxlab.data.sources import connect

            validation = validate_engine(study, connect(study))
        else:
            validation = validate_study(study)
        validation.raise_if_failed()
        return validation

    from cxlab.data.panelcache import cached_open   # validated and built once per run under `cxlab run`

    validation, panel = cached_open(study, validate, **panel_options)
    _check_sample_size(panel)
    return Workbook(study=study, validation=validation, panel=panel)


def _check_sample_size(panel: Panel) -> None:
    """The whole analysed sample is itself a group: below ``min_cell`` no figure may be shown.

    Raises :class:`cxlab.errors.ParameterError` (the count itself is not quoted)."""
    from cxlab import privacy

    min_cell = privacy.get_min_cell()
    if panel.n_respondents < min_cell:
        raise ParameterError(
            f"The study has fewer analysed respondents than min_cell ({min_cell}): every figure would describe "
            f"fewer than {min_cell} customers, so none can be shown. Lower min_cell (at least 5) or add respondents.")
