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

Before anything is written, the config, the study spec, its data (``cxlab.data.validate``, the same
checks as ``cxlab validate``) and every parameter (name, type and the allowed values declared in
the notebooks' parameters cells, :mod:`cxlab.report.params`) are checked; ``min_cell`` is set
once per run for every notebook (default 10, at least 5).

Faults: SIGINT/SIGTERM kill every worker and kernel and publish the run as ``interrupted`` (a
signal outside the notebooks' execution, or a second one, removes the unfinished folder
instead); workers and kernels die with the runner even on ``kill -9``
(:mod:`cxlab.report.workers`, :mod:`cxlab.report.procs`), and the next run removes a dead run's
``.tmp-`` folder. A full disk or an output folder that cannot be written gives one line on
stderr, never a traceback, and leaves no ``.tmp-`` folder. Secret parameter values are scrubbed
from every output and log line (:mod:`cxlab.report.scrub`).

Exit codes: 0 all notebooks succeeded; 1 the run finished but a notebook failed (its HTML shows
the error), or the disk filled up once the run had started; 2 user error (bad config, study,
data or parameter, unusable output folder: nothing was run); 3 another run holds the lock on OUT
for longer than ``--lock-timeout``; 130 / 143 stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from cxlab.errors import CxlabError, ParameterError
from cxlab.report.params import check_parameters, parse_override, parse_run_config, read_parameters
from cxlab.report.record import read_findings, read_metrics, read_omissions

__all__ = ["RunConfig", "load_run_config", "run", "run_from_cli", "schedule", "MANIFEST_SCHEMA_VERSION",
           "MANIFEST_SCHEMA_PATH"]

MANIFEST_SCHEMA_VERSION = 1
#: JSON Schema of manifest.json (every key, its type and meaning)
MANIFEST_SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_LOCKED = 0, 1, 2, 3
from cxlab.report.scrub import MASK as REDACTED  # noqa: E402
from cxlab.report.scrub import SECRET_WORDS as _SECRET_WORDS  # noqa: E402


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
                "notebooks_dir": str(self.notebooks_dir), "notebooks": self.notebooks, "timeout": self.timeout, "jobs": self.jobs,
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
        raw = parse_run_config(raw, str(path))   # pydantic: unknown keys, kinds of values
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


from cxlab.report.workers import WORKER_PHASES as _WORKER_PHASES  # noqa: E402
from cxlab.report.workers import error_notebook as _error_notebook  # noqa: E402,F401


def notebook_title(nb) -> str | None:
    """The notebook's title: the first level-1 markdown heading (None without one)."""
    import re

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", cell.source, re.M)
            if m:
                return re.sub(r"[*_`]", "", m.group(1)).strip()[:120] or None
    return None


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


class RunInterrupted(CxlabError):
    """SIGINT/SIGTERM stopped the run (exit 130 / 143); ``manifest`` is set when the run was
    published as interrupted."""

    def __init__(self, message: str, signum: int, manifest: dict | None = None, logged: bool = False):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
        self.manifest = manifest
        self.logged = logged


class RunEnvironmentError(CxlabError):
    """The machine stopped the run: no space left, read-only or missing output folder, no
    permission. Exit 2 when nothing could start, 1 when a run started and had to be abandoned."""

    def __init__(self, message: str, exit_code: int = EXIT_USER_ERROR):
        super().__init__(message)
        self.exit_code = exit_code


_ERRNO_TEXT = {
    errno.ENOSPC: ("no space left on device (ENOSPC)", "free some space on that disk or choose another --out"),
    errno.EDQUOT: ("disk quota exceeded (EDQUOT)", "free some space or choose another --out"),
    errno.EROFS: ("read-only file system (EROFS)", "mount it writable or choose another --out"),
    errno.EACCES: ("permission denied (EACCES)", "choose a folder you may write to with --out, or fix its permissions"),
    errno.EPERM: ("operation not permitted (EPERM)", "choose a folder you may write to with --out, or fix its permissions"),
    errno.ENOENT: ("no such file or directory (ENOENT)", "check the --out path"),
    errno.ENOTDIR: ("a file is in the way (ENOTDIR)", "--out must be a folder"),
    errno.EEXIST: ("a file is in the way (EEXIST)", "--out must be a folder"),
}


def _os_reason(exc: OSError) -> tuple[str, str]:
    """(what happened, what to do) for an OSError, in one short line each."""
    reason, fix = _ERRNO_TEXT.get(exc.errno, (exc.strerror or type(exc).__name__, "check the output folder"))
    return reason, fix


def _environment_error(exc: OSError, doing: str, exit_code: int = EXIT_USER_ERROR, after: str = "") -> RunEnvironmentError:
    reason, fix = _os_reason(exc)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return RunEnvironmentError(f"cannot {doing}: {reason}{where}.{after} {fix[0].upper() + fix[1:]}.", exit_code)


def _prepare_out(out: Path) -> None:
    """Create the output folder; any problem is an environment error (exit 2, nothing ran)."""
    if out.exists() and not out.is_dir():
        raise RunEnvironmentError(f"cannot use {out} as the output folder: it is a file. --out must be a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _environment_error(exc, f"create the output folder {out}", after=" Nothing was run.") from None


def _clean_stale_runs(out: Path, log) -> None:
    """Remove the ``.tmp-`` folders of runs whose process is gone (killed, crashed, power cut);
    a folder whose owner still runs, or without an owner record, is left and named."""
    from cxlab.report.procs import owner_alive, read_owner

    for folder in sorted(out.glob(".tmp-*")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        owner = read_owner(folder)
        if owner is None:
            log(f"left {folder.name} in place: it has no owner record (made by an older cxlab?); "
                f"remove it by hand if no run is active")
            continue
        if owner_alive(owner):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log(f"removed {folder.name}, the unfinished folder of run {owner.get('run_id')} "
            f"(process {owner.get('pid')} is no longer running)")


def _secret_setup(config: RunConfig, overrides, declared: dict) -> tuple[set[str], list]:
    """Secret parameter names (config ``secret:``, ``# secret`` comments, secret-sounding
    names) and every value given to them (config, --set, notebook defaults), before any check,
    so that even an error message quoting a value can be scrubbed."""
    names = set(config.secret)
    for decl in declared.values():
        names |= {p.name for p in decl.values() if p.secret}
    values = []
    given = [config.parameters, *config.notebook_parameters.values()]
    for text in overrides:
        try:
            given.append({parse_override(text)[1]: parse_override(text)[2]})
        except ParameterError:
            continue
    for d in given:
        values += [v for k, v in d.items() if _is_secret(k, sorted(names))]
    for decl in declared.values():
        values += [p.default for p in decl.values() if _is_secret(p.name, sorted(names))]
    return names, [str(v) for v in values if v not in (None, "")]


def _check_data(study, spec: Path) -> None:
    """The same checks as ``cxlab validate``, before any kernel: problems -> exit 2."""
    from cxlab.errors import DataContractError
    from cxlab.data.validate import validate_study

    report = validate_study(study)
    if not report.ok:
        raise DataContractError(f"the study's data breaks its contract; nothing was run. Fix these problems "
                                f"(`cxlab validate {spec}` lists them too) and run again.\n\n{report.to_text()}",
                                report.problems)


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


def run(config: RunConfig, overrides: list[str] = (), jobs: int | None = None, lock_timeout: float = 3600,
        log=None, progress: bool | None = None) -> dict:
    """Execute a run; return its manifest (also written to ``OUT/<run id>/manifest.json``).

    ``log(message)`` receives one line per event (default: ``cxlab run: ...`` on stderr): the
    run's start and end and each notebook's start and finish; with ``progress`` also each code
    cell as it starts (``02-survival-drivers: cell 5/20 · Proportional hazards``), streamed live
    from the worker. ``progress=None`` shows cells only when stderr is a terminal, so cron logs
    stay short. Every line, every error message and every output file is scrubbed of secret
    parameter values (:mod:`cxlab.report.scrub`).

    Before anything is written the study spec, the parameters and the data are checked (user
    errors: :class:`CxlabError`, exit 2). SIGINT/SIGTERM raise :class:`RunInterrupted`;
    environment faults (full disk, read-only folder) :class:`RunEnvironmentError`.
    """
    from cxlab.report.scrub import Scrubber

    base_log = log or (lambda msg: print(f"cxlab run: {msg}", file=sys.stderr, flush=True))
    scrubber = Scrubber()

    def scrubbed_log(msg: str) -> None:
        base_log(scrubber.scrub(str(msg)))

    from cxlab.report.workers import Abort, Stopper

    with Stopper() as stopper:     # from here on SIGINT/SIGTERM end the run cleanly
        try:
            declared = {n: read_parameters(config.notebooks_dir / f"{n}.ipynb") for n in config.notebooks}
            secret_names, values = _secret_setup(config, overrides, declared)
            scrubber = Scrubber(values)
            return _run(config, overrides, jobs, lock_timeout, scrubbed_log, progress, secret_names, scrubber,
                        stopper)
        except Abort as stop:      # before the run folder existed: nothing to clean
            message = f"interrupted by {stopper.signal_name} before any notebook started; nothing was written"
            scrubbed_log(message)
            raise RunInterrupted(message, stop.signum, logged=True) from None
        except CxlabError as exc:   # error messages may quote a value: scrub them too
            exc.args = tuple(scrubber.scrub(a) if isinstance(a, str) else a for a in exc.args)
            raise


def _run(config: RunConfig, overrides, jobs, lock_timeout, log, progress, secret_names: set[str], scrubber,
         stopper) -> dict:
    from cxlab.report.procs import write_owner
    from cxlab.report.scrub import Scrubber
    from cxlab.report.workers import Abort
    from cxlab.study import load_study

    study = load_study(config.study)            # user errors surface before anything runs
    from cxlab.data.sources import describe, secret_values   # a source's URL is a secret too
    from cxlab.report.params import take_url_parameter
    config, overrides = take_url_parameter(study, config, overrides)   # source.url_param -> its variable
    scrubber = Scrubber(scrubber.values + secret_values(study))
    try:
        params = resolve_parameters(config, overrides)
    except ParameterError as bad_parameters:   # report the data's problems with them, at once
        try:
            _check_data(study, config.study)
        except CxlabError as bad_data:
            raise ParameterError(f"{bad_parameters}\n\n{bad_data}") from None
        raise
    secret_names = set(secret_names) | {k for ps in params.values() for k in ps if _is_secret(k, sorted(secret_names))}
    scrubber = Scrubber(scrubber.values + [str(v) for ps in params.values() for k, v in ps.items()
                                           if k in secret_names and v not in (None, "")])
    _check_data(study, config.study)
    if progress is None:
        progress = sys.stderr.isatty()
    jobs = jobs or config.jobs or os.cpu_count() or 1
    data = {role: fingerprint(p) for role, p in study.files.items() if p.is_file()} or describe(study)

    work: Path | None = None
    with contextlib.nullcontext():
        try:
            _prepare_out(config.out)
            try:
                lock = RunLock(config.out, lock_timeout, log)
                lock.__enter__()
            except OSError as exc:
                raise _environment_error(exc, f"write to the output folder {config.out}",
                                         after=" Nothing was run.") from None
            try:
                _clean_stale_runs(config.out, log)
                run_id = _new_run_id()
                try:
                    work = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=config.out))
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; a run folder is for reviewers
                    write_owner(work, run_id)
                except OSError as exc:
                    if work is not None:
                        shutil.rmtree(work, ignore_errors=True)
                        work = None
                    raise _environment_error(exc, f"write to the output folder {config.out}",
                                             after=" Nothing was run.") from None
                started = dt.datetime.now(dt.timezone.utc)
                t0 = time.monotonic()
                log(f"run {run_id}: {len(config.notebooks)} notebook(s), {min(jobs, len(config.notebooks))} at once")
                previous = _previous_manifest(config.out, config.name)
                try:
                    stopper.phase = "running"
                    results = _execute_all(config, params, work, log, progress, jobs, previous, stopper)
                    stopper.phase = "publishing"
                    manifest = _publish(config, study, params, data, results, work, run_id, started, t0,
                                        previous, secret_names, scrubber, stopper, log)
                    work = None
                except OSError as exc:
                    stopper.phase = "cleanup"
                    stopper.kill_all()
                    shutil.rmtree(work, ignore_errors=True)
                    reason, fix = _os_reason(exc)
                    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
                    message = (f"run {run_id} failed: {reason}{where}. Removed its unfinished folder; latest and "
                               f"earlier runs are unchanged. {fix[0].upper() + fix[1:]}.")
                    raise RunEnvironmentError(message, EXIT_FAILED) from None
                except Exception:          # a bug in cxlab: keep its traceback, leave nothing half-written
                    stopper.phase = "cleanup"
                    stopper.kill_all()
                    if work is not None:
                        shutil.rmtree(work, ignore_errors=True)
                        log(f"run {run_id} stopped by an internal error; removed its unfinished folder {work.name}")
                    raise
            finally:
                lock.__exit__(None, None, None)
        except Abort as stop:
            stopper.phase = "cleanup"
            stopper.kill_all()
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
                message = (f"interrupted by {stopper.signal_name}: removed the unfinished run folder {work.name}; "
                           f"latest and earlier runs are unchanged")
            else:
                message = f"interrupted by {stopper.signal_name} before any notebook started; nothing was written"
            log(message)
            raise RunInterrupted(message, stop.signum, logged=True) from None
    if manifest["status"] == "interrupted":
        message = (f"run {manifest['run_id']} interrupted by {stopper.signal_name}: published as interrupted in "
                   f"{config.out / manifest['run_id']} ({manifest['failed_reason']}); latest unchanged")
        log(message)
        raise RunInterrupted(message, stopper.signum, manifest, logged=True)
    return manifest


def _execute_all(config: RunConfig, params, work: Path, log, progress, jobs, previous, stopper) -> list[dict]:
    """Run the notebooks, ``jobs`` at once, longest first; results in config order."""
    from concurrent.futures import wait

    from cxlab.report.workers import execute_notebook

    order = schedule(config.notebooks, previous)
    count = {"done": 0}
    lock = threading.Lock()

    def finished(line: str, counted: bool) -> None:
        """Log a notebook's last line with the run's progress; counting and logging under one
        lock, so the counts appear in order. An interrupted notebook is not counted as finished."""
        with lock:
            count["done"] += counted
            log(f"{line} · {count['done']}/{len(config.notebooks)} notebooks finished")

    at_once = max(1, min(jobs, len(config.notebooks)))
    n_jobs = max(1, (os.cpu_count() or 1) // at_once)   # each notebook's share of the cores (CXLAB_N_JOBS)
    pool = ThreadPoolExecutor(max_workers=at_once)
    try:
        futures = {n: pool.submit(execute_notebook, n, config.notebooks_dir / f"{n}.ipynb", config.notebooks_dir,
                                  params[n], work, config.timeout, log, progress, finished, stopper, n_jobs=n_jobs)
                   for n in order}
        pending = set(futures.values())
        while pending:   # short waits: the main thread stays responsive to signals
            _, pending = wait(pending, timeout=0.5)
            stopper.check()
        by_name = {n: f.result() for n, f in futures.items()}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [by_name[n] for n in config.notebooks]


def _publish(config: RunConfig, study, params, data, results, work: Path, run_id: str, started, t0, previous,
             secret_names: set[str], scrubber, stopper, log) -> dict:
    """Write each notebook's ipynb and HTML, the manifest and the index into ``work``, scrub
    them, then move ``work`` to ``OUT/<run id>`` (and ``latest`` to it on success)."""
    from cxlab.report.html import export_html
    from cxlab.report.index import write_index
    from cxlab.report.procs import OWNER_FILE

    shutil.rmtree(work / ".exec", ignore_errors=True)
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
    (work / OWNER_FILE).unlink(missing_ok=True)
    final = config.out / run_id
    stopper.check()
    stopper.phase = "commit"      # a signal now is deferred: the folder is complete
    os.replace(work, final)
    if status_text == "succeeded":
        _point_latest(config.out, run_id)
    stopper.phase = "done"
    if status_text != "interrupted":
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
