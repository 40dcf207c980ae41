"""Parameter recovery on the 20 000-customer demo study (seed 2026), whose true hazard model is
in truth.json, and the bias that ignoring delayed entry would bring.

The generator's hazard after a survey uses the latest answer's scores, the disappointed-good-
customer flag, the complaint status and the segment (cxlab/data/synth.py documents it). The model
that matches it is the counting-process Cox on the tenure clock with delayed entry at the first
survey; the one-row-per-respondent model matches it when follow-up stops at the next survey
answer. Reference: lifelines CoxPHFitter (Efron ties), checked against R elsewhere.
"""

import json
import warnings

import pytest
from lifelines import CoxPHFitter

from cxlab.data.panel import build_panel
from cxlab.data.synth import write_demo
from cxlab.workbook import open_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo20k")
    spec = write_demo(folder, n_customers=20_000, seed=2026)
    truth = json.loads((folder / "truth.json").read_text())
    return open_study(spec), truth


def design(table, constructs, centre, extra=()):
    X = table[[*extra]].copy()
    for c in constructs:
        X[c] = table[c] - centre
    X["dgc"] = table["dgc"]
    for level in ("affluent", "private"):
        X[level] = (table["segment"] == level).astype(int)
    return X


def fit(X, duration, entry=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter().fit(X.dropna(), duration, "event", entry_col=entry).summary


def per_sd(summary, sd):
    """log-HR per SD and its 95 % CI from a per-point fit: all scale by the same SD."""
    return {c: (summary.loc[c, "coef"] * s, summary.loc[c, "coef lower 95%"] * s,
                summary.loc[c, "coef upper 95%"] * s) for c, s in sd.items()}


def test_counting_process_cox_recovers_every_true_log_hr(demo):
    wb, truth = demo
    p = wb.panel
    iv = p.intervals
    X = design(iv, p.constructs, truth["score_centre"], extra=("start", "stop", "event"))
    X["complaint_open"] = iv["complaint_open"]
    X["complaint_resolved_no_goodwill"] = iv["complaint_resolved_no_goodwill"]
    s = fit(X, "stop", entry="start")
    sd = p.respondents[p.constructs].std()
    est = per_sd(s, sd)
    for c in p.constructs:
        true_per_sd = truth["log_hr_per_point"][c] * sd[c]
        lo, hi = est[c][1], est[c][2]
        assert lo <= true_per_sd <= hi, f"{c}: truth {true_per_sd:.3f} outside [{lo:.3f}, {hi:.3f}]"
    others = {"dgc": truth["gamma_dgc"], "complaint_open": truth["delta_open"],
              "complaint_resolved_no_goodwill": truth["delta_resolved"],
              "affluent": truth["segment_log_hr"]["affluent"], "private": truth["segment_log_hr"]["private"]}
    for term, value in others.items():
        assert s.loc[term, "coef lower 95%"] <= value <= s.loc[term, "coef upper 95%"], term


def test_delayed_entry_recovers_truth_and_ignoring_it_is_biased(demo):
    wb, truth = demo
    r = build_panel(wb.study, wb.data, follow_up="next_survey").respondents
    constructs = wb.panel.constructs
    X = design(r, constructs, truth["score_centre"], extra=("entry", "duration", "event"))
    sd = wb.panel.respondents[constructs].std()
    right = per_sd(fit(X, "duration", entry="entry"), sd)
    naive = per_sd(fit(X.drop(columns="entry"), "duration"), sd)  # as if followed since the start
    truth_sd = {c: truth["log_hr_per_point"][c] * sd[c] for c in constructs}
    for c in constructs:
        assert right[c][1] <= truth_sd[c] <= right[c][2], c
    # immortal time before the survey flatters the perceptions that grow with tenure
    missed = [c for c in constructs if not naive[c][1] <= truth_sd[c] <= naive[c][2]]
    assert len(missed) >= 2, f"naive CIs cover the truth for all but {missed}"
    total_bias = lambda est: sum(abs(est[c][0] - truth_sd[c]) for c in constructs)  # noqa: E731
    assert total_bias(naive) > 2 * total_bias(right)
    assert naive["recognition"][0] < truth_sd["recognition"]   # biased away from 1
