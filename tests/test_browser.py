"""The reports in a real browser (Chromium via Playwright), offline.

Every request that is not ``file://`` is aborted and counted; the pages must render with no
console error, no failed or blocked request, every image decoded, every table-of-contents
link pointing at an element, and no ``alert`` dialog from the injection payloads. A
full-page screenshot of each page goes to ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_report_html import example_manifest, export_reports

from cxlab.report.index import write_index

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's package (make system-deps)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not on the PATH: `make test` installs it via apt "
                    "(apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("browser-reports")
    paths = export_reports(out)
    paths["index"] = write_index(out, example_manifest())
    return paths


def _visit(browser, path: Path, screenshot: str) -> dict:
    """Open ``path`` offline; return what happened."""
    seen = {"console_errors": [], "page_errors": [], "failed": [], "aborted": [],
            "dialogs": []}
    context = browser.new_context(viewport={"width": 1200, "height": 900},
                                  java_script_enabled=True)
    page = context.new_page()

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            seen["aborted"].append(r.request.url)
            r.abort()

    def on_dialog(d):
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and seen["console_errors"].append(m.text))
    page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.on("dialog", on_dialog)
    page.goto(path.as_uri(), wait_until="load")
    # fire the events a payload could have hooked (onmouseover=, onfocus=) on every element
    page.eval_on_selector_all("body *", """els => els.forEach(e => {
        for (const t of ['mouseover', 'mouseenter', 'focus'])
            e.dispatchEvent(new Event(t, {bubbles: true}));
    })""")
    if page.query_selector("#cx-findings li"):  # and one real pointer hover over a finding
        page.hover("#cx-findings li", timeout=5000)
    seen["images"] = page.eval_on_selector_all(
        "img", "els => els.map(e => ({src: e.src.slice(0, 30), complete: e.complete, "
               "w: e.naturalWidth}))")
    seen["toc"] = page.eval_on_selector_all(
        "nav#cx-toc a", "els => els.map(a => ({href: a.getAttribute('href'), "
                        "found: !!document.getElementById(a.getAttribute('href').slice(1))}))")
    seen["scripts"] = page.eval_on_selector_all("script", "els => els.length")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
    seen["links"] = page.eval_on_selector_all("#cx-notebooks a", "els => els.map(a => a.href)")
    context.close()
    return seen


def _assert_clean(seen: dict) -> None:
    assert seen["console_errors"] == []
    assert seen["page_errors"] == []
    assert seen["aborted"] == [], "a page tried to fetch a remote resource"
    assert seen["failed"] == []
    assert seen["dialogs"] == [], "an injection payload ran"
    assert seen["scripts"] == 0
    assert all(i["complete"] and i["w"] > 0 for i in seen["images"]), seen["images"]
    assert all(t["found"] for t in seen["toc"]), seen["toc"]


def test_notebook_report_renders_offline(browser, pages):
    seen = _visit(browser, pages["good"], "01-drivers.png")
    _assert_clean(seen)
    assert any(i["src"].startswith("data:image/png") for i in seen["images"])
    assert len(seen["toc"]) == 4


def test_failed_report_renders_offline(browser, pages):
    seen = _visit(browser, pages["failed"], "02-segments-failed.png")
    _assert_clean(seen)
    assert len(seen["toc"]) == 2


def test_index_renders_and_links_to_reports(browser, pages):
    seen = _visit(browser, pages["index"], "index.png")
    _assert_clean(seen)
    # relative links resolve to the report files next to index.html
    assert seen["links"] == [pages["good"].as_uri(), pages["failed"].as_uri()]
    assert all(Path(p).exists() for p in (pages["good"], pages["failed"]))


# ---- the real run: every notebook in notebooks/ on a hostile copy of the small demo ---------

@pytest.fixture(scope="module")
def real_run(small_demo, tmp_path_factory) -> dict:
    """The run of tests/test_e2e.py (canary id, injection payloads in segment labels), shared:
    the suite executes it once."""
    from test_e2e import hostile_run

    run = hostile_run(small_demo, tmp_path_factory)
    assert run["code"] == 0, run["manifest"]["failed_reason"]
    return run


def test_real_run_index_renders_offline_and_links_every_report(browser, real_run):
    folder, manifest = real_run["folder"], real_run["manifest"]
    seen = _visit(browser, folder / "index.html", "real-run-index.png")
    _assert_clean(seen)
    expected = [(folder / n["html"]).as_uri() for n in manifest["notebooks"]]
    assert seen["links"] == expected and len(expected) >= 4
    assert all((folder / n["html"]).is_file() for n in manifest["notebooks"])


def test_real_run_reports_render_offline(browser, real_run):
    folder, manifest = real_run["folder"], real_run["manifest"]
    problems, figures = {}, 0
    for n in manifest["notebooks"]:
        seen = _visit(browser, folder / n["html"], f"real-run-{n['name']}.png")
        figures += sum(i["src"].startswith("data:image/png") for i in seen["images"])
        try:
            _assert_clean(seen)
            assert seen["toc"], "no table of contents"
        except AssertionError as exc:
            problems[n["name"]] = str(exc)[:500]
    assert problems == {}
    assert figures >= 4      # the reports' figures are embedded and decode (checked above)


# ---- read as a reviewer would: answers first, laptop-wide tables, no raw warnings or code names

REVIEWER_VIEWPORT = {"width": 1280, "height": 800}
_RAW_WARNING = r"\b\w*(Warning|Error):|Traceback \(most recent call last\)|\.py:\d+"
_CODE_HEADER = r"^[A-Za-z]\w*(_\w+)+$|^\w+\[[^\]]+\]$|x log\(t/"


def _reviewer_view(browser, path: Path, screenshot: str) -> dict:
    """Open ``path`` at a 1280-px laptop viewport with every fold opened; return the answers,
    the widest table, header texts and the page text."""
    context = browser.new_context(viewport=REVIEWER_VIEWPORT, java_script_enabled=True)
    page = context.new_page()
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    page.goto(path.as_uri(), wait_until="load")
    page.eval_on_selector_all("details", "els => els.forEach(d => d.open = true)")
    seen = {
        "answers": page.eval_on_selector_all(
            "#cx-summary .cx-answer", "els => els.map(e => ({id: e.id, q: e.querySelector('dt').innerText, "
            "a: e.querySelector('dd').innerText, href: (e.querySelector('a') || {}).href || null}))"),
        "tables": page.eval_on_selector_all(
            "table", "els => els.map(t => ({w: Math.ceil(t.getBoundingClientRect().width), "
                     "right: Math.ceil(t.getBoundingClientRect().right), text: t.innerText.slice(0, 80)}))"),
        # a table wider than the box it sits in (it would scroll sideways inside the page)
        "scrolling": page.eval_on_selector_all(
            "table", "els => els.map(t => { const c = t.closest('.jp-OutputArea-output, .cx-box, main, body'); "
                     "return {w: t.offsetWidth, box: c.clientWidth, text: t.innerText.slice(0, 80)}; })"
                     ".filter(x => x.w > x.box + 1)"),
        "page_width": page.evaluate("document.documentElement.scrollWidth"),
        "headers": page.eval_on_selector_all("th", "els => els.map(e => e.innerText.trim())"),
        "figures": page.eval_on_selector_all(
            "main img", "els => els.map(i => ({natural: i.naturalWidth, shown: i.getBoundingClientRect().width, "
                        "alt: i.alt}))"),
        "text": page.evaluate("document.body.innerText"),
        "main": page.evaluate("(document.querySelector('main') || document.body).innerText"),
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.eval_on_selector_all("details.cx-evidence-fold", "els => els.forEach(d => d.open = false)")
    page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
    context.close()
    return seen


def test_real_run_index_answers_the_questions_first(browser, real_run):
    import re

    folder = real_run["folder"]
    seen = _reviewer_view(browser, folder / "index.html", "reviewer-index.png")
    answers = {a["id"]: a for a in seen["answers"]}
    assert list(answers) == ["cx-answer-importance", "cx-answer-dgc", "cx-answer-whatif", "cx-answer-who",
                             "cx-answer-checks"]
    for a in answers.values():
        assert a["a"].strip() and "Not answered" not in a["a"], a
    assert re.search(r"ranks first in \d+ % of bootstrap samples", answers["cx-answer-importance"]["a"])
    assert re.match(r"(Yes|No|Can't tell):", answers["cx-answer-dgc"]["a"])
    assert "95 % CI" in answers["cx-answer-whatif"]["a"] and "defections" in answers["cx-answer-whatif"]["a"]
    assert re.search(r"response rate \d+ %", answers["cx-answer-who"]["a"])
    # each answer but the checks links to its notebook's evidence, and the link resolves
    for key in ("importance", "dgc", "whatif", "who"):
        href = answers[f"cx-answer-{key}"]["href"]
        assert href and href.split("#")[0].startswith(folder.as_uri()) and href.endswith("#cx-findings")
        assert Path(href.split("#")[0][len("file://"):]).is_file()
    # the summary comes first: before the notebooks table
    assert seen["text"].index("Answers") < seen["text"].index("Notebooks and their key findings")


def test_real_run_pages_fit_a_laptop_and_read_as_words(browser, real_run):
    import re

    folder, manifest = real_run["folder"], real_run["manifest"]
    problems = {}
    for n in manifest["notebooks"]:
        seen = _reviewer_view(browser, folder / n["html"], f"reviewer-{n['name']}.png")
        wide = [t for t in seen["tables"] if t["right"] > REVIEWER_VIEWPORT["width"]]
        raw = re.findall(_RAW_WARNING, seen["text"])   # the whole page, the Checks section included
        code = [h for h in seen["headers"] if re.search(_CODE_HEADER, h)]
        # figures at twice their shown size (sharp at 2x), each with a description
        blurry = [f for f in seen["figures"] if f["shown"] and f["natural"] < 1.8 * f["shown"]]
        no_alt = [f for f in seen["figures"] if not f["alt"].strip() or f["alt"].startswith("No description")]
        if wide or seen["scrolling"] or raw or code or blurry or no_alt or seen["page_width"] > REVIEWER_VIEWPORT["width"]:
            problems[n["name"]] = {"wide tables": wide[:3], "tables scrolling sideways": seen["scrolling"][:3],
                                   "raw warnings": raw[:3], "code headers": code[:5],
                                   "blurry figures": blurry[:3], "figures without alt": no_alt[:3],
                                   "page width": seen["page_width"]}
    assert problems == {}
