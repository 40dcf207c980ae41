"""A kernel that dies or stays silent while starting (before any cell ran: jupyter_client's "Kernel
died before replying to kernel_info" and "Kernel didn't respond in 60 seconds", each seen once in a
full run) is started once more by the worker; a second failure, or one after a cell ran, fails the
notebook as before. Each attempt's kernel talks over abstract Unix sockets of its own (on Linux), so
two workers starting kernels at once cannot be handed the same TCP port."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import papermill as pm
import pytest

from cxlab.report import execute


DIED = "Kernel died before replying to kernel_info"
SILENT = "Kernel didn't respond in 60 seconds"


def _run(tmp_path, monkeypatch, failures, after_a_cell=False, message=DIED):
    calls = []

    def fake(src, out, **kw):
        calls.append(kw["config"])
        if len(calls) <= failures:
            if after_a_cell:
                clock_marks["first_cell"] = 0.0
            raise RuntimeError(message)

    clock_marks = {}
    real_clock = execute._Clock

    class Clock(real_clock):
        def __init__(self):
            super().__init__()
            self.marks = clock_marks

    monkeypatch.setattr(pm, "execute_notebook", fake)
    monkeypatch.setattr(execute, "_Clock", Clock)
    monkeypatch.setattr(execute, "_kernels_die_with_this_worker", lambda: None)
    monkeypatch.setattr(execute, "emit", lambda *a, **k: None)
    import cxlab.report.procs as procs

    monkeypatch.setattr(procs, "set_parent_death_signal", lambda *a, **k: None)   # not on pytest itself
    params, status = tmp_path / "p.json", tmp_path / "s.json"
    params.write_text("{}")
    code = execute.main(["in.ipynb", "out.ipynb", str(params), str(status), str(tmp_path)])
    return code, json.loads(status.read_text()), calls


@pytest.mark.parametrize("message", [DIED, SILENT])
def test_one_failed_start_is_retried(tmp_path, monkeypatch, message):
    code, status, calls = _run(tmp_path, monkeypatch, failures=1, message=message)
    assert (code, status["status"], len(calls)) == (0, "succeeded", 2)


@pytest.mark.parametrize("message", [DIED, SILENT])
@pytest.mark.parametrize("failures, after_a_cell, calls", [(2, False, 2), (1, True, 1)])
def test_a_second_failure_or_one_after_a_cell_fails(tmp_path, monkeypatch, failures, after_a_cell, calls,
                                                    message):
    code, status, made = _run(tmp_path, monkeypatch, failures=failures, after_a_cell=after_a_cell,
                              message=message)
    assert (code, status["status"], len(made)) == (1, "failed", calls)
    assert status["evalue"] == message


def test_another_runtime_error_is_not_retried(tmp_path, monkeypatch):
    code, status, made = _run(tmp_path, monkeypatch, failures=1, message="Kernel is dead")
    assert (code, status["status"], len(made)) == (1, "failed", 1)


def test_each_attempt_gets_sockets_of_its_own(tmp_path, monkeypatch):
    _, _, configs = _run(tmp_path, monkeypatch, failures=1)
    names = [c.KernelManager.ip for c in configs]
    assert [c.KernelManager.transport for c in configs] == ["ipc", "ipc"]
    assert all(n.startswith("@cxlab-kernel-") for n in names) and len(set(names)) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's")
def test_a_real_kernel_runs_over_abstract_unix_sockets_and_leaves_no_file(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from ipykernel import get_connection_info\nprint(get_connection_info())")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    params, status = tmp_path / "p.json", tmp_path / "s.json"
    params.write_text("{}")
    before = set(tmp_path.iterdir())
    proc = subprocess.run([sys.executable, "-m", "cxlab.report.execute", str(src), str(out), str(params),
                           str(status), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads(nbformat.read(out, as_version=4).cells[0].outputs[0]["text"])
    assert info["transport"] == "ipc" and info["ip"].startswith("@cxlab-kernel-")
    assert set(tmp_path.iterdir()) - before == {out, status}
