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
from cxlab.report.runner import MANIFEST_SCHEMA_PATH, RunLock, compare_metrics, load_run_config, run, schedule

CANARY = "postgres://canary-user:S3CRET-CANARY-9f2@db.internal/warehouse"

PARAMS = '''
study_path: str = "study.yaml"  # the study spec
min_cell: int = 10  # smallest group shown [>= 5]
horizon_months: int = 24  # horizon for retention figures [> 0]
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
    time.sleep(900)
if mode == "kill":
    os.kill(os.getpid(), 9)
record_metric("demo.horizon", horizon_months)
from pathlib import Path
n_customers = len(Path(study_path).with_name("customers.csv").read_text().splitlines()) - 1
record_metric("demo.hr", 0.8 if n_customers <= 2 else 0.5, 0.7, 0.9)
record_finding(f"Horizon {horizon_months} months for {label}.")
print("done")
'''


def notebook(path, params=PARAMS, body=BODY):
    nb = new_notebook(cells=[new_markdown_cell("# Tiny report\n\nSome text."),
                             new_code_cell(params.strip(), metadata={"tags": ["parameters"]}),
                             new_markdown_cell("## Results"), new_code_cell(body.strip())])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def tiny_study(folder: Path) -> Path:
    """A small study whose data passes `cxlab validate` (the runner checks it first)."""
    (folder / "study.yaml").write_text(textwrap.dedent("""
        name: Tiny study
        snapshot_date: 2026-06-30
        customers: {path: customers.csv, id: id, start: s, end: e}
        surveys: {path: answers.csv, id: id, date: d, scale: [1, 5], constructs: {recognition: [q1]}}
    """), encoding="utf-8")
    (folder / "customers.csv").write_text("id,s,e\nA,2020-01-01,\nB,2021-03-01,2025-01-31\n", encoding="utf-8")
    (folder / "answers.csv").write_text("id,d,q1\nA,2024-05-01,4\nB,2024-06-01,2\n", encoding="utf-8")
    return folder / "study.yaml"


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    notebook(nbs / "01-first.ipynb")
    notebook(nbs / "02-second.ipynb")
    tiny_study(tmp_path)
    return tmp_path


def config(project, **extra):
    cfg = {"name": "tiny", "study": "study.yaml", "out": "reports", "notebooks_dir": "notebooks", **extra}
    p = project / "run.yaml"
    p.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is YAML
    return p


def quiet(_msg):
    pass


def assert_valid_manifest(manifest: dict) -> None:
    """The manifest as written on disk validates against cxlab/report/manifest.schema.json."""
    import jsonschema

    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == [], errors


def _documented_keys(schema: dict, where: str = "$"):
    """(path, has description) for every property the schema declares, recursively."""
    for key, sub in (schema.get("properties") or {}).items():
        yield f"{where}.{key}", bool(sub.get("description"))
        yield from _documented_keys(sub, f"{where}.{key}")
    for part in ("items", "additionalProperties"):
        if isinstance(schema.get(part), dict):
            yield from _documented_keys(schema[part], f"{where}[]")
    for sub in schema.get("oneOf", []):
        yield from _documented_keys(sub, where)


def test_manifest_schema_is_valid_and_documents_every_key():
    import jsonschema

    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    keys = dict(_documented_keys(schema))
    assert len(keys) > 60
    assert [k for k, documented in keys.items() if not documented] == []
    # strict: a key the runner adds without documenting it makes validation fail
    with pytest.raises(jsonschema.ValidationError, match="undocumented"):
        jsonschema.validate({"undocumented": 1}, {**schema, "required": []})


def test_read_and_check_parameters(project):
    params = read_parameters(project / "notebooks" / "01-first.ipynb")
    assert list(params) == ["study_path", "min_cell", "horizon_months", "alpha", "label", "warehouse_url", "mode"]
    assert params["horizon_months"].type == "int" and params["horizon_months"].default == 24
    assert params["horizon_months"].help == "horizon for retention figures"   # the rule is not help text
    assert params["horizon_months"].rule.text == "> 0"
    assert params["warehouse_url"].secret and not params["label"].secret
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
    assert "unknown parameter 'horizon'" in err and "Did you mean 'horizon_months'" in err
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
    assert_valid_manifest(json.loads((out / "manifest.json").read_text(encoding="utf-8")))


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
    assert first["data"]["customers"]["rows"] == 2
    before = {p: p.stat().st_mtime_ns for p in (reports / first["run_id"]).rglob("*")}
    with open(project / "customers.csv", "a", encoding="utf-8") as fh:   # new data, same everything else
        fh.write("C,2022-01-01,\n")
    second = run(cfg, log=quiet)
    assert second["previous_run"] == first["run_id"]
    flagged = {c["metric"]: c for c in second["comparison"]}
    assert flagged["demo.hr"]["flag"] and "outside last run's 95 % CI" in flagged["demo.hr"]["text"]
    assert not flagged["demo.horizon"]["flag"]
    assert os.readlink(reports / "latest") == second["run_id"]
    # earlier runs are never modified
    assert before == {p: p.stat().st_mtime_ns for p in (reports / first["run_id"]).rglob("*")}
    assert not [p for p in reports.iterdir() if p.name.startswith(".tmp")]
    for m in (first, second):  # without and with a comparison
        assert_valid_manifest(json.loads((reports / m["run_id"] / "manifest.json").read_text(encoding="utf-8")))


def test_timeout_and_killed_kernel_do_not_hang(project):
    cfg = load_run_config(config(project, timeout=20, notebook_parameters={
        "01-first": {"mode": "sleep"}, "02-second": {"mode": "kill"}}))
    t0 = time.monotonic()
    manifest = run(cfg, log=quiet)
    # not a speed check: the sleeping notebook would take 900 s; being stopped at the 20 s timeout
    # (plus kernel start-up, however slow the machine) proves the run does not hang
    assert time.monotonic() - t0 < 600
    status = {n["name"]: n for n in manifest["notebooks"]}
    assert status["01-first"]["error"]["ename"] == "Timeout"
    assert status["02-second"]["status"] == "failed"
    out = project / "reports" / manifest["run_id"]
    for name in ("01-first", "02-second"):
        assert (out / f"{name}.html").stat().st_size > 1000
    assert_valid_manifest(json.loads((out / "manifest.json").read_text(encoding="utf-8")))
    assert status["01-first"]["timings"]["worker_s"] >= 20       # stopped at the timeout


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


WAIT_PARAMS = '''
study_path: str = "study.yaml"  # the study spec
min_cell: int = 10  # smallest group shown
flag_path: str = ""  # file the test creates when it has seen this cell's progress line
'''

WAIT_BODY = '''
import os, time
deadline = time.monotonic() + 60
while not os.path.exists(flag_path):
    if time.monotonic() > deadline:
        raise RuntimeError("the runner never showed this cell's progress line")
    time.sleep(0.05)
'''


def test_progress_is_streamed_live_per_cell_with_its_heading(project):
    # The last cell waits until the test has *seen* its progress line: it can only finish if
    # progress is streamed from the worker while the notebook runs (not collected at the end).
    nbs = project / "notebooks"
    notebook(nbs / "03-wait.ipynb", params=WAIT_PARAMS, body=WAIT_BODY)
    flag = project / "seen-cell"
    lines = []

    def log(msg):
        lines.append(msg)
        if msg.startswith("03-wait: cell 3/3"):
            flag.touch()

    cfg = load_run_config(config(project, notebooks=["03-wait"]))
    manifest = run(cfg, overrides=[f"flag_path={flag}"], log=log, progress=True)
    assert manifest["status"] == "succeeded", manifest["failed_reason"]
    nb_lines = [m for m in lines if m.startswith("03-wait:")]
    # code cells: parameters, the injected parameters, the body; heading = last markdown heading above
    assert nb_lines == ["03-wait: running", "03-wait: cell 1/3 · Tiny report",
                        "03-wait: cell 2/3 · Tiny report", "03-wait: cell 3/3 · Results",
                        nb_lines[-1]]
    assert nb_lines[-1].startswith("03-wait: succeeded in ") and nb_lines[-1].endswith(" · 1/1 notebooks finished")


def test_progress_is_quiet_when_stderr_is_not_a_terminal_unless_verbose(project, capsys):
    from cxlab.cli import build_parser
    from cxlab.report.runner import run_from_cli

    cfg = config(project, notebooks=["01-first"])
    assert main(["run", str(cfg)]) == 0              # capsys: stderr is not a TTY (a cron log)
    err = capsys.readouterr().err
    assert "cxlab run: 01-first: running" in err and "cxlab run: 01-first: succeeded in" in err
    assert "· 1/1 notebooks finished" in err                    # the run's progress
    assert ": cell " not in err
    args = build_parser().parse_args(["run", str(cfg)])
    args.verbose = True                              # `cxlab run --verbose`
    assert run_from_cli(args) == 0
    err = capsys.readouterr().err
    assert "cxlab run: 01-first: cell 3/3 · Results" in err


def test_manifest_records_phase_timings_per_notebook(project):
    cfg = load_run_config(config(project, notebooks=["01-first"]))
    manifest = run(cfg, log=quiet)
    t = manifest["notebooks"][0]["timings"]
    assert list(t) == ["startup_s", "prepare_s", "kernel_start_s", "execute_s", "shutdown_s", "worker_s",
                       "export_s", "total_s"]
    assert all(isinstance(v, float) and v >= 0 for v in t.values()), t
    # the phases happen inside the worker, one after the other
    inside = t["startup_s"] + t["prepare_s"] + t["kernel_start_s"] + t["execute_s"] + t["shutdown_s"]
    assert inside <= t["worker_s"] + 0.01
    assert t["total_s"] == pytest.approx(t["worker_s"] + t["export_s"], abs=0.002)


def test_schedule_starts_the_slowest_notebook_first():
    # durations of the previous successful run (make report: 03 took 62 s, the others 9-15 s)
    previous = {"notebooks": [{"name": "01-a", "duration_s": 8.9}, {"name": "02-b", "duration_s": 14.3},
                              {"name": "03-c", "duration_s": 61.6}]}
    assert schedule(["01-a", "02-b", "03-c", "04-new"], previous) == ["04-new", "03-c", "02-b", "01-a"]
    assert schedule(["01-a", "02-b"], None) == ["01-a", "02-b"]      # first run: config order


def test_results_keep_config_order_whatever_the_start_order(project):
    cfg = load_run_config(config(project))
    first = run(cfg, log=quiet)
    # pretend 02-second was the slow one last time
    path = project / "reports" / first["run_id"] / "manifest.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    for n in saved["notebooks"]:
        n["duration_s"] = {"01-first": 1.0, "02-second": 99.0}[n["name"]]
    path.write_text(json.dumps(saved), encoding="utf-8")
    lines = []
    second = run(cfg, log=lines.append, jobs=1)     # one at a time: the start order is observable
    started = [m.split(":")[0] for m in lines if m.endswith(": running")]
    assert started == ["02-second", "01-first"]
    assert [n["name"] for n in second["notebooks"]] == ["01-first", "02-second"]    # config order
