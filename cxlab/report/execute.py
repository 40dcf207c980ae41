"""Execute one notebook with papermill (run in a subprocess by the runner).

``python -m cxlab.report.execute INPUT OUTPUT PARAMS_JSON STATUS_JSON CWD``

The subprocess isolates each notebook: the runner can enforce a whole-notebook timeout by
killing it, and a crash here never takes the run down. The status file says how it ended and
how long each phase took (``timings``).

Progress goes to stdout as one line per event, ``##cxlab-progress## {json}``, flushed at once
so the runner can show it live: ``{"event": "ready"}`` once papermill is imported, then
``{"event": "cell", "k": 3, "n": 20, "heading": "Proportional hazards"}`` as each code cell
starts (``k`` counts code cells; ``heading`` is the last markdown heading above the cell).
Every other line on stdout/stderr is ordinary log output.

The worker dies with the runner, even on ``kill -9``: it asks Linux for a parent-death signal
(``CXLAB_RUNNER_PID`` names the runner) and starts the kernel with the same request
(:mod:`cxlab.report.procs`).

On Linux the kernel talks to the worker over abstract Unix sockets with a name of its own
(:func:`kernel_config`), not over TCP ports: jupyter_client picks a kernel's TCP ports by binding
port 0 and letting go, so two workers starting kernels at the same moment can be handed the same
port (jupyter_client#487; its port cache works within one process only). In a full test run that
showed as a kernel that "died before replying to kernel_info" or "didn't respond in 60 seconds".
Abstract sockets leave no file behind, even after ``kill -9``.
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from pathlib import Path

PROGRESS_PREFIX = "##cxlab-progress## "
ENGINE_NAME = "cxlab-progress"
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _write(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(path)


def emit(event: str, **fields) -> None:
    """One progress event on stdout (read live by the runner)."""
    sys.stdout.write(PROGRESS_PREFIX + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def cell_headings(cells) -> list[str | None]:
    """For each cell, the text of the last markdown heading at or above it (None before any)."""
    out, current = [], None
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            found = _HEADING.findall(cell.get("source", ""))
            if found:
                current = re.sub(r"[*_`]", "", found[0]).strip()[:80] or current
        out.append(current)
    return out


class _Clock:
    """Phase boundaries of one execution (``time.monotonic``), filled in by the engine."""

    def __init__(self):
        self.marks: dict[str, float] = {}

    def mark(self, name: str, once: bool = False) -> None:
        if not (once and name in self.marks):
            self.marks[name] = time.monotonic()

    def seen(self, name: str) -> bool:
        return name in self.marks

    def span(self, start: str, end: str) -> float | None:
        a, b = self.marks.get(start), self.marks.get(end)
        return round(b - a, 3) if a is not None and b is not None else None


def _progress_engine(clock: _Clock):
    """A papermill engine (nbclient) that reports each code cell and times the phases."""
    from papermill.engines import NBClientEngine

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            clock.mark("engine")
            cells = nb_man.nb.cells
            headings = cell_headings(cells)
            code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
            rank = {i: k for k, i in enumerate(code, start=1)}
            start, complete = nb_man.cell_start, nb_man.cell_complete

            def cell_start(cell, cell_index=None, **kw):
                clock.mark("first_cell", once=True)
                if cell_index in rank:
                    emit("cell", k=rank[cell_index], n=len(code), heading=headings[cell_index])
                return start(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                clock.mark("last_cell")
                return complete(cell, cell_index, **kw)

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    return ProgressEngine


def _kernels_die_with_this_worker() -> None:
    """Start kernels with a parent-death signal: a kernel never outlives its worker."""
    from jupyter_client.provisioning import local_provisioner

    from cxlab.report.procs import set_parent_death_signal

    launch = local_provisioner.launch_kernel

    def launch_kernel(cmd, **kwargs):
        kwargs.setdefault("preexec_fn", set_parent_death_signal)
        return launch(cmd, **kwargs)

    local_provisioner.launch_kernel = launch_kernel


def kernel_config():
    """The kernel manager's settings for one attempt: its own abstract Unix sockets on Linux.

    Elsewhere (no abstract namespace) the kernel keeps jupyter_client's TCP default.
    """
    import uuid

    from traitlets.config import Config

    config = Config()
    if sys.platform.startswith("linux"):
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = f"@cxlab-kernel-{uuid.uuid4().hex}"   # '@': the abstract namespace
    return config


# jupyter_client's words for a kernel that never answered its first request
_START_FAILURES = ("died before replying to kernel_info", "didn't respond in")


def _no_space(exc: BaseException | None) -> bool:
    import errno

    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str]) -> int:
    src, out, params_file, status_file, cwd = argv
    clock = _Clock()
    clock.mark("main")
    import os

    from cxlab.report.procs import set_parent_death_signal

    runner = os.environ.get("CXLAB_RUNNER_PID")
    set_parent_death_signal(expected_parent=int(runner) if runner and runner.isdigit() else None)
    import papermill as pm
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    clock.mark("imported")
    _kernels_die_with_this_worker()
    emit("ready")
    papermill_engines.register(ENGINE_NAME, _progress_engine(clock))
    params = json.loads(Path(params_file).read_text(encoding="utf-8"))
    status = Path(status_file)
    t0 = time.time()
    _write(status, {"status": "running", "started": t0})
    clock.mark("call")
    try:
        for attempt in (1, 2):
            try:
                pm.execute_notebook(src, out, parameters=params, cwd=cwd, kernel_name="python3",
                                    engine_name=ENGINE_NAME, progress_bar=False, log_output=False,
                                    request_save_on_cell_execute=True, config=kernel_config())
                break
            except RuntimeError as exc:
                # a kernel that dies or stays silent while starting (nothing ran yet) is started once more
                start_failed = any(words in str(exc) for words in _START_FAILURES)
                if attempt == 2 or not start_failed or clock.seen("first_cell"):
                    raise
                print(f"cxlab worker: the kernel failed to start ({exc}); starting it once more", flush=True)
        result = {"status": "succeeded"}
    except PapermillExecutionError as exc:
        result = {"status": "failed", "ename": exc.ename, "evalue": exc.evalue,
                  "cell": exc.exec_count, "reason": "a cell raised an error"}
    except Exception as exc:  # dead kernel, bad notebook, full disk, ...
        name = type(exc).__name__
        reason = "the kernel died (out of memory or killed)" if "DeadKernel" in name else "execution failed"
        if _no_space(exc):
            name, reason = "NoSpaceLeft", "no space left on device"
        result = {"status": "failed", "ename": name, "evalue": str(exc)[:2000], "cell": None,
                  "reason": reason, "traceback": traceback.format_exc()[-4000:]}
    clock.mark("returned")
    result["duration_s"] = round(time.time() - t0, 3)
    result["timings"] = {
        "prepare_s": clock.span("call", "engine"),
        "kernel_start_s": clock.span("engine", "first_cell"),
        "execute_s": clock.span("first_cell", "last_cell"),
        "shutdown_s": clock.span("last_cell", "returned"),
    }
    try:
        _write(status, result)
    except OSError as exc:
        print(f"cxlab worker: cannot write its status: {exc}", flush=True)
        return 3
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":  # pragma: no cover - exercised through the runner
    sys.exit(main(sys.argv[1:]))
