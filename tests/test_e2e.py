"""`cxlab run --study STUDY --out DIR` end to end with the real notebooks, on the demo and on a
study that looks nothing like it. Checks the manifest contract of the foundation issue and that no
customer identifier reaches any output."""

import json
import re

import pytest

from cxlab.cli import main
from cxlab.study import load_study, slug

pytestmark = pytest.mark.slow


def run_study(spec, out):
    code = main(["run", "--study", str(spec), "--out", str(out), "--jobs", "2"])
    runs = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "latest"]
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "manifest.json").read_text(encoding="utf-8"))
    return code, runs[0], manifest


def check_run(code, folder, manifest, spec, id_pattern):
    failed = [(n["name"], n["error"]) for n in manifest["notebooks"] if n["status"] != "succeeded"]
    assert code == 0 and manifest["status"] == "succeeded", failed
    study = load_study(spec)
    metrics = manifest["metrics"]
    assert metrics["panel.respondents"]["estimate"] > 100
    assert 0 < metrics["panel.events"]["estimate"] < metrics["panel.respondents"]["estimate"]
    for c in study.constructs:
        m = metrics[f"cox.hr_per_sd.{slug(c)}"]   # the manifest's name is the slug; the label is the study's
        assert 0 < m["lower"] < m["estimate"] < m["upper"], c
        assert m.get("label") in (None, c) or c in m["label"], (c, m.get("label"))
    for n in manifest["notebooks"]:
        assert (folder / n["html"]).stat().st_size > 10_000
        assert (folder / n["ipynb"]).is_file()
    assert (folder / "index.html").is_file()
    assert (folder.parent / "latest").resolve() == folder.resolve()
    assert manifest["parameters"] and manifest["data"]["customers"]["rows"] > 0
    # privacy: no customer identifier in any HTML or in the manifest
    for p in [*folder.glob("*.html"), folder / "manifest.json"]:
        # embedded figures are base64, where "C" and 7 digits turn up by chance: searched apart
        text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+", "data:image", p.read_text(encoding="utf-8"))
        assert not re.search(id_pattern, text), f"a customer id appears in {p.name}"


def test_run_on_the_demo_study(small_demo, tmp_path):
    code, folder, manifest = run_study(small_demo, tmp_path / "reports")
    check_run(code, folder, manifest, small_demo, r"C\d{7}")
    # recognition protects in the demo's truth: the estimate says so
    assert manifest["metrics"]["cox.hr_per_sd.recognition"]["upper"] < 1
    # the notebooks' counts equal a pandas-only rebuild of the panel from the CSV files (a
    # look-ahead bug in the real run, e.g. defections after the snapshot counted, changes them)
    from test_panel_boundaries import independent_respondents

    ref = independent_respondents(small_demo.parent)
    assert manifest["metrics"]["panel.respondents"]["estimate"] == len(ref)
    assert manifest["metrics"]["panel.events"]["estimate"] == ref["event"].sum()


def test_run_on_a_study_with_other_names_scales_and_formats(french_study, tmp_path):
    code, folder, manifest = run_study(french_study, tmp_path / "rapports")
    check_run(code, folder, manifest, french_study, r"C\d{7}")
    assert "cox.hr_per_sd.reconnaissance" in manifest["metrics"]
    assert manifest["study"]["name"].startswith("Baromètre")


# ---- privacy and injection, end to end ------------------------------------------------------

CANARY_ID = "CANARY-ID-7731"
SCRIPT_LABEL = "<script>alert(1)</script>"
ATTRIBUTE_LABEL = '" onmouseover="alert(1)'
_HOSTILE_RUN: dict = {}


def write_hostile_study(small_demo, dest):
    """A copy of the small demo where one respondent's customer id is the canary (in every file
    it appears in) and two covariate levels are injection payloads; returns (spec, canary's rows)."""
    import shutil

    import pandas as pd

    src = small_demo.parent
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, dest / f.name)
    customers = pd.read_csv(src / "customers.csv", dtype=str, keep_default_na=False)
    answers = pd.read_csv(src / "barometer.csv", dtype=str, keep_default_na=False)
    complaints = pd.read_csv(src / "complaints.csv", dtype=str, keep_default_na=False)
    # a respondent with answers and a complaint, so the id flows through every table
    victim = sorted(set(answers["cust"]) & set(complaints["cust"]))[0]
    rows = {}
    for name, table in (("customers", customers), ("barometer", answers), ("complaints", complaints)):
        rows[name] = int((table["cust"] == victim).sum())
        table.loc[table["cust"] == victim, "cust"] = CANARY_ID
    customers["segment"] = customers["segment"].replace({"affluent": SCRIPT_LABEL})
    customers["channel"] = customers["channel"].replace({"phone": ATTRIBUTE_LABEL})
    customers.to_csv(dest / "customers.csv", index=False)
    answers.to_csv(dest / "barometer.csv", index=False)
    complaints.to_csv(dest / "complaints.csv", index=False)
    return dest / small_demo.name, rows


def hostile_run(small_demo, tmp_path_factory) -> dict:
    """The whole real run (every notebook in notebooks/) on the hostile study, once per session;
    shared with tests/test_browser.py."""
    if not _HOSTILE_RUN:
        base = tmp_path_factory.mktemp("hostile")
        spec, rows = write_hostile_study(small_demo, base / "study")
        code, folder, manifest = run_study(spec, base / "reports")
        _HOSTILE_RUN.update(code=code, folder=folder, manifest=manifest, spec=spec, canary_rows=rows)
    return _HOSTILE_RUN


@pytest.fixture(scope="module")
def hostile(small_demo, tmp_path_factory):
    return hostile_run(small_demo, tmp_path_factory)


def test_hostile_study_is_what_the_test_says(hostile):
    # the canary is a respondent with answers (and complaints), and the payloads are real levels
    import pandas as pd

    rows = hostile["canary_rows"]
    assert rows["customers"] == 1 and rows["barometer"] >= 1 and rows["complaints"] >= 1
    customers = pd.read_csv(hostile["spec"].parent / "customers.csv", dtype=str)
    assert (customers["segment"] == SCRIPT_LABEL).sum() > 100
    assert (customers["channel"] == ATTRIBUTE_LABEL).sum() > 100


def test_canary_id_reaches_no_output_file(hostile):
    code, folder, manifest = hostile["code"], hostile["folder"], hostile["manifest"]
    check_run(code, folder, manifest, hostile["spec"], r"C\d{7}|CANARY")
    from test_runner import assert_valid_manifest

    assert_valid_manifest(manifest)          # a real run's manifest follows the documented schema
    files = [p for p in folder.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".html", ".ipynb", ".json"} <= kinds and (folder / "index.html") in files
    for p in files:
        data = p.read_bytes()
        # the hyphens cannot occur in base64, so embedded images cannot match by chance
        assert CANARY_ID.lower().encode() not in data.lower(), f"the canary customer id appears in {p.name}"
    # the canary's rows pass the data contract (the id is not dropped as malformed before analysis)
    from cxlab.data.validate import validate_study

    assert validate_study(load_study(hostile["spec"])).ok


def test_injection_payloads_in_segment_labels_are_escaped(hostile):
    folder, manifest = hostile["folder"], hostile["manifest"]
    htmls = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.html")}
    # the labels are shown (escaped) somewhere, so the check below is not vacuous
    shown = [n for n, t in htmls.items() if "&lt;script&gt;alert(1)&lt;/script&gt;" in t]
    assert shown, "no report shows the segment label; the escaping test checks nothing"
    for name, text in htmls.items():
        assert "<script" not in text.lower(), name            # reports carry no script at all
        assert "alert(1)</script>" not in text, name
        assert not re.search(r"<[^>]*\sonmouseover\s*=", text, re.I), name   # never an attribute
    for n in manifest["notebooks"]:                            # and the notebooks all ran
        assert n["status"] == "succeeded", n["error"]
