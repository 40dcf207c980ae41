"""Self-contained, script-free HTML reports of executed notebooks.

One notebook -> one HTML file that a reviewer opens offline: no ``<script>``, no external
stylesheet, font or image, figures embedded as data URIs. The page reads top-down as

1. an error box when the notebook failed (exception, message, which cell), or, when the run's
   stop signal (SIGINT/SIGTERM) cut it short, a box saying it was interrupted and by which signal,
2. the title and a provenance header (study, snapshot date, run, status, parameters with
   secrets masked, data fingerprints, versions, git commit),
3. "Key findings": every finding recorded with :func:`cxlab.report.record_finding`, then the
   outputs of cells tagged ``findings``,
4. a table of contents built from the markdown headings,
5. the notebook: markdown and outputs, code hidden unless the cell is tagged ``show-code``;
   stderr (warnings) shown as yellow call-outs, errors as red ones.

Safety is layered: every string cxlab inserts is escaped with :func:`html.escape`; the
nbconvert template emits no script; the whole body then goes through an allow-list
sanitiser (``nh3``, an HTML5 parser: scripts, ``on*=`` handlers, ``javascript:`` URLs and
remote images are removed, tables/images/headings kept); and the page carries a
Content-Security-Policy that forbids scripts and every fetch except ``data:`` images.
"""

from __future__ import annotations

import copy
import html
import json
import math
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import nbformat
import nh3
from bs4 import BeautifulSoup

from cxlab.report.record import FINDING_MIME, METRIC_MIME, read_findings, read_metrics

__all__ = [
    "REPORT_CSS",
    "export_html",
    "looks_like_identifier",
    "render_page",
    "sanitize_html",
    "tidy_stderr",
    "write_atomic",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"

SHOW_CODE_TAG = "show-code"
FINDINGS_TAG = "findings"
REMOVE_TAG = "remove"
NEVER_SHOW_CODE_TAGS = frozenset({"parameters", "injected-parameters"})
PAPERMILL_MARKER_TAG = "papermill-error-cell-tag"

MASK = "\u2022\u2022\u2022"  # •••

# ---------------------------------------------------------------------------------------
# page shell: CSS, CSP
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# sanitiser (last line of defence, applied to the whole body of every page)
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# formatting helpers shared with the run index
# ---------------------------------------------------------------------------------------

def esc(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def format_duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(s):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _decimals_for(x: float, significant: int = 3) -> int:
    if x == 0 or not math.isfinite(x):
        return 2
    return max(0, min(6, significant - 1 - math.floor(math.log10(abs(x)))))


def format_number(x: Any, decimals: int | None = None) -> str:
    """Three significant digits (thousands separated), or ``decimals`` when given."""
    if x is None:
        return "–"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if not math.isfinite(v):
        return "–" if math.isnan(v) else ("∞" if v > 0 else "−∞")
    d = _decimals_for(v) if decimals is None else decimals
    return f"{v:,.{d}f}".replace("-", "−")


def format_estimate_ci(estimate: Any, lower: Any, upper: Any) -> tuple[str, str]:
    """(estimate, "lower – upper") rounded to the same decimals (3 significant digits of
    the estimate), as a reader compares them."""
    try:
        d = _decimals_for(float(estimate))
    except (TypeError, ValueError):
        d = None
    ci = "–" if lower is None and upper is None else \
        f"{format_number(lower, d)} – {format_number(upper, d)}"
    return format_number(estimate, d), ci


def _param_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def provenance_html(header: dict, *, secret_keys: Iterable[str] = ()) -> str:
    """The provenance block: study, run, status, parameters (secrets masked), data
    fingerprints, cxlab version, git commit, package versions (collapsed)."""
    secret = set(secret_keys)
    versions = dict(header.get("versions") or {})
    try:
        from cxlab import __version__ as cx_version
    except ImportError:  # pragma: no cover
        cx_version = None
    cxlab_version = versions.get("cxlab") or cx_version
    commit = header.get("git_commit")
    rows = [
        ("Study", esc(header.get("study_name") or "–")),
        ("Snapshot date", esc(header.get("snapshot_date") or "–")),
        ("Run", esc(header.get("run_id") or "–")),
        *([("Notebook", esc(header["notebook"]))] if header.get("notebook") else []),
        ("Status", status_badge(header.get("status"))),
        ("Started", esc(header.get("started_at") or "–")),
        ("Duration", esc(format_duration(header.get("duration_s")))),
        ("cxlab version", esc(cxlab_version or "–")),
        ("Git commit", f'<code title="{esc(commit)}">{esc(str(commit)[:12])}</code>'
         if commit else "–"),
    ]
    out = ['<section class="cx-box cx-provenance" id="cx-provenance">',
           "<h2>Provenance</h2>", '<div class="cx-prov-grid"><div>',
           '<h3>Run</h3><table class="cx-table cx-facts"><tbody>']
    out += [f"<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>" for k, v in rows]
    out.append("</tbody></table></div><div>")

    params = header.get("parameters") or {}
    out.append("<h3>Parameters</h3>")
    if params:
        out.append('<table class="cx-table"><thead><tr><th>parameter</th><th>value</th>'
                   "</tr></thead><tbody>")
        for k in sorted(params, key=str):
            v = MASK if k in secret else _param_value(params[k])
            out.append(f"<tr><td><code>{esc(k)}</code></td><td>{esc(v)}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p>(defaults of the notebook)</p>")

    data = header.get("data") or {}
    out.append("<h3>Data</h3>")
    if data:
        out.append('<table class="cx-table"><thead><tr><th>role</th><th>file</th>'
                   '<th class="num">rows</th><th>sha256 (first 12)</th></tr></thead><tbody>')
        for role in sorted(data, key=str):
            d = data[role] or {}
            name = PurePosixPath(str(d.get("path", "")).replace("\\", "/")).name or "–"
            rows_n = d.get("rows")
            countable = isinstance(rows_n, (int, float)) and not isinstance(rows_n, bool) \
                and math.isfinite(rows_n)
            rows_s = f"{int(rows_n):,}" if countable else esc("–" if rows_n is None else rows_n)
            sha = str(d.get("sha256") or "")[:12] or "–"
            out.append(f"<tr><td>{esc(role)}</td><td>{esc(name)}</td>"
                       f'<td class="num">{rows_s}</td><td><code>{esc(sha)}</code></td></tr>')
        out.append("</tbody></table>")
    else:
        out.append("<p>(no data files recorded)</p>")

    if versions:
        out.append(f"<details><summary>Package versions ({len(versions)})</summary>"
                   '<table class="cx-table"><tbody>')
        for k in sorted(versions, key=str):
            out.append(f"<tr><td>{esc(k)}</td><td><code>{esc(versions[k])}</code></td></tr>")
        out.append("</tbody></table></details>")
    out.append("</div></div></section>")
    return "\n".join(out)


def status_badge(status: Any) -> str:
    s = str(status or "unknown")
    cls = re.sub(r"[^a-z]", "", s.lower()) or "unknown"
    return f'<span class="cx-status cx-status-{cls}">{esc(s)}</span>'


def findings_html(findings: list[dict], extra: str = "") -> str:
    """The "Key findings" box: every recorded finding, warnings as call-outs."""
    out = ['<section class="cx-box cx-findings" id="cx-findings">', "<h2>Key findings</h2>"]
    if findings:
        out.append("<ul>")
        for f in findings:
            text = esc(f.get("text", ""))
            if f.get("level") == "warning":
                out.append(f'<li class="cx-finding-warning"><strong>Warning:</strong> {text}</li>')
            else:
                out.append(f"<li>{text}</li>")
        out.append("</ul>")
    elif not extra:
        out.append("<p>No findings were recorded by this notebook.</p>")
    out.append(extra)
    out.append("</section>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# notebook preparation
# ---------------------------------------------------------------------------------------

def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def _secret_values(header: dict) -> list[str]:
    params = header.get("parameters") or {}
    values = []
    for k in header.get("secret_keys") or ():
        v = params.get(k)
        if v is None:
            continue
        s = _param_value(v)
        if len(s) >= 4:  # masking 1-3 characters everywhere would shred the report
            values.append(s)
    # the runner passes the real values (its parameters are already masked)
    values += [str(v) for v in header.get("secret_values") or () if len(str(v)) >= 4]
    return sorted(set(values), key=len, reverse=True)


def _scrub(value, secrets: list[str]):
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, MASK)
        return value
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


_TEXT_MIMES_PREFIX = ("text/", "application/json", "application/javascript")


def _scrub_output(out, secrets: list[str]) -> None:
    if not secrets:
        return
    if "text" in out:
        out["text"] = _scrub(out["text"], secrets)
    if "evalue" in out:
        out["evalue"] = _scrub(out["evalue"], secrets)
    if "traceback" in out:
        out["traceback"] = _scrub(out["traceback"], secrets)
    for mime, val in list(out.get("data", {}).items()):
        if mime.startswith(_TEXT_MIMES_PREFIX) or mime == "image/svg+xml":
            out["data"][mime] = _scrub(val, secrets)


def first_error(nb) -> dict | None:
    """The first error output: {ename, evalue, cell (1-based among all cells), code_cell
    (1-based among code cells), execution_count, cell_id}; None if the notebook has none.

    Cells are numbered as in the source notebook (papermill's inserted cells skipped)."""
    code_no = i = 0
    for cell in nb.cells:
        # number cells as in the notebook the researcher edits: papermill's markers and
        # its injected-parameters cell are not there
        if _tags(cell) & {PAPERMILL_MARKER_TAG, "injected-parameters"}:
            continue
        i += 1
        if cell.get("cell_type") != "code":
            continue
        code_no += 1
        if "raises-exception" in _tags(cell):
            continue  # an error the author expected (papermill/nbclient carry on after it)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return {"ename": out.get("ename", "Error"), "evalue": out.get("evalue", ""),
                        "cell": i, "code_cell": code_no,
                        "execution_count": cell.get("execution_count"),
                        "cell_id": cell.get("id")}
    return None


def metrics_html(metrics: dict[str, dict]) -> str:
    """The recorded headline figures as one compact, collapsed table."""
    if not metrics:
        return ""
    from cxlab.report.index import metric_label

    rows = []
    for name, m in metrics.items():
        est, ci = format_estimate_ci(m.get("estimate"), m.get("lower"), m.get("upper"))
        unit = f" {esc(m['unit'])}" if m.get("unit") else ""
        rows.append(f'<tr><td title="{esc(name)}">{esc(metric_label(name, m, metrics))}'
                    f'<code class="cx-metric-name">{esc(name)}</code></td>'
                    f'<td class="num">{est}{unit}</td><td class="num">{ci}</td></tr>')
    return (f'<details class="cx-metrics"><summary>Headline figures recorded for the run '
            f'({len(metrics)})</summary><table class="cx-metrics-table"><thead><tr><th>figure</th>'
            f'<th class="num">estimate</th><th class="num">95 % CI</th></tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></details>")


_WARNING_HEADER = re.compile(r"^(?:\S.*?\.py|<[^>]+>):\d+: (\w*Warning): (.*)$")


def tidy_stderr(text: str) -> str:
    """Python's ``path.py:12: UserWarning: message`` + echoed source line -> ``UserWarning:
    message``: a reviewer needs the warning, not the kernel's temp file or the code."""
    out, after_header = [], False
    for line in text.splitlines(keepends=True):
        if after_header and line.startswith("  "):
            after_header = False
            continue  # the source line Python echoes under a warning
        m = _WARNING_HEADER.match(line.rstrip("\r\n"))
        after_header = m is not None
        out.append(f"{m.group(1)}: {m.group(2)}\n" if m else line)
    return "".join(out)


_WARNING_LINE = re.compile(r"^(\w*Warning): (.*)$")
_TECHNICAL = ("FutureWarning", "DeprecationWarning", "PendingDeprecationWarning", "SyntaxWarning")


def _words(name: str) -> str:
    from cxlab.narrative import human_label

    return human_label(name)


#: cxlab diagnostics whose text names code (a parameter, a column) -> the same note in words
_PLAIN_REWRITES = (
    (r"Splitting at all (\d+) event times would create (\d+) rows \(> max_rows=\d+\); "
     r"the time interaction uses (\d+) event-time quantiles instead\.",
     lambda m: (f"The effects that change with tenure were estimated with tenure cut at {int(m.group(3)):,} points "
                f"(quantiles of the defection times) rather than at each of the {int(m.group(1)):,} defection times, "
                f"which would have needed {int(m.group(2)):,} data rows: a standard approximation that keeps the "
                "model to a workable size.")),
    (r"(\d+) of (\d+) respondents have no '([^']+)' or '([^']+)' answer and are 'unclassified'\.",
     lambda m: (f"{int(m.group(1)):,} of {int(m.group(2)):,} respondents have no {_words(m.group(3))} or "
                f"{_words(m.group(4))} answer, so they are left out of the 2 × 2 grid.")),
)


def plain_note(text: str) -> dict:
    """A warning or stderr text in plain language: {text, technical, detail}.

    ``UserWarning: 1 of 200 bootstrap fits failed`` -> "1 of 200 bootstrap fits failed." (the
    analysis's own diagnostics); library deprecation notices are marked technical (they do not
    change the results); the raw text is kept as ``detail``."""
    raw = text.strip()
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    m = _WARNING_LINE.match(lines[0]) if lines else None
    if m:
        kind, msg = m.group(1), " ".join([m.group(2), *lines[1:]]).strip()
    else:
        kind, msg = "", " ".join(lines)
    # a cxlab function's "func_name: " prefix goes; a one-word prefix is kept, as it names the variable the
    # note is about ("segment: 1 level with fewer than 10 customers pooled into 'other'")
    msg = re.sub(r"^[\w.]+: ", "", msg) if re.match(r"^[a-z]\w*[_.][\w.]*: ", msg) else msg
    if not re.match(r"^[\w.]+: ", msg):   # a kept variable name stays as the study spells it
        msg = msg[:1].upper() + msg[1:]
    if msg and msg[-1] not in ".!?":
        msg += "."
    for pattern, words in _PLAIN_REWRITES:   # cxlab's own diagnostics that name code: said in words
        hit = re.fullmatch(pattern, msg)
        if hit:
            msg = words(hit)
            break
    technical = kind in _TECHNICAL
    if technical:
        msg = f"A software library reported a coming change (this does not affect the results): {msg}"
    return {"text": msg, "technical": technical, "detail": raw}


def _split_warnings(text: str) -> list[str]:
    """One chunk per warning or message: every line that is not indented starts a new one;
    indented lines (continuations) join the chunk before them."""
    chunks: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if _WARNING_LINE.match(line) or not chunks or not line[:1].isspace():
            chunks.append([line])
        else:
            chunks[-1].append(line)
    return ["\n".join(c) for c in chunks]


def checks_html(notes: list[dict]) -> str:
    """The page's one Checks section: every warning the notebook raised, in plain words, and the
    section it came from (no raw warning text: it stays in the executed .ipynb for analysts).
    Identical notes are shown once."""
    out = ['<section class="cx-box cx-checks" id="cx-checks"><h2>Checks and notes</h2>']
    seen: dict[str, dict] = {}
    for n in notes:
        seen.setdefault(n["text"], {**n, "sections": []})
        if n.get("section") and n["section"] not in seen[n["text"]]["sections"]:
            seen[n["text"]]["sections"].append(n["section"])
    if not seen:
        out.append("<p>No warning was raised while this notebook ran.</p></section>")
        return "".join(out)
    main = [n for n in seen.values() if not n["technical"]]
    tech = [n for n in seen.values() if n["technical"]]
    out.append(f"<p>{len(main)} note{'s' if len(main) != 1 else ''} from the analysis"
               + (f" and {len(tech)} technical notice{'s' if len(tech) != 1 else ''}" if tech else "")
               + " raised while the notebook ran.</p><ul>")
    for n in main + tech:
        where = f' <span class="cx-muted-text">(in: {esc(", ".join(n["sections"]))})</span>' if n["sections"] else ""
        cls = ' class="cx-note-technical"' if n["technical"] else ""
        out.append(f"<li{cls}>{esc(n['text'])}{where}</li>")   # the raw text stays in the .ipynb
    out.append("</ul></section>")
    return "".join(out)


def _prepare(nb, secrets: list[str], notes: list | None = None):
    """Return (body_cells, findings_cells) ready for nbconvert. Warnings and other stderr
    output are taken out of the cells and appended to ``notes`` (with the section they came
    from): a reviewer reads them, in plain words, in the page's Checks section."""
    body, top = [], []
    section = None
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            heads = re.findall(r"^#{1,3}\s+(.+)$", "".join(cell.get("source", "")), re.M)
            if heads:
                section = heads[-1].strip()
        tags = _tags(cell)
        if PAPERMILL_MARKER_TAG in tags:
            continue  # papermill's red "exception here" markers: our error box replaces them
        if REMOVE_TAG in tags:   # a hidden cell (setup): not shown, but its warnings are checks too
            if notes is not None:
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "stream" and out.get("name") == "stderr":
                        text = out.get("text", "")
                        text = _scrub(tidy_stderr("".join(text) if isinstance(text, list) else text), secrets)
                        notes.extend(dict(plain_note(chunk), section=section) for chunk in _split_warnings(text))
            continue
        cell["source"] = _scrub(cell.get("source", ""), secrets)
        if cell.get("cell_type") == "code":
            show = SHOW_CODE_TAG in tags and not (tags & NEVER_SHOW_CODE_TAGS)
            if not show:
                cell.setdefault("metadata", {})["transient"] = {"remove_source": True}
            outputs = []
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if FINDING_MIME in data:
                    continue  # shown in the Key findings box
                if METRIC_MIME in data:
                    continue  # listed under "Headline figures" in the Key findings box
                _scrub_output(out, secrets)
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    text = out.get("text", "")
                    out["text"] = tidy_stderr("".join(text) if isinstance(text, list) else text)
                    if notes is not None:
                        for chunk in _split_warnings(out["text"]):
                            notes.append(dict(plain_note(chunk), section=section))
                        continue
                outputs.append(out)
            cell["outputs"] = outputs
            if not show and not outputs:
                continue  # nothing a reviewer could see
        elif cell.get("cell_type") == "raw":
            continue
        (top if FINDINGS_TAG in tags else body).append(cell)
    return body, top


def _exporter():
    from nbconvert import HTMLExporter

    ex = HTMLExporter(template_name="cxlab", extra_template_basedirs=[str(TEMPLATES_DIR)])
    ex.exclude_input_prompt = True
    ex.exclude_output_prompt = True
    ex.embed_images = True  # markdown images given as local files become data URIs
    ex.sanitize_html = False  # the whole page is sanitised once, by nh3, afterwards
    ex.mathjax_url = ""
    ex.require_js_url = ""
    ex.jupyter_widgets_base_url = ""
    ex.widget_renderer_url = ""
    return ex


def _render_cells(nb, cells, resources_path: str | None) -> str:
    if not cells:
        return ""
    sub = nbformat.v4.new_notebook(metadata={k: v for k, v in nb.metadata.items()
                                             if k != "widgets"})
    sub.cells = cells
    resources = {"metadata": {"path": resources_path}} if resources_path else {}
    body, _ = _exporter().from_notebook_node(sub, resources=resources)
    return body


def _slug(text: str) -> str:
    s = re.sub(r"[^\w]+", "-", text.lower()).strip("-_")
    return s[:60] or "section"


_ID_TOKENS = {"id", "ids", "uuid", "guid", "cust", "email", "mail", "phone", "msisdn", "iban",
              "ssn"}


def looks_like_identifier(name: str) -> bool:
    """True for names like ``customer_id``, ``cust``, ``CustomerID``, ``client-uuid``."""
    name = name.strip()
    if re.search(r"[a-z](Id|ID)$", name):
        return True
    tokens = re.split(r"[^a-z0-9]+", name.lower())
    return any(t in _ID_TOKENS for t in tokens) or bool(
        re.search(r"(customer|client|cust|account|member|respondent|user|person)_?(id|no|number)$",
                  name.lower()))


def _index_names(table) -> list[str]:
    """Index names of a pandas table: the header row whose first cell(s) are filled and the
    rest empty (``DataFrame.to_html``), or cells classed ``index_name`` (``Styler``)."""
    names = [th.get_text(" ", strip=True) for th in table.select("th.index_name")]
    thead = table.find("thead")
    for tr in thead.find_all("tr") if thead else []:
        cells = [c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])]
        filled = [c for c in cells if c]
        if len(cells) > 1 and filled and not cells[-1] and cells[: len(filled)] == filled:
            names += filled
    return [n for n in names if n]


def _withhold_identifier_tables(soup: BeautifulSoup) -> None:
    """Replace a table indexed by something named like an identifier with a note.

    cxlab reports show aggregates only; a table indexed by ``customer_id`` lists people.
    The HTML layer cannot recognise every identifier, so this is a guard, not a filter:
    notebooks stay responsible for what they display."""
    for table in soup.find_all("table"):
        ids = [n for n in _index_names(table) if looks_like_identifier(n)]
        if ids:
            note = soup.new_tag("div", attrs={"class": "cx-callout cx-warning"})
            note.string = (f"Table withheld: its index ({', '.join(ids)}) looks like a customer "
                           "identifier, and reports show aggregates only. Aggregate it (or "
                           "reset the index) in the notebook.")
            table.replace_with(note)


_CODE_NAME = re.compile(r"^[A-Za-z][\w.]*(_[\w.]+|\[[^\]]+\]|=[^=\s][^=]*)$")


def _humanise_headers(soup: BeautifulSoup) -> None:
    """Column headers in words (``p_holm`` -> "p-value (Holm-adjusted)", ``channel[online]`` ->
    "channel: online"), from the one label map :data:`cxlab.narrative.LABELS`; also the terms in
    a table's first column when they are code names."""
    from cxlab.narrative import LABELS, human_label

    for th in soup.select("thead th, thead td"):
        if th.find(True):
            continue
        text = th.get_text(strip=True)
        if text and (text in LABELS or _CODE_NAME.match(text)) and text not in ("n",):
            th.string = human_label(text)
    for td in soup.select("tbody td, tbody th"):
        if td.find(True):
            continue
        text = td.get_text(strip=True)
        if text and ((_CODE_NAME.match(text) and ("[" in text or "=" in text or text in LABELS))
                     or text in ("vif", "GLOBAL", "dgc") or " x log(t/" in text
                     or re.match(r"^(auc|defection)_\d+m", text)):
            td.string = human_label(text)


def _figure_alt(img, heading: str | None) -> None:
    alt = (img.get("alt") or "").strip()
    if not alt or alt.lower() in ("figure", "no description has been provided for this image"):
        img["alt"] = f"Figure: {heading}" if heading else "Figure from the analysis"


def fold_evidence(body: str) -> str:
    """Fold the tables and figures of each section into ``<details>`` so a page reads in a few
    screens (headings, explanations and sentences stay visible; the evidence is one click away).
    A section holding the failed cell stays open. Figures without a description get one from
    their section's heading (alt text)."""
    soup = BeautifulSoup(body, "html.parser")
    cells = [c for c in soup.find_all("div", class_="jp-Cell") if c.find_parent("div", class_="jp-Cell") is None]
    heading = None
    run: list = []

    def flush():
        if not run:
            return
        n_tables = sum(len(c.find_all("table")) for c in run)
        n_figs = sum(len(c.find_all("img")) for c in run)
        what = ", ".join(x for x in (f"{n_tables} table{'s' if n_tables != 1 else ''}" if n_tables else "",
                                     f"{n_figs} figure{'s' if n_figs != 1 else ''}" if n_figs else "") if x)
        det = soup.new_tag("details", attrs={"class": "cx-evidence-fold"})
        if any(c.find(id="cx-failed-cell") or c.select_one(".cx-error") for c in run):
            det["open"] = ""
        summ = soup.new_tag("summary")
        summ.string = f"Show the evidence ({what})" + (f" — {heading}" if heading else "")
        det.append(summ)
        run[0].insert_before(det)
        for c in run:
            det.append(c.extract())
        run.clear()

    for c in cells:
        classes = c.get("class") or []
        if "jp-MarkdownCell" in classes:
            flush()
            h = c.find(["h1", "h2", "h3"])
            if h is not None:
                heading = " ".join(h.get_text(" ", strip=True).split())
            continue
        for img in c.find_all("img"):
            _figure_alt(img, heading)
        if c.find("table") is not None or c.find("img") is not None:
            run.append(c)
        else:
            flush()
    flush()
    return str(soup)


def _tidy(soup: BeautifulSoup) -> None:
    """Drop heading pilcrows and scripts; replace images that are not embedded (a file or
    remote URL the offline page could not show) with a visible note; withhold tables
    indexed by identifiers."""
    for el in soup.select("a.anchor-link, script, style"):
        el.decompose()
    _withhold_identifier_tables(soup)
    _humanise_headers(soup)
    for img in soup.find_all("img"):
        if not _DATA_IMAGE.match(img.get("src", "") or ""):
            note = soup.new_tag("span", attrs={"class": "cx-muted"})
            note.string = "[image not embedded in the report]"
            img.replace_with(note)


def _tidy_html(fragment: str) -> str:
    if not fragment:
        return fragment
    soup = BeautifulSoup(fragment, "html.parser")
    _tidy(soup)
    return str(soup)


def _heading_text(h) -> str:
    return " ".join(h.get_text(" ", strip=True).split())


def _headings_and_toc(body: str, title: str | None
                      ) -> tuple[str, list[tuple[int, str, str]], str | None]:
    """Give every markdown heading (h1-h3) a unique id.

    The notebook's leading ``# Title`` becomes the page title (and is not repeated below
    it) unless ``title`` is given and differs. Returns (html, [(level, id, text)], title).
    """
    soup = BeautifulSoup(body, "html.parser")
    _tidy(soup)
    headings = [h for cell in soup.select(".jp-MarkdownCell")
                for h in cell.find_all(["h1", "h2", "h3"]) if _heading_text(h)]
    if headings and headings[0].name == "h1" and title in (None, _heading_text(headings[0])):
        title = _heading_text(headings[0])
        headings.pop(0).decompose()
    used: set[str] = set()
    toc = []
    for h in headings:
        text = _heading_text(h)
        base = "sec-" + _slug(text)
        hid, n = base, 2
        while hid in used:
            hid, n = f"{base}-{n}", n + 1
        used.add(hid)
        h["id"] = hid
        toc.append((int(h.name[1]), hid, text))
    return str(soup), toc, title


def _toc_html(toc: list[tuple[int, str, str]]) -> str:
    if not toc:
        return ""
    top = min(level for level, _, _ in toc)
    items = "\n".join(
        f'<li class="cx-toc-{level - top + 1}"><a href="#{esc(hid)}">{esc(text)}</a></li>'
        for level, hid, text in toc)
    return (f'<nav class="cx-toc" id="cx-toc" aria-label="Contents"><h2>Contents</h2>'
            f"<ul>\n{items}\n</ul></nav>")


def _error_box(err: dict | None, status: Any, reported: dict | None = None) -> str:
    """``err``: the first error output of the notebook; ``reported``: what the runner saw
    (``header["error"]``: ename, evalue, cell, reason), used when the notebook holds no
    error output (timeout, dead kernel)."""
    if err is None:
        reported = reported or {}
        what = (f"<p><strong>{esc(reported.get('ename') or 'Error')}</strong>: "
                f"{esc(reported.get('evalue') or '')}</p>" if reported.get("ename") or
                reported.get("evalue") else "")
        reason = esc(reported.get("reason") or "the kernel may have died or timed out")
        return ('<section class="cx-box cx-errorbox" id="cx-error" role="alert">'
                f"<h2>This notebook failed</h2>{what}<p>Status: {esc(status)}. No cell "
                f"recorded an error output ({reason}); the report below is partial.</p>"
                "</section>")
    where = f"code cell {err['code_cell']} (cell {err['cell']} of the notebook"
    if err.get("execution_count") is not None:
        where += f", In [{err['execution_count']}]"
    where += ")"
    link = (f' <a href="#cx-failed-cell">Go to the failed cell</a>.'
            if err.get("cell_id") else "")
    return ('<section class="cx-box cx-errorbox" id="cx-error" role="alert">'
            "<h2>This notebook failed</h2>"
            f"<p><strong>{esc(err['ename'])}</strong>: {esc(err['evalue'])}</p>"
            f"<p>Raised in {esc(where)}.{link} Cells after it did not run; the report "
            "below is partial.</p></section>")


def _interrupted_box(err: dict | None, reported: dict | None) -> str:
    """The header box of a notebook the run's stop signal cut short (status "interrupted"): says
    so, by which signal, and that the notebook itself did not fail."""
    reported = reported or {}
    why = str(reported.get("evalue") or (err or {}).get("evalue") or "")
    sig = re.search(r"\bSIG[A-Z]+\b", why)
    by = f"by {sig.group(0)}" if sig else "by a signal"
    link = ""
    if why.startswith("not started"):
        what = (f"The run was stopped {by} before this notebook started, so none of its cells ran. "
                "This is not a failure of the notebook.")
    else:
        what = (f"The run was stopped {by} while this notebook was running; this is not a failure of the "
                "notebook. Cells after that point did not run, so the report below is partial.")
        if err and err.get("cell_id"):
            link = ' <a href="#cx-failed-cell">Go to where it stopped</a>.'
    return ('<section class="cx-box cx-interruptbox" id="cx-error" role="status">'
            f"<h2>This notebook was interrupted</h2><p>{esc(what)}{link}</p>"
            "<p>Run it again for the full report.</p></section>")


def _mark_failed_cell(body: str, err: dict | None) -> str:
    if not err or not err.get("cell_id"):
        return body
    soup = BeautifulSoup(body, "html.parser")
    cell = soup.find(id=f"cell-id={err['cell_id']}")
    if cell is not None:
        marker = soup.new_tag("span", id="cx-failed-cell")
        cell.insert(0, marker)
    return str(soup)


def export_html(nb, out_path, header: dict, *, title: str | None = None) -> Path:
    """Export an executed notebook to one self-contained, script-free HTML file.

    ``nb``: executed ``nbformat.NotebookNode`` (may contain an error output). ``header``:
    provenance (``study_name``, ``snapshot_date``, ``run_id``, ``notebook``, ``status``,
    ``parameters``, ``secret_keys``, ``data``, ``versions``, ``git_commit``, ``started_at``,
    ``duration_s``; optional: ``error`` {ename, evalue, cell, reason} as the runner saw it,
    ``notebook_dir`` to embed markdown images given as relative paths); values of parameters
    named in ``secret_keys`` are shown as "•••" and scrubbed from the notebook's text
    outputs. ``title`` defaults to the notebook's leading heading. The file is written
    atomically; returns its path.
    """
    nb = nbformat.from_dict(copy.deepcopy(nb))
    header = dict(header or {})
    secrets = _secret_values(header)
    err = first_error(nb)
    if err is not None:
        err = {k: _scrub(v, secrets) if isinstance(v, str) else v for k, v in err.items()}
    findings = [{**f, "text": _scrub(str(f.get("text", "")), secrets)} for f in read_findings(nb)]
    interrupted = str(header.get("status", "")).lower() == "interrupted"   # the run's stop signal, not a failure
    failed = not interrupted and (err is not None or str(header.get("status", "")).lower() == "failed")
    metrics = read_metrics(nb)

    notes: list[dict] = []
    body_cells, top_cells = _prepare(nb, secrets, notes)
    # markdown images given as relative files are embedded from the notebook's folder
    path = str(header.get("notebook_dir") or Path(out_path).parent)
    body_html = _mark_failed_cell(_render_cells(nb, body_cells, path), err)
    body_html, toc, page_title = _headings_and_toc(body_html, title)
    body_html = fold_evidence(body_html)
    top_html = _tidy_html(_render_cells(nb, top_cells, path))

    nb_name = header.get("notebook") or Path(out_path).stem
    page_title = page_title or str(nb_name)
    subtitle = " · ".join(esc(x) for x in (header.get("study_name"),
                                           f"snapshot {header['snapshot_date']}"
                                           if header.get("snapshot_date") else None,
                                           f"run {header['run_id']}" if header.get("run_id")
                                           else None, nb_name) if x)
    parts = []
    if interrupted:
        parts.append(_interrupted_box(err, header.get("error")))
    elif failed:
        parts.append(_error_box(err, header.get("status", "failed"), header.get("error")))
    badge = "interrupted" if interrupted else "failed" if err else header.get("status")
    parts.append(f'<header class="cx-page-header"><h1>{esc(page_title)} '
                 f'{status_badge(badge)}</h1>'
                 f'<p class="cx-subtitle">{subtitle}</p></header>')
    parts.append(findings_html(findings, top_html + metrics_html(metrics)))
    parts.append(_toc_html(toc))
    parts.append(checks_html(notes))
    parts.append(provenance_html(header, secret_keys=header.get("secret_keys") or ()))
    parts.append(f'<main class="cx-notebook" id="cx-notebook">\n{body_html}\n</main>')
    parts.append('<footer class="cx-footer">Generated by cxlab from an executed notebook. '
                 "Code is hidden unless a cell is tagged <code>show-code</code>.</footer>")
    page = render_page(page_title, "\n".join(parts))
    return write_atomic(Path(out_path), page)
