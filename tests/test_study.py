"""Study spec parsing: the documented format, other names, clear errors."""

import datetime as dt
import textwrap
from pathlib import Path

import pytest
import yaml

from cxlab.errors import StudyError
from cxlab.study import load_study, parse_study

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


# ---- outcome roles -------------------------------------------------------------------------

def spec_with(tmp_path, old, new):
    assert old in SPEC
    return load_study(write(tmp_path, SPEC.replace(old, new)))


def test_outcome_roles_short_and_long_form(tmp_path):
    # short form: a key equal to a role takes it; any other key is "other"
    study = load_study(write(tmp_path, SPEC))
    assert study.surveys.outcome_columns == {"recommandation": "q1"}
    assert study.outcome_roles == {"recommandation": "other"}
    assert study.outcome_for_role("recommend") is None
    study = spec_with(tmp_path, "outcomes: {recommandation: q1}", "outcomes: {recommend: q1, satisfaction: q2}")
    assert study.outcome_for_role("recommend") == "recommend"
    assert study.outcome_for_role("satisfaction") == "satisfaction"
    assert study.outcome_for_role("intention_to_stay") is None
    # long form: the role is declared, the scale travels with it
    study = spec_with(tmp_path, "outcomes: {recommandation: q1}",
                      "outcomes: {recommandation: {column: nps, role: recommend, scale: [0, 10]}, "
                      "fidélité: {column: q4, role: intention_to_stay}, autre: q5}")
    assert study.surveys.outcome_columns == {"recommandation": "nps", "fidélité": "q4", "autre": "q5"}
    assert study.outcome_roles == {"recommandation": "recommend", "fidélité": "intention_to_stay",
                                   "autre": "other"}
    assert study.outcome_for_role("recommend") == "recommandation"
    assert study.surveys.outcome_scale("recommandation") == (0, 10)
    assert study.surveys.outcome_scale("fidélité") == (0, 10)   # the item scale of this spec
    with pytest.raises(ValueError, match="role must be one of"):
        study.outcome_for_role("nps")


def test_outcome_role_errors(tmp_path):
    with pytest.raises(StudyError, match="one outcome per role"):
        spec_with(tmp_path, "outcomes: {recommandation: q1}",
                  "outcomes: {recommend: q1, nps: {column: q2, role: recommend}}")
    with pytest.raises(StudyError, match=r"surveys\.outcomes\.nps\.role"):
        spec_with(tmp_path, "outcomes: {recommandation: q1}", "outcomes: {nps: {column: q2, role: promoter}}")
    with pytest.raises(StudyError, match="unknown key 'surveys.outcomes.nps.colum'.*Did you mean 'column'"):
        spec_with(tmp_path, "outcomes: {recommandation: q1}", "outcomes: {nps: {colum: q2}}")
    with pytest.raises(StudyError, match="given twice"):
        spec_with(tmp_path, "outcomes: {recommandation: q1}",
                  "outcomes: {nps: {column: q2, scale: [0, 10]}}, outcome_scales: {nps: [0, 10]}")


# ---- the DGC definition --------------------------------------------------------------------

def test_dgc_definition_defaults_follow_the_scales(tmp_path):
    # SPEC: items 0-10, self-status on the item scale -> top-two-box 9, midpoint 5
    d = load_study(write(tmp_path, SPEC)).dgc_definition
    assert d.available and d.missing == ()
    assert (d.recognition, d.self_status) == ("reconnaissance", "q3")
    assert d.good_customer_min == 9 and d.recognised_min == 5 and d.self_status_scale == (0, 10)
    assert d.sentence == ("Disappointed good customers: answered 9 or 10 on the 0\u201310 'good customer' "
                          "item and scored below 5.0 on reconnaissance.")
    # 1-5 items
    d = spec_with(tmp_path, "scale: [0, 10]", "scale: [1, 5]").dgc_definition
    assert (d.good_customer_min, d.recognised_min) == (4, 3)
    assert d.sentence == ("Disappointed good customers: answered 4 or 5 on the 1\u20135 'good customer' "
                          "item and scored below 3.0 on reconnaissance.")
    # 0-10 items with a 1-5 self-status item
    d = spec_with(tmp_path, "self_status: q3", "self_status: q3, self_status_scale: [1, 5]").dgc_definition
    assert (d.good_customer_min, d.recognised_min, d.self_status_scale) == (4, 5, (1, 5))
    # a yes/no self-status: the top box
    d = spec_with(tmp_path, "self_status: q3", "self_status: q3, self_status_scale: [0, 1]").dgc_definition
    assert d.good_customer_min == 1 and "answered 1 on the 0\u20131" in d.sentence


def test_dgc_definition_from_the_spec_and_its_flag(tmp_path):
    import numpy as np

    study = spec_with(tmp_path, "{disappointed: {recognition: reconnaissance}}",
                      "{disappointed: {recognition: reconnaissance, good_customer_min: 8, recognised_min: 4.5}}")
    d = study.dgc_definition
    assert (d.good_customer_min, d.recognised_min) == (8, 4.5)
    assert "answered 8, 9 or 10" in d.sentence and "below 4.5 on reconnaissance" in d.sentence
    # boundaries: good_customer_min is in, recognised_min is out
    got = d.flag([8, 7.9, 10, 8, np.nan, 8], [4.49, 1, 4.5, 0, 1, np.nan])
    np.testing.assert_array_equal(got, [1, 0, 0, 1, np.nan, np.nan])
    with pytest.raises(StudyError, match="good_customer_min is 11, outside the self-status scale 0\u201310"):
        spec_with(tmp_path, "recognition: reconnaissance}", "recognition: reconnaissance, good_customer_min: 11}")
    with pytest.raises(StudyError, match="recognised_min is 0, outside the item scale"):
        spec_with(tmp_path, "recognition: reconnaissance}", "recognition: reconnaissance, recognised_min: 0}")


def test_dgc_definition_unavailable_says_which_key(tmp_path):
    d = spec_with(tmp_path, "self_status: q3, ", "").dgc_definition
    assert not d.available and d.missing == ("surveys.self_status",)
    assert "surveys.self_status" in d.sentence and d.sentence.startswith("Disappointed good customers are not")
    spec = SPEC.replace("segments:   {disappointed: {recognition: reconnaissance}}", "")
    d = load_study(write(tmp_path, spec)).dgc_definition
    assert not d.available and d.missing == ("segments.disappointed.recognition",)


# ---- money, dialect -----------------------------------------------------------------------

def test_value_currency_and_period(tmp_path):
    study = spec_with(tmp_path, "value: marge,", "value: marge, value_currency: EUR, value_period: 12 months,")
    assert study.customers.value_currency == "EUR" and study.customers.value_period == "12 months"
    assert spec_with(tmp_path, "value: marge,", "value: marge, value_currency: €,").customers.value_currency == "€"
    assert load_study(write(tmp_path, SPEC)).customers.value_currency is None
    with pytest.raises(StudyError, match="ISO 4217"):
        spec_with(tmp_path, "value: marge,", "value: marge, value_currency: euros,")


def test_dialect_keys(tmp_path):
    study = spec_with(tmp_path, "path: enquete/barometre.csv,",
                      "path: enquete/barometre.csv, delimiter: ';', decimal: ',', encoding: latin-1, "
                      "date_format: '%d/%m/%Y',")
    ss = study.surveys
    assert (ss.delimiter, ss.decimal, ss.encoding, ss.date_format) == (";", ",", "latin-1", "%d/%m/%Y")
    assert study.customers.delimiter == "," and study.customers.date_format is None
    study = spec_with(tmp_path, "missing_codes: [98, 99]", "missing_codes: [98, 99, NSP, ' ne sait pas ']")
    assert study.surveys.numeric_codes == [98, 99] and study.surveys.text_codes == ["NSP", "ne sait pas"]
    for old, new, msg in [
        ("path: enquete/barometre.csv,", "path: enquete/barometre.csv, encoding: latin-9x,", "unknown encoding"),
        ("path: enquete/barometre.csv,", "path: enquete/barometre.csv, decimal: ';',", "decimal"),
        ("path: enquete/barometre.csv,", "path: enquete/barometre.csv, delimiter: ';;',", "one character"),
        ("path: enquete/barometre.csv,", "path: enquete/barometre.csv, date_format: 'dd/mm/yyyy',", "strftime"),
        ("path: enquete/barometre.csv,", "path: enquete/barometre.csv, date_format: '%m/%Y',", "whole date"),
    ]:
        with pytest.raises(StudyError, match=msg):
            spec_with(tmp_path, old, new)


# ---- slugs and names -----------------------------------------------------------------------

def test_slug_is_stable_ascii_and_matches_the_manifest_pattern():
    import json
    import re
    from pathlib import Path

    from cxlab.study import slug

    schema = json.loads((Path(__file__).parents[1] / "cxlab/report/manifest.schema.json").read_text())
    pattern = schema["properties"]["metrics"]["propertyNames"]["pattern"]
    cases = {"recognition": "recognition", "hr_per_sd": "hr_per_sd", "proximité": "proximite",
             "Île-de-France": "Ile-de-France", "channel[online]": "channel_online",
             "prix / qualité": "prix_qualite", "  a  b  ": "a_b", "ﬁdélité": "fidelite"}
    for name, want in cases.items():
        assert slug(name) == want
        assert re.match(pattern, f"cox.{slug(name)}")
    other = slug("доверие")
    assert re.fullmatch(r"u[0-9a-f]{8}", other) and other == slug("доверие") != slug("эмпатия")
    assert re.fullmatch(r"trust_u[0-9a-f]{8}", slug("trust доверие"))
    assert re.fullmatch(r"u[0-9a-f]{8}", slug("?!")) and slug("?!") != slug("!?")


def test_names_whose_slugs_collide_are_refused(tmp_path):
    with pytest.raises(StudyError, match="differ only by accents"):
        spec_with(tmp_path, "empathie: [q10]", "empathie: [q10], proximite: [q11]")


# ---- the snapshot day ----------------------------------------------------------------------

def test_within_snapshot_is_a_calendar_day_cut():
    import numpy as np
    import pandas as pd

    from cxlab.study import within_snapshot

    s = pd.to_datetime(pd.Series(["2026-06-29 23:59:00", "2026-06-30 00:00:00", "2026-06-30 23:59:59.999",
                                  "2026-07-01 00:00:00", None]), format="ISO8601")
    assert within_snapshot(s, dt.date(2026, 6, 30)).tolist() == [True, True, True, False, False]
    got = within_snapshot(s.to_numpy(), pd.Timestamp("2026-06-30 12:00"))
    np.testing.assert_array_equal(got, [True, True, True, False, False])


# ---- paths ---------------------------------------------------------------------------------

def test_paths_outside_the_spec_folder_are_refused(tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    for bad in ("../secret.csv", str(outside), "enquete/../../secret.csv"):
        with pytest.raises(StudyError, match="outside the spec's folder") as err:
            spec_with(tmp_path, "path: enquete/barometre.csv", f"path: '{bad}'")
        assert "a\n1" not in str(err.value)
    # an explicitly allowed data root
    p = write(tmp_path, SPEC.replace("path: enquete/barometre.csv", f"path: '{outside}'"))
    assert load_study(p, data_roots=[tmp_path]).files["surveys"] == outside.resolve()
    import os

    os.environ["CXLAB_DATA_ROOTS"] = os.pathsep.join(["/nonexistent", str(tmp_path)])
    try:
        assert load_study(p).files["surveys"] == outside.resolve()     # how a run tells its kernels
    finally:
        del os.environ["CXLAB_DATA_ROOTS"]
    with pytest.raises(StudyError, match="outside"):
        load_study(p, data_roots=[tmp_path / "etude"])
    # a link inside the folder that leads outside is refused too
    (tmp_path / "etude" / "lien.csv").symlink_to(outside)
    with pytest.raises(StudyError, match="outside"):
        spec_with(tmp_path, "path: enquete/barometre.csv", "path: lien.csv")


def test_readme_own_data_example_parses_as_documented():
    # README's "Your own data" example is a public contract: it must parse and mean what it says
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "Baromètre" in b)
    study = parse_study(yaml.safe_load(block), base_dir=Path("."))
    assert study.outcome_for_role("recommend") == "recommandation"
    assert study.outcome_for_role("intention_to_stay") == "rester"
    assert study.surveys.missing_codes == [99, "NSP"]
    assert (study.customers.delimiter, study.customers.decimal, study.customers.encoding) == (";", ",", "latin-1")
    assert study.dgc_definition.good_customer_min == 4 and study.dgc_definition.recognised_min == 5
    assert study.dgc_definition.recognition == "reconnaissance"
    assert study.customers.value_currency == "EUR"
