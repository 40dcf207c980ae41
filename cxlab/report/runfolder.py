"""The output folder of ``cxlab run``: a run is built in ``OUT/.tmp-<run id>/`` (:func:`make_staging`)
and moved to ``OUT/<run id>/`` whole when finished (:func:`publish`); ``OUT/latest`` then points to
it, but only if every notebook succeeded. A lock file (:class:`RunLock`) stops two runs from
writing the same ``OUT`` at once; the next run removes a dead run's ``.tmp-`` folder
(:func:`_clean_stale_runs`). Earlier runs are never touched.

A full disk or an output folder that cannot be written is a :class:`RunEnvironmentError`: one
line saying what happened and what to do (:func:`_environment_error`), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from cxlab.errors import CxlabError

__all__ = ["RunLock", "RunLocked", "RunEnvironmentError", "make_staging", "publish", "EXIT_OK", "EXIT_FAILED",
           "EXIT_USER_ERROR", "EXIT_LOCKED"]

#: exit codes of ``cxlab run`` (see :mod:`cxlab.report.runner`)
EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_LOCKED = 0, 1, 2, 3


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


def make_staging(out: Path, run_id: str) -> Path:
    """Create the run's unfinished folder ``OUT/.tmp-<run id>-*`` (readable like a published run)
    with its owner record. Any problem: an environment error (exit 2, nothing ran) and no folder."""
    from cxlab.report.procs import write_owner

    work: Path | None = None
    try:
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=out))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; a run folder is for reviewers
        write_owner(work, run_id)
    except OSError as exc:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise _environment_error(exc, f"write to the output folder {out}", after=" Nothing was run.") from None
    except BaseException:   # a stop signal while the folder was being made
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    return work


def publish(work: Path, out: Path, run_id: str, stopper, point_latest: bool) -> Path:
    """Move the finished ``work`` folder to ``OUT/<run id>`` in one step (and ``latest`` to it
    when ``point_latest``); a signal from the moment the move starts is deferred (``stopper``)."""
    from cxlab.report.procs import OWNER_FILE

    (work / OWNER_FILE).unlink(missing_ok=True)
    final = out / run_id
    stopper.check()
    stopper.phase = "commit"      # a signal now is deferred: the folder is complete
    os.replace(work, final)
    if point_latest:
        _point_latest(out, run_id)
    stopper.phase = "done"
    return final
