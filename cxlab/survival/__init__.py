"""Survival analysis of time to defection.

Kaplan–Meier and log-rank tests (:mod:`.km`), Cox models fixed and time-varying (:mod:`.cox`),
proportional-hazards tests with their documented fallback (:mod:`.phtest`), accelerated
failure time models (:mod:`.aft`) and cross-validated evaluation (:mod:`.evaluate`). Every
estimate is checked against R's survival package (tests/reference/).
"""

from cxlab.survival.aft import AFTComparison, fit_aft, time_ratio_sentence
from cxlab.survival.cox import CoxModel, TimeVaryingCoxModel
from cxlab.survival.evaluate import EvaluationResult, calibration, evaluate_survival, harrell_c, uno_c
from cxlab.survival.km import KaplanMeierResult, kaplan_meier, logrank, pairwise_logrank
from cxlab.survival.phtest import FallbackResult, check_and_fallback, ph_test, split_at_event_times

__all__ = [
    "AFTComparison", "fit_aft", "time_ratio_sentence",
    "CoxModel", "TimeVaryingCoxModel",
    "EvaluationResult", "calibration", "evaluate_survival", "harrell_c", "uno_c",
    "KaplanMeierResult", "kaplan_meier", "logrank", "pairwise_logrank",
    "FallbackResult", "check_and_fallback", "ph_test", "split_at_event_times",
]
