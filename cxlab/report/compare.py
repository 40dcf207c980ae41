"""Comparison of a run's headline figures with the previous successful run, like for like.

Figures are compared only when the two runs share the same study spec (apart from its snapshot
date: a monthly run is meant to move it), the same parameters and the same notebook versions.
Otherwise nothing is flagged and the report says what changed. Numbers are written for people:
"from 1,855 to 1,052 (−43 %)", never ``1.37e+03`` or a drop printed as a rise.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

__all__ = ["run_basis", "comparison_basis", "basis_differences", "compare_metrics", "human_number"]


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _spec_without_snapshot(path: Path) -> str | None:
    """SHA-256 of the study spec with its ``snapshot_date`` removed (YAML parsed, keys sorted)."""
    try:
        import yaml

        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, Exception):  # noqa: BLE001 - an unreadable spec is compared by bytes
        return _sha(path)
    if isinstance(spec, dict):
        spec = {k: v for k, v in spec.items() if k != "snapshot_date"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def comparison_basis(study_spec: Path, notebook_paths: dict[str, Path], parameters: dict) -> dict:
    """What must match for two runs' figures to be comparable: the study spec (without its
    snapshot date), each notebook's source (SHA-256) and the parameters each notebook got."""
    return {"study_spec": _spec_without_snapshot(study_spec),
            "notebooks": {n: _sha(p) for n, p in notebook_paths.items()},
            "parameters": json.loads(json.dumps(parameters, default=str))}


def run_basis(config, parameters: dict, previous: dict | None) -> dict:
    """The comparison basis of a run (``config``: a :class:`cxlab.report.runner.RunConfig`),
    with ``differences``: what differs from the ``previous`` run's manifest, in words (empty when
    the runs are like for like, or without a previous run)."""
    basis = comparison_basis(config.study, {n: Path(config.notebooks_dir) / f"{n}.ipynb" for n in config.notebooks},
                             parameters)
    basis["differences"] = basis_differences(basis, previous.get("comparison_basis")) if previous else []
    return basis


def basis_differences(current: dict | None, previous: dict | None) -> list[str]:
    """What differs between two comparison bases, in words (empty: like for like)."""
    if not current or not previous:
        return ["the previous run does not say which study spec, parameters and notebook versions it used"]
    out = []
    if current.get("study_spec") != previous.get("study_spec"):
        out.append("the study spec changed (other than its snapshot date)")
    cur_nb, prev_nb = current.get("notebooks") or {}, previous.get("notebooks") or {}
    changed = sorted(n for n in set(cur_nb) | set(prev_nb) if cur_nb.get(n) != prev_nb.get(n))
    if changed:
        out.append(f"notebook version changed: {', '.join(changed)}")
    cur_p, prev_p = current.get("parameters") or {}, previous.get("parameters") or {}
    diffs = []
    for nb in sorted(set(cur_p) | set(prev_p)):
        a, b = prev_p.get(nb) or {}, cur_p.get(nb) or {}
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                diffs.append((k, a.get(k, "(not set)"), b.get(k, "(not set)")))
    seen = set()
    for k, a, b in diffs:
        if k in seen:
            continue
        seen.add(k)
        out.append(f"parameter {k} changed from {a} to {b}")
    return out


def human_number(x) -> str:
    """A figure for people: thousands separated, three significant digits, no exponent."""
    if x is None:
        return "–"
    v = float(x)
    if not math.isfinite(v):
        return "–"
    if v != 0 and abs(v) >= 100:
        s = f"{v:,.0f}"
    elif v == 0:
        s = "0"
    else:
        d = max(0, min(6, 2 - math.floor(math.log10(abs(v)))))
        s = f"{v:,.{d}f}"
    return s.replace("-", "−")


def _change(p: float, c: float) -> str:
    if p == 0:
        return ""
    rel = (c - p) / abs(p)
    if round(100 * rel) == 0:
        return ""
    return f" ({'+' if rel > 0 else '−'}{abs(100 * rel):.0f} %)"


def compare_metrics(current: dict, previous: dict, differences: list[str] | None = None) -> list[dict]:
    """Headline metrics compared with the previous successful run.

    A change is flagged when the new estimate lies outside the previous 95 % interval (or,
    without one, moves by more than 10 %) -- but only when ``differences`` (see
    :func:`basis_differences`) is empty: figures from runs with another spec, other parameters
    or other notebook versions are listed, never flagged."""
    comparable = not differences
    rows = []
    for name in sorted(set(current) & set(previous)):
        cur, prev = current[name], previous[name]
        c, p = cur.get("estimate"), prev.get("estimate")
        if c is None or p is None:
            continue
        lo, hi = prev.get("lower"), prev.get("upper")
        moved = (f"{name}: from {human_number(p)} to {human_number(c)}{_change(p, c)}"
                 if human_number(p) != human_number(c) else f"{name}: unchanged at {human_number(c)}")
        if not comparable:
            flag = False
            text = f"{moved}; not compared (the runs differ, see above)"
        elif lo is not None and hi is not None:
            flag = not (lo <= c <= hi)
            text = (f"{moved}, outside last run's 95 % CI ({human_number(lo)} to {human_number(hi)})" if flag
                    else f"{moved}, within last run's 95 % CI")
        else:
            rel = abs(c - p) / abs(p) if p else (0.0 if c == p else float("inf"))
            flag = rel > 0.10
            text = moved
        rows.append({"metric": name, "previous": p, "previous_lower": lo, "previous_upper": hi, "current": c,
                     "current_lower": cur.get("lower"), "current_upper": cur.get("upper"), "flag": bool(flag),
                     "text": text})
    return rows
