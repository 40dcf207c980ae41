"""The runner's data check before any kernel (issue 13, memory): it runs in a child process, so
what validating whole files in pandas leaves in the process's memory pools goes with that child
instead of staying in the runner for the whole run; its outcome is the same as in-process."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from cxlab.errors import CxlabError, DataContractError
from cxlab.report import runner
from cxlab.study import load_study
from test_runner import project, tiny_study  # noqa: F401 (a fixture)


@pytest.mark.parametrize("other_thread", [False, True], ids=["fork", "spawn"])
def test_the_check_runs_in_another_process_and_passes_a_clean_study(tmp_path, monkeypatch, other_thread):
    # forked when the runner has no other thread, spawned otherwise: both run elsewhere
    stop = threading.Event()
    if other_thread:
        threading.Thread(target=stop.wait, daemon=True).start()
    try:
        assert runner._in_child(os.getpid) != os.getpid()
        calls = []
        real = runner._in_child

        def recording(fn, *args):
            calls.append(fn.__name__)
            return real(fn, *args)

        monkeypatch.setattr(runner, "_in_child", recording)
        study = load_study(tiny_study(tmp_path))
        runner._check_data(study, tmp_path / "study.yaml")           # no problem: returns
        assert calls == ["_contract_problems"]
    finally:
        stop.set()


def test_problems_come_back_as_the_contract_error_with_its_table(tmp_path):
    spec = tiny_study(tmp_path)
    customers = tmp_path / "customers.csv"
    lines = customers.read_text().splitlines()
    customers.write_text("\n".join(lines + [lines[1]]) + "\n")   # a duplicated customer id
    with pytest.raises(DataContractError) as exc:
        runner._check_data(load_study(spec), spec)
    assert "nothing was run" in str(exc.value) and "unique" in str(exc.value)
    assert "unique" in set(exc.value.problems["rule"])


def test_a_source_is_described_by_the_check_and_the_runner_never_connects(tmp_path, monkeypatch):
    """The manifest's data section of a source comes from the checking child: a connection made
    in the runner would live through the whole run (a Spark session: its JVM and heap)."""
    from cxlab.data import sources
    from test_validate_engine import load_csv_into_duckdb

    spec = load_csv_into_duckdb(tiny_study(tmp_path), tmp_path / "w.duckdb", typed=True)
    parent, real = os.getpid(), sources.connect

    def connect(study):
        assert os.getpid() != parent, "the runner connected to the source itself"
        return real(study)

    monkeypatch.setattr(sources, "connect", connect)        # (a forked child inherits the patch)
    described = runner._check_data(load_study(spec), spec)
    assert sorted(described) == ["customers", "surveys"]
    assert described["surveys"]["backend"] == "duckdb" and described["surveys"]["table"] == "crm.barometer"
    assert described["customers"]["rows"] == len((tmp_path / "customers.csv").read_text().splitlines()) - 1
    (tmp_path / "files").mkdir()
    assert runner._check_data(load_study(tiny_study(tmp_path / "files")), tmp_path / "files") == {}


def test_a_run_on_a_source_records_its_description_without_connecting(project, monkeypatch):
    from cxlab.data import sources
    from test_runner import config, quiet
    from test_validate_engine import load_csv_into_duckdb

    load_csv_into_duckdb(project / "study.yaml", project / "w.duckdb", typed=True)    # -> engine.yaml
    parent, real = os.getpid(), sources.connect

    def connect(study):
        assert os.getpid() != parent, "the runner connected to the source itself"
        return real(study)

    monkeypatch.setattr(sources, "connect", connect)
    manifest = runner.run(runner.load_run_config(config(project, study="engine.yaml", notebooks=["01-first"])),
                          log=quiet)
    assert manifest["status"] == "succeeded", manifest
    assert manifest["data"]["customers"] == {**manifest["data"]["customers"], "backend": "duckdb", "rows": 2}


def _boom():
    raise ValueError("a bug in a rule")


def _die():
    os._exit(9)


def _slow():
    import time

    time.sleep(30)


def test_an_exception_or_a_death_in_the_child_reaches_the_runner():
    with pytest.raises(ValueError, match="a bug in a rule"):
        runner._in_child(_boom)
    with pytest.raises(CxlabError, match=r"stopped unexpectedly \(exit code 9"):
        runner._in_child(_die)


def test_a_signal_during_the_check_stops_it_and_leaves_no_child(monkeypatch):
    import multiprocessing as mp

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    before = set(mp.active_children())        # (joblib's loky workers from earlier tests live on)
    old = signal.signal(signal.SIGTERM, handler)
    try:
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(Stop):
            runner._in_child(_slow)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert set(mp.active_children()) - before == set()        # killed and joined on the way out


def test_a_url_given_as_a_secret_parameter_does_not_stay_in_the_callers_environment(project, monkeypatch):
    """The runner exports the URL for its kernels; a Python caller keeps its environment as it was."""
    import yaml

    from test_runner import config, quiet
    from test_validate_engine import load_csv_into_duckdb

    spec = load_csv_into_duckdb(project / "study.yaml", project / "w.duckdb", typed=True)
    raw = yaml.safe_load(spec.read_text())
    raw["source"] = {"backend": "duckdb", "url_param": "warehouse_url", "tables": raw["source"]["tables"]}
    spec.write_text(yaml.safe_dump(raw))
    url = f"duckdb://{project / 'w.duckdb'}"
    monkeypatch.delenv("CXLAB_SOURCE_URL", raising=False)
    monkeypatch.setenv("CXLAB_KEPT", "as it was")
    manifest = runner.run(runner.load_run_config(config(
        project, study="engine.yaml", notebooks=["01-first"], parameters={"warehouse_url": url},
        secret=["warehouse_url"])), log=quiet)
    assert manifest["status"] == "succeeded", manifest
    assert manifest["data"]["customers"]["backend"] == "duckdb"       # the URL reached the check
    assert "CXLAB_SOURCE_URL" not in os.environ and os.environ["CXLAB_KEPT"] == "as it was"
    # a caller that had the variable set gets its own value back (the run's parameter won meanwhile)
    monkeypatch.setenv("CXLAB_SOURCE_URL", "duckdb:///nowhere/else.duckdb")
    manifest = runner.run(runner.load_run_config(config(
        project, study="engine.yaml", notebooks=["01-first"], parameters={"warehouse_url": url},
        secret=["warehouse_url"])), log=quiet)
    assert manifest["status"] == "succeeded", manifest
    assert os.environ["CXLAB_SOURCE_URL"] == "duckdb:///nowhere/else.duckdb"
