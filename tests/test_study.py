"""Study spec parsing: the documented format, other names, clear errors."""

import datetime as dt
import textwrap

import pytest

from cxlab.errors import StudyError
from cxlab.study import load_study

SPEC = """
name: Baromètre relationnel
snapshot_date: 2026-06-30
customers:  {path: clients.parquet, id: client, start: ouverture, end: clôture, value: marge,
             covariates: [segment, canal]}
surveys:    {path: enquete/barometre.csv, id: client, date: répondu, scale: [0, 10],
             missing_codes: [98, 99],
             constructs: {reconnaissance: [q7, q8], empathie: [q10], proximité: [q13, q14, q15]},
             self_status: q3, outcomes: {recommandation: q1}}
complaints: {path: réclamations.csv, id: client, opened: ouverte, closed: close}
segments:   {disappointed: {recognition: reconnaissance}}
"""


def write(tmp_path, text):
    p = tmp_path / "etude" / "study.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_documented_format_with_other_names(tmp_path):
    study = load_study(write(tmp_path, SPEC))
    assert study.name == "Baromètre relationnel"
    assert study.snapshot_date == dt.date(2026, 6, 30)
    assert study.constructs == ["reconnaissance", "empathie", "proximité"]
    assert study.recognition_construct == "reconnaissance"
    assert study.surveys.scale == (0, 10) and study.surveys.missing_codes == [98, 99]
    assert study.surveys.outcome_scale("recommandation") == (0, 10)  # defaults to the item scale
    assert study.surveys.items == ["q7", "q8", "q10", "q13", "q14", "q15"]
    # relative paths resolve against the spec's folder, whatever the working directory
    assert study.files["surveys"] == (tmp_path / "etude" / "enquete" / "barometre.csv").resolve()
    assert study.files["customers"].suffix == ".parquet"
    assert study.complaints.compensated is None


def test_recognition_defaults_to_construct_named_recognition(tmp_path):
    spec = SPEC.replace("reconnaissance", "recognition").replace(
        "segments:   {disappointed: {recognition: recognition}}", "")
    assert load_study(write(tmp_path, spec)).recognition_construct == "recognition"
    # no construct plays recognition and none is named: the segment is simply unavailable
    spec = SPEC.replace("segments:   {disappointed: {recognition: reconnaissance}}", "")
    assert load_study(write(tmp_path, spec)).recognition_construct is None


@pytest.mark.parametrize("typo, key, suggestion", [
    ("covariates: [segment, canal]", "customers.covariate", "covariates"),
    ("missing_codes: [98, 99]", "surveys.missing_code", "missing_codes"),
    ("snapshot_date: 2026-06-30", "snapshot_dat", "snapshot_date"),
])
def test_unknown_key_names_the_closest_valid_one(tmp_path, typo, key, suggestion):
    bad_key = key.split(".")[-1]
    spec = SPEC.replace(typo, typo.replace(typo.split(":")[0], bad_key, 1))
    with pytest.raises(StudyError) as err:
        load_study(write(tmp_path, spec))
    msg = str(err.value)
    assert f"unknown key {key!r}" in msg and f"Did you mean {suggestion!r}" in msg
    assert "Traceback" not in msg


def test_missing_required_key_and_bad_values(tmp_path):
    with pytest.raises(StudyError, match="'customers.start' is missing"):
        load_study(write(tmp_path, SPEC.replace("start: ouverture, ", "")))
    with pytest.raises(StudyError, match="lowest < highest"):
        load_study(write(tmp_path, SPEC.replace("scale: [0, 10]", "scale: [5, 1]")))
    with pytest.raises(StudyError, match="snapshot_date"):
        load_study(write(tmp_path, SPEC.replace("2026-06-30", "30/06/2026")))
    with pytest.raises(StudyError, match="'empathy', which is not a construct"):
        load_study(write(tmp_path, SPEC.replace("recognition: reconnaissance}", "recognition: empathy}")))
    with pytest.raises(StudyError, match="outcome_scales names"):
        load_study(write(tmp_path, SPEC.replace("outcomes: {recommandation: q1}",
                                                "outcomes: {recommandation: q1}, outcome_scales: {nps: [0, 10]}")))


def test_unreadable_specs(tmp_path):
    with pytest.raises(StudyError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(write(tmp_path, "name: [unclosed"))
    with pytest.raises(StudyError, match="YAML mapping"):
        load_study(write(tmp_path, "- a\n- b\n"))
