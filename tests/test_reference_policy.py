"""The R-reference policy of tests/conftest.py (``r_reference``) on throw-away scripts: a failing
script fails, a stale committed output fails, a fresh output equal to the committed one is used,
and without R (or without a package the script loads) the committed output is used and the
session summary says so. The real references are in test_survival_reference.py,
test_measurement.py and test_value.py."""

from __future__ import annotations

import json

import pytest

import conftest
from conftest import _json_diff, r_reference

needs_r = pytest.mark.skipif(conftest._r_environment()["rscript"] is None,
                             reason="Rscript not found: the re-run branch of the R-reference policy is not exercised")


@pytest.fixture
def fake_reference(tmp_path, monkeypatch):
    """A throw-away tests/reference folder; the session's R status and cache are left untouched."""
    ref = tmp_path / "reference"
    ref.mkdir()
    monkeypatch.setattr(conftest, "REFERENCE", ref)
    monkeypatch.setattr(conftest, "_R_STATUS", {})
    monkeypatch.setattr(conftest, "_R_CACHE", {})
    return ref


def _script(ref, name, body, stored):
    (ref / name).write_text("args <- commandArgs(trailingOnly = TRUE)\n" + body, encoding="utf-8")
    (ref / name.replace(".R", ".json")).write_text(json.dumps(stored), encoding="utf-8")


def test_json_diff_finds_changed_numbers_and_ignores_versions():
    a = {"r_version": "R 4.2.2", "fit": {"coef": [0.5, -1.25], "n": 10, "term": ["x", "y"]}}
    assert _json_diff(a, json.loads(json.dumps(a))) == []
    assert _json_diff({**a, "r_version": "R 4.5.0"}, a) == []
    assert _json_diff({**a, "fit": {**a["fit"], "coef": [0.5, -1.25 * (1 + 1e-9)]}}, a) == []   # round-off
    assert _json_diff({**a, "fit": {**a["fit"], "coef": [0.5, -1.2501]}}, a) == ["/fit/coef[1]: fresh -1.2501, stored -1.25"]
    assert _json_diff({**a, "fit": {**a["fit"], "term": ["x", "z"]}}, a)
    assert _json_diff({**a, "fit": {**a["fit"], "coef": [0.5]}}, a)
    assert _json_diff({**a, "extra": 1}, a) == ["/extra: only in one of them"]


@needs_r
def test_a_failing_r_script_fails_the_test(fake_reference, tmp_path):
    _script(fake_reference, "broken.R", 'stop("planted failure")\n', {"x": 1})
    with pytest.raises(pytest.fail.Exception, match="planted failure"):
        r_reference("broken.R", "broken.json", tmp_path / "out")
    assert conftest._R_STATUS["broken.R"].endswith("the script FAILED")


@needs_r
def test_a_stale_committed_output_fails_the_test(fake_reference, tmp_path):
    _script(fake_reference, "stale.R", 'writeLines(\'{"x": 2}\', args[1])\n', {"x": 1})
    with pytest.raises(pytest.fail.Exception, match="stale.json .*differs from a fresh run"):
        r_reference("stale.R", "stale.json", tmp_path / "out")
    assert (fake_reference / "stale.json").read_text() == '{"x": 1}'      # never overwritten


@needs_r
def test_a_fresh_output_equal_to_the_committed_one_is_used(fake_reference, tmp_path):
    _script(fake_reference, "fresh.R", 'writeLines(\'{"x": 1.0, "r_version": "new"}\', args[1])\n',
            {"x": 1, "r_version": "old"})
    assert r_reference("fresh.R", "fresh.json", tmp_path / "out") == {"x": 1.0, "r_version": "new"}
    assert conftest._R_STATUS["fresh.R"].startswith("re-computed with R")
    assert (tmp_path / "out" / "fresh.json").is_file()


@needs_r
def test_a_missing_r_package_falls_back_to_the_committed_output(fake_reference, tmp_path):
    _script(fake_reference, "pkg.R", 'library(cxlabNoSuchPackage)\nstop("must not run")\n', {"x": 1})
    assert r_reference("pkg.R", "pkg.json", tmp_path / "out") == {"x": 1}
    assert "lacks cxlabNoSuchPackage" in conftest._R_STATUS["pkg.R"]


def test_without_r_the_committed_output_is_used(fake_reference, tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "_R_ENV", {"rscript": None, "version": None, "packages": {}})
    _script(fake_reference, "any.R", 'stop("must not run")\n', {"x": 1})
    assert r_reference("any.R", "any.json", tmp_path / "out") == {"x": 1}
    assert conftest._R_STATUS["any.R"] == "R not found: compared with stored outputs"


class _Outcome:
    def __init__(self, report):
        self.report = report

    def get_result(self):
        return self.report


class _Report:
    def __init__(self):
        self.user_properties = []


def _report_after():
    """A report as the conftest's hook wrapper leaves it."""
    report = _Report()
    gen = conftest.pytest_runtest_makereport(item=None, call=None)
    next(gen)
    with pytest.raises(StopIteration):
        gen.send(_Outcome(report))
    return report


def test_the_summary_reads_r_states_from_the_reports_as_workers_send_them(monkeypatch):
    """Under pytest-xdist the summary runs in another process than the tests: each state travels
    once, in the report of the test that settled it, and the summary merges them."""
    session = {}
    monkeypatch.setattr(conftest, "_SESSION_R_STATUS", session)
    monkeypatch.setattr(conftest, "_R_SENT", {})
    monkeypatch.setattr(conftest, "_R_STATUS", {"throwaway.R": "R 4: the script FAILED"})   # a policy test's
    first = _report_after()
    assert first.user_properties == []                 # nothing settled yet; a policy test's fake unseen
    session["a.R"] = "re-computed with R 4.2.2 (equal to the stored outputs)"
    second, third = _report_after(), _report_after()
    session["b.R"] = "R 4.2.2 lacks psych: compared with stored outputs"
    fourth = _report_after()
    assert second.user_properties == [(conftest.R_STATUS_KEY, {"a.R": session["a.R"]})]
    assert third.user_properties == []                 # sent once
    assert fourth.user_properties == [(conftest.R_STATUS_KEY, {"b.R": session["b.R"]})]

    class TR:
        stats = {"passed": [first, second, third], "failed": [fourth], "warnings": [object()]}

    assert conftest._r_states(TR) == session
