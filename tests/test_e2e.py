"""`cxlab run --study STUDY --out DIR` end to end with the real notebooks, on the demo and on a
study that looks nothing like it. Checks the manifest contract of the foundation issue and that no
customer identifier reaches any output."""

import json
import re

import pytest

from cxlab.cli import main
from cxlab.study import load_study

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
        m = metrics[f"cox.hr_per_sd.{c}"]
        assert 0 < m["lower"] < m["estimate"] < m["upper"], c
    for n in manifest["notebooks"]:
        assert (folder / n["html"]).stat().st_size > 10_000
        assert (folder / n["ipynb"]).is_file()
    assert (folder / "index.html").is_file()
    assert (folder.parent / "latest").resolve() == folder.resolve()
    assert manifest["parameters"] and manifest["data"]["customers"]["rows"] > 0
    # privacy: no customer identifier in any HTML or in the manifest
    for p in [*folder.glob("*.html"), folder / "manifest.json"]:
        text = p.read_text(encoding="utf-8")
        assert not re.search(id_pattern, text), f"a customer id appears in {p.name}"


def test_run_on_the_demo_study(small_demo, tmp_path):
    code, folder, manifest = run_study(small_demo, tmp_path / "reports")
    check_run(code, folder, manifest, small_demo, r"C\d{7}")
    # recognition protects in the demo's truth: the estimate says so
    assert manifest["metrics"]["cox.hr_per_sd.recognition"]["upper"] < 1


def test_run_on_a_study_with_other_names_scales_and_formats(french_study, tmp_path):
    code, folder, manifest = run_study(french_study, tmp_path / "rapports")
    check_run(code, folder, manifest, french_study, r"C\d{7}")
    assert "cox.hr_per_sd.reconnaissance" in manifest["metrics"]
    assert manifest["study"]["name"].startswith("Baromètre")
