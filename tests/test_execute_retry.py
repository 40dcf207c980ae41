"""A kernel that dies while starting (before any cell ran: jupyter_client's "Kernel died before
replying to kernel_info", seen once in a fresh-clone run under load) is started once more by the
worker; a second death, or a death after a cell ran, fails the notebook as before."""

from __future__ import annotations

import json

import papermill as pm
import pytest

from cxlab.report import execute


def _run(tmp_path, monkeypatch, failures, after_a_cell=False):
    calls = []

    def fake(src, out, **kw):
        calls.append(1)
        if len(calls) <= failures:
            if after_a_cell:
                clock_marks["first_cell"] = 0.0
            raise RuntimeError("Kernel died before replying to kernel_info")

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
    return code, json.loads(status.read_text()), len(calls)


def test_one_death_at_start_is_retried(tmp_path, monkeypatch):
    code, status, calls = _run(tmp_path, monkeypatch, failures=1)
    assert (code, status["status"], calls) == (0, "succeeded", 2)


@pytest.mark.parametrize("failures, after_a_cell, calls", [(2, False, 2), (1, True, 1)])
def test_a_second_death_or_one_after_a_cell_fails(tmp_path, monkeypatch, failures, after_a_cell, calls):
    code, status, n = _run(tmp_path, monkeypatch, failures=failures, after_a_cell=after_a_cell)
    assert (code, status["status"], n) == (1, "failed", calls)
    assert "kernel_info" in status["evalue"]
