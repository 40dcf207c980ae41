"""The page shell of every report: CSS, Content-Security-Policy, the allow-list sanitiser
(``nh3``; the last line of defence, applied to the whole body of every page) and atomic writes."""

from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path

import nh3


CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")


REPORT_CSS = """
:root { --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg-soft:#f6f8fa;
        --accent:#0b5cad; --warn-bg:#fff8c5; --warn-line:#d4a72c;
        --err-bg:#ffebe9; --err-line:#cf222e; --ok:#1a7f37; }
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 70rem; color: var(--ink);
       font-family: -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif;
       line-height: 1.5; background: #fff; }
h1, h2, h3, h4 { line-height: 1.25; margin: 1.6em 0 .5em; }
h1 { font-size: 1.8rem; } h2 { font-size: 1.4rem; border-bottom: 1px solid var(--line);
     padding-bottom: .25em; } h3 { font-size: 1.15rem; }
a { color: var(--accent); }
code, pre, kbd, samp { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       font-size: .86rem; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left;
         vertical-align: top; }
thead th, table.cx-table th { background: var(--bg-soft); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.dataframe td, .dataframe th { text-align: right; font-variant-numeric: tabular-nums; }
.dataframe tbody th { text-align: left; }
.cx-page-header { border-bottom: 3px solid var(--ink); padding-bottom: .6rem;
                  margin-bottom: 1rem; }
.cx-page-header h1 { margin: 0 0 .3rem; }
.cx-subtitle { color: var(--muted); margin: 0; }
.cx-status { display: inline-block; padding: .05rem .55rem; border-radius: 1rem;
             font-size: .8rem; font-weight: 600; color: #fff; background: var(--muted);
             vertical-align: middle; }
.cx-status-succeeded { background: var(--ok); }
.cx-status-failed { background: var(--err-line); }
.cx-status-interrupted { background: #9a6700; }
.cx-box { border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1.1rem;
          margin: 1rem 0; background: #fff; }
.cx-box > h2 { margin-top: 0; border: 0; font-size: 1.15rem; }
.cx-findings { border-left: 5px solid var(--accent); background: #f3f8ff; }
.cx-findings ul { margin: .3rem 0; padding-left: 1.2rem; }
.cx-findings li { margin: .25rem 0; }
.cx-finding-warning { list-style: none; margin-left: -1.2rem !important;
                      background: var(--warn-bg); border-left: 4px solid var(--warn-line);
                      padding: .25rem .6rem; }
.cx-errorbox { border: 2px solid var(--err-line); background: var(--err-bg); }
.cx-errorbox h2 { color: var(--err-line); }
.cx-interruptbox { border: 2px solid var(--warn-line); background: var(--warn-bg); }
.cx-interruptbox h2 { color: #7d4e00; }
.cx-callout { border-radius: 4px; padding: .45rem .8rem; margin: .5rem 0; }
.cx-callout-title { font-weight: 600; margin: 0 0 .2rem; font-size: .85rem; }
.cx-warning { background: var(--warn-bg); border-left: 4px solid var(--warn-line); }
.cx-error { background: var(--err-bg); border-left: 4px solid var(--err-line); }
.cx-muted { color: var(--muted); background: var(--bg-soft); font-style: italic; }
.cx-metrics { margin-top: .6rem; font-size: .88rem; }
.cx-metrics summary { color: var(--muted); cursor: pointer; }
.cx-toc { background: var(--bg-soft); border-radius: 6px; padding: .6rem 1.1rem;
          margin: 1rem 0; }
.cx-toc h2 { font-size: 1rem; margin: 0 0 .3rem; border: 0; }
.cx-toc ul { margin: 0; padding-left: 0; list-style: none; }
.cx-toc li { margin: .1rem 0; }
.cx-toc li.cx-toc-2 { margin-left: 1rem; } .cx-toc li.cx-toc-3 { margin-left: 2rem; }
.cx-provenance { font-size: .85rem; }
.cx-provenance h2 { font-size: 1rem; margin-bottom: .2rem; }
.cx-provenance h3 { font-size: .85rem; margin: .6rem 0 .2rem; color: var(--muted);
                    text-transform: uppercase; letter-spacing: .03em; }
.cx-provenance table { margin: 0 0 .4rem; font-size: .85rem; }
.cx-provenance th, .cx-provenance td { padding: .15rem .5rem; }
.cx-facts th { font-weight: 600; background: var(--bg-soft); white-space: nowrap; }
.cx-prov-grid { display: grid; grid-template-columns: minmax(15rem, 1fr) minmax(0, 1.6fr);
                gap: 0 2rem; }
@media (max-width: 50rem) { .cx-prov-grid { grid-template-columns: 1fr; } }
.cx-findings-cell ul { margin: 0; padding-left: 1rem; }
.cx-notebooks td:first-child { min-width: 13rem; }
.cx-notebooks td:nth-child(2), .cx-notebooks td:nth-child(3) { white-space: nowrap; }
.cx-nb-file { display: block; color: var(--muted); font-family: ui-monospace, Menlo, Consolas,
              monospace; font-size: .75rem; margin-top: .2rem; }
.cx-run-summary { margin: .35rem 0 0; font-weight: 600; }
#cx-metrics details { margin: .3rem 0; }
.cx-metrics-table { width: auto; max-width: 52rem; }
.cx-metrics-table td:first-child { max-width: 34rem; }
.cx-metric-name { display: block; color: var(--muted); font-size: .72rem; margin-top: .1rem; }
.cx-finding-error { list-style: none; margin-left: -1rem !important; background: var(--err-bg);
                    border-left: 4px solid var(--err-line); padding: .25rem .6rem; }
.cx-kv { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
         margin: .2rem 0 .6rem; }
.cx-kv dt { font-weight: 600; } .cx-kv dd { margin: 0; }
details summary { cursor: pointer; color: var(--accent); }
.cx-notebook { margin-top: 1.5rem; }
.jp-Cell { margin: .4rem 0; }
.jp-OutputArea-output { margin: .3rem 0; overflow-x: auto; }
.jp-RenderedText pre { background: var(--bg-soft); padding: .4rem .6rem; border-radius: 4px; }
.cx-callout pre { background: transparent; padding: 0; }
.jp-InputArea-editor { background: var(--bg-soft); border: 1px solid var(--line);
                       border-radius: 4px; padding: .4rem .6rem; margin: .3rem 0; }
.jp-InputArea-editor::before { content: "code"; display: block; font-size: .7rem;
                               color: var(--muted); text-transform: uppercase; }
tr.cx-flag td { background: var(--warn-bg); font-weight: 600; }
.cx-flag-mark { color: #9a6700; }
.cx-footer { margin-top: 3rem; color: var(--muted); font-size: .8rem;
             border-top: 1px solid var(--line); padding-top: .5rem; }
.ansi-red-fg { color: #cf222e; } .ansi-green-fg { color: #1a7f37; }
.ansi-yellow-fg { color: #9a6700; } .ansi-blue-fg { color: #0969da; }
.ansi-cyan-fg { color: #1b7c83; } .ansi-magenta-fg { color: #8250df; }
.ansi-bold { font-weight: 700; }
.cx-answers { margin: .2rem 0; }
.cx-answer { margin: .55rem 0; }
.cx-answer dt { font-weight: 600; }
.cx-answer dd { margin: .1rem 0 0 0; }
.cx-evidence { font-size: .85rem; white-space: nowrap; }
details.cx-evidence-fold { margin: .4rem 0 .8rem; border-left: 3px solid var(--line); padding-left: .7rem; }
details.cx-evidence-fold > summary { font-size: .9rem; }
.cx-checks li { margin: .3rem 0; } .cx-checks details summary { font-size: .8rem; color: var(--muted); }
.cx-note-technical { color: var(--muted); }
.cx-muted-text { color: var(--muted); font-size: .85rem; }
.jp-OutputArea-output table { max-width: 100%; }
th { white-space: normal; }
@media print { details { display: block; } body { max-width: none; } }
"""


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


_TAGS = set(nh3.ALLOWED_TAGS) | {"section", "main", "tfoot", "caption", "figure"}


_ATTRIBUTES: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}


_ATTRIBUTES["*"] = {"class", "id", "title", "style", "data-mime-type", "lang", "dir", "role",
                   "aria-label"}


_ATTRIBUTES.setdefault("details", set()).add("open")


_ATTRIBUTES.setdefault("th", set()).update({"colspan", "rowspan", "scope"})


_ATTRIBUTES.setdefault("td", set()).update({"colspan", "rowspan"})


_ATTRIBUTES.setdefault("time", set()).add("datetime")


# CSS properties that can neither fetch anything nor overlay the page
_STYLE_PROPERTIES = {
    "color", "background-color", "font-weight", "font-style", "font-size", "font-family",
    "text-align", "vertical-align", "text-decoration", "white-space", "width", "min-width",
    "max-width", "height", "min-height", "max-height", "padding", "padding-left",
    "padding-right", "padding-top", "padding-bottom", "margin", "margin-left",
    "margin-right", "margin-top", "margin-bottom", "border", "border-left", "border-right",
    "border-top", "border-bottom", "border-collapse", "border-color", "border-width",
    "border-style", "display", "line-height", "overflow-x", "word-break",
}


_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$",
                         re.I)


_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "src":
        return value if _DATA_IMAGE.match(value) else None
    if attr in ("href", "cite"):
        m = _SCHEME.match(value)
        if value.strip().startswith("//"):
            return None  # scheme-relative: a remote URL in disguise
        if m and m.group(1).lower() not in ("http", "https", "mailto"):
            return None  # javascript:, data:, vbscript:, file: ...
        return value
    if attr == "style" and re.search(r"url\s*\(|expression\s*\(|@import|\\", value, re.I):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    attribute_filter=_attribute_filter,
    url_schemes={"http", "https", "mailto", "data"},
    strip_comments=True,
    link_rel="noopener noreferrer",
    filter_style_properties=_STYLE_PROPERTIES,
)


def sanitize_html(fragment: str) -> str:
    """Allow-list sanitise an HTML body fragment (see module docstring).

    Removes ``<script>``/``<style>`` elements with their content, every attribute not on
    the allow-list (all ``on*=`` handlers), ``javascript:``/``data:`` links, images other
    than ``data:image/...`` URIs and CSS that could fetch; keeps tables, images, headings,
    ids and classes. Parsed with an HTML5 parser (html5ever), as a browser would.
    """
    return _CLEANER.clean(fragment)


def render_page(title: str, body: str) -> str:
    """A complete, self-contained HTML document around ``body`` (sanitised here)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{REPORT_CSS}\n{_pygments_css()}</style>\n</head>\n<body>\n"
        f"{sanitize_html(body)}\n</body>\n</html>\n"
    )


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
