"""report/runner.py was split along its seams (issue 13): run config (report.runconfig), output
folder (report.runfolder), outputs and manifest (report.manifest); the runner keeps the
orchestration. Every name it held still imports from it, as the very object the part defines (so
a monkeypatch on it reaches the code that runs), and each part stays small."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import cxlab.report.runner as runner

#: name -> the module that defines it now (the names tests, cli.py, benchmarks and other modules
#: import from cxlab.report.runner, and the rest of what it defined before the split)
MOVED = {
    "RunConfig": "runconfig", "load_run_config": "runconfig", "resolve_parameters": "runconfig",
    "DEFAULT_MIN_CELL": "runconfig", "MIN_CELL_FLOOR": "runconfig", "MOVED_PARAMETERS": "runconfig",
    "_secret_setup": "runconfig", "_is_secret": "runconfig",
    "RunLock": "runfolder", "RunLocked": "runfolder", "RunEnvironmentError": "runfolder",
    "_clean_stale_runs": "runfolder", "_prepare_out": "runfolder", "_environment_error": "runfolder",
    "_os_reason": "runfolder", "_new_run_id": "runfolder",
    "EXIT_OK": "runfolder", "EXIT_FAILED": "runfolder", "EXIT_USER_ERROR": "runfolder", "EXIT_LOCKED": "runfolder",
    "MANIFEST_SCHEMA_VERSION": "manifest", "MANIFEST_SCHEMA_PATH": "manifest", "fingerprint": "manifest",
    "git_commit": "manifest", "versions": "manifest", "notebook_title": "manifest",
    "_previous_manifest": "manifest",
    "compare_metrics": "compare", "run_basis": "compare",
}
KEPT = ["run", "run_from_cli", "schedule", "RunInterrupted", "_run", "_execute_all", "_check_data"]


@pytest.mark.parametrize("name", sorted(MOVED))
def test_a_moved_name_imports_from_the_runner_as_the_same_object(name):
    part = importlib.import_module(f"cxlab.report.{MOVED[name]}")
    assert getattr(runner, name) is getattr(part, name)


def test_the_runner_keeps_the_orchestration_and_its_public_names():
    for name in KEPT:
        assert getattr(runner, name).__module__ == "cxlab.report.runner", name
    for name in runner.__all__:
        assert hasattr(runner, name), name
    assert runner.MANIFEST_SCHEMA_PATH.is_file()          # manifest.schema.json next to the modules


def test_each_part_has_one_concern_and_stays_small():
    folder = Path(runner.__file__).parent
    sizes = {m: len((folder / f"{m}.py").read_text(encoding="utf-8").splitlines())
             for m in ("runner", "runconfig", "runfolder", "manifest")}
    assert max(sizes.values()) <= 400, sizes
