"""Formatting shared by the notebook pages and the run index: escaping, numbers, estimates with
intervals, durations, the provenance header, status badges, findings and recorded figures."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import PurePosixPath
from typing import Any, Iterable


MASK = "\u2022\u2022\u2022"  # •••


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
    out += _titled_table("Parameters", "<th>parameter</th><th>value</th>", [
        f"<tr><td><code>{esc(k)}</code></td><td>{esc(MASK if k in secret else _param_value(params[k]))}</td></tr>"
        for k in sorted(params, key=str)], "(defaults of the notebook)")

    data = header.get("data") or {}
    data_rows = []
    for role in sorted(data, key=str):
        d = data[role] or {}
        name = PurePosixPath(str(d.get("path", "")).replace("\\", "/")).name or "–"
        rows_n = d.get("rows")
        countable = isinstance(rows_n, (int, float)) and not isinstance(rows_n, bool) \
            and math.isfinite(rows_n)
        rows_s = f"{int(rows_n):,}" if countable else esc("–" if rows_n is None else rows_n)
        sha = str(d.get("sha256") or "")[:12] or "–"
        data_rows.append(f"<tr><td>{esc(role)}</td><td>{esc(name)}</td>"
                         f'<td class="num">{rows_s}</td><td><code>{esc(sha)}</code></td></tr>')
    out += _titled_table("Data", '<th>role</th><th>file</th><th class="num">rows</th><th>sha256 (first 12)</th>',
                         data_rows, "(no data files recorded)")

    if versions:
        out.append(f"<details><summary>Package versions ({len(versions)})</summary>"
                   '<table class="cx-table"><tbody>')
        for k in sorted(versions, key=str):
            out.append(f"<tr><td>{esc(k)}</td><td><code>{esc(versions[k])}</code></td></tr>")
        out.append("</tbody></table></details>")
    out.append("</div></div></section>")
    return "\n".join(out)


def _titled_table(title: str, head: str, rows: list[str], empty: str) -> list[str]:
    """A provenance block: its heading, then a table of ``rows`` under ``head`` (or ``empty``)."""
    if not rows:
        return [f"<h3>{title}</h3>", f"<p>{empty}</p>"]
    return [f"<h3>{title}</h3>", f'<table class="cx-table"><thead><tr>{head}</tr></thead><tbody>', *rows,
            "</tbody></table>"]


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
