"""HTML reports: self-contained, script-free, findings first, code hidden, secrets masked.

The notebooks are built in code, executed for real with papermill (kernel ``python3`` of the
venv) and exported; the assertions parse the resulting HTML. ``tests/test_browser.py`` opens
the same reports in Chromium. Reference for "inert": the HTML5 spec -- a payload is inert
when it is text (escaped) or gone, never an element or an attribute.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from bs4 import BeautifulSoup

from cxlab.report.html import (
    export_html,
    format_estimate_ci,
    looks_like_identifier,
    sanitize_html,
    tidy_stderr,
)
from cxlab.report.index import _relative_href, write_index

CANARY = "CANARY-s3cr3t-7f41c2"
XSS = "<script>alert(1)</script>"
ATTR_XSS = '" onmouseover="alert(1)'
PAYLOAD = f"x{XSS}{ATTR_XSS}"

MD_INJECTION = (
    "Raw HTML in markdown: <script>alert(1)</script>\n\n"
    '<img src="x" onerror="alert(1)"> <a href="javascript:alert(1)">click me</a>\n\n'
    '<p title="t" onmouseover="alert(1)">hover</p>\n\n'
    '<img src="https://example.com/tracker.png">\n\n'
    "<style>body { background: url(https://example.com/bg.png) }</style>"
)


def _md(src, tags=()):
    return nbformat.v4.new_markdown_cell(src, metadata={"tags": list(tags)})


def _code(src, tags=()):
    return nbformat.v4.new_code_cell(src, metadata={"tags": list(tags)})


def _good_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        _md("# Retention drivers\n\nWhat this answers: do recognised customers stay longer?"),
        _code("# PARAMS_CELL_MARKER\napi_token = 'default'\nlabel = 'demo'", ["parameters"]),
        _code("from cxlab.report import record_finding, record_metric\n"
              "_ = record_finding('Recognition lowers the defection hazard: ' + label)\n"
              "_ = record_finding('Proportional hazards violated for proximity', "
              "level='warning')\n"
              "_ = record_metric('cox.hr_per_sd.recognition', 0.82345, 0.74123, 0.91456)\n"
              "print('FINDINGS_CELL_OUTPUT')", ["findings"]),
        _md("## Survival curves\n\nKaplan-Meier by recognition tercile."),
        _code("import matplotlib\nimport matplotlib.pyplot as plt\n"
              "fig, ax = plt.subplots(figsize=(4, 2.5), dpi=72)\n"
              "_ = ax.step([0, 6, 12, 24], [1, .9, .8, .7], where='post', label='high')\n"
              "_ = ax.step([0, 6, 12, 24], [1, .8, .6, .5], where='post', label='low')\n"
              "_ = ax.set_xlabel('months since survey'); _ = ax.legend()\n"
              "plt.show()"),
        _md("## Hazard ratios\n\n" + MD_INJECTION),
        _code("import pandas as pd\n"
              "pd.DataFrame({'construct': ['recognition', 'empathy'],\n"
              "              'estimate': [0.82, 0.91], label: [1, 2]})"),
        _code("ids = pd.Index(['CUSTOMER-1001', 'CUSTOMER-1002'], name='customer_id')\n"
              "pd.DataFrame({'months': [3, 7]}, index=ids)"),
        _code("SHOWN_CODE_MARKER = 1 + 1", ["show-code"]),
        _code("# HIDDEN_CODE_MARKER\nhidden = 3\nhidden"),
        _code("# REMOVED_CELL_MARKER\nprint('REMOVED_OUTPUT_MARKER')", ["remove"]),
        _code("import sys, warnings\n"
              "warnings.warn('proportional hazards check failed for proximity')\n"
              "print('stderr note: 3 rows excluded', file=sys.stderr)\n"
              "print('token in use:', api_token)"),
        _code("from IPython.display import HTML, Javascript, display\n"
              "display(HTML('<b onmouseover=\"alert(1)\">bold</b><script>alert(1)</script>'))\n"
              "display(Javascript('alert(1)'))"),
        _md("## Hazard ratios\n\n### Robustness\n\nSame heading twice must get two anchors."),
    ]
    return nb


def _failing_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        _md("# Segment report\n\nDisappointed good customers."),
        _code("n_min = 10", ["parameters"]),
        _code("from cxlab.report import record_finding\n"
              "_ = record_finding('Partial result before the failure')"),
        _md("## Segment shares"),
        _code("raise ValueError(\"column 'tenure' has 3 negative values <b>fix</b>\")"),
        _md("## After the failure"),
        _code("print('never runs')"),
    ]
    return nb


@functools.lru_cache(maxsize=None)
def executed_notebooks() -> dict[str, nbformat.NotebookNode]:
    """Execute both test notebooks once per test session (shared with test_browser.py)."""
    work = Path(tempfile.mkdtemp(prefix="cxlab-html-test-"))
    atexit.register(shutil.rmtree, work, True)
    out = {}
    for name, nb, params in (
        ("good", _good_notebook(), {"api_token": CANARY, "label": PAYLOAD}),
        ("failed", _failing_notebook(), {"n_min": 10}),
    ):
        src = work / f"{name}.ipynb"
        dst = work / f"{name}-out.ipynb"
        nbformat.write(nb, src)
        try:
            pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3",
                                progress_bar=False, cwd=str(work), log_output=False)
        except pm.PapermillExecutionError:
            assert name == "failed"
        out[name] = nbformat.read(dst, as_version=4)
    return out


def header_for(name: str, status: str) -> dict:
    return {
        "study_name": "Retail bank barometer",
        "snapshot_date": "2026-06-30",
        "run_id": "2026-07-01T0300-ab12",
        "notebook": f"{name}.ipynb",
        "status": status,
        "parameters": {"api_token": CANARY, "label": PAYLOAD, "horizon_months": 24},
        "secret_keys": ["api_token"],
        "data": {"customers": {"path": "/srv/extracts/2026-06/customers.csv", "rows": 12345,
                               "sha256": "0123456789abcdef" * 4},
                 "surveys": {"path": "data/barometer.csv", "rows": 4321,
                             "sha256": "fedcba9876543210" * 4}},
        "versions": {"cxlab": "0.1.0", "pandas": "2.3.0", "lifelines": "0.30.0"},
        "git_commit": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "started_at": "2026-07-01T03:00:00+00:00",
        "duration_s": 73.4,
    }


def export_reports(out_dir: Path) -> dict[str, Path]:
    nbs = executed_notebooks()
    return {
        "good": export_html(nbs["good"], out_dir / "01-drivers.html",
                            header_for("01-drivers", "succeeded")),
        "failed": export_html(nbs["failed"], out_dir / "02-segments.html",
                              header_for("02-segments", "failed")),
    }


def example_manifest() -> dict:
    return {
        "run_id": "2026-07-01T0300-ab12", "status": "failed",
        "started_at": "2026-07-01T03:00:00+00:00", "finished_at": "2026-07-01T03:02:10+00:00",
        "duration_s": 130.2,
        "study": {"name": "Retail bank barometer", "snapshot_date": "2026-06-30"},
        "parameters": {"horizon_months": 24, "label": PAYLOAD},
        "data": header_for("x", "failed")["data"],
        "versions": {"cxlab": "0.1.0", "pandas": "2.3.0"},
        "notebooks": [
            {"name": "01-drivers", "status": "succeeded", "duration_s": 41.0,
             "html": "01-drivers.html", "error": None,
             "findings": [{"text": "Recognition lowers the defection hazard: " + PAYLOAD,
                           "level": "finding"},
                          {"text": "PH violated for proximity", "level": "warning"}]},
            {"name": "02-segments", "status": "failed", "duration_s": 12.5,
             "html": "02-segments.html", "error": {"ename": "ValueError",
                                                  "evalue": "column 'tenure' <b>"},
             "findings": []},
        ],
        "metrics": {
            "cox.hr_per_sd.recognition": {"estimate": 0.823456, "lower": 0.741234,
                                          "upper": 0.914567, "notebook": "01-drivers"},
            "value.retained_months.uplift": {"estimate": 12345.678, "lower": 9876.5,
                                             "upper": 15000.2, "notebook": "01-drivers"},
        },
        "comparison": [
            {"metric": "cox.hr_per_sd.recognition", "previous": 0.95, "previous_lower": 0.9,
             "previous_upper": 0.99, "current": 0.823456, "flag": True,
             "text": "below the previous 95 % interval"},
            {"metric": "segments.share.disappointed", "previous": 0.181, "previous_lower": 0.17,
             "previous_upper": 0.19, "current": 0.1834, "flag": False, "text": "within"},
        ],
        "failed_reason": "notebook 02-segments raised ValueError",
    }


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("reports")
    paths = export_reports(out)
    paths["index"] = write_index(out, example_manifest())
    return paths


@pytest.fixture(scope="module")
def good(reports):
    text = reports["good"].read_text(encoding="utf-8")
    return text, BeautifulSoup(text, "html.parser")


@pytest.fixture(scope="module")
def failed(reports):
    text = reports["failed"].read_text(encoding="utf-8")
    return text, BeautifulSoup(text, "html.parser")


# ------------------------------------------------------------------------------ helpers

_REMOTE = re.compile(r"""(?:src|href|srcset|action|poster)\s*=\s*["']?\s*(?:https?:)?//"""
                     r"""|url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)


def assert_inert(text: str, soup: BeautifulSoup) -> None:
    """No script element, no event-handler attribute, no javascript: URL, no remote fetch."""
    assert "<script" not in text.lower()
    for tag in soup.find_all(True):
        for attr, value in tag.attrs.items():
            assert not attr.lower().startswith("on"), (tag.name, attr)
            vals = value if isinstance(value, list) else [value]
            assert not any("javascript:" in str(v).lower() for v in vals), (tag.name, attr)
    assert not _REMOTE.search(text), _REMOTE.search(text).group(0)
    assert not soup.find("link") and not soup.find("iframe") and not soup.find("object")


# ------------------------------------------------------------------------------ tests

@pytest.mark.slow
def test_report_is_self_contained_and_script_free(reports):
    for key in ("good", "failed", "index"):
        text = reports[key].read_text(encoding="utf-8")
        soup = BeautifulSoup(text, "html.parser")
        assert_inert(text, soup)
        # the only stylesheet is our inline one; a CSP forbids scripts and remote fetches
        assert len(soup.find_all("style")) == 1
        csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
        assert csp and "default-src 'none'" in csp["content"] and "img-src data:" in csp["content"]


@pytest.mark.slow
def test_images_are_embedded_data_uris(good):
    _, soup = good
    imgs = soup.find_all("img")
    assert len(imgs) >= 1  # the matplotlib figure
    pngs = [i for i in imgs if i.get("src", "").startswith("data:image/png;base64,")]
    assert len(pngs) == 1 and len(pngs[0]["src"]) > 1000
    assert all(i["src"].startswith("data:image/") for i in imgs)
    # the remote image and the onerror image of the markdown cell became a visible note
    notes = [s for s in soup.select("main span.cx-muted") if "not embedded" in s.get_text()]
    assert len(notes) == 2


@pytest.mark.slow
def test_code_hidden_except_show_code_cell(good):
    text, soup = good
    assert "SHOWN_CODE_MARKER" in soup.select_one("main .celltag_show-code").get_text()
    for hidden in ("HIDDEN_CODE_MARKER", "PARAMS_CELL_MARKER", "REMOVED_CELL_MARKER",
                   "REMOVED_OUTPUT_MARKER", "record_finding(", "plt.subplots",
                   "injected-parameters"):
        assert hidden not in text, hidden
    assert len(soup.select(".jp-InputArea-editor")) == 1
    # outputs of hidden cells are still there (the value of `hidden`)
    assert soup.find("pre", string="3") is not None


@pytest.mark.slow
def test_toc_links_match_heading_ids(good):
    _, soup = good
    links = soup.select("nav#cx-toc a")
    texts = [a.get_text() for a in links]
    assert texts == ["Survival curves", "Hazard ratios", "Hazard ratios", "Robustness"]
    ids = [a["href"][1:] for a in links]
    assert all(a["href"].startswith("#") for a in links)
    assert len(set(ids)) == len(ids)  # the repeated heading got its own anchor
    for hid, text in zip(ids, texts):
        target = soup.find(id=hid)
        assert target is not None and target.name in ("h1", "h2", "h3")
        assert target.get_text(" ", strip=True) == text
    # the notebook's "# Retention drivers" is the page title, not repeated below it
    assert soup.select_one("header h1").get_text(" ", strip=True).startswith("Retention drivers")
    assert soup.find("title").get_text() == "Retention drivers"
    assert not soup.select("main h1")


@pytest.mark.slow
def test_findings_first_with_warning_callout_and_findings_cells(good):
    text, soup = good
    box = soup.find(id="cx-findings")
    items = box.find_all("li")
    assert items[0].get_text() == "Recognition lowers the defection hazard: " + PAYLOAD
    assert "cx-finding-warning" in items[1]["class"]
    assert "Proportional hazards violated for proximity" in items[1].get_text()
    # the output of the cell tagged `findings` was moved into the box
    assert "FINDINGS_CELL_OUTPUT" in box.get_text()
    assert "FINDINGS_CELL_OUTPUT" not in soup.find("main").get_text()
    # the box precedes the table of contents and the first section of the notebook
    first_section = soup.select_one("main h2")
    assert text.index('id="cx-findings"') < text.index('id="cx-toc"') \
        < text.index(f'id="{first_section["id"]}"')
    assert soup.find(id="cx-error") is None


@pytest.mark.slow
def test_metric_shown_readably_not_as_json(good):
    text, soup = good
    assert "application/vnd.cxlab" not in text and '"estimate":' not in text
    metric = soup.select_one("#cx-findings .cx-metrics").get_text(" ", strip=True)
    assert "cox.hr_per_sd.recognition" in metric and "0.823" in metric
    assert "0.741 – 0.915" in metric
    cell = soup.select_one("#cx-findings .cx-metrics tbody td")   # in words; the code name small below
    assert cell.find(string=True, recursive=False) == "hazard ratio per SD of recognition"
    assert cell.select_one("code.cx-metric-name").get_text() == "cox.hr_per_sd.recognition"


@pytest.mark.slow
def test_warnings_and_stderr_are_collected_in_one_checks_section(good):
    _, soup = good
    checks = soup.find(id="cx-checks")
    assert checks is not None
    notes = " ".join(li.get_text(" ") for li in checks.select("li"))
    # in plain words, with the section they came from; none left as a raw call-out in the page
    assert "Proportional hazards check failed for proximity." in notes
    assert "Stderr note: 3 rows excluded." in notes
    assert "(in: Hazard ratios)" in notes
    assert not soup.select("main [data-mime-type=\"application/vnd.jupyter.stderr\"]")
    main = soup.find("main").get_text(" ")
    assert "UserWarning" not in main and "proportional hazards check failed" not in main
    # without the kernel's temp-file path and the echoed source line (that is code)
    assert "ipykernel" not in notes and "warnings.warn(" not in notes


def test_plain_note_marks_library_notices_technical():
    from cxlab.report.html import plain_note

    n = plain_note("FutureWarning: DataFrame.applymap has been deprecated")
    assert n["technical"] and "does not affect the results" in n["text"]
    u = plain_note("UserWarning: check_and_fallback: splitting at all 400 event times would create rows")
    assert not u["technical"] and u["text"].startswith("Splitting at all 400 event times")
    assert u["detail"].startswith("UserWarning")


def test_headers_in_words_and_evidence_folded(good):
    _, soup = good
    main = soup.find("main")
    folds = main.select("details.cx-evidence-fold")
    assert folds and all(f.find("summary").get_text().startswith("Show the evidence") for f in folds)
    assert any(f.find("img") for f in folds) and any(f.find("table") for f in folds)
    assert all(img.get("alt") for img in main.find_all("img"))
    assert "Figure: Survival curves" in [img.get("alt") for img in main.find_all("img")]


def test_humanise_headers():
    from cxlab.report.html import _humanise_headers

    soup = BeautifulSoup("<table><thead><tr><th>p_holm</th><th>defection_12m_lower</th><th>estimate</th>"
                         "<th>n</th></tr></thead><tbody><tr><th>channel[online]</th><td>0.1</td></tr></tbody>"
                         "</table>", "html.parser")
    _humanise_headers(soup)
    assert [th.get_text() for th in soup.select("thead th")] == [
        "p-value (Holm-adjusted)", "defection within 12 months, lower bound", "estimate", "n"]
    assert soup.select_one("tbody th").get_text() == "channel: online"


@pytest.mark.slow
def test_provenance_header(good):
    text, soup = good
    prov = soup.find(id="cx-provenance")
    ptext = prov.get_text(" ", strip=True)
    for expected in ("Retail bank barometer", "2026-06-30", "2026-07-01T0300-ab12",
                     "succeeded", "customers.csv", "12,345", "0123456789ab", "barometer.csv",
                     "4,321", "fedcba987654", "9f8e7d6c5b4a", "0.1.0", "1 min 13 s"):
        assert expected in ptext, expected
    assert "/srv/extracts" not in text  # file name only, never the path
    assert "0123456789abcdef0" not in text  # only the first 12 hex of the sha256
    versions = prov.find("details")
    assert versions is not None and not versions.has_attr("open")
    assert "lifelines" in versions.get_text()


@pytest.mark.slow
def test_secret_parameter_never_rendered(good, failed):
    for text, soup in (good, failed):
        assert CANARY not in text
        assert "s3cr3t" not in text
    _, soup = good
    row = [tr for tr in soup.select("#cx-provenance tr") if "api_token" in tr.get_text()][0]
    assert row.find_all("td")[1].get_text() == "•••"
    # the notebook printed the token; the report shows the mask instead
    assert "token in use: •••" in soup.find("main").get_text()


@pytest.mark.slow
def test_injection_payloads_are_inert(good):
    text, soup = good
    assert_inert(text, soup)
    # finding text, parameter value and DataFrame column label survive as visible text
    assert PAYLOAD in soup.find(id="cx-findings").get_text()
    prov_values = [td.get_text() for td in soup.select("#cx-provenance td")]
    assert PAYLOAD in prov_values
    assert PAYLOAD in [th.get_text() for th in soup.select("main table.dataframe th")]
    # markdown raw HTML: the harmless parts stay, the active parts are gone
    main = soup.find("main")
    assert main.find("p", string="hover") is not None
    assert "click me" in main.get_text()
    assert all(not a.get("href") or a["href"].startswith("#") for a in main.find_all("a"))
    assert main.find("b", string="bold") is not None  # text/html output kept, handler gone
    assert "interactive JavaScript output omitted" in main.get_text()


@pytest.mark.slow
def test_table_indexed_by_customer_id_is_withheld(good):
    text, soup = good
    assert "CUSTOMER-1001" not in text
    notes = [c.get_text() for c in soup.select("main .cx-callout.cx-warning")]
    assert any("Table withheld: its index (customer_id)" in n for n in notes)
    assert soup.select("main table.dataframe")  # aggregate tables are kept


def test_looks_like_identifier():
    for name in ("customer_id", "cust", "CustomerID", "respondentId", "client-uuid", "email",
                 "account_no", "id"):
        assert looks_like_identifier(name), name
    for name in ("construct", "segment", "tenure", "valid", "paid", "idle_days", "period"):
        assert not looks_like_identifier(name), name


@pytest.mark.slow
def test_failed_status_without_error_output_still_gets_error_box(tmp_path):
    nb = executed_notebooks()["good"]
    # what the runner reports for a notebook stopped by its timeout
    header = header_for("01", "failed") | {"error": {
        "ename": "Timeout", "evalue": "the notebook ran longer than 600 s and was stopped",
        "cell": None, "reason": "timeout"}}
    path = export_html(nb, tmp_path / "r.html", header)
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    box = soup.body.find(True)
    assert box.get("id") == "cx-error"
    text = box.get_text(" ", strip=True)
    assert "Timeout : the notebook ran longer than 600 s" in text
    assert "No cell recorded an error output (timeout)" in text


@pytest.mark.slow
def test_failed_notebook_error_box_first(failed):
    text, soup = failed
    first = soup.body.find(True)
    assert first.get("id") == "cx-error"
    box = first.get_text(" ", strip=True)
    assert "ValueError" in box and "column 'tenure' has 3 negative values <b>fix</b>" in box
    # numbered as in the source notebook: papermill's injected cell and markers not counted
    assert "code cell 3 (cell 5 of the notebook, In [4])" in box
    assert soup.find(id="cx-failed-cell") is not None  # the box links to the cell
    assert soup.select_one('a[href="#cx-failed-cell"]') is not None
    # then the partial report: findings recorded before the failure, later headings
    assert "Partial result before the failure" in soup.find(id="cx-findings").get_text()
    assert [a.get_text() for a in soup.select("nav#cx-toc a")] == [
        "Segment shares", "After the failure"]
    assert "papermill" not in soup.find("main").get_text().lower()
    assert soup.select_one(".cx-status-failed") is not None
    assert_inert(text, soup)


@pytest.mark.slow
def test_export_is_atomic_and_overwrites(tmp_path):
    nb = executed_notebooks()["failed"]
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")
    export_html(nb, target, header_for("02", "failed"), title="Custom <title>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp left over
    text = target.read_text(encoding="utf-8")
    assert "<title>Custom &lt;title&gt;</title>" in text


def test_index_page(reports):
    text = reports["index"].read_text(encoding="utf-8")
    soup = BeautifulSoup(text, "html.parser")
    assert_inert(text, soup)
    assert soup.body.find(True).get("id") == "cx-error"
    assert "notebook 02-segments raised ValueError" in soup.find(id="cx-error").get_text()
    links = [a["href"] for a in soup.select("#cx-notebooks a")]
    assert links == ["01-drivers.html", "02-segments.html"]  # relative hrefs
    nb_text = soup.find(id="cx-notebooks").get_text()
    assert PAYLOAD in nb_text and "ValueError: column 'tenure' <b>" in nb_text
    assert "41.0 s" in nb_text
    rows = {tr.find("code").get_text(): [td.get_text() for td in tr.find_all("td")]
            for tr in soup.select("#cx-metrics tbody tr")}
    assert rows["cox.hr_per_sd.recognition"][1:3] == ["0.823", "0.741 – 0.915"]
    assert rows["value.retained_months.uplift"][1:3] == ["12,346", "9,876 – 15,000"]
    assert rows["cox.hr_per_sd.recognition"][0].startswith("hazard ratio per SD of recognition")
    flagged = soup.select("#cx-comparison tr.cx-flag")
    assert len(flagged) == 1 and "cox.hr_per_sd.recognition" in flagged[0].get_text()
    assert "⚑ changed" in flagged[0].get_text()
    assert soup.select_one('#cx-error a[href="02-segments.html"]') is not None
    assert "1 of 2" in soup.find(id="cx-comparison").get_text()
    assert "2026-06-30" in soup.select_one(".cx-subtitle").get_text()


def test_index_without_comparison_or_failure(tmp_path):
    # parameters per notebook, as the runner writes them
    m = example_manifest() | {"status": "succeeded", "comparison": [], "failed_reason": None,
                              "parameters": {"01-drivers": {"api_token": CANARY, "horizon": 24},
                                             "02-segments": {"api_token": CANARY, "horizon": 12}},
                              "secret_keys": ["api_token"]}
    m["data"] = {"customers": {"path": "c.csv", "rows": float("nan"), "sha256": None}}
    text = write_index(tmp_path, m).read_text(encoding="utf-8")
    soup = BeautifulSoup(text, "html.parser")
    assert CANARY not in text
    params = {tr.find_all("td")[0].get_text(): tr.find_all("td")[1].get_text()
              for tr in soup.select("#cx-provenance tbody tr") if len(tr.find_all("td")) == 2
              and tr.find("code") and tr.find_parent("table").find("th", string="parameter")}
    assert params == {"api_token": "•••", "horizon (01-drivers)": "24",
                      "horizon (02-segments)": "12"}
    assert soup.find(id="cx-error") is None
    assert "No previous successful run" in soup.find(id="cx-comparison").get_text()


def test_relative_href_rejects_escapes():
    assert _relative_href("nb/01 drivers.html") == "nb/01%20drivers.html"
    for bad in ("/etc/passwd", "../other-run/x.html", "javascript:alert(1)",
                "C:\\x.html", "", None):
        assert _relative_href(bad) is None, bad


def test_sanitizer_keeps_report_markup_and_drops_active_content():
    kept = ('<table class="dataframe"><thead><tr style="text-align:right"><th>a</th></tr>'
            '</thead><tbody><tr><td>1</td></tr></tbody></table><h2 id="sec-a">A</h2>'
            '<img src="data:image/png;base64,iVBORw0KGgo=">'
            '<details><summary>s</summary>x</details>')
    out = sanitize_html(kept)
    for piece in ('class="dataframe"', 'id="sec-a"', "data:image/png;base64,iVBORw0KGgo=",
                  "<details>", "<summary>", "text-align:right"):
        assert piece in out, piece
    bad = ('<svg><script>alert(1)</script></svg><iframe src="x"></iframe>'
           '<a href="data:text/html,hi">d</a><a href="//evil.example/x">e</a>'
           '<div style="background:url(https://e.example/x.png)">b</div>'
           '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'
           '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>')
    out = sanitize_html(bad)
    soup = BeautifulSoup(out, "html.parser")
    assert_inert(out, soup)
    assert "data:text" not in out and "evil.example" not in out and "url(" not in out


def test_tidy_stderr_keeps_message_drops_location_and_source():
    raw = ("/tmp/ipykernel_1/123.py:2: UserWarning: PH test failed for recognition\n"
           "  warnings.warn('PH test failed for recognition')\n"
           "/srv/cxlab/survival.py:88: ConvergenceWarning: Newton did not converge\n"
           "  warnings.warn(msg, ConvergenceWarning, stacklevel=2)\n"
           "plain stderr line\n  indented line kept\n")
    assert tidy_stderr(raw) == ("UserWarning: PH test failed for recognition\n"
                                "ConvergenceWarning: Newton did not converge\n"
                                "plain stderr line\n  indented line kept\n")


def test_estimate_ci_rounding():
    # three significant digits of the estimate, the interval to the same decimals
    assert format_estimate_ci(0.823456, 0.741234, 0.914567) == ("0.823", "0.741 – 0.915")
    assert format_estimate_ci(1.5, 1.2, 1.9) == ("1.50", "1.20 – 1.90")
    assert format_estimate_ci(-0.0123, -0.02, None) == ("−0.0123", "−0.0200 – –")
    assert format_estimate_ci(3.2, None, None) == ("3.20", "–")


def test_show_table_formats_every_p_value_column_as_p():
    import pandas as pd

    from cxlab.report.tables import _is_p, show_table

    names = ["p", "p_holm", "global_p", "log-rank p", "p-value", "P value", "Wald p"]
    assert all(_is_p(n) for n in names)
    assert not any(_is_p(n) for n in ["pseudo_r2", "share", "top_p20", "group", "ph"])
    table = pd.DataFrame({"perception": ["recognition", "empathy"], "log-rank p": [1e-9, 0.0421]})
    html = show_table(table).to_html()
    assert ">< 0.001<" in html and ">0.042<" in html and ">0.00<" not in html


# ------------------------------------------------------------------------------ run comparison


def test_comparison_reads_drops_as_drops_and_formats_for_people():
    from cxlab.report.compare import compare_metrics, human_number

    rows = {r["metric"]: r for r in compare_metrics(
        {"panel.respondents": {"estimate": 1052.0}, "value.x": {"estimate": 914.0, "lower": 800, "upper": 1000},
         "cox.hr": {"estimate": 0.80, "lower": 0.7, "upper": 0.9}},
        {"panel.respondents": {"estimate": 1855.0}, "value.x": {"estimate": 1370.0, "lower": 1200, "upper": 1500},
         "cox.hr": {"estimate": 0.82, "lower": 0.75, "upper": 0.9}})}
    assert rows["panel.respondents"]["text"] == "panel.respondents: from 1,855 to 1,052 (−43 %)"
    assert rows["panel.respondents"]["flag"] is True
    assert "from 1,370 to 914 (−33 %)" in rows["value.x"]["text"] and "e+" not in rows["value.x"]["text"]
    assert rows["value.x"]["flag"] is True and rows["cox.hr"]["flag"] is False
    assert "(+" in compare_metrics({"a": {"estimate": 120.0}}, {"a": {"estimate": 100.0}})[0]["text"]
    assert human_number(1370.4) == "1,370" and human_number(0.01234) == "0.0123" and human_number(-2.5) == "−2.50"


def test_comparison_only_like_for_like(tmp_path):
    from cxlab.report.compare import basis_differences, compare_metrics, comparison_basis

    spec = tmp_path / "study.yaml"
    spec.write_text("name: s\nsnapshot_date: 2026-06-30\ncustomers: {path: c.csv}\n")
    nb = tmp_path / "02-x.ipynb"
    nb.write_text("{}")
    a = comparison_basis(spec, {"02-x": nb}, {"02-x": {"horizons": [12, 24], "min_cell": 10}})
    spec.write_text("name: s\nsnapshot_date: 2026-07-31\ncustomers: {path: c.csv}\n")
    same = comparison_basis(spec, {"02-x": nb}, {"02-x": {"horizons": [12, 24], "min_cell": 10}})
    assert basis_differences(same, a) == []          # a new snapshot date is the point of a monthly run
    other = comparison_basis(spec, {"02-x": nb}, {"02-x": {"horizons": [12, 36], "min_cell": 10}})
    diff = basis_differences(other, a)
    assert diff == ["parameter horizons changed from [12, 24] to [12, 36]"]
    nb.write_text('{"cells": []}')
    spec.write_text("name: s\nsnapshot_date: 2026-07-31\ncustomers: {path: d.csv}\n")
    changed = basis_differences(comparison_basis(spec, {"02-x": nb}, {"02-x": {"horizons": [12, 24], "min_cell": 10}}), a)
    assert "the study spec changed (other than its snapshot date)" in changed
    assert "notebook version changed: 02-x" in changed
    rows = compare_metrics({"m": {"estimate": 2.0, "lower": 1.9, "upper": 2.1}},
                           {"m": {"estimate": 1.0, "lower": 0.9, "upper": 1.1}}, diff)
    assert rows[0]["flag"] is False and "not compared" in rows[0]["text"]
    assert basis_differences(a, None)   # a run without a basis is never compared silently


def test_index_comparison_says_what_changed_and_shows_no_flags(tmp_path):
    m = example_manifest() | {"status": "succeeded", "failed_reason": None,
                              "comparison_basis": {"differences": ["parameter horizons changed from [12, 24] to [12, 36]"]}}
    m["comparison"] = [dict(c, flag=False) for c in m["comparison"]]
    soup = BeautifulSoup(write_index(tmp_path, m).read_text(encoding="utf-8"), "html.parser")
    comp = soup.find(id="cx-comparison").get_text(" ", strip=True)
    assert "not compared" in comp.lower() and "parameter horizons changed from [12, 24] to [12, 36]" in comp
    assert not soup.select("#cx-comparison tr.cx-flag")


# ------------------------------------------------------------------------------ executive summary

def _summary_manifest(recognition=(0.64, 0.53, 0.77), status04="succeeded"):
    def m(e, lo=None, hi=None, **kw):
        return {"estimate": e, "lower": lo, "upper": hi, **kw}

    nbs = [{"name": n, "status": "succeeded", "html": f"{n}.html", "findings": [], "omissions": []}
           for n in ("01-data-audit", "02-survival-drivers", "03-measurement-loyalty", "04-segments-value")]
    nbs[3]["status"] = status04
    if status04 != "succeeded":
        nbs[3]["error"] = {"ename": "ModelError", "evalue": "did not converge"}
    nbs[1]["findings"] = [{"text": "Findings use the fallback model: the effect of affect changes with tenure.",
                           "level": "warning"}]
    metrics = {
        "panel.customers": m(2920), "panel.respondents": m(1098), "panel.response_rate": m(0.376),
        "panel.set_aside": m(8), "panel.events": m(177), "cox.respondents": m(1094),
        "cox.hr_per_sd.recognition": m(*recognition), "cox.hr_per_sd.empathy": m(0.9, 0.75, 1.06),
        "cox.hr.dgc": m(1.17, 0.77, 1.77),
        "drivers.importance.recognition": m(0.49, 0.29, 0.66), "drivers.importance.empathy": m(0.2, 0.1, 0.3),
        "drivers.rank_stability.recognition": m(0.96),
    }
    if status04 == "succeeded":
        metrics |= {"segments.hr.recognised_good_customers": m(1.0, 1.0, 1.0),
                    "segments.hr.disappointed_good_customers": m(3.42, 2.40, 4.89),
                    "segments.hr.modest_but_recognised": m(1.3, 0.9, 1.8),
                    "value.whatif.delta_defections": m(-11.2, -17.0, -6.0),
                    "value.whatif.delta_margin": m(5967.4, 3721.0, 8604.2, unit="EUR"),
                    "value.whatif.horizon_months": m(24),
                    "value.whatif.delta_points": m(0.5, label="disappointed good customers")}
    return {"run_id": "r", "status": "succeeded", "notebooks": nbs, "metrics": metrics, "comparison": []}


def test_summary_answers_the_five_questions_with_uncertainty():
    from cxlab.report.summary import executive_summary

    a = {x["key"]: x for x in executive_summary(_summary_manifest())}
    assert a["importance"]["answer"].startswith("Recognition carries the largest share")
    assert "ranks first in 96 % of bootstrap samples" in a["importance"]["answer"]
    assert "36 % lower risk" in a["importance"]["answer"]
    assert "No clear link with defection (95 % CI includes 1): empathy." in a["importance"]["answer"]
    assert a["dgc"]["answer"].startswith("Yes: ") and "crude comparison" in a["dgc"]["answer"]
    assert ("Raising recognition by 0.5 scale points for disappointed good customers would mean 11 fewer "
            "defections within 24 months of the survey (95 % CI 6 to 17 fewer).") in a["whatif"]["answer"]
    assert "EUR 5,967 more discounted margin" in a["whatif"]["answer"]
    assert a["who"]["answer"].startswith("1,098 respondents are analysed, out of 2,920 customers")
    assert "response rate 38 %" in a["who"]["answer"] and "leave out fewer than 10 of them" in a["who"]["answer"]   # 4 left out: below min_cell
    assert "fallback model" in a["checks"]["answer"]
    assert a["importance"]["href"] == "03-measurement-loyalty.html#cx-findings"
    assert a["who"]["href"] == "01-data-audit.html#cx-findings"


def test_summary_dgc_answer_reads_every_cell_notebook_04_records():
    # the metric names are those 04 records (segments.hr.<slug of each 2x2 cell>): a cell other than
    # the reference that is clearly riskier turns the answer into "No"; one whose interval reaches the
    # DGC estimate turns it into "can't tell"
    from cxlab.report.summary import executive_summary
    from cxlab.insight.segments import SEGMENTS_2X2
    from cxlab.study import slug

    assert {"disappointed good customers", "modest and unrecognised"} <= set(SEGMENTS_2X2)
    for cell in SEGMENTS_2X2[2:]:
        man = _summary_manifest()
        man["metrics"][f"segments.hr.{slug(cell)}"] = {"estimate": 6.0, "lower": 4.9, "upper": 8.0}
        answer = {x["key"]: x for x in executive_summary(man)}["dgc"]["answer"]
        assert answer.startswith(f"No: {cell} leave sooner"), (cell, answer)
        man["metrics"][f"segments.hr.{slug(cell)}"] = {"estimate": 3.0, "lower": 2.0, "upper": 4.0}
        answer = {x["key"]: x for x in executive_summary(man)}["dgc"]["answer"]
        assert answer.startswith("Can't tell") and cell in answer, (cell, answer)


def test_summary_dgc_answer_uses_the_direct_comparisons_04_records():
    # with segments.dgc_vs.<cell> (DGC against each cell in one model) the answer rests on them:
    # overlapping intervals against the reference no longer make it "can't tell"
    from cxlab.report.summary import executive_summary
    from cxlab.insight.segments import SEGMENTS_2X2
    from cxlab.study import slug

    man = _summary_manifest()
    man["metrics"][f"segments.hr.{slug(SEGMENTS_2X2[3])}"] = {"estimate": 3.0, "lower": 2.0, "upper": 4.0}
    assert {x["key"]: x for x in executive_summary(man)}["dgc"]["answer"].startswith("Can't tell")
    for cell in SEGMENTS_2X2[1:]:
        man["metrics"][f"segments.dgc_vs.{slug(cell)}"] = {"estimate": 1.3, "lower": 1.1, "upper": 1.55}
    answer = {x["key"]: x for x in executive_summary(man)}["dgc"]["answer"]
    assert answer.startswith("Yes: ") and "Compared directly with each other cell" in answer, answer
    man["metrics"][f"segments.dgc_vs.{slug(SEGMENTS_2X2[3])}"] = {"estimate": 1.1, "lower": 0.9, "upper": 1.34}
    answer = {x["key"]: x for x in executive_summary(man)}["dgc"]["answer"]
    assert answer.startswith("Can't tell") and f"than that of {SEGMENTS_2X2[3]}: compared directly" in answer


def test_summary_null_recognition_says_no_clear_link():
    from cxlab.report.summary import executive_summary

    a = {x["key"]: x for x in executive_summary(_summary_manifest(recognition=(1.02, 0.9, 1.15)))}
    # recognition ranks first on importance here, yet its hazard ratio's interval includes 1
    assert "Customers one SD higher on recognition: no clear link with the risk of defecting" in a["importance"]["answer"]
    assert "lower risk" not in a["importance"]["answer"] and "higher risk" not in a["importance"]["answer"]


def test_summary_says_not_answered_when_a_notebook_failed(tmp_path):
    from cxlab.report.summary import executive_summary

    man = _summary_manifest(status04="failed")
    a = {x["key"]: x for x in executive_summary(man)}
    for key in ("dgc", "whatif"):
        assert a[key]["answer"].startswith("Not answered: the notebook 04-segments-value failed (ModelError")
    assert "04-segments-value failed" in a["checks"]["answer"]
    man["notebooks"] = man["notebooks"][:2]
    a = {x["key"]: x for x in executive_summary(man)}
    assert a["importance"]["answer"] == ("Not answered: the notebook 03-measurement-loyalty was not part of "
                                         "this run.")
    soup = BeautifulSoup(write_index(tmp_path, man | {"status": "failed"}).read_text(encoding="utf-8"),
                         "html.parser")
    assert soup.find(id="cx-summary") is not None and soup.find(id="cx-answer-importance") is not None


def test_summary_checks_list_the_notes_notebooks_raised(tmp_path):
    from cxlab.report.summary import executive_summary

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "stream", name="stderr", text="/tmp/ipykernel_1/1.py:3: UserWarning: 3 of 200 bootstrap fits failed\n"
                                      "  warnings.warn(msg)\n"
                                      "/x.py:1: FutureWarning: applymap is deprecated\n")])]
    nb.cells.append(nbformat.v4.new_code_cell("y", outputs=[nbformat.v4.new_output(
        "stream", name="stderr", text="/tmp/ipykernel_1/1.py:9: UserWarning: 3 of 200 bootstrap fits failed\n")]))
    nbformat.write(nb, tmp_path / "03-measurement-loyalty.ipynb")
    man = _summary_manifest()
    man["notebooks"][1]["findings"] = []
    man["notebooks"][2]["ipynb"] = "03-measurement-loyalty.ipynb"
    man["notebooks"][2]["title"] = "Measurement, loyalty and key drivers"
    checks = {a["key"]: a for a in executive_summary(man, tmp_path)}["checks"]["answer"]
    # one sentence per notebook, by its title; a note raised twice is said once
    assert checks == "Notes from Measurement, loyalty and key drivers: 3 of 200 bootstrap fits failed."
    assert {a["key"]: a for a in executive_summary(man)}["checks"]["answer"].startswith("No notebook failed")


def test_plain_note_keeps_the_variable_a_note_is_about():
    # a cxlab function's prefix goes; a variable's name (as the study spells it) stays
    from cxlab.report.html import plain_note

    kept = plain_note("UserWarning: segment: 1 level with fewer than 10 customers pooled into 'other'")["text"]
    assert kept == "segment: 1 level with fewer than 10 customers pooled into 'other'."
    gone = plain_note("UserWarning: check_and_fallback: splitting at all 400 event times")["text"]
    assert gone == "Splitting at all 400 event times."


# ------------------------------------------------------------------------------ interrupted notebooks

def _interrupted_page(tmp_path, evalue, *, ran_cells=True):
    """What the runner exports for a notebook its stop signal cut short (cxlab.report.workers):
    the notebook as far as it ran, the runner's "Interrupted" error cell appended, status
    "interrupted"."""
    from cxlab.report.workers import error_notebook

    src = tmp_path / "src.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [_md("# Survival drivers"), _md("## Kaplan–Meier"), _code("x = 1")]
    if ran_cells:
        nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="half way\n")]
    nbformat.write(nb, src)
    done = error_notebook(src, evalue, "Interrupted")
    header = header_for("02-survival-drivers", "interrupted") | {"error": {
        "ename": "Interrupted", "evalue": evalue, "cell": None, "reason": "interrupted"}}
    path = export_html(done, tmp_path / "r.html", header)
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def test_an_interrupted_notebook_says_interrupted_by_which_signal_not_failed(tmp_path):
    soup = _interrupted_page(tmp_path, "stopped by SIGTERM while running")
    box = soup.body.find(True)
    assert box.get("id") == "cx-error" and "cx-interruptbox" in box.get("class", [])
    text = box.get_text(" ", strip=True)
    assert text.startswith("This notebook was interrupted")
    assert "stopped by SIGTERM while this notebook was running" in text
    assert "not a failure of the notebook" in text and "partial" in text
    assert "failed" not in text.lower()
    assert soup.select_one(".cx-status-interrupted") is not None and soup.select_one(".cx-status-failed") is None
    assert soup.select_one('#cx-error a[href="#cx-failed-cell"]') is not None   # where it stopped
    assert soup.find(string=re.compile("This notebook failed")) is None


def test_a_notebook_the_signal_kept_from_starting_says_so(tmp_path):
    soup = _interrupted_page(tmp_path, "not started: the run was stopped by SIGINT", ran_cells=False)
    text = soup.find(id="cx-error").get_text(" ", strip=True)
    assert "stopped by SIGINT before this notebook started" in text and "none of its cells ran" in text
    assert "not a failure of the notebook" in text and "failed" not in text.lower()


# ------------------------------------------------------------------------------ headline-metrics appendix

def _recorded_metric_names() -> list[str]:
    """Every metric name the notebooks record (their record_metric calls, and the Findings.metric calls
    of cxlab/insight/findings.py that their findings cells record), placeholders filled in."""
    import json as _json

    names = []
    root = Path(__file__).resolve().parents[1]
    codes = [(root / "cxlab" / "insight" / "findings.py").read_text(encoding="utf-8")]
    for path in sorted((root / "notebooks").glob("0*.ipynb")):
        nb = _json.loads(path.read_text(encoding="utf-8"))
        codes.append("\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"))
    for code in codes:
        for _, lit in re.findall(r"(?:record_metric|\.metric)\(\s*f?([\"'])(.*?)\1", code):
            lit = lit.replace("{metric}{suffix}", "delta_margin.move_24m")
            lit = re.sub(r"retention_\{[^}]*\}m", "retention_12m", lit)
            lit = lit.replace("eval.{metric}", "eval.auc_12m").replace("sbg.{name}", "sbg.alpha")
            lit = re.sub(r"\{[^}]*\}", "proximity", lit)
            names.append(lit)
    return names


def test_every_recorded_metric_has_a_label_in_words():
    from cxlab.report.index import _METRIC_WORDS, metric_label

    names = _recorded_metric_names()
    assert len(names) >= 30 and "value.gini" in names and "cox.hr_per_sd.proximity" in names
    for name in names + ["value.whatif.delta_margin.move_24m", "value.whatif.delta_defections.raise_24m"]:
        assert any(re.fullmatch(p, name) for p, _ in _METRIC_WORDS), f"no words for {name}"
        label = metric_label(name, {})
        assert "_" not in label and "." not in label.replace("e.g.", ""), (name, label)
    # the study's spelling travels in the label; a descriptive label is used as is
    assert metric_label("cox.hr_per_sd.proximite", {"label": "cox.hr_per_sd.proximité"}) == "hazard ratio per SD of proximité"
    assert metric_label("value.gini", {"label": "Gini of the margin among respondents in the 2 × 2 grid"}) == (
        "Gini of the margin among respondents in the 2 × 2 grid")
    assert metric_label("value.whatif.delta_margin", {}, {"value.whatif.horizon_months": {"estimate": 12.0}}) == (
        "what-if, recognition raised: change in discounted margin within 12 months")


def test_index_metrics_appendix_shows_labels_code_names_small_and_muted(tmp_path):
    m = example_manifest() | {"status": "succeeded", "failed_reason": None}
    m["metrics"] = {"panel.respondents": {"estimate": 1098, "notebook": "01-drivers"},
                    "tv.hr.complaint_open": {"estimate": 1.8, "lower": 1.4, "upper": 2.3, "notebook": "01-drivers"},
                    "drivers.importance.recognition": {"estimate": 0.38, "lower": 0.3, "upper": 0.45,
                                                       "notebook": "01-drivers"}}
    soup = BeautifulSoup(write_index(tmp_path, m).read_text(encoding="utf-8"), "html.parser")
    table = soup.select_one("#cx-metrics table")
    assert [th.get_text() for th in table.select("thead th")] == ["figure", "estimate", "95 % CI"]
    first = [tr.find("td") for tr in table.select("tbody tr")]
    shown = [td.find(string=True, recursive=False) for td in first]
    assert shown == ["respondents analysed", "hazard ratio (scores updated at each answer): a complaint open",
                     "share of the explanation of time to defection: recognition"]
    # the code name: a hover title and a small muted line, never the figure's main text
    assert [td["title"] for td in first] == list(m["metrics"])
    assert [td.select_one("code.cx-metric-name").get_text() for td in first] == list(m["metrics"])


def test_plain_note_says_cxlab_diagnostics_that_name_code_in_words():
    from cxlab.report.html import plain_note

    approx = plain_note("UserWarning: check_and_fallback: splitting at all 973 event times would create 1748011 rows "
                        "(> max_rows=200000); the time interaction uses 88 event-time quantiles instead.")["text"]
    assert "max_rows" not in approx and "cut at 88 points" in approx and "each of the 973 defection times" in approx
    assert "1,748,011 data rows" in approx
    grid = plain_note("UserWarning: perception_segments: 31 of 7330 respondents have no 'recognition' or "
                      "'self_status' answer and are 'unclassified'.")["text"]
    assert grid == ("31 of 7,330 respondents have no recognition or self status answer, so they are left out of "
                    "the 2 × 2 grid.")


def test_a_hidden_cell_s_warning_is_a_check_too(tmp_path):
    # a setup cell tagged "remove" is not shown, but what it warned about is in the Checks section
    # (the index's checks answer reads every cell's warnings: both say the same)
    from cxlab.report.summary import notebook_notes

    nb = nbformat.v4.new_notebook()
    nb.cells = [_md("# Segments"),
                _code("setup()", ["remove"]),
                _md("## Grid"), _code("grid()")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "/x/segments.py:80: UserWarning: perception_segments: 31 of 7330 respondents have no 'recognition' or "
        "'self_status' answer and are 'unclassified'.\n  warnings.warn(\n"))]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="REMOVED_CELL_HAS_NO_OUTPUT\n")]
    path = export_html(nb, tmp_path / "r.html", header_for("04", "succeeded"))
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    checks = soup.find(id="cx-checks").get_text(" ", strip=True)
    assert "31 of 7,330 respondents have no recognition or self status answer" in checks
    assert "perception_segments" not in soup.get_text() and "'unclassified'" not in soup.get_text()
    nbformat.write(nb, tmp_path / "04.ipynb")
    assert notebook_notes(tmp_path / "04.ipynb") == [
        "31 of 7,330 respondents have no recognition or self status answer, so they are left out of the 2 × 2 grid."]
