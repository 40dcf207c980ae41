"""The run index: ``index.html`` in a run folder, the page a reviewer opens first.

Self-contained and script-free like the notebook reports (same CSS, same sanitiser, same
Content-Security-Policy): run id, status, study, snapshot date, the notebooks (linked by
relative href), the headline metrics with their 95 % intervals, and the comparison with the
previous successful run, flagged changes highlighted.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import quote

from cxlab.report.html import (
    MASK,
    esc,
    format_duration,
    format_estimate_ci,
    format_number,
    provenance_html,
    render_page,
    write_atomic,
    status_badge,
)

__all__ = ["write_index", "metric_label"]


def _relative_href(html_path) -> str | None:
    """A safe relative href for a report path inside the run folder, else None."""
    if not html_path:
        return None
    p = PurePosixPath(str(html_path).replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or ":" in str(p):
        return None
    return quote(p.as_posix(), safe="/")


def _notebook_link(nb: dict) -> str:
    name = esc(nb.get("name", "?"))
    href = _relative_href(nb.get("html"))
    return f'<a href="{esc(href)}">{name}</a>' if href else name


def _notebook_cell(nb: dict) -> str:
    """The notebook's title as the link (its file name below), so a reviewer sees what it answers."""
    title = nb.get("title")
    if not title:
        return _notebook_link(nb)
    href = _relative_href(nb.get("html"))
    link = f'<a href="{esc(href)}">{esc(title)}</a>' if href else esc(title)
    return f'{link}<small class="cx-nb-file">{esc(nb.get("name", "?"))}</small>'


def _notebooks_table(notebooks: list[dict]) -> str:
    if not notebooks:
        return "<p>No notebooks ran.</p>"
    out = ['<table class="cx-table cx-notebooks"><thead><tr><th>notebook</th><th>status</th>'
           '<th class="num">duration</th><th>headline findings</th></tr></thead><tbody>']
    for nb in notebooks:
        name_cell = _notebook_cell(nb)
        notes = []
        err = nb.get("error")
        if err:
            notes.append(f'<li class="cx-finding-error"><strong>{esc(err.get("ename"))}:'
                         f"</strong> {esc(err.get('evalue'))}</li>")
        for f in nb.get("findings") or []:
            cls = ' class="cx-finding-warning"' if f.get("level") == "warning" else ""
            prefix = "<strong>Warning:</strong> " if f.get("level") == "warning" else ""
            notes.append(f"<li{cls}>{prefix}{esc(f.get('text'))}</li>")
        notes_html = f"<ul>{''.join(notes)}</ul>" if notes else "–"
        left_out = [f"<li>{esc(o.get('text'))}</li>" for o in nb.get("omissions") or []]
        if left_out:
            notes_html += f'<div class="cx-left-out"><strong>Left out</strong><ul>{"".join(left_out)}</ul></div>'
        out.append(f"<tr><td>{name_cell}</td><td>{status_badge(nb.get('status'))}</td>"
                   f'<td class="num">{esc(format_duration(nb.get("duration_s")))}</td>'
                   f'<td class="cx-findings-cell">{notes_html}</td></tr>')
    out.append("</tbody></table></details>")
    return "\n".join(out)


_OPEN_METRICS = 12  # up to this many figures in all, the tables start open

#: metric name patterns (see the README's manifest section) -> the figure in words; ``{x}`` is the
#: construct, term or cell the last dotted part names (as the study spells it when recorded so)
_METRIC_WORDS: tuple[tuple[str, str], ...] = (
    (r"panel\.respondents", "respondents analysed"),
    (r"panel\.customers", "customers known at the snapshot"),
    (r"panel\.response_rate", "response rate (respondents analysed / customers)"),
    (r"panel\.set_aside", "respondents set aside by the audit"),
    (r"panel\.events", "respondents who defected by the snapshot"),
    (r"panel\.censored_share", "share of respondents still customers at the snapshot"),
    (r"cox\.respondents", "respondents in the survival models"),
    (r"cox\.events", "defections in the survival models"),
    (r"cox\.hr_per_sd\.(.+)", "hazard ratio per SD of {x}"),
    (r"cox\.hr_per_point\.(.+)", "hazard ratio per scale point of {x}"),
    (r"cox\.hr\.dgc", "hazard ratio of the disappointed good customers, adjusted"),
    (r"cox\.hr\.(.+)", "hazard ratio of {x}"),
    (r"km\.retention_(\d+)m", "still customers {x} months after the survey (Kaplan–Meier)"),
    (r"ph\.global_p", "proportional-hazards test, all terms together (p-value)"),
    (r"ph\.fallback", "fallback model with a time interaction used (1 = yes)"),
    (r"aft\.time_ratio_per_sd\.(.+)", "time ratio per SD of {x} (accelerated failure time)"),
    (r"tv\.hr\.(.+)", "hazard ratio (scores updated at each answer): {x}"),
    (r"eval\.c_index", "Harrell's C (how well the model ranks who leaves first)"),
    (r"eval\.uno_c", "Uno's C (how well the model ranks who leaves first)"),
    (r"eval\.auc_(\d+)m", "AUC at {x} months"),
    (r"eval\.integrated_brier_score", "integrated Brier score (prediction error)"),
    (r"drivers\.importance\.(.+)", "share of the explanation of time to defection: {x}"),
    (r"drivers\.rank_stability\.(.+)", "share of bootstrap samples where {x} keeps its rank"),
    (r"loyalty\.importance\.(.+)", "share of the explanation of loyalty: {x}"),
    (r"measurement\.alpha\.(.+)", "Cronbach's alpha of {x}"),
    (r"measurement\.omega\.(.+)", "McDonald's omega of {x}"),
    (r"segments\.disappointed\.share", "share of the respondents in the 2 × 2 grid who are disappointed good customers"),
    (r"segments\.disappointed\.hr", "hazard ratio of the disappointed good customers, crude"),
    (r"segments\.disappointed\.defector_ratio",
     "disappointed good customers: share of expected defectors / share of respondents"),
    (r"segments\.hr\.(.+)", "hazard ratio, crude, of {x} (reference: recognised good customers)"),
    (r"segments\.dgc_vs\.(.+)", "hazard of the disappointed good customers relative to {x}, compared directly"),
    (r"value\.gini", "Gini of the margin"),
    (r"value\.top20_share", "share of the margin held by the top 20 %"),
    (r"value\.whatif\.horizon_months", "what-if: months after the survey of its headline"),
    (r"value\.whatif\.delta_points", "what-if: scale points added to recognition"),
    (r"value\.whatif\.delta_(defections|months|margin)(?:\.(raise|move)_(\d+)m)?", None),
    (r"sbg\.alpha", "cohort retention model (shifted beta-geometric): alpha"),
    (r"sbg\.beta", "cohort retention model (shifted beta-geometric): beta"),
)

_WHATIF = {"defections": "change in defections", "months": "change in months as a customer",
           "margin": "change in discounted margin"}


def metric_label(name: str, metric: dict | None = None, metrics: dict | None = None) -> str:
    """A recorded figure in words (``cox.hr_per_sd.recognition`` -> "hazard ratio per SD of
    recognition"), using the study's spelling when the metric carries it as its ``label``; a
    descriptive ``label`` (``value.gini``: "Gini of the margin among ...") is used as is. Unknown
    names fall back to their last parts in words. ``metrics`` (the run's, optional) gives the
    what-if's main horizon in months."""
    import re

    from cxlab.insight.narrative import human_label

    metric = metric or {}
    label = str(metric.get("label") or "")
    for pattern, words in _METRIC_WORDS:
        m = re.fullmatch(pattern, str(name))
        if not m:
            continue
        if words is None:    # the what-if deltas: scenario and horizon in the name
            what, scenario, months = m.groups()
            if not scenario:
                h = ((metrics or {}).get("value.whatif.horizon_months") or {}).get("estimate")
                within = f"within {h:g} months" if isinstance(h, (int, float)) else "at the main horizon"
                return f"what-if, recognition raised: {_WHATIF[what]} {within}"
            who = "recognition raised" if scenario == "raise" else "a share moved to recognised"
            return f"what-if, {who}: {_WHATIF[what]} within {months} months"
        if "{x}" not in words:
            if name == "value.whatif.delta_points":    # its label names who the raise is for
                return f"{words}, for {label}" if label else words
            return label if label and "." not in label else words
        part = m.group(1)
        subject = label.split(".")[-1] if "." in label else (label or part)
        return words.format(x=human_label(subject) if subject == part else subject)
    parts = str(name).split(".")
    return " ".join(human_label(p) for p in parts[1:] or parts)


def _metrics_table(metrics: dict, notebooks: list[dict] = ()) -> str:
    """Every recorded figure, one collapsible table per notebook (in run order): the figure in
    words, its name in ``manifest.json`` small and muted below it."""
    if not metrics:
        return "<p>No metrics were recorded.</p>"
    order = [nb.get("name") for nb in notebooks or []]
    groups: dict[str, list[str]] = {}
    for name in metrics:
        groups.setdefault(str((metrics[name] or {}).get("notebook") or "–"), []).append(name)
    titles = {nb.get("name"): nb.get("title") for nb in notebooks or []}
    opened = " open" if len(metrics) <= _OPEN_METRICS else ""
    out = [f"<p>The {len(metrics)} figures the notebooks recorded with their 95 % confidence intervals "
           "(also in <code>manifest.json</code>, under the name shown small below each; the next run is compared "
           "with them). The findings above say what they mean; each notebook's report shows how they were "
           "obtained.</p>"]
    for nb_name in sorted(groups, key=lambda n: (order.index(n) if n in order else len(order), n)):
        names = groups[nb_name]     # in the order the notebook recorded them
        title = esc(titles[nb_name]) if titles.get(nb_name) else esc(nb_name)
        out.append(f"<details{opened}><summary>{title}: {len(names)} figure"
                   f"{'s' if len(names) != 1 else ''}</summary>"
                   '<table class="cx-table cx-metrics-table"><thead><tr><th>figure</th>'
                   '<th class="num">estimate</th><th class="num">95 % CI</th>'
                   "</tr></thead><tbody>")
        for name in names:
            m = metrics[name] or {}
            est, ci = format_estimate_ci(m.get("estimate"), m.get("lower"), m.get("upper"))
            unit = f" {esc(m['unit'])}" if m.get("unit") else ""
            out.append(f'<tr><td title="{esc(name)}">{esc(metric_label(name, m, metrics))}'
                       f'<code class="cx-metric-name">{esc(name)}</code></td>'
                       f'<td class="num">{est}{unit}</td><td class="num">{ci}</td></tr>')
        out.append("</tbody></table></details>")
    return "\n".join(out)


def _run_summary(notebooks: list[dict]) -> str:
    ok = sum(1 for nb in notebooks if str(nb.get("status", "")).lower() == "succeeded")
    failed = [nb for nb in notebooks if str(nb.get("status", "")).lower() != "succeeded"]
    text = f"{ok} of {len(notebooks)} notebooks succeeded"
    if failed:
        text += f"; failed: {', '.join(_notebook_link(nb) for nb in failed)}"
    return f'<p class="cx-run-summary">{text}.</p>'


def _comparison_table(comparison: list[dict], differences: list[str] = ()) -> str:
    if not comparison:
        return "<p>No previous successful run to compare with.</p>"
    flagged = sum(1 for c in comparison if c.get("flag"))
    if differences:
        items = "".join(f"<li>{esc(d)}</li>" for d in differences)
        summary = ("<p><strong>Figures not compared:</strong> the previous run is not like for like, so no "
                   f"change is flagged. What changed:</p><ul>{items}</ul>")
        flagged = 0
    else:
        summary = (f"<p><strong>{flagged} of {len(comparison)}</strong> headline figures changed "
               "beyond their uncertainty (highlighted).</p>" if flagged else
               f"<p>None of the {len(comparison)} headline figures changed beyond their "
               "uncertainty.</p>")
    opened = " open" if (flagged and not differences) or len(comparison) <= 12 else ""
    out = [summary, f"<details{opened}><summary>The {len(comparison)} figures side by side</summary>",
           '<table class="cx-table cx-comparison"><thead><tr><th>metric</th>'
           '<th class="num">previous</th><th class="num">previous 95 % CI</th>'
           '<th class="num">current</th><th>change</th></tr></thead><tbody>']
    for c in comparison:
        prev, prev_ci = format_estimate_ci(c.get("previous"), c.get("previous_lower"),
                                           c.get("previous_upper"))
        try:  # current rounded like previous, so the two are comparable digit by digit
            d = len(prev.split(".")[1]) if "." in prev else 0
            cur = format_number(c.get("current"), d)
        except Exception:  # noqa: BLE001 - formatting only
            cur = format_number(c.get("current"))
        flag = bool(c.get("flag")) and not differences
        mark = '<span class="cx-flag-mark">⚑ changed</span> ' if flag else ""
        row_class = ' class="cx-flag"' if flag else ""
        out.append(f"<tr{row_class}>"
                   f"<td><code>{esc(c.get('metric'))}</code></td>"
                   f'<td class="num">{prev}</td><td class="num">{prev_ci}</td>'
                   f'<td class="num">{cur}</td><td>{mark}{esc(c.get("text") or "")}</td></tr>')
    out.append("</tbody></table></details>")
    return "\n".join(out)


def _mask(params: dict, secret: set) -> dict:
    return {k: (_mask(v, secret) if isinstance(v, dict) else MASK if k in secret else v)
            for k, v in params.items()}


def _flatten_parameters(params: dict) -> dict:
    """The manifest holds parameters per notebook ({notebook: {name: value}}): show a value
    once when every notebook got the same, else once per notebook as ``name (notebook)``."""
    if not params or not all(isinstance(v, dict) for v in params.values()):
        return dict(params or {})
    by_name: dict[str, dict[str, object]] = {}
    for nb, ps in params.items():
        for k, v in ps.items():
            by_name.setdefault(k, {})[nb] = v
    flat = {}
    for k, per_nb in by_name.items():
        values = list(per_nb.values())
        if all(v == values[0] for v in values[1:]):
            flat[k] = values[0]
        else:
            flat.update({f"{k} ({nb})": v for nb, v in per_nb.items()})
    return flat


def write_index(run_dir: Path, manifest: dict) -> Path:
    """Write ``run_dir/index.html`` from a run manifest (atomically); return its path.

    Manifest keys used: run_id, status, started_at, finished_at, duration_s,
    study {name, snapshot_date}, parameters ({name: value}, or per notebook
    {notebook: {name: value}}), secret_keys (optional), data, versions,
    git_commit (optional), notebooks [{name, title (optional), status, duration_s, html, error,
    findings}],
    metrics {name: {estimate, lower, upper, notebook}}, comparison, failed_reason.
    """
    run_dir = Path(run_dir)
    m = dict(manifest or {})
    secret = set(m.get("secret_keys") or ())
    study = m.get("study") or {}
    run_id = m.get("run_id") or run_dir.name
    status = m.get("status") or "unknown"
    title = f"Run {run_id}" + (f" — {study['name']}" if study.get("name") else "")
    heading = study.get("name") or f"Run {run_id}"
    parts = []
    if str(status).lower() == "failed":
        failed_nbs = [_notebook_link(nb) for nb in m.get("notebooks") or []
                      if str(nb.get("status", "")).lower() == "failed"]
        reason = m.get("failed_reason") or "one or more notebooks failed"
        which = (f"<p>Failed notebooks: {', '.join(failed_nbs)}.</p>" if failed_nbs else "")
        parts.append('<section class="cx-box cx-errorbox" id="cx-error" role="alert">'
                     f"<h2>This run failed</h2><p>{esc(reason)}</p>{which}</section>")
    elif str(status).lower() == "interrupted":   # stopped by SIGINT/SIGTERM (cxlab run)
        parts.append('<section class="cx-box cx-errorbox" id="cx-error" role="alert">'
                     f"<h2>This run was interrupted</h2><p>{esc(m.get('failed_reason') or '')}. "
                     "Notebooks marked interrupted did not finish; the others are complete.</p></section>")
    subtitle = " · ".join(esc(x) for x in (
        f"run {run_id}" if study.get("name") else None,
        f"snapshot {study['snapshot_date']}" if study.get("snapshot_date") else None,
        f"started {m['started_at']}" if m.get("started_at") else None,
        f"took {format_duration(m.get('duration_s'))}" if m.get("duration_s") is not None
        else None) if x)
    parts.append(f'<header class="cx-page-header"><h1>{esc(heading)} {status_badge(status)}'
                 f'</h1><p class="cx-subtitle">{subtitle}</p>'
                 f"{_run_summary(m.get('notebooks') or [])}</header>")
    from cxlab.report.summary import summary_html

    parts.append(summary_html(m, run_dir))
    parts.append('<section class="cx-box" id="cx-notebooks"><h2>Notebooks and their key findings</h2>'
                 "<p>Open a notebook for its full report: findings first, then the evidence, checks "
                 "and provenance.</p>"
                 f"{_notebooks_table(m.get('notebooks') or [])}</section>")
    parts.append('<section class="cx-box" id="cx-metrics"><h2>Headline metrics</h2>'
                 f"{_metrics_table(m.get('metrics') or {}, m.get('notebooks') or [])}</section>")
    parts.append('<section class="cx-box" id="cx-comparison"><h2>Compared with the previous '
                 f"run</h2>{_comparison_table(m.get('comparison') or [], (m.get('comparison_basis') or {}).get('differences') or [])}</section>")
    header = {
        "study_name": study.get("name"), "snapshot_date": study.get("snapshot_date"),
        "run_id": run_id, "notebook": None, "status": status,
        "parameters": _flatten_parameters(_mask(m.get("parameters") or {}, secret)),
        "data": m.get("data") or {},
        "versions": m.get("versions") or {}, "git_commit": m.get("git_commit"),
        "started_at": m.get("started_at"), "duration_s": m.get("duration_s"),
    }
    parts.append(provenance_html(header, secret_keys=secret))
    parts.append('<footer class="cx-footer">Generated by cxlab. Each notebook report is a '
                 "self-contained HTML file in this folder.</footer>")
    return write_atomic(run_dir / "index.html", render_page(title, "\n".join(parts)))
