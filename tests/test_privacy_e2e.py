"""Privacy end to end: the real notebooks run with a large ``min_cell``; no figure about a group
below it reaches any output (HTML, ipynb, index, manifest). A 5-customer segment is pooled before
the models (the Cox fit succeeds, no term for it). A covariate holding customer ids is refused.

The suppressed groups and their true figures are computed here, independently of the suppression
code: group sizes with pandas (customers from the raw file, respondents from the analysis table),
Kaplan-Meier figures with lifelines.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from cxlab.cli import main
from cxlab.data.synth import write_demo

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
MIN_CELL = 200          # large for a 3 000-customer demo: several covariate levels and 2x2 cells fall below it
HORIZONS = (12, 24)


def _run(spec: Path, out: Path, *args: str, notebooks: Path | None = None):
    argv = ["run", "--study", str(spec), "--out", str(out), "--jobs", "2", *args]
    if notebooks is not None:
        argv += ["--notebooks", str(notebooks)]
    code = main(argv)
    runs = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "latest"]
    assert len(runs) == 1, runs
    return code, runs[0], json.loads((runs[0] / "manifest.json").read_text(encoding="utf-8"))


def _pct(v):  # cxlab.report.tables percent format
    return f"{100 * v:.1f} %"


def _count(n):
    return f"{int(n):,}"


# ---- independent reference figures -------------------------------------------------------------


def _km(since, event, t):
    from lifelines import KaplanMeierFitter

    return float(KaplanMeierFitter().fit(since, event).predict(t))


def _reference(spec: Path, min_cell: int):
    """Groups below ``min_cell`` and the strings their figures would print as."""
    from cxlab.insight import segments
    from cxlab.workbook import open_study

    wb = open_study(spec)
    panel = wb.panel
    r = panel.respondents
    since, event = r["time_since_survey"], r["event"]
    raw = pd.read_csv(spec.parent / "customers.csv")
    known = raw[pd.to_datetime(raw["opened"]) <= pd.Timestamp(panel.snapshot_date)]
    groups = []     # (labels a table row must contain, figure strings, figure values)

    def add(labels, mask, extra_counts=()):
        n = int(mask.sum())
        strings = {_count(n), *(_count(c) for c in extra_counts)}
        values = [n / len(r)]
        for h in HORIZONS:
            s = _km(since[mask], event[mask], h)
            strings |= {_pct(s), _pct(1 - s)}
            values += [s, 1 - s]
        groups.append((labels, strings, values))

    for cov in panel.covariates:
        for level, n in r[cov].astype(str).value_counts().items():
            if n < min_cell:
                add({level}, r[cov].astype(str) == level, [int((known[cov].astype(str) == level).sum())])
    grid = segments.perception_segments(r, panel.recognition, scale=panel.scale)
    for cell, n in grid["segment_2x2"].astype(str).value_counts().items():
        if n < min_cell and cell != "unclassified":
            add({cell}, (grid["segment_2x2"].astype(str) == cell).to_numpy())
    # bands of each perception whose number at risk at a horizon is below min_cell
    for c in panel.constructs:
        bands = segments.perception_bands(r[c], (0.3333, 0.6667)).astype(str)
        for b in ("low", "middle", "high"):
            m = (bands == b).to_numpy()
            for h in HORIZONS[:1]:
                if m.sum() and int((since[m] >= h).sum()) < min_cell:
                    s = _km(since[m], event[m], h)
                    groups.append(({c, b}, {_pct(s)}, [s]))
    # the whole sample at a horizon with fewer than min_cell at risk
    overall = []
    for h in HORIZONS:
        if int((since >= h).sum()) < min_cell:
            overall.append(_km(since, event, h))
    return groups, overall


def _small_exclusions(spec: Path, min_cell: int):
    """The exclusion-flow steps of fewer than ``min_cell`` rows (the panel's raw flow, before any
    suppression): (table, reason, count), and the respondents set aside in all."""
    from cxlab.workbook import open_study

    ex = open_study(spec).panel.exclusions
    small = [(t, r, int(n)) for t, r, n in zip(ex["table"], ex["reason"], ex["excluded"]) if 0 < n < min_cell]
    aside = ex[(ex["table"] == "respondents") & ~ex["reason"].str.contains("later answers")]["excluded"].sum()
    return small, int(aside)


# ---- output readers ----------------------------------------------------------------------------


def _html_rows(html: str):
    soup = BeautifulSoup(html, "html.parser")
    for tr in soup.find_all("tr"):
        yield [c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"])]


def _outputs(folder: Path):
    """(file name, html) for every HTML file and every text/html output of every ipynb."""
    for p in sorted(folder.glob("*.html")):
        yield p.name, p.read_text(encoding="utf-8")
    for p in sorted(folder.glob("*.ipynb")):
        nb = json.loads(p.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "text/html" in data:
                    yield p.name, "".join(data["text/html"])
                if "text/plain" in data:
                    yield p.name + " (text)", "<table><tr>" + "".join(
                        f"<td>{x}</td>" for x in re.split(r"\s{2,}", "".join(data["text/plain"]))) + "</tr></table>"


def _findings(folder: Path):
    for p in [*folder.glob("*.html")]:
        soup = BeautifulSoup(p.read_text(encoding="utf-8"), "html.parser")
        for li in soup.find_all("li"):
            yield p.name, li.get_text(" ", strip=True)


def _metric_values(manifest):
    for name, m in manifest["metrics"].items():
        for k in ("estimate", "lower", "upper"):
            if m.get(k) is not None:
                yield name, k, m[k]


# ---- scenario 1: a large min_cell ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_demo(tmp_path_factory.mktemp("privacy-demo"), n_customers=3_000, seed=2026)


@pytest.fixture(scope="module")
def large_min_cell_run(demo, tmp_path_factory):
    code, folder, manifest = _run(demo, tmp_path_factory.mktemp("privacy-run"), "--set", f"min_cell={MIN_CELL}")
    groups, overall = _reference(demo, MIN_CELL)
    small, aside = _small_exclusions(demo, MIN_CELL)
    return {"code": code, "folder": folder, "manifest": manifest, "groups": groups, "overall": overall,
            "small_exclusions": small, "set_aside": aside}


def test_the_large_min_cell_run_has_groups_to_hide(large_min_cell_run):
    run = large_min_cell_run
    labels = set().union(*(g[0] for g in run["groups"]))
    # the set-up: covariate levels and 2x2 cells below min_cell exist, and every notebook ran
    assert len(run["groups"]) >= 3, labels
    assert {n["name"] for n in run["manifest"]["notebooks"]} >= {"01-data-audit", "02-survival-drivers",
                                                                 "04-segments-value"}
    assert all((run["folder"] / n["html"]).is_file() for n in run["manifest"]["notebooks"])
    assert run["manifest"]["parameters"], "parameters recorded"


def test_no_table_row_shows_a_figure_of_a_suppressed_group(large_min_cell_run):
    run = large_min_cell_run
    leaks = []
    for name, html in _outputs(run["folder"]):
        for cells in _html_rows(html):
            texts = set(cells)
            for labels, strings, _ in run["groups"]:
                if labels <= texts:
                    hit = strings & texts
                    if hit:
                        leaks.append((name, sorted(labels), sorted(hit), cells))
    assert not leaks, leaks[:5]


def test_no_finding_quotes_a_suppressed_group(large_min_cell_run):
    run = large_min_cell_run
    leaks = []
    for name, text in _findings(run["folder"]):
        for labels, _, values in run["groups"]:
            if labels & {"low", "middle", "high"}:
                continue   # band names are ordinary words in findings ("one SD higher"): tables only
            if all(re.search(rf"\b{re.escape(lab)}\b", text, re.I) for lab in labels):
                for v in values:
                    for s in {f"{v:.0%}", f"{100 * v:.1f} %", f"{100 * v:.1f}%"}:
                        if re.search(rf"(?<![\d.]){re.escape(s)}(?![\d])", text):
                            leaks.append((name, sorted(labels), s, text[:160]))
    assert not leaks, leaks[:5]


def test_findings_never_print_a_withheld_figure_as_nan(large_min_cell_run):
    # a suppressed figure is NaN inside cxlab; a sentence built from it would read "nan%"
    bad = [(name, text[:160]) for name, text in _findings(large_min_cell_run["folder"])
           if re.search(r"\bnan\b", text, re.I)]
    assert not bad, bad[:5]


def test_no_manifest_metric_is_a_suppressed_figure(large_min_cell_run):
    run = large_min_cell_run
    values = [v for _, _, vals in run["groups"] for v in vals] + run["overall"]
    hits = [(n, k, x) for n, k, x in _metric_values(run["manifest"]) for v in values if abs(x - v) < 1e-9]
    assert not hits, hits[:5]
    # the figures about the disappointed good customers are absent when their cell is suppressed
    groups = {frozenset(g[0]) for g in run["groups"]}
    if frozenset({"disappointed good customers"}) in groups:
        m = run["manifest"]["metrics"]
        assert m.get("segments.disappointed.share", {}).get("estimate") is None


def _as_int(text):
    t = text.replace(",", "")
    return int(t) if re.fullmatch(r"\d+", t) else None


def test_the_exclusion_flow_shows_no_small_count_directly_or_by_difference(large_min_cell_run):
    run = large_min_cell_run
    small = run["small_exclusions"]
    assert len(small) >= 3, small      # the set-up: several steps below min_cell
    leaks, seen = [], set()
    for name, html in _outputs(run["folder"]):
        for cells in _html_rows(html):
            for table, reason, n in small:
                if reason in cells and table in cells:
                    seen.add(reason)
                    numbers = [_as_int(c) for c in cells]
                    if n in numbers:                                   # the count itself
                        leaks.append((name, reason, n, cells))
                    shown = [x for x in numbers if x is not None]
                    if any(a - b == n for a in shown for b in shown):   # rows in - rows out
                        leaks.append((name, reason, "by difference", cells))
    assert not leaks, leaks[:5]
    assert {r for _, r, _ in small} <= seen, "every step is still shown, with its reason"


def test_no_finding_or_metric_quotes_a_small_exclusion_count(large_min_cell_run):
    run = large_min_cell_run
    leaks = []
    for name, text in _findings(run["folder"]):
        if "set aside" not in text:
            continue   # the sentences that quote the exclusion flow
        for table, reason, n in run["small_exclusions"]:
            if re.search(rf"{re.escape(reason)} \({n:,}\)|{re.escape(table)}:? {n:,}\b", text):
                leaks.append((name, reason, n, text[:200]))
        if 0 < run["set_aside"] < MIN_CELL and re.search(rf"(?<![\d,]){run['set_aside']:,} (respondents|in all)", text):
            leaks.append((name, "set aside in all", run["set_aside"], text[:200]))
    assert not leaks, leaks[:5]
    if 0 < run["set_aside"] < MIN_CELL:
        assert run["manifest"]["metrics"].get("panel.set_aside", {}).get("estimate") is None
    audit_text = " ".join(t for name, t in _findings(run["folder"]) if name.startswith("01"))
    assert f"fewer than {MIN_CELL}" in audit_text, "the reasons are still named, with their withheld counts"


def test_the_few_respondents_left_out_of_the_models_are_not_counted_by_difference(large_min_cell_run):
    """02's survival models leave out the respondents lacking a model term's value: a handful
    here. Neither their number nor two figures it is the difference of may appear."""
    run = large_min_cell_run
    metrics = run["manifest"]["metrics"]
    n = int(metrics["panel.respondents"]["estimate"])
    texts = [BeautifulSoup(html, "html.parser").get_text(" ", strip=True) for _, html in _outputs(run["folder"])]
    page = " ".join(texts)
    # the 3 000-customer demo leaves out a few (fewer than MIN_CELL): the sentence says so, uncounted
    assert f"The survival models leave out fewer than {MIN_CELL} of the {n:,} respondents" in page
    for key in ("cox.respondents", "cox.events"):
        assert metrics[key].get("estimate") is None, (key, metrics[key])
    used = [int(x.replace(",", "")) for x in re.findall(rf"([\d,]+) of the {n:,} respondents", page)]
    assert not [u for u in used if 0 < n - u < MIN_CELL], used
    assert not re.search(r"\d+ respondents and \d+ defections in the Cox model", page)


# ---- scenario 2: a segment of 5 customers ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_segment_run(demo, tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny-segment")
    study = base / "study"
    shutil.copytree(demo.parent, study)
    customers = pd.read_csv(study / "customers.csv", dtype=str)
    answers = pd.read_csv(study / "barometer.csv", dtype=str)
    closed = pd.to_datetime(customers["closed"])
    respondents = customers["cust"].isin(answers["cust"])
    # five respondents who never defect: with their own term, a Cox fit would separate
    pick = customers.index[respondents & closed.isna()][:5]
    customers.loc[pick, "segment"] = "tiny5"
    customers.to_csv(study / "customers.csv", index=False)
    notebooks = base / "notebooks"
    notebooks.mkdir()
    for nb in ("02-survival-drivers.ipynb", "03-measurement-loyalty.ipynb"):
        shutil.copy(REPO / "notebooks" / nb, notebooks / nb)
    code, folder, manifest = _run(study / demo.name, base / "reports", notebooks=notebooks)
    return {"code": code, "folder": folder, "manifest": manifest}


def test_a_five_customer_segment_is_pooled_and_the_models_fit(tiny_segment_run):
    run = tiny_segment_run
    failed = [(n["name"], n["error"]) for n in run["manifest"]["notebooks"] if n["status"] != "succeeded"]
    assert run["code"] == 0 and not failed, failed
    html = (run["folder"] / "02-survival-drivers.html").read_text(encoding="utf-8")
    assert "pooled into" in html and "segment: 1 level with fewer than 10 customers" in html


def test_no_output_has_a_term_or_figure_for_the_tiny_segment(tiny_segment_run):
    run = tiny_segment_run
    for p in [*run["folder"].glob("*.html"), *run["folder"].glob("*.ipynb"), run["folder"] / "manifest.json"]:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"segment\s*(\[|=)\s*tiny5", text), f"a model term for the tiny segment in {p.name}"
    for name, html in _outputs(run["folder"]):
        for cells in _html_rows(html):
            if "tiny5" in cells:
                numbers = [c for c in cells if re.fullmatch(r"[\d.,]+( %)?", c)]
                assert not numbers, (name, cells)
    assert not any("tiny5" in k for k in run["manifest"]["metrics"])


# ---- canary: a covariate holding customer ids --------------------------------------------------


def test_a_covariate_of_customer_ids_is_refused_before_any_notebook(demo, tmp_path, capsys):
    study = tmp_path / "study"
    shutil.copytree(demo.parent, study)
    customers = pd.read_csv(study / "customers.csv", dtype=str)
    answers = pd.read_csv(study / "barometer.csv", dtype=str)
    ids = answers["cust"].drop_duplicates().head(30)
    m = customers["cust"].isin(ids)
    customers.loc[m, "channel"] = customers.loc[m, "cust"]       # 30 customers whose channel is their id
    customers.to_csv(study / "customers.csv", index=False)
    out = tmp_path / "reports"
    code = main(["run", "--study", str(study / demo.name), "--out", str(out), "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "channel" in err and "identifier" in err.lower()
    published = [p for p in out.glob("*") if p.is_dir() and not p.name.startswith(".")] if out.exists() else []
    for folder in published:
        for p in folder.rglob("*"):
            if p.is_file():
                data = p.read_text(encoding="utf-8", errors="ignore")
                assert not any(i in data for i in ids), f"a customer id in {p}"
    assert not any(i in err for i in ids)
