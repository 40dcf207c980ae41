"""``cxlab run``: execute the notebooks of a run config, export HTML, write the manifest.

A run is built in ``OUT/.tmp-<run id>/`` and moved to ``OUT/<run id>/`` whole when finished;
``OUT/latest`` then points to it, but only if every notebook succeeded. A lock file stops two
runs from writing the same ``OUT`` at once. Earlier runs are never touched.

Run config (YAML; paths relative to the config file)::

    name: monthly                      # default: the file name
    study: ../data/demo/study.yaml
    out: ../reports                    # default: reports/ next to the notebooks' folder
    notebooks: [01-data-audit, 02-survival-drivers]   # default: every notebooks/NN-*.ipynb
    parameters: {min_cell: 10}         # shared: given to every notebook that declares them
    notebook_parameters: {02-survival-drivers: {horizon_months: 36}}
    secret: [warehouse_url]            # never rendered or stored in outputs
    timeout: 1800                      # seconds per notebook
    jobs: 2                            # notebooks at once (default: number of cores)

Progress goes to stderr: one line per notebook start and finish (with the run's count,
"2/4 notebooks finished"); on a terminal, or with ``--verbose``, also each code cell as it
starts, streamed live from the worker (``cxlab.report.execute``). Notebooks start longest first
by the previous run's durations. Each notebook's phases (worker start-up, kernel start,
execution, shutdown, HTML export) are timed into ``manifest.json`` (``timings``), whose keys are
documented in ``manifest.schema.json`` next to this file.

Exit codes: 0 all notebooks succeeded; 1 the run finished but a notebook failed (its HTML shows
the error); 2 user error (bad config, study or parameter: nothing was run); 3 another run holds
the lock on OUT for longer than ``--lock-timeout``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from cxlab.errors import CxlabError, ParameterError
from cxlab.report.params import check_parameters, parse_override, read_parameters
from cxlab.report.record import read_findings, read_metrics, read_omissions

__all__ = ["RunConfig", "load_run_config", "run", "run_from_cli", "schedule", "MANIFEST_SCHEMA_VERSION",
           "MANIFEST_SCHEMA_PATH"]

MANIFEST_SCHEMA_VERSION = 1
#: JSON Schema of manifest.json (every key, its type and meaning)
MANIFEST_SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_LOCKED = 0, 1, 2, 3
REDACTED = "•••"
_SECRET_WORDS = ("secret", "password", "token")

_CONFIG_KEYS = {"name", "study", "out", "notebooks", "notebooks_dir", "parameters",
                "notebook_parameters", "secret", "timeout", "jobs"}


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass
class RunConfig:
    name: str
    study: Path
    notebooks_dir: Path
    notebooks: list[str]
    out: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    notebook_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret: list[str] = field(default_factory=list)
    timeout: int = 1800
    jobs: int = 0
    source: str | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "study": str(self.study),
                "notebooks": self.notebooks, "timeout": self.timeout, "jobs": self.jobs,
                "parameters": _redact(self.parameters, self.secret),
                "notebook_parameters": {k: _redact(v, self.secret)
                                        for k, v in self.notebook_parameters.items()},
                "secret": list(self.secret)}


def _redact(params: dict, secret: list[str]) -> dict:
    return {k: (REDACTED if _is_secret(k, secret) else v) for k, v in params.items()}


def _is_secret(name: str, secret: list[str]) -> bool:
    return name in secret or any(w in name.lower() for w in _SECRET_WORDS)


def _notebook_paths(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("[0-9][0-9]-*.ipynb"))


def load_run_config(path: Path | None = None, *, study: Path | None = None, out: Path | None = None,
                    notebooks_dir: Path | None = None) -> RunConfig:
    """Read a run config (or build one from ``--study``) and resolve its paths."""
    raw: dict = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise CxlabError(f"Run config {str(path)!r} does not exist (e.g. runs/monthly.yaml).")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise CxlabError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise CxlabError(f"{path}: a run config is a YAML mapping (study:, notebooks:, ...).")
        unknown = set(raw) - _CONFIG_KEYS
        if unknown:
            import difflib

            k = sorted(unknown)[0]
            close = difflib.get_close_matches(k, sorted(_CONFIG_KEYS), n=1)
            raise CxlabError(f"{path}: unknown key {k!r}." + (f" Did you mean {close[0]!r}?" if close else "")
                             + f" Valid keys: {', '.join(sorted(_CONFIG_KEYS))}.")
        base = path.parent.resolve()
    source = str(path) if path is not None else None

    def resolve(p) -> Path:
        p = Path(p)
        return p if p.is_absolute() else (base / p).resolve()

    study_path = Path(study).resolve() if study is not None else (resolve(raw["study"]) if "study" in raw else None)
    if study_path is None:
        raise CxlabError("No study: give a run config with a `study:` key or --study STUDY.yaml.")
    nb_dir = (Path(notebooks_dir).resolve() if notebooks_dir is not None
              else resolve(raw["notebooks_dir"]) if "notebooks_dir" in raw
              else (Path.cwd() / "notebooks") if (Path.cwd() / "notebooks").is_dir()
              else _repo_root() / "notebooks")
    if not nb_dir.is_dir():
        raise CxlabError(f"Notebook folder {str(nb_dir)!r} does not exist.")
    names = raw.get("notebooks") or _notebook_paths(nb_dir)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CxlabError(f"{source}: `notebooks` must be a list of notebook names, e.g. [01-data-audit].")
    names = [n.removesuffix(".ipynb") for n in names]
    missing = [n for n in names if not (nb_dir / f"{n}.ipynb").is_file()]
    if missing:
        raise CxlabError(f"Notebook(s) {missing} not found in {nb_dir}; available: {_notebook_paths(nb_dir)}.")
    if not names:
        raise CxlabError(f"No notebooks (NN-topic.ipynb) in {nb_dir}.")
    out_dir = (Path(out).resolve() if out is not None else resolve(raw["out"]) if "out" in raw
               else nb_dir.parent / "reports")
    for key, kind in (("parameters", dict), ("notebook_parameters", dict), ("secret", list)):
        if key in raw and not isinstance(raw[key], kind):
            raise CxlabError(f"{source}: `{key}` must be a {kind.__name__}.")
    for key, what in (("timeout", "seconds per notebook, > 0"), ("jobs", "notebooks at once, >= 1")):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 1):
            raise CxlabError(f"{source}: `{key}` must be a whole number ({what}), got {raw[key]!r}.")
    unknown_nb = set(raw.get("notebook_parameters", {})) - set(names)
    if unknown_nb:
        raise ParameterError(f"{source}: notebook_parameters names {sorted(unknown_nb)}, which are not "
                             f"notebooks of this run {names}.")
    name = raw.get("name") or (path.stem if path is not None else f"study-{study_path.parent.name}")
    return RunConfig(name=str(name), study=study_path, notebooks_dir=nb_dir, notebooks=names, out=out_dir,
                     parameters=dict(raw.get("parameters", {})),
                     notebook_parameters={k: dict(v or {}) for k, v in raw.get("notebook_parameters", {}).items()},
                     secret=list(raw.get("secret", [])), timeout=int(raw.get("timeout", 1800)),
                     jobs=int(raw.get("jobs", 0)), source=source)


#: the smallest group any output may describe, set once per run for every notebook
DEFAULT_MIN_CELL = 10
#: values of ``min_cell`` below this are refused: a group of 4 or fewer is never shown
MIN_CELL_FLOOR = 5
#: parameters that left the notebooks, and where they live now
MOVED_PARAMETERS = {
    "good_customer_min": "the study spec, as segments.disappointed.good_customer_min",
    "recognised_min": "the study spec, as segments.disappointed.recognised_min",
}


def _check_min_cell(value) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"min_cell must be a whole number >= {MIN_CELL_FLOOR}, got {value!r}."]
    if value < MIN_CELL_FLOOR:
        return [f"min_cell must be >= {MIN_CELL_FLOOR} (the smallest group of customers any output may "
                f"describe), got {value}. Set it once per run: `parameters: {{min_cell: 10}}` in the run "
                f"config or --set min_cell=10."]
    return []


def resolve_parameters(config: RunConfig, overrides: list[str] = ()) -> dict[str, dict[str, Any]]:
    """Parameters per notebook, checked against each notebook's parameters cell.

    ``min_cell`` is set once per run (config ``parameters:`` or ``--set min_cell=``, default
    :data:`DEFAULT_MIN_CELL`, at least :data:`MIN_CELL_FLOOR`) and given to every notebook, each
    of which must declare it. Every problem is reported at once, before any kernel starts.
    """
    shared = dict(config.parameters)
    per_nb = {n: dict(config.notebook_parameters.get(n, {})) for n in config.notebooks}
    problems = []
    for text in overrides:
        nb, name, value = parse_override(text)
        if nb is None:
            shared[name] = value
        elif nb not in per_nb:
            raise ParameterError(f"--set {text!r}: no notebook {nb!r} in this run; notebooks: {config.notebooks}.")
        else:
            per_nb[nb][name] = value
    for where, values in [("parameters", shared), *((f"notebook_parameters of {n}", v) for n, v in per_nb.items())]:
        for key in values:
            if key in MOVED_PARAMETERS:
                problems.append(f"parameter {key!r} ({where}) is no longer a notebook parameter: it moved to "
                                f"{MOVED_PARAMETERS[key]}. Remove it from the run config / --set and set it there.")
    for n, values in per_nb.items():
        if "min_cell" in values:
            problems.append(f"min_cell is set once per run for every notebook, not for {n} alone: use "
                            f"`parameters: {{min_cell: ...}}` in the run config or --set min_cell=...")
    min_cell = shared.setdefault("min_cell", DEFAULT_MIN_CELL)
    problems += _check_min_cell(min_cell)
    declared = {n: read_parameters(config.notebooks_dir / f"{n}.ipynb") for n in config.notebooks}
    for n, decl in declared.items():
        if "study_path" not in decl:
            problems.append(f"{n}: the parameters cell must declare `study_path: str = ...`.")
        if "min_cell" not in decl:
            problems.append(f"{n}: the parameters cell must declare `min_cell: int = {DEFAULT_MIN_CELL}` "
                            f"(the run gives every notebook the same smallest group size).")
    all_names = set().union(*(d.keys() for d in declared.values()))
    for key in shared:
        if key not in all_names and key not in MOVED_PARAMETERS and key != "min_cell":
            import difflib

            close = difflib.get_close_matches(key, sorted(all_names), n=1)
            problems.append(f"unknown parameter {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                            + f"; the notebooks declare: {', '.join(sorted(all_names))}.")
    resolved: dict[str, dict[str, Any]] = {}
    for n, decl in declared.items():
        values = {k: v for k, v in shared.items() if k in decl and k not in MOVED_PARAMETERS}
        values.update({k: v for k, v in per_nb[n].items() if k not in MOVED_PARAMETERS and k != "min_cell"})
        values["study_path"] = str(config.study)
        try:
            resolved[n] = check_parameters(config.notebooks_dir / f"{n}.ipynb", values, decl)
        except ParameterError as exc:
            problems.append(str(exc))
    if problems:
        raise ParameterError("\n".join(dict.fromkeys(problems)))
    return resolved


# ---- provenance -----------------------------------------------------------------------------


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


def git_commit() -> str | None:
    try:
        root = _repo_root()
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
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


# ---- locking --------------------------------------------------------------------------------


class RunLock:
    """An exclusive lock on an output folder (``OUT/.lock``), released on exit."""

    def __init__(self, out: Path, timeout: float, log):
        self.path = out / ".lock"
        self.timeout = timeout
        self.log = log
        self.fh = None

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.fh.seek(0)
                holder = self.fh.read().strip() or "another run"
                if time.monotonic() >= deadline:
                    self.fh.close()
                    raise RunLocked(f"{self.path.parent} is locked by {holder}; waited {self.timeout:.0f} s. "
                                    f"Wait for it to finish, or use another --out folder.")
                if not told:
                    self.log(f"waiting for {holder} to release {self.path} ...")
                    told = True
                time.sleep(0.5)
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} since {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        import fcntl

        self.fh.seek(0)
        self.fh.truncate()
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


class RunLocked(CxlabError):
    exit_code = EXIT_LOCKED


# ---- execution ------------------------------------------------------------------------------


# phases timed by the worker (cxlab.report.execute), in order; see the manifest schema
_WORKER_PHASES = ("prepare_s", "kernel_start_s", "execute_s", "shutdown_s")


def _error_notebook(src: Path, message: str, ename: str) -> nbformat.NotebookNode:
    """The input notebook with an error cell appended (when execution left no output)."""
    nb = nbformat.read(src, as_version=4)
    cell = nbformat.v4.new_code_cell("# cxlab run: this notebook did not finish")
    cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])]
    nb.cells.append(cell)
    return nb


def _read_worker_output(stream, name: str, events: dict, tail: list, progress_log) -> None:
    """Read the worker's stdout line by line (a thread): progress events are timed and, when
    ``progress_log`` is given, shown as they arrive; every other line is kept for the error log."""
    from cxlab.report.execute import PROGRESS_PREFIX

    size = 0
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        if line.startswith(PROGRESS_PREFIX):
            try:
                event = json.loads(line[len(PROGRESS_PREFIX):])
            except ValueError:
                continue
            events.setdefault(event.get("event"), time.monotonic())
            if event.get("event") == "cell" and progress_log is not None:
                heading = f" · {event['heading']}" if event.get("heading") else ""
                progress_log(f"{name}: cell {event.get('k')}/{event.get('n')}{heading}")
            continue
        tail.append(line)
        size += len(line)
        while size > 6000 and len(tail) > 1:
            size -= len(tail.pop(0))
    stream.close()


def _execute(name: str, config: RunConfig, params: dict, work: Path, log, progress: bool = False,
             finished=None) -> dict:
    """Run one notebook in a worker process; ``finished()`` returns the run's progress text
    ("2/4 notebooks finished") for the notebook's last log line."""
    import threading

    src = config.notebooks_dir / f"{name}.ipynb"
    out_nb = work / f"{name}.ipynb"
    params_file = work / ".exec" / f"{name}.params.json"
    status_file = work / ".exec" / f"{name}.status.json"
    params_file.parent.mkdir(exist_ok=True)
    params_file.write_text(json.dumps(params), encoding="utf-8")
    cmd = [sys.executable, "-m", "cxlab.report.execute", str(src), str(out_nb), str(params_file),
           str(status_file), str(config.notebooks_dir)]
    log(f"{name}: running")
    t0 = time.monotonic()
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)  # the kernel's inline backend embeds the figures
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env)
    events: dict[str, float] = {}
    tail: list[str] = []
    reader = threading.Thread(target=_read_worker_output, daemon=True,
                              args=(proc.stdout, name, events, tail, log if progress else None))
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=config.timeout or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    duration = time.monotonic() - t0
    reader.join(timeout=15)  # the kernel (own session) exits within ~1 s of its parent; never hang
    output = "".join(tail)
    try:
        status = json.loads(status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = {"status": "failed", "ename": "WorkerError", "evalue": "the notebook worker left no status",
                  "reason": "execution failed"}
    worker_timings = status.pop("timings", None) or {}
    if timed_out:
        status = {"status": "failed", "ename": "Timeout",
                  "evalue": f"the notebook ran longer than {config.timeout} s and was stopped",
                  "reason": "timeout", "cell": None}
    elif status.get("status") == "running":
        status = {"status": "failed", "ename": "KernelDied",
                  "evalue": "the notebook process ended abruptly (killed or out of memory)",
                  "reason": "killed", "cell": None}
    if status["status"] != "succeeded":
        status.setdefault("log_tail", output[-3000:])
    try:
        nb = nbformat.read(out_nb, as_version=4)
    except (OSError, ValueError):
        nb = None
    if nb is None:
        nb = _error_notebook(src, status.get("evalue", "no output"), status.get("ename", "Error"))
    elif status["status"] != "succeeded" and not any(
            o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])):
        err = _error_notebook(src, status.get("evalue", ""), status.get("ename", "Error")).cells[-1]
        nb.cells.append(err)
    status["duration_s"] = round(duration, 2)
    ready = events.get("ready")
    status["timings"] = {"startup_s": round(ready - t0, 3) if ready is not None else None,
                         **{k: worker_timings.get(k) for k in _WORKER_PHASES},
                         "worker_s": round(duration, 3)}
    log(f"{name}: {status['status']} in {duration:.1f} s"
        + ("" if status["status"] == "succeeded" else f" ({status.get('ename')}: {status.get('evalue')})")
        + (f" · {finished()}" if finished is not None else ""))
    return {"name": name, "nb": nb, "status": status}


def notebook_title(nb) -> str | None:
    """The notebook's title: the first level-1 markdown heading (None without one)."""
    import re

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", cell.source, re.M)
            if m:
                return re.sub(r"[*_`]", "", m.group(1)).strip()[:120] or None
    return None


def _scrub_secrets(nb: nbformat.NotebookNode, secret_values: list[str]) -> None:
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            for v in secret_values:
                cell.source = cell.source.replace(repr(v), repr(REDACTED)).replace(v, REDACTED)
    pm = nb.metadata.get("papermill", {})
    if "parameters" in pm:
        pm["parameters"] = {k: (REDACTED if v in secret_values else v) for k, v in pm["parameters"].items()}


def _redact_tree(folder: Path, secret_values: list[str]) -> list[str]:
    """Last line of defence: remove any secret value left in any output file."""
    touched = []
    values = [v for v in secret_values if len(v) >= 4]
    if not values:
        return touched
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = text
        for v in values:
            new = new.replace(v, REDACTED)
        if new != text:
            p.write_text(new, encoding="utf-8")
            touched.append(p.name)
    return touched


# ---- comparison -----------------------------------------------------------------------------


from cxlab.report.compare import compare_metrics, run_basis  # noqa: E402 (engineer G: run comparison)


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


# ---- the run ---------------------------------------------------------------------------------


def schedule(notebooks: list[str], previous: dict | None) -> list[str]:
    """The order to start notebooks in: longest first by the previous successful run's durations
    (so the slowest notebook does not start last and stretch the run), the rest in config order.
    Results and reports keep the config order."""
    if not previous:
        return list(notebooks)
    took = {n.get("name"): n.get("duration_s") or 0.0 for n in previous.get("notebooks") or []}
    unknown = [n for n in notebooks if n not in took]   # new notebooks: no estimate, start first
    known = sorted((n for n in notebooks if n in took), key=lambda n: -took[n])
    return unknown + known


def _new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _point_latest(out: Path, run_id: str) -> None:
    link = out / "latest"
    tmp = out / f".latest-{run_id}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_id, tmp)
        os.replace(tmp, link)
    except OSError:  # filesystems without symlinks: a pointer file
        (out / "LATEST").write_text(run_id + "\n", encoding="utf-8")


def run(config: RunConfig, overrides: list[str] = (), jobs: int | None = None, lock_timeout: float = 3600,
        log=None, progress: bool | None = None) -> dict:
    """Execute a run; return its manifest (also written to ``OUT/<run id>/manifest.json``).

    ``log(message)`` receives one line per event (default: ``cxlab run: ...`` on stderr): the
    run's start and end and each notebook's start and finish; with ``progress`` also each code
    cell as it starts (``02-survival-drivers: cell 5/20 · Proportional hazards``), streamed live
    from the worker. ``progress=None`` shows cells only when stderr is a terminal, so cron logs
    stay short.
    """
    from cxlab.report.html import export_html
    from cxlab.report.index import write_index
    from cxlab.study import load_study

    log = log or (lambda msg: print(f"cxlab run: {msg}", file=sys.stderr, flush=True))
    study = load_study(config.study)            # user errors surface before anything runs
    params = resolve_parameters(config, overrides)
    secret_names = set(config.secret)
    for n in config.notebooks:
        for p in read_parameters(config.notebooks_dir / f"{n}.ipynb").values():
            if p.secret:
                secret_names.add(p.name)
    secret_values = sorted({str(v) for ps in params.values() for k, v in ps.items()
                            if _is_secret(k, list(secret_names)) and v not in (None, "")})
    if progress is None:
        progress = sys.stderr.isatty()
    jobs = jobs or config.jobs or os.cpu_count() or 1
    data = {role: fingerprint(p) for role, p in study.files.items() if p.is_file()}

    config.out.mkdir(parents=True, exist_ok=True)
    with RunLock(config.out, lock_timeout, log):
        run_id = _new_run_id()
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=config.out))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; a run folder is for reviewers to read
        started = dt.datetime.now(dt.timezone.utc)
        t0 = time.monotonic()
        log(f"run {run_id}: {len(config.notebooks)} notebook(s), {min(jobs, len(config.notebooks))} at once")
        previous = _previous_manifest(config.out, config.name)
        order = schedule(config.notebooks, previous)
        done = iter(range(1, len(config.notebooks) + 1))   # next() is atomic under the GIL

        def finished() -> str:
            return f"{next(done)}/{len(config.notebooks)} notebooks finished"

        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(config.notebooks)))) as pool:
            by_name = dict(zip(order, pool.map(
                lambda n: _execute(n, config, params[n], work, log, progress, finished), order)))
        results = [by_name[n] for n in config.notebooks]
        shutil.rmtree(work / ".exec", ignore_errors=True)

        header_base = {"study_name": study.name, "snapshot_date": str(study.snapshot_date), "run_id": run_id,
                       "data": data, "versions": versions(), "git_commit": git_commit(),
                       "secret_keys": sorted(secret_names | {k for ps in params.values() for k in ps
                                                             if _is_secret(k, list(secret_names))})}
        notebooks, metrics = [], {}
        for r in results:
            nb, status = r["nb"], r["status"]
            _scrub_secrets(nb, secret_values)
            nbformat.write(nb, work / f"{r['name']}.ipynb")
            header = dict(header_base, notebook=r["name"], status=status["status"],
                          parameters=_redact(params[r["name"]], sorted(secret_names)),
                          started_at=started.isoformat(timespec="seconds"), duration_s=status["duration_s"],
                          error=None if status["status"] == "succeeded" else
                          {k: status.get(k) for k in ("ename", "evalue", "cell", "reason")})
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
                "error": None if status["status"] == "succeeded" else
                {k: status.get(k) for k in ("ename", "evalue", "cell", "reason")},
                "findings": read_findings(nb),
                "omissions": read_omissions(nb),
                "timings": timings,
            })
        ok = all(n["status"] == "succeeded" for n in notebooks)
        manifest = {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "run_id": run_id,
            "status": "succeeded" if ok else "failed",
            "failed_reason": None if ok else "; ".join(
                f"{n['name']}: {n['error']['ename']}: {n['error']['evalue']}" for n in notebooks if n["error"]),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t0, 2),
            "config": config.as_dict(),
            "study": {"name": study.name, "snapshot_date": str(study.snapshot_date), "spec": str(config.study)},
            "parameters": {n: _redact(p, sorted(secret_names)) for n, p in params.items()},
            "data": data,
            "versions": header_base["versions"],
            "git_commit": header_base["git_commit"],
            "notebooks": notebooks,
            "metrics": metrics,
            "previous_run": previous["run_id"] if previous else None,
            "comparison_basis": (basis := run_basis(config, {n: _redact(p, sorted(secret_names)) for n, p in params.items()}, previous)),
            "comparison": compare_metrics(metrics, previous["metrics"], basis["differences"]) if previous else [],
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        write_index(work, manifest)
        _redact_tree(work, secret_values)
        final = config.out / run_id
        os.replace(work, final)
        if ok:
            _point_latest(config.out, run_id)
        log(f"run {run_id} {manifest['status']}: {final / 'index.html'}")
    return manifest


def run_from_cli(args) -> int:
    if args.config is None and args.study is None:
        raise CxlabError("Give a run config (cxlab run runs/monthly.yaml) or --study STUDY.yaml.")
    if args.timeout is not None and args.timeout <= 0:
        raise CxlabError(f"--timeout must be > 0 (seconds per notebook), got {args.timeout}.")
    if args.jobs is not None and args.jobs < 1:
        raise CxlabError(f"--jobs must be at least 1, got {args.jobs}.")
    lock_timeout = getattr(args, "lock_timeout", 3600)
    if lock_timeout is None or not lock_timeout >= 0:   # also refuses nan
        raise CxlabError(f"--lock-timeout must be >= 0 (seconds to wait for another run), got {lock_timeout}.")
    config = load_run_config(args.config, study=args.study, out=args.out, notebooks_dir=args.notebooks)
    if args.timeout is not None:
        config.timeout = args.timeout
    manifest = run(config, overrides=args.overrides, jobs=args.jobs,
                   lock_timeout=lock_timeout,
                   progress=True if getattr(args, "verbose", False) else None)
    return EXIT_OK if manifest["status"] == "succeeded" else EXIT_FAILED
