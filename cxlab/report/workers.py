"""Notebook workers of a run, and how a run stops.

:func:`execute_notebook` runs one notebook in a worker process (``python -m
cxlab.report.execute``, its own process group, killed with its parent: :mod:`cxlab.report.procs`)
and returns its executed notebook and status. :class:`Stopper` turns SIGINT/SIGTERM into an
orderly stop: the first signal while notebooks run kills every worker and kernel at once and
lets the runner publish what finished as an *interrupted* run; a signal at any other moment (or
a second one) aborts at once, and the runner removes the unfinished run folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

from cxlab.report.procs import kill_tree

__all__ = ["Stopper", "Abort", "execute_notebook", "error_notebook", "SIGNAL_NAMES", "WORKER_PHASES"]

# phases timed by the worker (cxlab.report.execute), in order; see the manifest schema
WORKER_PHASES = ("prepare_s", "kernel_start_s", "execute_s", "shutdown_s")
SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Abort(BaseException):
    """Raised in the main thread by a signal that must stop the run at once (BaseException, so
    no ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(SIGNAL_NAMES.get(signum, str(signum)))
        self.signum = signum


class Stopper:
    """SIGINT/SIGTERM handling for one run (installed only in the main thread).

    ``phase`` is "running" while notebooks execute: the first signal then kills the workers
    (their whole trees: kernels too) and sets :attr:`event`; ``execute_notebook`` reports the
    notebooks it stopped as interrupted. In any other phase, and for a second signal, the
    handler raises :class:`Abort`."""

    def __init__(self):
        self.signum: int | None = None
        self.event = threading.Event()
        self.phase = "setup"
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._old: dict[int, object] = {}
        self._abort: int | None = None   # a signal that must abort, kept until check() sees it
        self._old_hook = None

    @property
    def signal_name(self) -> str | None:
        return SIGNAL_NAMES.get(self.signum) if self.signum is not None else None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNAL_NAMES:
                self._old[sig] = signal.signal(sig, self._handle)
            self._old_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        if self._old_hook is not None:
            sys.unraisablehook, self._old_hook = self._old_hook, None

    def _unraisable(self, info) -> None:
        """An Abort raised inside a finaliser is not an error to print: check() raises it again."""
        if isinstance(info.exc_value, Abort):
            return
        (self._old_hook or sys.__unraisablehook__)(info)

    def _handle(self, signum, frame):
        if self.phase in ("commit", "done", "cleanup"):
            return    # the run folder is complete (or being removed): finish that first
        first = self.signum is None
        if first:
            self.signum = signum
        self.event.set()
        self.kill_all(wait=0)
        if self.phase != "running" or not first:
            # kept as well as raised: a signal that lands while Python runs a finaliser (a
            # weakref callback, __del__) has its exception printed and dropped, so the
            # runner's loops call check() and the abort happens there instead
            self._abort = signum
            raise Abort(signum)

    def check(self) -> None:
        """Raise :class:`Abort` if a signal asked for one (also when its own raise was lost)."""
        if self._abort is not None:
            raise Abort(self._abort)

    def register(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)
        if self.event.is_set():          # the signal came while the worker was being started
            kill_tree(proc.pid, wait=0)

    def unregister(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self, wait: float = 5.0) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_tree(proc.pid, wait=wait)


def error_notebook(src: Path, message: str, ename: str) -> nbformat.NotebookNode:
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


def _not_started(name: str, src: Path, stopper: Stopper) -> dict:
    reason = f"not started: the run was stopped by {stopper.signal_name}"
    status = {"status": "interrupted", "ename": "Interrupted", "evalue": reason, "reason": "interrupted",
              "cell": None, "duration_s": 0.0,
              "timings": {"startup_s": None, **{k: None for k in WORKER_PHASES}, "worker_s": 0.0}}
    # only the title and the reason: exporting the whole unexecuted notebook would slow the stop
    nb = error_notebook(src, reason, "Interrupted")
    title = [c for c in nb.cells[:-1] if c.cell_type == "markdown"][:1]
    nb.cells = title + nb.cells[-1:]
    return {"name": name, "nb": nb, "status": status}


def execute_notebook(name: str, src: Path, cwd: Path, params: dict, work: Path, timeout: int | None, log,
                     progress: bool = False, finished=None, stopper: Stopper | None = None,
                     n_jobs: int | None = None) -> dict:
    """Run one notebook in a worker process; returns {name, nb, status}.

    ``finished(line, counted)`` logs the notebook's last line with the run's progress ("2/4
    notebooks finished"); ``counted`` is false for a notebook that was interrupted. With a ``stopper``, a notebook not yet started when the run is stopped is not
    started, and one running is reported as interrupted."""
    stopper = stopper or Stopper()
    if stopper.event.is_set():
        return _not_started(name, src, stopper)
    out_nb = work / f"{name}.ipynb"
    params_file = work / ".exec" / f"{name}.params.json"
    status_file = work / ".exec" / f"{name}.status.json"
    params_file.parent.mkdir(exist_ok=True)
    params_file.write_text(json.dumps(params), encoding="utf-8")
    cmd = [sys.executable, "-m", "cxlab.report.execute", str(src), str(out_nb), str(params_file),
           str(status_file), str(cwd)]
    log(f"{name}: running")
    t0 = time.monotonic()
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", PYTHONUNBUFFERED="1",
               CXLAB_RUNNER_PID=str(os.getpid()),
               CXLAB_PANEL_CACHE=str(work / ".exec" / "panel-cache"))  # one panel per run (cxlab.data.panelcache)
    if n_jobs:
        env["CXLAB_N_JOBS"] = str(n_jobs)  # the notebook's share of the cores (cxlab.workbook.resolve_n_jobs)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend embeds the figures
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env)
    stopper.register(proc)
    events: dict[str, float] = {}
    tail: list[str] = []
    reader = threading.Thread(target=_read_worker_output, daemon=True,
                              args=(proc.stdout, name, events, tail, log if progress else None))
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc.pid)
        proc.wait()
    finally:
        stopper.unregister(proc)
    duration = time.monotonic() - t0
    reader.join(timeout=15)  # the kernel (own session) exits within ~1 s of its parent; never hang
    output = "".join(tail)
    try:
        status = json.loads(status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = {"status": "failed", "ename": "WorkerError", "evalue": "the notebook worker left no status",
                  "reason": "execution failed"}
    worker_timings = status.pop("timings", None) or {}
    no_space = "No space left on device" in output or status.get("ename") == "NoSpaceLeft"
    if stopper.event.is_set() and status.get("status") in ("running", None) or (
            stopper.event.is_set() and status.get("ename") in ("WorkerError", "KernelDied")):
        status = {"status": "interrupted", "ename": "Interrupted",
                  "evalue": f"stopped by {stopper.signal_name} while running", "reason": "interrupted",
                  "cell": None}
    elif timed_out:
        status = {"status": "failed", "ename": "Timeout",
                  "evalue": f"the notebook ran longer than {timeout} s and was stopped",
                  "reason": "timeout", "cell": None}
    elif no_space and status.get("status") != "succeeded":
        status = {"status": "failed", "ename": "NoSpaceLeft",
                  "evalue": f"no space left on the device holding {work.parent}", "reason": "no space left",
                  "cell": None}
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
        nb = error_notebook(src, status.get("evalue", "no output"), status.get("ename", "Error"))
    elif status["status"] != "succeeded" and not any(
            o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])):
        err = error_notebook(src, status.get("evalue", ""), status.get("ename", "Error")).cells[-1]
        nb.cells.append(err)
    if status["status"] != "succeeded":
        # the failed cell, numbered as the HTML numbers it ("code cell N": code cells of the
        # source notebook from 1, papermill's injected parameters cell not counted)
        from cxlab.report.html import first_error

        first = first_error(nb) if status.get("reason") == "a cell raised an error" else None
        status["cell"] = first["code_cell"] if first else None
    status["duration_s"] = round(duration, 2)
    ready = events.get("ready")
    status["timings"] = {"startup_s": round(ready - t0, 3) if ready is not None else None,
                         **{k: worker_timings.get(k) for k in WORKER_PHASES},
                         "worker_s": round(duration, 3)}
    line = (f"{name}: {status['status']} in {duration:.1f} s"
            + ("" if status["status"] == "succeeded" else f" ({status.get('ename')}: {status.get('evalue')})"))
    if finished is not None:
        finished(line, status["status"] in ("succeeded", "failed"))
    else:
        log(line)
    return {"name": name, "nb": nb, "status": status}
