"""`cxlab run` passes each notebook its share of the cores: the kernel sees CXLAB_N_JOBS =
max(1, cores // notebooks at once), which cxlab.workbook.resolve_n_jobs turns into the bootstraps'
worker count (two notebooks with two joblib workers each would oversubscribe two cores)."""

import json

import nbformat
import pytest
from test_runner import notebook, tiny_study

from cxlab.report.record import read_metrics
from cxlab.report.runner import load_run_config, run

BODY = '''
import os
from cxlab.report import record_metric
from cxlab.workbook import resolve_n_jobs
record_metric("env.n_jobs", float(os.environ.get("CXLAB_N_JOBS", "0")))
record_metric("env.resolved", float(resolve_n_jobs(0)))
'''


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for name in ("01-first", "02-second", "03-third"):
        notebook(nbs / f"{name}.ipynb", body=BODY)
    tiny_study(tmp_path)
    cfg = {"name": "tiny", "study": "study.yaml", "out": "reports", "notebooks_dir": "notebooks"}
    (tmp_path / "run.yaml").write_text(json.dumps(cfg), encoding="utf-8")
    return tmp_path


def _seen(project, manifest):
    """(CXLAB_N_JOBS, resolve_n_jobs(0)) as each kernel saw them, from each executed notebook."""
    seen = {}
    for nb in manifest["notebooks"]:
        m = read_metrics(nbformat.read(project / "reports" / manifest["run_id"] / f"{nb['name']}.ipynb", 4))
        seen[nb["name"]] = (m["env.n_jobs"]["estimate"], m["env.resolved"]["estimate"])
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("cores, jobs, expected", [(4, 2, 2), (4, 1, 4), (6, 6, 2), (2, 3, 1)])
def test_each_kernel_gets_its_share_of_the_cores(project, monkeypatch, cores, jobs, expected):
    # (6, 6): three notebooks, so three at once (6 // 3); (2, 3): never fewer than one worker
    import cxlab.report.runner as runner

    monkeypatch.setattr(runner.os, "cpu_count", lambda: cores)
    monkeypatch.delenv("CXLAB_N_JOBS", raising=False)
    manifest = run(load_run_config(project / "run.yaml"), log=lambda _m: None, jobs=jobs)
    assert manifest["status"] == "succeeded"
    assert _seen(project, manifest) == {n: (expected, expected) for n in ("01-first", "02-second", "03-third")}
