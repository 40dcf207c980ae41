"""`cxlab run` under faults: bad data stopped before any kernel, parameter ranges, SIGINT/SIGTERM,
kill -9, a full disk, a read-only or unusable output folder. Each asserts the exit code, the
message, that no `.tmp-` folder is left, that no worker or kernel outlives the run, and that
earlier runs and `latest` are untouched. Tiny notebooks (a sleep cell) keep each test to seconds
of notebook time."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from cxlab.cli import main
from cxlab.errors import ParameterError
from cxlab.report.params import check_parameters, parse_rule, read_parameters
from cxlab.report.runner import load_run_config, resolve_parameters

from test_runner import assert_valid_manifest, notebook, tiny_study

FAST_PARAMS = '''
study_path: str = "study.yaml"  # the study spec
min_cell: int = 10  # smallest group shown [>= 5]
flag_path: str = ""  # file this notebook creates once its last cell runs
sleep_s: int = 0  # how long the last cell sleeps [>= 0]
n_boot: int = 200  # bootstrap draws [>= 50]
share: float = 0.5  # a share [in (0, 1)]
horizons: list = [12, 24]  # months [each > 0]
bins: str = "nps"  # bins [choices: "nps", ""]
big_output_mb: int = 0  # MB of output to print
warehouse: str = ""  # secret: where the data lives
'''

FAST_BODY = '''
import pathlib, time
from cxlab.report import record_metric
record_metric("demo.n", 1)
if big_output_mb:
    for _ in range(big_output_mb * 16):
        print("x" * 65536)
if flag_path:
    pathlib.Path(flag_path).write_text("started")
time.sleep(sleep_s)
'''


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    notebook(nbs / "01-quick.ipynb", params=FAST_PARAMS, body=FAST_BODY)
    notebook(nbs / "02-slow.ipynb", params=FAST_PARAMS, body=FAST_BODY)
    tiny_study(tmp_path)
    return tmp_path


def write_config(project, **extra) -> Path:
    cfg = {"name": "faults", "study": "study.yaml", "out": "reports", "notebooks_dir": "notebooks", **extra}
    p = project / "run.yaml"
    p.write_text(json.dumps(cfg), encoding="utf-8")
    return p


def earlier_run(out: Path) -> dict:
    """A published earlier run and `latest` pointing to it; returns a snapshot to compare with."""
    run = out / "20260101T000000Z-abcdef"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text('{"status": "succeeded", "run_id": "20260101T000000Z-abcdef"}')
    (run / "index.html").write_text("<p>earlier</p>")
    os.symlink(run.name, out / "latest")
    return snapshot(out)


def snapshot(out: Path) -> dict:
    run = out / "20260101T000000Z-abcdef"
    return {"latest": os.readlink(out / "latest"),
            "files": {p.name: p.read_bytes() for p in sorted(run.iterdir())}}


def no_tmp_left(out: Path) -> bool:
    return not [p for p in out.iterdir() if p.name.startswith(".tmp-")] if out.exists() else True


def cli(*args, cwd=None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cxlab.cli", *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early ({proc.returncode}): {proc.stderr.read()}")
        assert time.monotonic() < deadline, "the notebook never reached its sleep"
        time.sleep(0.1)


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def all_gone(procs: list[psutil.Process], seconds: float = 10) -> list[int]:
    """The pids still alive after ``seconds`` (zombies count as gone)."""
    deadline = time.monotonic() + seconds
    alive = procs
    while time.monotonic() < deadline:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.1)
    return [p.pid for p in alive]


def strays(project: Path) -> list[int]:
    """Processes (workers, kernels) still running on this project's files."""
    out = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and str(project) in " ".join(proc.info["cmdline"] or []):
                out.append(proc.info["pid"])
        except (psutil.Error, TypeError):
            continue
    return out


# ---- parameter rules ---------------------------------------------------------------------------


def test_rules_accept_and_refuse_at_their_boundaries():
    assert parse_rule(">= 50").holds(50) and not parse_rule(">= 50").holds(49)
    assert parse_rule("> 0").holds(1) and not parse_rule("> 0").holds(0)
    assert not parse_rule("< 1").holds(1) and parse_rule("<= 1").holds(1)
    r = parse_rule("in (0, 1)")
    assert r.holds(0.5) and not r.holds(0) and not r.holds(1)
    r = parse_rule("in [0, 1)")
    assert r.holds(0) and not r.holds(1)
    r = parse_rule("each > 0")
    assert r.holds([12, 24]) and not r.holds([-12, 24]) and not r.holds([0]) and not r.holds(12)
    r = parse_rule('choices: "nps", ""')
    assert r.holds("nps") and r.holds("") and not r.holds("NPS")
    assert parse_rule(">= 5").holds(None)          # None passes when the type allows it
    assert not parse_rule(">= 5").holds(True)      # a bool is not a number
    assert not parse_rule("> 0").holds(float("nan"))
    with pytest.raises(ValueError, match="not a number in rule"):
        parse_rule("> zero")
    with pytest.raises(ValueError, match="cannot read the rule"):
        parse_rule("each between 1 and 2")


def test_parameter_values_outside_their_rule_are_refused_naming_parameter_and_range(project):
    nb = project / "notebooks" / "01-quick.ipynb"
    decl = read_parameters(nb)
    assert decl["n_boot"].rule.text == ">= 50" and decl["n_boot"].help == "bootstrap draws"
    assert check_parameters(nb, {"n_boot": 50, "share": 0.01, "horizons": [1], "bins": ""}, decl)
    for values, message in [({"n_boot": 49}, r"'n_boot' must be int \[>= 50\], got 49"),
                            ({"share": 1.0}, r"'share' must be float \[in \(0, 1\)\], got 1.0"),
                            ({"horizons": [-12, 24]}, r"'horizons' must be list \[each > 0\], got \[-12, 24\]"),
                            ({"bins": "deciles"}, r"'bins' must be str \[choices: \"nps\", \"\"\], got 'deciles'")]:
        with pytest.raises(ParameterError, match=message):
            check_parameters(nb, values, decl)


def test_real_notebooks_declare_min_cell_and_their_defaults_obey_their_rules():
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    for path in sorted(folder.glob("[0-9][0-9]-*.ipynb")):
        decl = read_parameters(path)
        assert decl["min_cell"].rule is not None and not decl["min_cell"].rule.holds(4), path.name
        for p in decl.values():
            assert p.rule is None or p.rule.holds(p.default), (path.name, p.name)


def test_out_of_range_values_stop_the_run_before_any_kernel(project, capsys):
    cfg = write_config(project)
    code = main(["run", str(cfg), "--set", "horizons=[-12,24]", "--set", "02-slow:n_boot=10"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "'horizons' must be list [each > 0], got [-12, 24]" in err
    assert "02-slow: parameter 'n_boot' must be int [>= 50], got 10" in err
    assert not (project / "reports").exists()


@pytest.mark.parametrize("args, message", [
    (["--timeout", "-5"], "--timeout must be > 0"),
    (["--timeout", "0"], "--timeout must be > 0"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--lock-timeout", "-1"], "--lock-timeout must be >= 0"),
    (["--set", "min_cell=4"], "min_cell must be >= 5"),
    (["--set", "min_cell=ten"], "min_cell must be a whole number"),
    (["--set", "02-slow:min_cell=20"], "min_cell is set once per run"),
    (["--set", "good_customer_min=4"], "segments.disappointed.good_customer_min"),
    (["--set", "recognised_min=3"], "segments.disappointed.recognised_min"),
])
def test_run_options_and_min_cell_are_checked_before_anything_runs(project, capsys, args, message):
    code = main(["run", str(write_config(project)), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not (project / "reports").exists()


@pytest.mark.parametrize("extra, message", [({"timeout": 0}, "`timeout` must be a whole number"),
                                            ({"timeout": -5}, "`timeout` must be a whole number"),
                                            ({"jobs": 0}, "`jobs` must be a whole number"),
                                            ({"parameters": {"min_cell": 3}}, "min_cell must be >= 5")])
def test_config_timeout_jobs_and_min_cell_are_checked(project, capsys, extra, message):
    assert main(["run", str(write_config(project, **extra))]) == 2
    assert message in capsys.readouterr().err


def test_min_cell_is_one_value_for_every_notebook(project):
    cfg = load_run_config(write_config(project))
    assert {n: p["min_cell"] for n, p in resolve_parameters(cfg).items()} == {"01-quick": 10, "02-slow": 10}
    resolved = resolve_parameters(cfg, ["min_cell=5"])                    # the boundary is allowed
    assert {p["min_cell"] for p in resolved.values()} == {5}
    cfg = load_run_config(write_config(project, parameters={"min_cell": 30}))
    assert {p["min_cell"] for p in resolve_parameters(cfg).values()} == {30}
    # a notebook that cannot honour min_cell is refused
    notebook(project / "notebooks" / "03-no-min-cell.ipynb", params='study_path: str = "x"  # spec', body="1")
    cfg = load_run_config(write_config(project))
    with pytest.raises(ParameterError, match="03-no-min-cell: the parameters cell must declare `min_cell"):
        resolve_parameters(cfg)


# ---- bad data: the same checks as `cxlab validate`, before any kernel --------------------------


#: each bad-data case of issue 8: (file, its new content — None deletes it, bytes are written as they
#: are —, the column the problem table must name or None when the whole file is at fault)
BAD_DATA = {
    "missing_file": ("answers.csv", None, None),
    "renamed_column": ("answers.csv", "id,date,q1\nA,2024-05-01,4\nB,2024-06-01,2\n", "d"),
    "header_only": ("customers.csv", "id,s,e\n", None),
    "day_first_dates": ("customers.csv", "id,s,e\nA,13/01/2020,\nB,25/03/2021,31/01/2025\n", "s"),
    "binary_junk": ("answers.csv", bytes(range(256)) * 8, None),
    "empty_file": ("customers.csv", b"", None),
    "duplicate_ids": ("customers.csv", "id,s,e\nA,2020-01-01,\nA,2021-03-01,2025-01-31\n", "id"),
    "end_before_start": ("customers.csv", "id,s,e\nA,2020-01-01,\nB,2021-03-01,2019-01-31\n", "e"),
    "out_of_scale": ("answers.csv", "id,d,q1\nA,2024-05-01,4\nB,2024-06-01,7\n", "q1"),
    "truncated_last_line": ("answers.csv", "id,d,q1\nA,2024-05-01,4\nB,2024-06-01", None),
}


def break_data(folder: Path, case: str) -> tuple[str, str | None]:
    file, content, column = BAD_DATA[case]
    path = folder / file
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return file, column


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_exits_2_before_any_kernel_with_the_problem_table(project, capsys, case):
    out = project / "reports"
    before = earlier_run(out)
    file, column = break_data(project, case)
    code = main(["run", str(write_config(project))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "nothing was run" in err and "Traceback" not in err
    # a row of the problem table names the file and, where one is at fault, the column
    row = "^" + re.escape(file) + r"\s+" + (re.escape(column) + r"\s" if column else "")
    assert re.search(row, err, re.M), err
    assert "fix" in err                                           # the table's fix column
    assert sorted(p.name for p in out.iterdir()) == ["20260101T000000Z-abcdef", "latest"]   # no run folder
    assert snapshot(out) == before


# ---- signals and kill -9 -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_workers_and_kernels_and_publishes_an_interrupted_run(project, sig, code):
    out = project / "reports"
    before = earlier_run(out)
    flag = project / "slow-started"
    notebook(project / "notebooks" / "03-never.ipynb", params=FAST_PARAMS, body=FAST_BODY)   # never starts
    cfg = write_config(project, notebook_parameters={"02-slow": {"flag_path": str(flag), "sleep_s": 600}})
    proc = cli("run", cfg, "--jobs", "1")
    wait_for(flag, proc)
    children = descendants(proc.pid)
    assert len(children) >= 2                                     # the worker and its kernel
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 20, "the run did not stop within a few seconds"
    assert proc.returncode == code, err
    assert all_gone(children) == [] and strays(project) == []     # no orphan worker or kernel
    assert f"interrupted by {signal.Signals(sig).name}" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("cxlab run: run ")       # one final line says so
    counts = [int(k) for k in re.findall(r"· (\d+)/3 notebooks finished", err)]
    assert counts == [1, 1], err          # in order, and the interrupted notebook is not counted as finished
    assert no_tmp_left(out)
    assert snapshot(out) == before                                # latest and earlier runs untouched
    runs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "20260101T000000Z-abcdef"]
    assert len(runs) == 1
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert_valid_manifest(manifest)
    status = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert status == {"01-quick": "succeeded", "02-slow": "interrupted", "03-never": "interrupted"}
    errors = {n["name"]: n["error"] for n in manifest["notebooks"]}
    assert errors["02-slow"]["evalue"] == f"stopped by {signal.Signals(sig).name} while running"
    assert errors["03-never"]["evalue"] == f"not started: the run was stopped by {signal.Signals(sig).name}"
    assert manifest["failed_reason"].startswith(f"stopped by {signal.Signals(sig).name}: 1 of 3 notebooks finished")
    assert "This run was interrupted" in (runs[0] / "index.html").read_text(encoding="utf-8")
    assert all((runs[0] / f"{n}.html").is_file() for n in status)
    assert not (runs[0] / ".owner.json").exists()
    assert not (out / ".lock").read_text().strip()                # the lock was released


@pytest.mark.slow
def test_a_second_signal_stops_at_once_and_removes_the_unfinished_folder(project):
    out = project / "reports"
    before = earlier_run(out)
    flag = project / "slow-started"
    cfg = write_config(project, notebooks=["02-slow"],
                       notebook_parameters={"02-slow": {"flag_path": str(flag), "sleep_s": 600}})
    proc = cli("run", cfg)
    wait_for(flag, proc)
    children = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)             # impatient operator: a second signal
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 143), err
    assert all_gone(children) == []
    assert "removed the unfinished run folder" in err and "Traceback" not in err, err
    assert no_tmp_left(out) and snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == [".lock", "20260101T000000Z-abcdef", "latest"]


def test_a_signal_outside_the_notebooks_aborts_and_a_second_signal_is_not_queued():
    from cxlab.report.workers import Abort, Stopper

    s = Stopper()
    s.phase = "publishing"
    with pytest.raises(Abort):
        s._handle(signal.SIGTERM, None)
    s = Stopper()
    s.phase = "running"
    s._handle(signal.SIGINT, None)                 # first signal while running: stop, then publish
    assert s.event.is_set() and s.signal_name == "SIGINT"
    with pytest.raises(Abort):                     # a second one: abort at once
        s._handle(signal.SIGINT, None)
    s.phase = "commit"
    s._handle(signal.SIGTERM, None)                # the folder is being moved in place: deferred


def test_a_second_signal_that_lands_in_a_finaliser_still_aborts_and_prints_nothing():
    """CI once saw the second signal arrive while Python ran a weakref callback (pandera's):
    Python prints such an exception and drops it, so the run went on publishing."""
    import gc
    import weakref

    from cxlab.report.workers import Abort, Stopper

    class Owner:
        pass

    def dropped_in_finaliser(callback):
        owner = Owner()
        ref = weakref.ref(owner, lambda _: callback())
        del owner
        gc.collect()
        assert ref() is None

    seen = []                                       # what Python would print as "Exception ignored"
    old_hook, sys.unraisablehook = sys.unraisablehook, seen.append
    try:
        with Stopper() as s:
            s.phase = "running"
            s._handle(signal.SIGINT, None)          # the first signal: stop the notebooks, then publish
            dropped_in_finaliser(lambda: s._handle(signal.SIGTERM, None))   # the second: raised, lost ...
            with pytest.raises(Abort) as stop:      # ... but the runner's next check aborts
                s.check()
            assert stop.value.signum == signal.SIGTERM
            assert seen == []                       # and nothing was printed about it
            dropped_in_finaliser(lambda: 1 / 0)     # any other finaliser error is still reported
            assert [type(u.exc_value) for u in seen] == [ZeroDivisionError]
    finally:
        sys.unraisablehook = old_hook
    s = Stopper()
    s.check()                                      # no signal: nothing to raise


@pytest.mark.slow
def test_kill_9_takes_workers_and_kernels_down_and_the_next_run_cleans_up(project, capsys):
    from cxlab.report.runner import _clean_stale_runs

    out = project / "reports"
    before = earlier_run(out)
    flag = project / "slow-started"
    cfg = write_config(project, notebooks=["02-slow"],
                       notebook_parameters={"02-slow": {"flag_path": str(flag), "sleep_s": 600}})
    proc = cli("run", cfg)
    wait_for(flag, proc)
    children = descendants(proc.pid)
    assert len(children) >= 2
    proc.kill()
    proc.communicate(timeout=30)
    assert all_gone(children) == [] and strays(project) == []     # died with their parent
    left = [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert len(left) == 1 and (left[0] / ".owner.json").is_file()
    # a folder whose owner still runs (this test) and one without an owner record are left alone
    mine = out / ".tmp-20260101T000001Z-live"
    mine.mkdir()
    from cxlab.report.procs import write_owner

    write_owner(mine, "20260101T000001Z-live")
    (out / ".tmp-unknown").mkdir()
    assert snapshot(out) == before
    # the next run cleans up after the dead one, and says so
    nxt = cli("run", write_config(project, notebooks=["01-quick"]))
    _, err = nxt.communicate(timeout=300)
    assert nxt.returncode == 0, err
    lines = err.splitlines()
    assert not left[0].exists() and mine.exists() and (out / ".tmp-unknown").exists()
    assert any(f"removed {left[0].name}" in m and "no longer running" in m for m in lines), lines
    assert any(".tmp-unknown in place" in m for m in lines), lines
    assert snapshot(out)["files"] == before["files"]               # the earlier run is untouched
    lines = []
    _clean_stale_runs(out, lines.append)                          # nothing more to remove
    assert not any(m.startswith("removed") for m in lines)


# ---- environment faults ------------------------------------------------------------------------


def _mount(target: Path, *options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
                          capture_output=True).returncode == 0


@pytest.fixture
def mounts():
    made = []

    def mount(target: Path, *options: str) -> Path:
        if not _mount(target, *options):
            pytest.skip("cannot mount a tmpfs here (needs root and mount)")
        made.append(target)
        return target

    yield mount
    for m in reversed(made):
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def test_read_only_out_is_exit_2_with_one_line(project, capsys, mounts):
    ro = mounts(project / "ro", "ro", "size=1m")
    code = main(["run", str(write_config(project)), "--out", str(ro)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "read-only file system" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(ro.iterdir()) == []


def test_read_only_inside_an_existing_out_is_exit_2(project, capsys, monkeypatch):
    # root ignores chmod, so the read-only case is also simulated at the write call
    import cxlab.report.runner as runner

    def refuse(self):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))

    monkeypatch.setattr(runner.RunLock, "__enter__", refuse)
    out = project / "reports"
    before = earlier_run(out)
    code = main(["run", str(write_config(project))])
    err = capsys.readouterr().err
    assert code == 2 and "read-only file system (EROFS)" in err and ".lock" in err
    assert "Traceback" not in err and snapshot(out) == before and no_tmp_left(out)


@pytest.mark.parametrize("make_out, message", [
    (lambda p: (p / "a-file").write_text("x") and p / "a-file", "it is a file"),
    (lambda p: Path("/proc/cxlab-cannot-exist/reports"), "cannot create the output folder"),
])
def test_unusable_out_is_exit_2(project, capsys, make_out, message):
    out = make_out(project)
    code = main(["run", str(write_config(project)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err


def test_no_space_before_anything_started_is_exit_2(project, capsys, monkeypatch):
    import tempfile

    import cxlab.report.runfolder as runfolder   # makes the run's staging folder

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", k.get("dir"))

    monkeypatch.setattr(runfolder.tempfile, "mkdtemp", full)
    out = project / "reports"
    before = earlier_run(out)
    code = main(["run", str(write_config(project))])
    err = capsys.readouterr().err
    assert code == 2 and "no space left on device (ENOSPC)" in err and "Nothing was run" in err, err
    assert "Traceback" not in err and snapshot(out) == before and no_tmp_left(out)
    assert tempfile.mkdtemp is not full or True


@pytest.mark.slow
def test_disk_full_during_a_run_is_exit_1_and_leaves_nothing_half_written(project, mounts):
    # a 2 MB disk; the notebook prints 4 MB: its worker cannot save it
    small = mounts(project / "small", "size=2m")
    before = earlier_run(small)
    cfg = write_config(project, notebooks=["01-quick"], notebook_parameters={"01-quick": {"big_output_mb": 4}})
    proc = cli("run", cfg, "--out", small)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "NoSpaceLeft: no space left on the device" in err and "Traceback" not in err
    assert strays(project) == []
    assert no_tmp_left(small) and snapshot(small) == before
    runs = [p for p in small.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "20260101T000000Z-abcdef"]
    assert len(runs) == 1          # what fitted is published as a failed run that says why
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["notebooks"][0]["error"]["ename"] == "NoSpaceLeft"
    assert_valid_manifest(manifest)


@pytest.mark.slow
def test_no_space_for_the_run_outputs_abandons_the_run_with_exit_1(project, capsys, monkeypatch):
    import cxlab.report.manifest as manifest_module   # writes the run's outputs

    def full(nb, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(manifest_module.nbformat, "write", full)
    out = project / "reports"
    before = earlier_run(out)
    code = main(["run", str(write_config(project, notebooks=["01-quick"]))])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "failed: no space left on device (ENOSPC)" in err and "Removed its unfinished folder" in err
    assert strays(project) == []
    assert "Traceback" not in err
    assert no_tmp_left(out) and snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == [".lock", "20260101T000000Z-abcdef", "latest"]


def test_the_readme_scheduled_run_example_is_runs_monthly_and_its_parameters_check():
    import re

    import yaml

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Scheduled runs"):]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    assert example == yaml.safe_load((root / "runs" / "monthly.yaml").read_text(encoding="utf-8"))
    for name in ("monthly", "demo"):
        cfg = load_run_config(root / "runs" / f"{name}.yaml")
        assert {p["min_cell"] for p in resolve_parameters(cfg).values()} == {10}   # no kernel needed


def test_an_error_message_that_quotes_a_secret_is_scrubbed(project, capsys):
    # a list where a string is expected: the type error quotes the value
    code = main(["run", str(write_config(project)), "--set", "warehouse=[db://u:hunter2-CANARY@host]"])
    err = capsys.readouterr().err
    assert code == 2 and "'warehouse' must be str" in err
    assert "hunter2-CANARY" not in err and "•••" in err


def test_no_permission_for_out_is_exit_2(project, capsys, monkeypatch):
    # root may write anywhere, so the refusal is simulated where the folder is made
    real_mkdir = Path.mkdir

    def refuse(self, *a, **k):
        if self.name == "reports":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = main(["run", str(write_config(project))])
    err = capsys.readouterr().err
    assert code == 2 and "cannot create the output folder" in err and "permission denied (EACCES)" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (project / "reports").exists()


def test_bad_parameters_and_bad_data_are_reported_together(project, capsys):
    break_data(project, "renamed_column")
    code = main(["run", str(write_config(project)), "--set", "n_boot=10"])
    err = capsys.readouterr().err
    assert code == 2 and "'n_boot' must be int [>= 50], got 10" in err
    assert "the study's data breaks its contract" in err and "answers.csv" in err
    assert not (project / "reports").exists()


@pytest.mark.slow
def test_an_internal_error_keeps_its_traceback_but_leaves_no_tmp_folder(project, monkeypatch):
    import cxlab.report.html as html_module
    from cxlab.report.runner import run

    def broken(*a, **k):
        raise RuntimeError("a bug in the HTML export")

    monkeypatch.setattr(html_module, "export_html", broken)
    out = project / "reports"
    before = earlier_run(out)
    lines = []
    with pytest.raises(RuntimeError, match="a bug in the HTML export"):
        run(load_run_config(write_config(project, notebooks=["01-quick"])), log=lines.append)
    assert any("removed its unfinished folder" in m for m in lines), lines
    assert no_tmp_left(out) and snapshot(out) == before and strays(project) == []
