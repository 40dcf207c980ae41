"""cxlab.workbook: which optional parts a study has, the omission sentences, run-level settings."""

import copy

import pandas as pd
import pytest

from cxlab import workbook
from cxlab.errors import ParameterError
from cxlab.report import record
from cxlab.study import parse_study
from shapes import BASE_SPEC


def study(change=None):
    raw = copy.deepcopy(BASE_SPEC)
    if change:
        change(raw)
    return parse_study(raw)


def test_demo_shape_has_every_part():
    s = study()
    for part in ("complaints", "self_status", "recognition", "value", "covariates", "outcomes", "dgc",
                 "outcome:recommend", "outcome:satisfaction"):
        assert workbook.has_part(s, part), part
        assert workbook.omission_sentence(s, part, "the analysis") is None
    assert not workbook.has_part(s, "outcome:intention_to_stay")


def test_complaint_sentence_names_the_key():
    s = study(lambda r: r.pop("complaints"))
    assert not workbook.has_part(s, "complaints")
    assert workbook.omission_sentence(s, "complaints", "the complaint analysis") == (
        "No complaints file in the study spec: the complaint analysis is left out. "
        "Add `complaints:` to the spec to enable it.")


@pytest.mark.parametrize("part, change, key", [
    ("self_status", lambda r: r["surveys"].pop("self_status"), "surveys.self_status:"),
    ("value", lambda r: r["customers"].pop("value"), "customers.value:"),
    ("covariates", lambda r: r["customers"].update(covariates=[]), "customers.covariates:"),
    ("outcomes", lambda r: r["surveys"].update(outcomes={}, outcome_scales={}), "surveys.outcomes:"),
])
def test_each_missing_part_is_detected_and_named(part, change, key):
    s = study(change)
    assert not workbook.has_part(s, part)
    text = workbook.omission_sentence(s, part, "the thing")
    assert f"`{key}" in text and "the thing is left out" in text


def test_dgc_needs_self_status_and_recognition():
    s = study(lambda r: r["surveys"].pop("self_status"))
    assert workbook.has_part(s, "recognition") and not workbook.has_part(s, "dgc")
    assert workbook.dgc_definition(s) is None

    def no_recognition(r):
        r.pop("segments")
        r["surveys"]["constructs"] = {"esteem": ["q7"], "empathy": ["q10"]}
        r["surveys"].pop("self_status")
    s = study(no_recognition)
    text = workbook.omission_sentence(s, "dgc", "the grid")
    assert text.startswith("No self-status item and no construct playing recognition in the study spec: ")
    assert "`surveys.self_status:`" in text and "`recognition`" in text


def test_outcome_found_by_role_not_by_key():
    def renamed(r):
        r["surveys"]["outcomes"] = {"recommandation": {"column": "q1", "role": "recommend"}}
        r["surveys"]["outcome_scales"] = {}
    s = study(renamed)
    assert workbook.outcome_for_role(s, "recommend") == "recommandation"
    assert workbook.has_part(s, "outcome:recommend")

    def other(r):
        r["surveys"]["outcomes"] = {"recommandation": "q1"}   # short form, not a role name: "other"
        r["surveys"]["outcome_scales"] = {}
    s = study(other)
    assert workbook.outcome_for_role(s, "recommend") is None
    assert "`role: recommend`" in workbook.omission_sentence(s, "outcome:recommend", "the model")


def test_unknown_part_is_an_error():
    with pytest.raises(ParameterError, match="complaints"):
        workbook.has_part(study(), "complaint")


def test_dgc_definition_follows_the_spec():
    s = study(lambda r: r["segments"]["disappointed"].update(good_customer_min=5, recognised_min=2.5))
    d = workbook.dgc_definition(s)
    assert (d.good_customer_min, d.recognised_min) == (5, 2.5)
    assert "2.5" in d.sentence


def test_horizon_defaults_to_the_first_of_the_run():
    assert workbook.resolve_horizon(None, [24, 12], "calibration_months") == 24
    assert workbook.resolve_horizon(6, [24, 12], "calibration_months") == 6
    with pytest.raises(ParameterError, match="calibration_months"):
        workbook.resolve_horizon(0, [12], "calibration_months")
    with pytest.raises(ParameterError, match="horizons"):
        workbook.resolve_horizon(None, [], "calibration_months")


def test_n_jobs(monkeypatch):
    monkeypatch.delenv(workbook.N_JOBS_ENV, raising=False)
    assert workbook.resolve_n_jobs(3) == 3
    assert workbook.resolve_n_jobs(0) >= 1
    monkeypatch.setenv(workbook.N_JOBS_ENV, "5")
    assert workbook.resolve_n_jobs(0) == 5
    assert workbook.resolve_n_jobs(2) == 2
    with pytest.raises(ParameterError):
        workbook.resolve_n_jobs(-1)


def test_varying_terms_drops_constant_columns():
    df = pd.DataFrame({"a": [0, 1, 0], "b": [0, 0, 0], "c": [1.0, None, 1.0]})
    assert workbook.varying_terms(df, ["a", "b", "c", "missing"]) == (["a"], ["b", "c", "missing"])


def test_omission_is_recorded_once_and_read_back(monkeypatch):
    shown = []
    monkeypatch.setattr(record, "_display", lambda mime, payload: shown.append((mime, payload)), raising=False)
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "display_data", "data": {record.OMISSION_MIME: {"text": "A.", "part": "value"},
                                                   "text/markdown": "*A.*"}},
        {"output_type": "display_data", "data": {record.OMISSION_MIME: {"text": "A.", "part": "value"}}},
        {"output_type": "display_data", "data": {record.OMISSION_MIME: {"text": "B.", "part": None}}},
    ]}]}
    assert record.read_omissions(nb) == [{"text": "A.", "part": "value"}, {"text": "B.", "part": None}]
    with pytest.raises(ValueError):
        record.record_omission("  ")


def test_workbook_omit_keeps_each_sentence_once():
    s = study(lambda r: r.pop("complaints"))
    wb = workbook.Workbook(study=s, validation=None, panel=None)
    assert wb.omit("value", "x") is None
    t = wb.omit("complaints", "the complaint analysis")
    wb.omit("complaints", "the complaint analysis")
    assert wb.omissions == [t]


# ---- reliability findings (cxlab.models.measurement.reliability_findings) ----------------------------

from cxlab.models.measurement import SINGLE_ITEM_NOTE, reliability, reliability_findings  # noqa: E402


def _rel(**cols):
    return pd.DataFrame(cols)


def test_single_items_get_no_alpha_and_no_reliability_claim():
    import numpy as np
    answers = pd.DataFrame({"q1": np.tile([1.0, 2, 3, 4, 5], 10), "q2": np.tile([2.0, 2, 3, 5, 4], 10)})
    rel = reliability(answers, {"a": ["q1"], "b": ["q2"]})
    assert rel["alpha"].isna().all() and rel["omega"].isna().all()
    assert (rel["note"] == SINGLE_ITEM_NOTE).all()
    texts = [t for t, _ in reliability_findings(rel)]
    assert texts == ["Every perception is measured by one item: reliability is not defined, so measurement "
                     "error cannot be checked."]
    assert not any("nan" in t for t in texts)


def test_mixed_scales_judge_only_those_with_several_items():
    rel = _rel(construct=["solo", "b", "c"], n_items=[1, 3, 2], alpha=[float("nan"), 0.80, 0.75],
               omega=[float("nan"), 0.81, float("nan")])
    out = reliability_findings(rel)
    assert out[0] == ("Every perception scale of several items is reliable (alpha from 0.75 to 0.80).", "finding")
    assert out[1][0].startswith("Solo is measured by one item")


def test_weak_scale_is_a_warning_naming_the_failing_coefficient():
    rel = _rel(construct=["a", "b"], n_items=[3, 3], alpha=[0.80, 0.71], omega=[0.80, 0.69])
    out = reliability_findings(rel)
    assert out == [("The b scale is not reliable enough (alpha 0.71, omega 0.69; 0.7 wanted): read its results "
                    "with care.", "warning")]
    rel = _rel(construct=["a"], n_items=[3], alpha=[0.70], omega=[0.70])
    assert reliability_findings(rel)[0][1] == "finding"   # 0.7 itself is reliable enough


# ---- the what-if of notebook 04 ------------------------------------------------------------

@pytest.fixture(scope="module")
def shape_books(tmp_path_factory):
    from shapes import write_shape
    base = tmp_path_factory.mktemp("shapes")
    return {name: workbook.open_study(write_shape(name, base / name, n_customers=800))
            for name in ("no_complaints", "minimal")}


def test_what_if_uses_the_dgc_flag_and_the_money_when_the_study_has_them(shape_books):
    wb = shape_books["no_complaints"]
    raised, moved = workbook.recognition_what_if(
        wb.panel, wb.dgc_definition, delta_points=0.5, segment="disappointed good customers", move_share=0.25,
        horizons=[12], n_boot=0, discount_rate=0.1)
    assert set(raised["metric"]) == {"expected defections", "retained months", "discounted margin"}
    assert moved is not None and (moved["n_changed"] > 0).all()
    # raising recognition lowers the expected defections (the demo's recognition protects)
    d = raised.set_index("metric").loc["expected defections", "delta"]
    assert d < 0


def test_what_if_without_dgc_or_value_raises_everyone_and_counts_no_money(shape_books):
    wb = shape_books["minimal"]
    assert wb.dgc_definition is None and not wb.has("value")
    raised, moved = workbook.recognition_what_if(
        wb.panel, None, delta_points=0.5, segment=None, move_share=0.25, horizons=[12], n_boot=0,
        discount_rate=0.1, with_value=False)
    assert moved is None
    assert "discounted margin" not in set(raised["metric"])
    rows = wb.panel.model_table([*wb.panel.constructs, "entry", "duration", "event"])
    below_top = int((rows[wb.panel.recognition] < wb.panel.scale[1]).sum())   # everyone not already at the top
    assert (raised["n"] == len(rows)).all() and (raised["n_changed"] == below_top).all()
    with pytest.raises(ParameterError, match="segment"):
        workbook.recognition_what_if(wb.panel, None, delta_points=0.5, segment="disappointed good customers",
                                     move_share=0.25, horizons=[12], n_boot=0, discount_rate=0.1, with_value=False)


def test_a_sample_smaller_than_min_cell_is_refused_without_quoting_its_size(tmp_path):
    # the whole analysed sample is a group too: below min_cell no notebook may show anything
    from cxlab import privacy
    from cxlab.errors import ParameterError

    from shapes import write_shape

    spec = write_shape("minimal", tmp_path / "minimal", n_customers=300)
    n = workbook.open_study(spec).panel.n_respondents
    try:
        privacy.set_min_cell(n)
        assert workbook.open_study(spec).panel.n_respondents == n        # boundary: exactly min_cell is shown
        privacy.set_min_cell(n + 1)
        with pytest.raises(ParameterError, match="fewer analysed respondents than min_cell") as err:
            workbook.open_study(spec)
        assert f"{n}" not in str(err.value).replace(f"({n + 1})", "")
    finally:
        privacy.set_min_cell(privacy.MIN_CELL)


def test_what_if_segment_all_is_every_respondent(shape_books):
    wb = shape_books["minimal"]
    kw = dict(delta_points=0.5, move_share=0.25, horizons=[12], n_boot=0, discount_rate=0.1, with_value=False)
    everyone, _ = workbook.recognition_what_if(wb.panel, None, segment=None, **kw)
    pd.testing.assert_frame_equal(workbook.recognition_what_if(wb.panel, None, segment="all", **kw)[0], everyone)


# ---- the notebooks' set-up and recording ------------------------------------------------------

def test_cox_terms_keep_strata_and_weights_out_of_the_controls():
    cols, controls = workbook.cox_terms(["recognition", "empathy"], ["channel", "tenure_at_survey"], dgc=True,
                                        strata=["region"], weights_col="w")
    assert cols == ["recognition", "empathy", "dgc", "channel", "tenure_at_survey", "region", "w"]
    assert controls == ["dgc", "channel", "tenure_at_survey"]
    # a stratum already among the controls is one column, and no term; no dgc unless asked; "" is no weights
    cols, controls = workbook.cox_terms(["recognition"], ["channel"], strata=["channel"])
    assert cols == ["recognition", "channel"] and controls == []
    assert workbook.cox_terms(["recognition"], []) == (["recognition"], [])


def _wb_with_outcome(scale, outcomes=("nps",), role="nps"):
    from types import SimpleNamespace as NS

    return NS(outcome=lambda r: role if r == "recommend" else None, panel=NS(outcomes=list(outcomes)),
              study=NS(surveys=NS(outcome_scale=lambda o: scale)))


def test_recommend_setup_keeps_the_nps_bands_for_a_0_to_10_outcome_only():
    assert workbook.recommend_setup(_wb_with_outcome((0, 10)), "", "nps") == ("nps", True, "nps", "")
    outcome, has, bins, note = workbook.recommend_setup(_wb_with_outcome((1, 5)), "", "nps")
    assert (outcome, has, bins) == ("nps", True, "")
    assert note == ("The recommendation outcome `nps` is answered on 1–5, not 0–10: the NPS bands do not apply, so "
                    "its model uses the answers as given.")
    assert workbook.recommend_setup(_wb_with_outcome((1, 5)), "", "") == ("nps", True, "", "")
    # a named outcome the panel lacks; no outcome with the role at all
    assert workbook.recommend_setup(_wb_with_outcome((0, 10)), "likely", "nps") == ("likely", False, "nps", "")
    assert workbook.recommend_setup(_wb_with_outcome((0, 10), role=None), "", "nps") == ("", False, "nps", "")


def test_dgc_grid_classifies_the_respondents_or_is_none(shape_books):
    grid, classified = workbook.dgc_grid(shape_books["no_complaints"])
    assert len(grid) == shape_books["no_complaints"].panel.n_respondents
    assert "unclassified" not in set(classified["segment_2x2"])
    assert len(classified) == int((grid["segment_2x2"] != "unclassified").sum())
    assert "disappointed good customers" in set(classified["segment_2x2"])
    assert workbook.dgc_grid(shape_books["minimal"]) == (None, None)


def test_record_findings_records_in_order_and_folds_the_evidence(monkeypatch):
    import cxlab.report as report
    from cxlab.insight.findings import Findings

    calls = []
    monkeypatch.setattr(report, "record_finding", lambda text, level="finding": calls.append(("finding", text, level)))
    monkeypatch.setattr(report, "record_metric", lambda *a, **k: calls.append(("metric", a, k)))
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: calls.append(("display", obj.data)))
    f = Findings()
    f.add("First.")
    f.add("Careful.", level="warning")
    f.evidence = ["Detail."]
    f.metric("a.b", 1.0, 0.5, 1.5, unit="EUR", label="a b")
    workbook.record_findings(f)
    assert [c[0] for c in calls] == ["finding", "finding", "display", "metric"]
    assert calls[1] == ("finding", "Careful.", "warning")
    assert "<li>Detail.</li>" in calls[2][1]
    assert calls[3] == ("metric", ("a.b", 1.0, 0.5, 1.5), {"unit": "EUR", "label": "a b"})
    calls.clear()
    workbook.record_findings(Findings(findings=[("Only.", "finding")]))
    assert [c[0] for c in calls] == ["finding"]      # no evidence: nothing shown


def test_start_notebook_sets_the_privacy_threshold(shape_books, monkeypatch, tmp_path):
    from cxlab import privacy
    from shapes import write_shape

    before = privacy.get_min_cell()
    try:
        wb = workbook.start_notebook(write_shape("minimal", tmp_path / "s", n_customers=800), 12)
        assert privacy.get_min_cell() == 12 and wb.panel.n_respondents > 0
    finally:
        privacy.set_min_cell(before)
