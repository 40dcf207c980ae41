"""End to end: the executive summary on a study where recognition has NO effect, run as the README's
scheduled-run example runs (its cron line, its run config, word for word), and on the demo.

The null study is the demo's generator with recognition's true log hazard ratio set to 0 (before
and after the survey), 8 000 customers, seed 7: a study where the right answer is "no clear link".
Put the effect back (``RECOGNITION_LOG_HR = -0.40``, the demo's truth) and the null assertions fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from cxlab.data import synth

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
RECOGNITION_LOG_HR = 0.0      # the demo's truth is -0.40
N_CUSTOMERS, SEED = 8_000, 7


def _readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"## {title}")
    end = readme.find("\n## ", start + 3)
    return readme[start:end if end > 0 else None]


def _cron_command() -> str:
    """The command of the README's cron example (the line after the schedule comment)."""
    block = re.search(r"```cron\n(.*?)```", _readme_section("Scheduled runs"), re.S).group(1)
    line = next(ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    return line.split(None, 5)[5]      # minute hour day month weekday COMMAND


def _answers(index_html: Path) -> dict[str, str]:
    soup = BeautifulSoup(index_html.read_text(encoding="utf-8"), "html.parser")
    return {a["id"].removeprefix("cx-answer-"): a.find("dd").get_text(" ", strip=True)
            for a in soup.select("#cx-summary .cx-answer")}


@pytest.fixture(scope="module")
def scheduled_null_run(tmp_path_factory) -> dict:
    """A checkout laid out as the README's cron line expects (/srv/cxlab: runs/monthly.yaml as in the
    repository, data/demo/ holding the null study, notebooks/, .venv/), run by that command line."""
    srv = tmp_path_factory.mktemp("srv") / "cxlab"
    (srv / "runs").mkdir(parents=True)
    shutil.copy(REPO / "runs" / "monthly.yaml", srv / "runs" / "monthly.yaml")
    os.symlink(REPO / "notebooks", srv / "notebooks")
    os.symlink(REPO / ".venv", srv / ".venv")
    with pytest.MonkeyPatch.context() as mp:
        hazard = synth.DEFAULTS["hazard"]
        mp.setitem(hazard, "log_hr_per_point", dict(hazard["log_hr_per_point"], recognition=RECOGNITION_LOG_HR))
        spec = synth.write_demo(srv / "data" / "demo", n_customers=N_CUSTOMERS, seed=SEED)
    assert synth.load_truth(spec)["log_hr_per_point"]["recognition"] == RECOGNITION_LOG_HR
    log = srv.parent / "cxlab.log"
    command = _cron_command().replace("/srv/cxlab", str(srv)).replace("/var/log/cxlab.log", str(log))
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=1500)
    latest = srv / "reports" / "latest"
    manifest = json.loads((latest / "manifest.json").read_text(encoding="utf-8")) if latest.exists() else {}
    return {"code": proc.returncode, "stdout": proc.stdout + proc.stderr, "log": log.read_text(encoding="utf-8"),
            "srv": srv, "folder": latest, "manifest": manifest, "command": command}


def test_the_readme_cron_line_runs_as_written(scheduled_null_run):
    r = scheduled_null_run
    assert "cxlab run runs/monthly.yaml --jobs 2" in r["command"] and r["command"].startswith(f"cd {r['srv']} && ")
    assert r["code"] == 0, r["log"][-3000:]
    assert r["stdout"] == ""                              # everything went to the log, as the README says
    lines = r["log"].strip().splitlines()
    assert lines and all(ln.startswith("cxlab run:") for ln in lines), lines[:5]
    assert re.search(r"cxlab run: run \S+ succeeded: .*index\.html$", lines[-1])
    m = r["manifest"]
    assert m["status"] == "succeeded" and m["config"]["name"] == "monthly"
    # the config's parameters reached the notebooks: one horizon list for all, 04's value horizon
    assert {json.dumps(p.get("horizons")) for p in m["parameters"].values() if "horizons" in p} == {"[12, 24, 36]"}
    assert m["parameters"]["04-segments-value"]["value_horizon_months"] == 48
    assert {p["min_cell"] for p in m["parameters"].values()} == {10}
    assert [n["status"] for n in m["notebooks"]] == ["succeeded"] * 4


def test_null_recognition_summary_says_no_clear_link(scheduled_null_run):
    folder, m = scheduled_null_run["folder"], scheduled_null_run["manifest"]
    hr = m["metrics"]["cox.hr_per_sd.recognition"]
    assert hr["lower"] <= 1 <= hr["upper"]                # the estimate agrees with the truth (no effect)
    a = _answers(folder / "index.html")
    imp = a["importance"]
    # recognition is said to have no clear link, wherever it ranks ...
    listed = re.search(r"No clear link with defection \(95 % CI includes 1\): ([^.]*)\.", imp)
    top_null = "Customers one SD higher on recognition: no clear link" in imp
    assert top_null or (listed and "recognition" in [s.strip() for s in listed.group(1).split(",")]), imp
    # ... and never that it matters most or changes the risk
    assert not imp.startswith("Recognition carries the largest share") or "is uncertain" in imp, imp
    assert not re.search(r"higher on recognition have an? [\d.,-]+ ?(%|-fold) (lower|higher) risk", imp), imp
    # the what-if on recognition: no clear change in defections either
    assert "no clear change in defections" in a["whatif"], a["whatif"]
    for key in ("dgc", "who", "checks"):
        assert a[key] and not a[key].startswith("Not answered"), (key, a[key])


def test_the_demo_summary_still_answers_the_five_questions(small_demo, tmp_path):
    from cxlab.cli import main

    assert main(["run", "--study", str(small_demo), "--out", str(tmp_path), "--jobs", "2"]) == 0
    a = _answers(tmp_path / "latest" / "index.html")
    assert list(a) == ["importance", "dgc", "whatif", "who", "checks"]
    assert all(v and not v.startswith("Not answered") for v in a.values()), a
    # the demo's truth: recognition protects (log HR -0.40 per point), and the summary says so
    assert re.search(r"higher on recognition have an? \d+ % lower risk of defecting", a["importance"]), a["importance"]
    assert "recognition" not in (re.search(r"No clear link with defection[^.]*\.", a["importance"]) or [""])[0]
    assert re.match(r"(Yes|No|Can't tell): ", a["dgc"]) and "fewer defections" in a["whatif"]
    assert re.search(r"response rate \d+ %", a["who"])
    # the survival notebook leads with a few answers; its evidence is folded in its findings box
    from cxlab.insight.narrative import MAX_LEAD_FINDINGS

    m = json.loads((tmp_path / "latest" / "manifest.json").read_text(encoding="utf-8"))
    nb02 = next(n for n in m["notebooks"] if n["name"] == "02-survival-drivers")
    plain = [f["text"] for f in nb02["findings"] if f["level"] == "finding"]
    assert 3 <= len(plain) <= MAX_LEAD_FINDINGS and len(nb02["findings"]) <= MAX_LEAD_FINDINGS + 2, plain
    page = BeautifulSoup((tmp_path / "latest" / nb02["html"]).read_text(encoding="utf-8"), "html.parser")
    fold = page.select_one("#cx-findings details.cx-evidence-fold")
    assert fold is not None and fold.get("open") is None
    folded = [li.get_text(" ", strip=True) for li in fold.select("li")]
    assert any("accelerated failure time" in t for t in folded) and any("Harrell's C" in t for t in folded)
    assert not set(folded) & set(plain)
    for f in nb02["findings"]:   # the PH fallback's terms said as a list in words, with agreement
        if f["text"].startswith("Findings use the fallback model"):
            assert re.match(r"Findings use the fallback model: the (effect of [^,]+ changes|effects of .+ and [^,]+ "
                            r"change) with tenure", f["text"]), f["text"]
    # 04 states one share of disappointed good customers, on one base, in every sentence (was 14 % then 15 %)
    nb04 = next(n for n in m["notebooks"] if n["name"] == "04-segments-value")
    shares = {re.search(r"Disappointed good customers are (\d+) ?% of (the respondents in the 2 × 2 grid|classified "
                        r"respondents)", f["text"]).group(1) for f in nb04["findings"][:2]}
    assert shares == {f"{100 * m['metrics']['segments.disappointed.share']['estimate']:.0f}"}, nb04["findings"][:2]
    assert "Disappointed good customers are " in nb04["findings"][0]["text"]
    assert " % of the respondents in the 2 × 2 grid. " in nb04["findings"][0]["text"]     # the base, named
