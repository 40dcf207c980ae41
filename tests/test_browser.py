"""The reports in a real browser (Chromium via Playwright), offline.

Every request that is not ``file://`` is aborted and counted; the pages must render with no
console error, no failed or blocked request, every image decoded, every table-of-contents
link pointing at an element, and no ``alert`` dialog from the injection payloads. A
full-page screenshot of each page goes to ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_report_html import example_manifest, export_reports

from cxlab.report.index import write_index

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: `make test` installs it via apt "
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
