"""`cxlab run`: parameters checked before any kernel, atomic run folders, failures that still
yield HTML, timeouts and killed kernels that do not hang, secrets that never reach outputs,
a lock, and the comparison with the previous run."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cxlab.cli import main
from cxlab.errors import ParameterError
from cxlab.report.params import check_parameters, parse_override, read_parameters
from cxlab.report.runner import RunLock, compare_metrics, load_run_config, run

CANARY = "postgres://canary-user:S3CRET-CANARY-9f2@db.internal/warehouse"

PARAMS = '''
study_path: str = "study.yaml"  # the study spec
horizon_months: int = 24  # horizon for retention figures
alpha: float = 0.05  # test level
label: str = "all"  # segment label
warehouse_url: str = ""  # secret: database URL
mode: str = "ok"  # ok | fail | sleep | kill
'''

BODY = '''
import os, time
from cxlab.report import record_metric, record_finding
if mode == "fail":
    raise ValueError("deliberate failure for the test")
if mode == "sleep":
    time.sleep(60)
if mode == "kill":
    os.kill(os.getpid(), 9)
record_metric("demo.horizon", horizon_months)
record_metric("demo.hr", 0.8 if label == "all" else 0.5, 0.7, 0.9)
record_finding(f"Horizon {horizon_months} months for {label}.")
print("done")
'''


def notebook(path, params=PARAMS, body=BODY):
    nb = new_notebook(cells=[new_markdown_cell("# Tiny report\n\nSome text."),
                             new_code_cell(params.strip(), metadata={"tags": ["parameters"]}),
                             new_markdown_cell("## Results"), new_code_cell(body.strip())])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    notebook(nbs / "01-first.ipynb")
    notebook(nbs / "02-second.ipynb")
    (tmp_path / "study.yaml").write_text(textwrap.dedent("""
        name: Tiny study
        snapshot_date: 2026-06-30
        customers: {path: customers.csv, id: id, start: s, end: e}
        surveys: {path: answers.csv, id: id, date: d, constructs: {recognition: [q1]}}
    """), encoding="utf-8")
    (tmp_path / "customers.csv").write_text("id,s,e\nA,2020-01-01,\n", encoding="utf-8")
    return tmp_path


def config(project, **extra):
    cfg = {"name": "tiny", "study": "study.yaml", "out": "reports", "notebooks_dir": "notebooks", **extra}
    p = project / "run.yaml"
    p.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is YAML
    return p


def quiet(_msg):
    pass


def test_read_and_check_parameters(project):
    params = read_parameters(project / "notebooks" / "01-first.ipynb")
    assert list(params) == ["study_path", "horizon_months", "alpha", "label", "warehouse_url", "mode"]
    assert params["horizon_months"].type == "int" and params["horizon_months"].default == 24
    assert params["horizon_months"].help == "horizon for retention figures"
    nb = project / "notebooks" / "01-first.ipynb"
    assert check_parameters(nb, {"alpha": 1}) == {"alpha": 1.0}   # an int is a fine float
    with pytest.raises(ParameterError, match="'horizon_months' must be int, got '24'"):
        check_parameters(nb, {"horizon_months": "24"})
    with pytest.raises(ParameterError, match="must be int, got True"):
        check_parameters(nb, {"horizon_months": True})
    with pytest.raises(ParameterError, match="unknown parameter 'horizon'.*Did you mean 'horizon_months'"):
        check_parameters(nb, {"horizon": 12})
    assert parse_override("02-second:horizon_months=36") == ("02-second", "horizon_months", 36)
    assert parse_override("label=a=b") == (None, "label", "a=b")


def test_bad_parameters_fail_before_any_kernel(project, capsys):
    cfg = config(project)
    code = main(["run", str(cfg), "--set", "horizon=12", "--set", "alpha=high"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown parameter 'horizon'" in err and "did you mean 'horizon_months'" in err
    assert "'alpha' must be float" in err and "Traceback" not in err
    assert not (project / "reports").exists()  # nothing was written
    assert main(["run", str(config(project, jobz=2))]) == 2
    assert "unknown key 'jobz'" in capsys.readouterr().err


def test_failed_notebook_still_yields_html_and_exit_1(project):
    cfg = load_run_config(config(project, notebook_parameters={"02-second": {"mode": "fail"}}))
    manifest = run(cfg, log=quiet)
    out = project / "reports" / manifest["run_id"]
    assert manifest["status"] == "failed"
    status = {n["name"]: n for n in manifest["notebooks"]}
    assert status["01-first"]["status"] == "succeeded"          # the other notebook still ran
    assert status["02-second"]["error"]["ename"] == "ValueError"
    html = (out / "02-second.html").read_text(encoding="utf-8")
    assert "deliberate failure for the test" in html
    assert not (project / "reports" / "latest").exists()        # latest moves only on success
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
    assert (out / "index.html").is_file()
    assert main(["run", str(config(project, notebook_parameters={"02-second": {"mode": "fail"}}))]) == 1


def test_success_latest_metrics_and_comparison(project):
    cfg = load_run_config(config(project, notebooks=["01-first"]))
    first = run(cfg, log=quiet)
    reports = project / "reports"
    assert first["status"] == "succeeded"
    assert os.readlink(reports / "latest") == first["run_id"]
    assert first["metrics"]["demo.horizon"]["estimate"] == 24
    assert first["metrics"]["demo.hr"] == {"estimate": 0.8, "lower": 0.7, "upper": 0.9, "notebook": "01-first"}
    assert first["notebooks"][0]["findings"] == [{"text": "Horizon 24 months for all.", "level": "finding"}]
    assert {"rows", "sha256", "bytes"} <= set(first["data"]["customers"])
    assert first["data"]["customers"]["rows"] == 1
    before = {p: p.stat().st_mtime_ns for p in (reports / first["run_id"]).rglob("*")}
    second = run(cfg, overrides=["label=vip"], log=quiet)
    assert second["previous_run"] == first["run_id"]
    flagged = {c["metric"]: c for c in second["comparison"]}
    assert flagged["demo.hr"]["flag"] and "outside last run's 95 % CI" in flagged["demo.hr"]["text"]
    assert not flagged["demo.horizon"]["flag"]
    assert os.readlink(reports / "latest") == second["run_id"]
    # earlier runs are never modified
    assert before == {p: p.stat().st_mtime_ns for p in (reports / first["run_id"]).rglob("*")}
    assert not [p for p in reports.iterdir() if p.name.startswith(".tmp")]


def test_timeout_and_killed_kernel_do_not_hang(project):
    cfg = load_run_config(config(project, timeout=20, notebook_parameters={
        "01-first": {"mode": "sleep"}, "02-second": {"mode": "kill"}}))
    t0 = time.monotonic()
    manifest = run(cfg, log=quiet)
    assert time.monotonic() - t0 < 55
    status = {n["name"]: n for n in manifest["notebooks"]}
    assert status["01-first"]["error"]["ename"] == "Timeout"
    assert status["02-second"]["status"] == "failed"
    out = project / "reports" / manifest["run_id"]
    for name in ("01-first", "02-second"):
        assert (out / f"{name}.html").stat().st_size > 1000


def test_secret_parameters_never_reach_outputs(project):
    cfg = load_run_config(config(project, notebooks=["01-first"]))
    manifest = run(cfg, overrides=[f"warehouse_url={CANARY}"], log=quiet)
    out = project / "reports" / manifest["run_id"]
    for p in out.rglob("*"):
        if p.is_file():
            assert CANARY not in p.read_text(encoding="utf-8", errors="replace"), p.name
            assert "S3CRET-CANARY" not in p.read_text(encoding="utf-8", errors="replace"), p.name
    assert manifest["parameters"]["01-first"]["warehouse_url"] == "•••"


def test_second_run_waits_for_the_lock_or_says_why(project, capsys):
    cfg = config(project, notebooks=["01-first"])
    (project / "reports").mkdir()
    with RunLock(project / "reports", 1, quiet):
        code = main(["run", str(cfg), "--lock-timeout", "1"])
    assert code == 3
    assert "is locked by pid" in capsys.readouterr().err


def test_compare_metrics_without_interval_uses_relative_change():
    rows = compare_metrics({"a.n": {"estimate": 120.0}, "b.n": {"estimate": 101.0}},
                           {"a.n": {"estimate": 100.0}, "b.n": {"estimate": 100.0}})
    assert [r["flag"] for r in rows] == [True, False]
