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

This module turns an executed notebook into a page; the rest lives beside it, one concern each:
:mod:`cxlab.report.page` (CSS, CSP, sanitiser, atomic writes), :mod:`cxlab.report.formatting`
(numbers, estimates, provenance, findings: shared with the run index) and
:mod:`cxlab.report.notes` (warnings in plain words, the Checks section). Every name stays
importable from here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import nbformat
from bs4 import BeautifulSoup

from cxlab.report.record import FINDING_MIME, METRIC_MIME, read_findings, read_metrics
from cxlab.report.page import (  # noqa: F401 (every name stays importable from here)
    CSP,
    REPORT_CSS,
    _pygments_css,
    _TAGS,
    _ATTRIBUTES,
    _STYLE_PROPERTIES,
    _DATA_IMAGE,
    _SCHEME,
    _attribute_filter,
    _CLEANER,
    sanitize_html,
    render_page,
    write_atomic,
)
from cxlab.report.formatting import (  # noqa: F401 (every name stays importable from here)
    MASK,
    esc,
    format_duration,
    _decimals_for,
    format_number,
    format_estimate_ci,
    _param_value,
    provenance_html,
    _titled_table,
    status_badge,
    findings_html,
    metrics_html,
)
from cxlab.report.notes import (  # noqa: F401 (every name stays importable from here)
    _WARNING_HEADER,
    tidy_stderr,
    _WARNING_LINE,
    _TECHNICAL,
    _words,
    _PLAIN_REWRITES,
    plain_note,
    _split_warnings,
    checks_html,
)


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
    "channel: online"), from the one label map :data:`cxlab.insight.narrative.LABELS`; also the terms in
    a table's first column when they are code names."""
    from cxlab.insight.narrative import LABELS, human_label

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
