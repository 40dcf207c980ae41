"""Process lifetimes of a run: workers and kernels never outlive ``cxlab run``.

* Each notebook worker (``python -m cxlab.report.execute``) runs in its own process group and
  asks Linux to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so even
  ``kill -9`` of ``cxlab run`` takes it down; the worker does the same for the Jupyter kernel
  it starts (and ipykernel itself exits when its parent changes).
* On SIGINT/SIGTERM the runner kills every worker's process tree at once (:func:`kill_tree`).
* A run folder under construction holds an owner record (pid and start time of the process
  that builds it); a later run removes a ``.tmp-`` folder only when that process is gone
  (:func:`owner_alive`).

Elsewhere than Linux the parent-death signal is unavailable: the runner's signal handling and
ipykernel's parent polling remain.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

__all__ = ["OWNER_FILE", "set_parent_death_signal", "kill_tree", "write_owner", "read_owner", "owner_alive"]

OWNER_FILE = ".owner.json"
_PR_SET_PDEATHSIG = 1

try:  # loaded once, so a forked child only makes the call (no dlopen after fork)
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None
    _prctl = _libc.prctl if _libc is not None else None
except (OSError, AttributeError):  # pragma: no cover - exotic libc
    _prctl = None


def set_parent_death_signal(sig: int = signal.SIGKILL, expected_parent: int | None = None) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    With ``expected_parent``, exit at once if the parent is already gone (it died before the
    request could be made). Returns whether the request was made. Safe in a ``preexec_fn``."""
    if _prctl is None:
        return False
    ok = _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)
    return ok


def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except Exception:  # psutil missing or the process is gone
        return []


def kill_tree(pid: int, wait: float = 5.0) -> list[int]:
    """SIGKILL a worker, its process group and every descendant (kernels run in their own
    sessions, so their groups are killed too). Waits up to ``wait`` seconds for them to go;
    returns the pids that were signalled."""
    own_group = os.getpgrp()
    pids = [pid, *_descendants(pid)]
    for p in pids:
        try:
            pgid = os.getpgid(p)
        except (ProcessLookupError, PermissionError):
            pgid = None
        if pgid is not None and pgid != own_group:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + wait
    for p in pids:
        while time.monotonic() < deadline and _alive(p):
            time.sleep(0.05)
    return pids


def _alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _create_time(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def write_owner(folder: Path, run_id: str) -> None:
    """Record which process builds ``folder`` (pid, its start time, host, run id)."""
    pid = os.getpid()
    record = {"pid": pid, "create_time": _create_time(pid), "host": socket.gethostname(), "run_id": run_id}
    (Path(folder) / OWNER_FILE).write_text(json.dumps(record), encoding="utf-8")


def read_owner(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def owner_alive(owner: dict) -> bool:
    """Whether the process recorded in ``owner`` still runs (same pid *and* start time, so a
    reused pid does not count). A record from another host counts as alive (cannot tell)."""
    if owner.get("host") not in (None, socket.gethostname()):
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return False
    recorded, now = owner.get("create_time"), _create_time(pid)
    return recorded is None or now is None or abs(recorded - now) < 1.0
