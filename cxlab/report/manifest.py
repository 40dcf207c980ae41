"""What a finished run writes into its folder (:func:`write_outputs`): each notebook's ipynb and
HTML page, ``manifest.json`` and the index, scrubbed of secrets; and the provenance the manifest
records (data fingerprints, package versions, the git commit). The manifest's keys are documented
in ``manifest.schema.json`` next to this file (:data:`MANIFEST_SCHEMA_PATH`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path

import nbformat

from cxlab.report.compare import compare_metrics, run_basis
from cxlab.report.record import read_findings, read_metrics, read_omissions
from cxlab.report.runconfig import RunConfig, _redact, _repo_root
from cxlab.report.scrub import MASK as REDACTED

__all__ = ["MANIFEST_SCHEMA_VERSION", "MANIFEST_SCHEMA_PATH", "write_outputs", "fingerprint", "git_commit",
           "versions", "notebook_title"]

MANIFEST_SCHEMA_VERSION = 1
#: JSON Schema of manifest.json (every key, its type and meaning)
MANIFEST_SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


def fingerprint(path: Path) -> dict:
    """Rows, bytes and SHA-256 of a data file (rows: data rows of a CSV, rows of a Parquet file)."""
    h = hashlib.sha256()
    newlines = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            newlines += chunk.count(b"\n")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(path).metadata.num_rows
    else:
        rows = max(newlines - 1, 0)  # header line
    return {"path": str(path), "file": path.name, "rows": int(rows), "bytes": path.stat().st_size,
            "sha256": h.hexdigest()}


def git_commit(folder: Path | None = None) -> str | None:
    """The commit of the git checkout holding ``folder`` (default: cxlab's own checkout), with
    ``-dirty`` when it has uncommitted changes: tracked files anywhere in the checkout when it
    is cxlab's own, and any change (untracked files too) inside ``folder``. None when ``folder``
    is not under git."""
    folder = Path(folder) if folder is not None else _repo_root()

    def git(*args) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        top = git("rev-parse", "--show-toplevel")
        if head.returncode != 0 or top.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=all", "--", ".").stdout.strip()
        if Path(top.stdout.strip()).resolve() == _repo_root().resolve():
            dirty = dirty or git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import cxlab

    out = {"cxlab": cxlab.__version__, "python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scipy", "statsmodels", "lifelines", "scikit-learn", "ibis-framework",
                "duckdb", "pandera", "pydantic", "matplotlib", "papermill", "nbconvert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def notebook_title(nb) -> str | None:
    """The notebook's title: the first level-1 markdown heading (None without one)."""
    import re

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", cell.source, re.M)
            if m:
                return re.sub(r"[*_`]", "", m.group(1)).strip()[:120] or None
    return None


def _previous_manifest(out: Path, config_name: str) -> dict | None:
    """The newest successful run of the same config in ``out``."""
    candidates = []
    for m in out.glob("*/manifest.json"):
        if m.parent.name.startswith(".") or m.parent.name == "latest":
            continue
        try:
            data = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("status") == "succeeded" and data.get("config", {}).get("name") == config_name:
            candidates.append((data.get("finished_at", ""), data))
    return max(candidates, key=lambda x: x[0])[1] if candidates else None


def _mask_short_secrets(nb, names: set[str]) -> None:
    """Secrets are masked by value (:class:`Scrubber`); here also by name, for values too short
    to search for: papermill's record of the parameters and its injected-parameters cell."""
    import re

    pm = nb.metadata.get("papermill", {})
    if isinstance(pm.get("parameters"), dict):
        pm["parameters"] = {k: (REDACTED if k in names else v) for k, v in pm["parameters"].items()}
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            for k in names:
                cell.source = re.sub(rf"(?m)^({re.escape(k)}\s*=\s*).*$", rf"\g<1>{REDACTED!r}", cell.source)


def write_outputs(config: RunConfig, study, params, data, results, work: Path, run_id: str, started, t0,
                  previous, secret_names: set[str], scrubber, stopper, log) -> dict:
    """Write each notebook's ipynb and HTML, the manifest and the index into ``work`` and scrub
    them; return the manifest. (:func:`cxlab.report.runfolder.publish` then moves ``work``.)"""
    from cxlab.report.html import export_html
    from cxlab.report.index import write_index

    masked = {n: _redact(p, sorted(secret_names)) for n, p in params.items()}
    header_base = {"study_name": study.name, "snapshot_date": str(study.snapshot_date), "run_id": run_id,
                   "data": data, "versions": versions(), "git_commit": git_commit(config.notebooks_dir),
                   "secret_keys": sorted(secret_names),
                   "secret_values": scrubber.values}   # the HTML step scrubs with the real values
    notebooks, metrics = [], {}
    for r in results:
        stopper.check()
        nb, status = r["nb"], r["status"]
        scrubber.scrub_notebook(nb)
        _mask_short_secrets(nb, secret_names)
        status = scrubber.scrub_obj(status)
        nbformat.write(nb, work / f"{r['name']}.ipynb")
        error = None if status["status"] == "succeeded" else {k: status.get(k) for k in ("ename", "evalue", "cell", "reason")}
        header = dict(header_base, notebook=r["name"], status=status["status"], parameters=masked[r["name"]],
                      started_at=started.isoformat(timespec="seconds"), duration_s=status["duration_s"],
                      error=error)
        t_export = time.monotonic()
        html = export_html(nb, work / f"{r['name']}.html", header)
        timings = dict(status["timings"], export_s=round(time.monotonic() - t_export, 3))
        timings["total_s"] = round(timings["worker_s"] + timings["export_s"], 3)
        for mname, m in read_metrics(nb).items():
            metrics[mname] = dict(m, notebook=r["name"])
        notebooks.append({
            "name": r["name"], "title": notebook_title(nb), "status": status["status"],
            "duration_s": status["duration_s"],
            "html": Path(html).name, "ipynb": f"{r['name']}.ipynb",
            "error": error,
            "findings": read_findings(nb),
            "omissions": read_omissions(nb),
            "timings": timings,
        })
    ok = all(n["status"] == "succeeded" for n in notebooks)
    if stopper.signum is not None:
        status_text = "interrupted"
        n_done = sum(n["status"] in ("succeeded", "failed") for n in notebooks)
        failed_reason = "; ".join([f"stopped by {stopper.signal_name}: {n_done} of {len(notebooks)} notebooks finished",
                                   *(f"{n['name']}: {n['error']['ename']}: {n['error']['evalue']}"
                                     for n in notebooks if n["status"] == "failed")])
    else:
        status_text = "succeeded" if ok else "failed"
        failed_reason = None if ok else "; ".join(
            f"{n['name']}: {n['error']['ename']}: {n['error']['evalue']}" for n in notebooks if n["error"])
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "run_id": run_id,
        "status": status_text,
        "failed_reason": failed_reason,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 2),
        "config": config.as_dict(),
        "study": {"name": study.name, "snapshot_date": str(study.snapshot_date), "spec": str(config.study)},
        "parameters": masked,
        "data": data,
        "versions": header_base["versions"],
        "git_commit": header_base["git_commit"],
        "notebooks": notebooks,
        "metrics": metrics,
        "previous_run": previous["run_id"] if previous else None,
        "comparison_basis": (basis := run_basis(config, masked, previous)),
        "comparison": compare_metrics(metrics, previous["metrics"], basis["differences"]) if previous else [],
    }
    manifest = scrubber.scrub_obj(manifest)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    write_index(work, manifest)
    left = scrubber.scrub_tree(work)
    if left:
        log(f"warning: a secret value was still found in {', '.join(left)} after scrubbing, and removed")
    return manifest
