"""Survival analysis of time to defection.

Kaplan–Meier and log-rank tests (:mod:`.km`), Cox models fixed and time-varying (:mod:`.cox`),
proportional-hazards tests with their documented fallback (:mod:`.phtest`), accelerated
failure time models (:mod:`.aft`) and cross-validated evaluation (:mod:`.evaluate`). Every
estimate is checked against R's survival package (tests/reference/).

One foundation under all of them: the risk sets of :class:`.engine.RiskSets` (``entry < t <=
stop``), one Cox engine (:mod:`.engine`), one Kaplan–Meier (:func:`.km.km_product`, with the
curve's privacy rule :func:`cxlab.privacy.curve_suppressed`) and one design-matrix builder
(:mod:`.design`: dummy coding against one reference level, stated in every model table). A
survival table carries its clock (:mod:`.clock`: duration, event, entry, snapshot date in
``DataFrame.attrs``) and every model defaults to its delayed entry (``entry_col=False``: none).
"""

from cxlab.models.survival.aft import AFTComparison, fit_aft, time_ratio_sentence
from cxlab.models.survival.clock import NO_ENTRY, mark_survival_table, resolve_entry, survival_spec
from cxlab.models.survival.cox import CoxModel, TimeVaryingCoxModel
from cxlab.models.survival.evaluate import EvaluationResult, calibration, evaluate_survival, harrell_c, uno_c
from cxlab.models.survival.km import KaplanMeierResult, kaplan_meier, logrank, pairwise_logrank
from cxlab.models.survival.phtest import FallbackResult, check_and_fallback, ph_test, split_at_event_times

__all__ = [
    "AFTComparison", "fit_aft", "time_ratio_sentence",
    "NO_ENTRY", "mark_survival_table", "resolve_entry", "survival_spec",
    "CoxModel", "TimeVaryingCoxModel",
    "EvaluationResult", "calibration", "evaluate_survival", "harrell_c", "uno_c",
    "KaplanMeierResult", "kaplan_meier", "logrank", "pairwise_logrank",
    "FallbackResult", "check_and_fallback", "ph_test", "split_at_event_times",
]
