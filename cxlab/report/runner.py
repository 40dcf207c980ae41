"""``cxlab run``: execute the notebooks of a run config, export HTML, write the manifest.

This module is the orchestration: checks before anything is written, the run loop, signals,
faults, the CLI entry. The parts live beside it, one concern each:

* :mod:`cxlab.report.runconfig`: the run config (:func:`load_run_config`, whose docstring shows
  the YAML) and every notebook's parameters (:func:`resolve_parameters`);
* :mod:`cxlab.report.runfolder`: the output folder: lock, staging folder ``OUT/.tmp-<run id>/``,
  its atomic move to ``OUT/<run id>/``, ``OUT/latest`` (only if every notebook succeeded), the
  removal of dead runs' folders, and the one-line messages for a full disk or unwritable folder;
* :mod:`cxlab.report.manifest`: what a finished run writes (pages, ``manifest.json``, index) and
  the provenance it records;
* :mod:`cxlab.report.workers` / :mod:`cxlab.report.procs`: one notebook in a worker process, and
  signals; :mod:`cxlab.report.compare`: the comparison with the previous run.

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
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# the parts; every name this module defined before the split still imports from here, as the same object
from cxlab.errors import CxlabError, ParameterError
from cxlab.report.compare import compare_metrics, run_basis  # noqa: F401 (engineer G: run comparison)
from cxlab.report.manifest import (MANIFEST_SCHEMA_PATH, MANIFEST_SCHEMA_VERSION, _previous_manifest,  # noqa: F401
                                   fingerprint, git_commit, notebook_title, versions, write_outputs)
from cxlab.report.params import read_parameters
from cxlab.report.runconfig import (DEFAULT_MIN_CELL, MIN_CELL_FLOOR, MOVED_PARAMETERS, REDACTED,  # noqa: F401
                                    RunConfig, _is_secret, _secret_setup, load_run_config, resolve_parameters)
from cxlab.report.runfolder import (EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USER_ERROR, RunEnvironmentError,  # noqa: F401
                                    RunLock, RunLocked, _clean_stale_runs, _environment_error, _os_reason,
                                    _new_run_id, _prepare_out, make_staging, publish)
from cxlab.report.workers import WORKER_PHASES as _WORKER_PHASES  # noqa: F401
from cxlab.report.workers import error_notebook as _error_notebook  # noqa: F401

__all__ = ["RunConfig", "load_run_config", "run", "run_from_cli", "schedule", "MANIFEST_SCHEMA_VERSION",
           "MANIFEST_SCHEMA_PATH"]


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



class RunInterrupted(CxlabError):
    """SIGINT/SIGTERM stopped the run (exit 130 / 143); ``manifest`` is set when the run was
    published as interrupted."""

    def __init__(self, message: str, signum: int, manifest: dict | None = None, logged: bool = False):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
        self.manifest = manifest
        self.logged = logged



def _check_data(study, spec: Path) -> dict:
    """The same checks as ``cxlab validate``, before any kernel: problems -> exit 2. Returns the
    manifest's ``data`` section of a study read through a source (``describe``; {} for files).

    The check runs in a child process: validating files reads them whole into pandas, and what
    that frees stays with the process that used it (pyarrow's and the C library's pools), so the
    runner would carry 0.4-0.7 GiB at 1 M customers through the whole run for nothing. A source is
    described by the same child (on the same Spark session), so the runner itself never connects:
    a Spark session lives as long as its process, and the runner's would have held a JVM (and its
    heap) through the whole run beside the notebooks' own."""
    from cxlab.errors import DataContractError

    found, described = _in_child(_contract_problems, study)
    if found is not None:
        text, problems = found
        raise DataContractError(f"the study's data breaks its contract; nothing was run. Fix these problems "
                                f"(`cxlab validate {spec}` lists them too) and run again.\n\n{text}", problems)
    return described


def _contract_problems(study):
    """(None when the study's data keeps its contract, else (the report's text, its problems);
    the source's description for the manifest, {} for files or when the contract is broken)."""
    from cxlab.data.sources import describe
    from cxlab.data.validate import validate_study

    report = validate_study(study, collect=False)   # the problems only (a source: nothing collected)
    if not report.ok:
        return (report.to_text(), report.problems), {}
    return None, describe(study)


def _in_child(fn, *args):
    """``fn(*args)`` in a child process (forked when this process has no other thread), its result
    or exception handed back. A signal stops the run here as anywhere in set-up (the child ignores
    SIGINT/SIGTERM and is killed on the way out), and a child that dies says so."""
    import multiprocessing as mp
    import threading

    method = "fork" if threading.active_count() == 1 and "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(send, fn, args), daemon=True)
    proc.start()
    send.close()
    try:
        while not receive.poll(0.1):
            if not proc.is_alive() and not receive.poll(0):
                break
        try:
            kind, value = receive.recv()
        except EOFError:            # the child died without a word
            proc.join()
            raise CxlabError(f"the check of the study's data stopped unexpectedly (exit code {proc.exitcode}, "
                             f"e.g. out of memory); nothing was run. `cxlab validate` runs the same check.") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
    if kind == "raise":
        raise value
    return value


def _child_main(send, fn, args) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the runner decides; it kills this process
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        out = ("return", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to the runner, which raises it
        out = ("raise", exc)
    try:
        send.send(out)
    except Exception as exc:  # noqa: BLE001 - e.g. an exception that cannot be pickled
        send.send(("raise", CxlabError(f"{type(out[1]).__name__}: {out[1]}")))
    send.close()


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
            with _environment_kept():
                return _run(config, overrides, jobs, lock_timeout, scrubbed_log, progress, secret_names,
                            scrubber, stopper)
        except Abort as stop:      # before the run folder existed: nothing to clean
            message = f"interrupted by {stopper.signal_name} before any notebook started; nothing was written"
            scrubbed_log(message)
            raise RunInterrupted(message, stop.signum, logged=True) from None
        except CxlabError as exc:   # error messages may quote a value: scrub them too
            exc.args = tuple(scrubber.scrub(a) if isinstance(a, str) else a for a in exc.args)
            raise


@contextlib.contextmanager
def _environment_kept():
    """The caller's environment as it was, once the run is over: the run exports a source URL
    given as a secret run parameter for its kernels (``take_url_parameter``), and a Python caller
    (a notebook, a scheduler) must not keep that secret in its own ``os.environ``."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k not in before]:
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _run(config: RunConfig, overrides, jobs, lock_timeout, log, progress, secret_names: set[str], scrubber,
         stopper) -> dict:
    from cxlab.report.scrub import Scrubber
    from cxlab.report.workers import Abort
    from cxlab.study import load_study

    study = load_study(config.study)            # user errors surface before anything runs
    from cxlab.data.sources import secret_values   # a source's URL is a secret too
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
    described = _check_data(study, config.study)
    if progress is None:
        progress = sys.stderr.isatty()
    jobs = jobs or config.jobs or os.cpu_count() or 1
    data = {role: fingerprint(p) for role, p in study.files.items() if p.is_file()} or described

    work: Path | None = None
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
            work = make_staging(config.out, run_id)
            started = dt.datetime.now(dt.timezone.utc)
            t0 = time.monotonic()
            log(f"run {run_id}: {len(config.notebooks)} notebook(s), {min(jobs, len(config.notebooks))} at once")
            previous = _previous_manifest(config.out, config.name)
            try:
                stopper.phase = "running"
                results = _execute_all(config, params, work, log, progress, jobs, previous, stopper)
                stopper.phase = "publishing"
                shutil.rmtree(work / ".exec", ignore_errors=True)   # the workers' scratch (panel cache)
                manifest = write_outputs(config, study, params, data, results, work, run_id, started, t0,
                                         previous, secret_names, scrubber, stopper, log)
                final = publish(work, config.out, run_id, stopper, point_latest=manifest["status"] == "succeeded")
                work = None
                if manifest["status"] != "interrupted":
                    log(f"run {run_id} {manifest['status']}: {final / 'index.html'}")
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
