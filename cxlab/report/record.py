"""Metrics and findings recorded by notebooks and read back by the runner."""

from __future__ import annotations

import math
import re
from typing import Any

METRIC_MIME = "application/vnd.cxlab.metric+json"
FINDING_MIME = "application/vnd.cxlab.finding+json"
OMISSION_MIME = "application/vnd.cxlab.omission+json"

# dotted segments; the last ones are often the study's own construct names (any language,
# spaces allowed): only empty segments, surrounding blanks and control characters are refused
_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[^\x00-\x1f.\s][^\x00-\x1f.]*)+$")

#: metrics recorded in this process (useful outside a kernel, e.g. in tests)
recorded: dict[str, dict[str, Any]] = {}


def _number(x, what: str, name: str):
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"Metric {name!r}: {what} must be a number or None, got {x!r}.") from None
    return None if math.isnan(v) else v


def _display(mime: str, payload: dict) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every kernel
        return
    if get_ipython() is not None:
        display({mime: payload}, raw=True)


def record_metric(name: str, estimate, lower=None, upper=None, *, unit: str | None = None,
                  label: str | None = None) -> None:
    """Record a headline figure under a dotted name (``cox.hr_per_sd.recognition``).

    ``lower``/``upper`` are the bounds of its 95 % interval (None when there is none). The
    runner collects every recorded metric into the run's ``manifest.json``. Each dotted part is
    stored as :func:`cxlab.study.slug` of it (``cox.hr_per_sd.proximité`` is recorded as
    ``cox.hr_per_sd.proximite``, matching the manifest schema); when that changes the name and no
    ``label`` is given, the name as written is kept as the label.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name != name.strip():
        raise ValueError(f"Metric name {name!r} must be dotted words, e.g. 'cox.hr_per_sd.recognition'.")
    # the study's own names (accents, spaces, brackets) become stable slugs (cxlab.study.slug);
    # the name as written travels as the label
    from cxlab.study import slug

    original = name
    name = ".".join(slug(part) for part in name.split("."))
    if label is None and name != original:
        label = original
    payload = {
        "name": name,
        "estimate": _number(estimate, "estimate", name),
        "lower": _number(lower, "lower", name),
        "upper": _number(upper, "upper", name),
    }
    if unit:
        payload["unit"] = unit
    if label:
        payload["label"] = label
    recorded[name] = payload
    _display(METRIC_MIME, payload)


def record_finding(text: str, *, level: str = "finding") -> None:
    """Record a headline finding (plain text) for the run index. ``level``: finding|warning."""
    if level not in ("finding", "warning"):
        raise ValueError(f"level must be 'finding' or 'warning', got {level!r}.")
    payload = {"text": str(text), "level": level}
    _display(FINDING_MIME, payload)


def record_omission(text: str, *, part: str | None = None) -> None:
    """Record that an analysis was left out (plain text: what is missing and the spec key that
    would enable it; see :meth:`cxlab.workbook.Workbook.omit`). The sentence is shown where the
    analysis would be, and the runner lists it per notebook in the manifest and the index."""
    text = str(text).strip()
    if not text:
        raise ValueError("record_omission needs the sentence saying what was left out and why.")
    payload = {"text": text, "part": None if part is None else str(part)}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every kernel
        return
    if get_ipython() is not None:
        # the Markdown copy is what a reader sees in the notebook and its HTML
        display({OMISSION_MIME: payload, "text/markdown": f"*{text}*"}, raw=True)


def _outputs(nb) -> list:
    cells = nb["cells"] if isinstance(nb, dict) else nb.cells
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        yield from cell.get("outputs", [])


def read_metrics(nb) -> dict[str, dict]:
    """Metrics recorded in an executed notebook: name -> {estimate, lower, upper, ...}."""
    out: dict[str, dict] = {}
    for o in _outputs(nb):
        data = o.get("data", {})
        if METRIC_MIME in data:
            m = dict(data[METRIC_MIME])
            out[m.pop("name")] = m
    return out


def read_findings(nb) -> list[dict]:
    """Findings recorded in an executed notebook, in order."""
    return [dict(o["data"][FINDING_MIME]) for o in _outputs(nb) if FINDING_MIME in o.get("data", {})]


def read_omissions(nb) -> list[dict]:
    """Omissions recorded in an executed notebook ({text, part}), in order, each sentence once."""
    out, seen = [], set()
    for o in _outputs(nb):
        data = o.get("data", {})
        if OMISSION_MIME in data:
            item = dict(data[OMISSION_MIME])
            if item.get("text") not in seen:
                seen.add(item.get("text"))
                out.append({"text": str(item.get("text", "")), "part": item.get("part")})
    return out
