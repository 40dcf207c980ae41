"""The study-shape matrix: every generated study shape runs through the four real notebooks.

Each shape (tests/shapes.py: no complaints, no self-status, no segments, single items, a 0-10
scale, no covariates, no value, French names, Parquet, a latin-1 ``;`` extract, an outcome under
its own name, everything optional left out) is written on small data (~1,500 customers) and run
with the real CLI, ``cxlab run --study ... --jobs 2 --set n_boot=50``. Each run must exit 0 with
every notebook succeeded and a manifest valid against its schema, and each notebook must state
exactly the omissions the shape implies: in the manifest, in the notebook's HTML (where the
analysis would be) and in the run's index.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shapes import SHAPES, write_shape

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "cxlab" / "report" / "manifest.schema.json"
#: the notebooks run (another folder only to plant a bug in a copy and watch the matrix fail)
NOTEBOOK_DIR = Path(os.environ.get("CXLAB_SHAPES_NOTEBOOKS", ROOT / "notebooks"))
NOTEBOOKS = ("01-data-audit", "02-survival-drivers", "03-measurement-loyalty", "04-segments-value")
#: small parameters: the matrix checks that every branch runs, not the estimates. One worker per
#: notebook: two notebooks run at once on 2 cores, and at this size worker start-up costs more
#: than it saves (Cox importance, 50 draws, ~550 respondents: 11 s with 1 worker, 30 s with 2)
SETTINGS = ["n_boot=50", "n_jobs=1", "02-survival-drivers:n_splits=2"]


def run_shape(name: str, folder: Path) -> dict:
    spec = write_shape(name, folder / "study")
    out = folder / "out"
    cmd = [sys.executable, "-m", "cxlab.cli", "run", "--study", str(spec), "--out", str(out), "--jobs", "2",
           "--notebooks", str(NOTEBOOK_DIR)]
    for s in SETTINGS:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    runs = sorted(p for p in out.glob("*") if p.is_dir() and not p.name.startswith(".") and p.name != "latest")
    manifest = json.loads((runs[-1] / "manifest.json").read_text(encoding="utf-8")) if runs else None
    return {"rc": proc.returncode, "stderr": proc.stderr, "manifest": manifest, "dir": runs[-1] if runs else None}


def _text(page: str) -> str:
    """An HTML page as a reader sees its words: no tags, entities decoded, blanks collapsed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _plain(text: str) -> str:
    """Words only, for "is this sentence on the page": no Markdown marks, no blanks (rendering puts
    blanks around inline code)."""
    return re.sub(r"\s+", "", text.replace("`", "").replace("*", ""))


def _findings(nb) -> list[str]:
    return [f["text"] for f in nb["findings"]]


def _check_single_items(m, by_name):
    texts = _findings(by_name["03-measurement-loyalty"])
    assert any("measured by one item: reliability is not defined" in t for t in texts), texts
    assert not any("reliable (alpha" in t or "nan" in t.lower() for t in texts), texts
    assert not [k for k in m["metrics"] if k.startswith("measurement.alpha.")]


def _check_other_role(m, by_name):
    # the recommendation analysis ran although no outcome is called "recommend"
    assert [k for k in m["metrics"] if k.startswith("loyalty.importance.")], sorted(m["metrics"])


def _check_no_complaints(m, by_name):
    assert not [k for k in m["metrics"] if k.startswith("tv.hr.complaint")]


def _check_french(m, by_name):
    page = (by_name["_dir"] / by_name["03-measurement-loyalty"]["html"]).read_text(encoding="utf-8")
    assert "proximité" in _text(page)
    assert [k for k in m["metrics"] if k.startswith("cox.hr_per_sd.")]


def _check_dgc_present(m, by_name):
    assert "segments.disappointed.share" in m["metrics"]
    assert m["metrics"]["segments.disappointed.share"]["estimate"] > 0


EXTRA = {"single_items": _check_single_items, "other_role": _check_other_role, "no_complaints": _check_no_complaints,
         "french": _check_french, "latin1_semicolon": _check_french, "scale_0_10": _check_dgc_present,
         "parquet": _check_dgc_present}


def _param(name):
    shape = SHAPES[name]
    marks = [pytest.mark.slow]
    if shape.xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=shape.xfail))
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in SHAPES])
def test_shape_runs_end_to_end(name, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    r = run_shape(name, tmp_path)
    m = r["manifest"]
    assert r["rc"] == 0, f"{name}: exit {r['rc']}\n{r['stderr'][-3000:]}"
    assert m is not None and m["status"] == "succeeded"
    jsonschema.validate(m, json.loads(SCHEMA.read_text(encoding="utf-8")))
    by_name = {nb["name"]: nb for nb in m["notebooks"]}
    assert sorted(by_name) == sorted(NOTEBOOKS)
    assert all(nb["status"] == "succeeded" for nb in m["notebooks"]), [(n["name"], n["error"]) for n in m["notebooks"]]

    index = _text((r["dir"] / "index.html").read_text(encoding="utf-8"))
    expected = SHAPES[name].omissions
    for nb_name, nb in by_name.items():
        parts = {o["part"] for o in nb["omissions"]}
        assert parts == set(expected.get(nb_name, ())), f"{name}/{nb_name}: omissions {nb['omissions']}"
        page = _text((r["dir"] / nb["html"]).read_text(encoding="utf-8"))
        for o in nb["omissions"]:
            assert "to the spec to enable it" in o["text"] and " is left out" in o["text"]
            assert _plain(o["text"]) in _plain(page), f"{nb_name}.html does not state: {o['text']}"
            assert _plain(o["text"]) in _plain(index), f"index.html does not list: {o['text']}"
    if name in EXTRA:
        EXTRA[name](m, {**by_name, "_dir": r["dir"]})
