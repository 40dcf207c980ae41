"""The panel built once per run (cxlab.data.panelcache): identical results with and without the cache."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from cxlab.data import panelcache
from cxlab.workbook import open_study


def _assert_same_panel(a, b):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, check_exact=True)   # values, dtypes, index
        else:
            assert x == y and type(x) is type(y), f.name


@pytest.mark.parametrize("study", ["small_demo", "french_study"])
def test_a_panel_read_back_equals_the_panel_built(study, request, tmp_path, monkeypatch):
    spec = request.getfixturevalue(study)
    monkeypatch.delenv(panelcache.ENV_VAR, raising=False)
    built = open_study(spec).panel
    monkeypatch.setenv(panelcache.ENV_VAR, str(tmp_path / "cache"))
    first = open_study(spec).panel                       # builds and stores
    second = open_study(spec).panel                      # reads back
    _assert_same_panel(built, first)
    _assert_same_panel(built, second)
    assert len(list((tmp_path / "cache").glob("*/panel.json"))) == 1


def test_results_are_identical_with_and_without_the_cache(small_demo, tmp_path, monkeypatch):
    from cxlab.models.survival import CoxModel

    def hazard_ratios():
        p = open_study(small_demo).panel
        rows = p.model_table([*p.constructs, *p.covariates, "entry", "duration", "event"])
        return CoxModel(p.constructs, controls=p.covariates).fit(rows, entry_col="entry").summary

    monkeypatch.delenv(panelcache.ENV_VAR, raising=False)
    plain = hazard_ratios()
    monkeypatch.setenv(panelcache.ENV_VAR, str(tmp_path))
    hazard_ratios()
    pd.testing.assert_frame_equal(hazard_ratios(), plain, check_exact=True)


def test_the_key_follows_options_data_and_spec(small_demo, tmp_path, monkeypatch):
    from cxlab.study import load_study

    study = load_study(small_demo)
    key = panelcache.panel_key(study, {})
    assert panelcache.panel_key(study, {"recognised_min": None, "follow_up": "snapshot"}) == key  # defaults
    assert panelcache.panel_key(study, {"recognised_min": 2.5}) != key
    assert panelcache.panel_key(study, {"follow_up": "next_survey"}) != key
    with pytest.raises(TypeError):
        panelcache.panel_key(study, {"no_such_option": 1})
    # another data file (same spec) -> another key
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in small_demo.parent.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    assert panelcache.panel_key(load_study(copy / small_demo.name), {}) == key
    customers = copy / study.files["customers"].name
    customers.write_text(customers.read_text().replace("\n", "\n", 1)[:-1] + "\n")   # a data change
    lines = customers.read_text().splitlines(keepends=True)
    customers.write_text("".join(lines[:-1]))                                       # one customer fewer
    assert panelcache.panel_key(load_study(copy / small_demo.name), {}) != key


def test_notebooks_started_together_build_the_panel_once(small_demo, tmp_path):
    """Two processes open the study at the same time: one builds, the other waits and reads."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import cxlab.data.panelcache as pc
        real = pc.build_panel
        def counting(*a, **k):
            with open({str(tmp_path / "builds")!r}, "a") as fh:
                fh.write("1")
            return real(*a, **k)
        pc.build_panel = counting
        from cxlab.workbook import open_study
        p = open_study({str(small_demo)!r}).panel
        print(len(p.respondents), int(p.respondents["event"].sum()))
    """)
    env = dict(os.environ, **{panelcache.ENV_VAR: str(tmp_path / "cache")})
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert outs[0][0] == outs[1][0]
    assert (tmp_path / "builds").read_text() == "1"


def test_the_runner_puts_the_cache_inside_the_work_folder_it_deletes():
    """Respondent-level tables must never reach a published run folder: the workers' cache folder is
    under ``.exec``, which the runner removes before publishing the run."""
    import inspect

    from cxlab.report import runner, workers

    assert 'CXLAB_PANEL_CACHE=str(work / ".exec" / "panel-cache")' in inspect.getsource(workers)
    assert 'shutil.rmtree(work / ".exec"' in inspect.getsource(runner)


def test_a_panel_from_a_connection_is_never_cached(small_demo, tmp_path, monkeypatch):
    """The key fingerprints data files; a panel built on a database connection is built every time."""
    from cxlab.study import load_study
    from cxlab.data.validate import validate_study

    study = load_study(small_demo)
    data = validate_study(study).data
    monkeypatch.setenv(panelcache.ENV_VAR, str(tmp_path))
    calls = []
    monkeypatch.setattr(panelcache, "build_panel", lambda *a, **k: calls.append(k) or "built")
    assert panelcache.cached_build_panel(study, data, con=object()) == "built"
    assert list(tmp_path.iterdir()) == []


def _raise(what):
    def f(*a, **k):
        raise AssertionError(f"{what} called again: a later notebook must read the cache")
    return f


def _assert_same_data(a, b):
    for role in ("customers", "surveys", "complaints"):
        pd.testing.assert_frame_equal(getattr(a, role), getattr(b, role), check_exact=True, obj=role)


def test_later_notebooks_neither_validate_nor_read_what_they_do_not_use(small_demo, tmp_path, monkeypatch):
    import cxlab.data.validate as validate_module
    from cxlab.data.panel import survey_answers

    monkeypatch.delenv(panelcache.ENV_VAR, raising=False)
    ref = open_study(small_demo)
    monkeypatch.setenv(panelcache.ENV_VAR, str(tmp_path / "cache"))
    first = open_study(small_demo)                                   # validates, builds, stores
    monkeypatch.setattr(validate_module, "validate_study", _raise("validate_study"))
    monkeypatch.setattr(panelcache, "build_panel", _raise("build_panel"))
    second = open_study(small_demo)
    assert second.panel._intervals_frame is None                      # not read until used
    assert second.data._frames == {}
    pd.testing.assert_frame_equal(second.data.customers, ref.data.customers, check_exact=True)
    assert set(second.data._frames) == {"customers"}                  # only what was asked for
    _assert_same_data(second.data, ref.data)
    _assert_same_panel(second.panel, ref.panel)
    _assert_same_panel(first.panel, ref.panel)
    pd.testing.assert_frame_equal(second.validation.summary, ref.validation.summary, check_exact=True)
    assert second.validation.files == ref.validation.files and second.validation.ok
    pd.testing.assert_frame_equal(survey_answers(second.study, second.data), survey_answers(ref.study, ref.data))


def test_a_source_study_is_validated_and_built_once_per_run(small_demo, tmp_path, monkeypatch):
    """A DuckDB-file source: the later notebooks do not connect (for PySpark: no JVM per kernel)."""
    import ibis

    import cxlab.data.sources as sources

    sys.path.insert(0, os.path.dirname(__file__))
    import warehouse as wh

    con = ibis.duckdb.connect(str(small_demo.parent / "w.duckdb"))
    wh.load_into(con, wh.typed_tables(small_demo))
    con.disconnect()
    spec = wh.source_spec(small_demo, small_demo.parent / "db.yaml", {"backend": "duckdb", "path": "w.duckdb"})
    monkeypatch.delenv(panelcache.ENV_VAR, raising=False)
    ref = open_study(small_demo)
    monkeypatch.setenv(panelcache.ENV_VAR, str(tmp_path / "cache"))
    first = open_study(spec)
    monkeypatch.setattr(sources, "connect", _raise("connect"))
    second = open_study(spec)
    for wb in (first, second):
        for part in ("respondents", "intervals", "exclusions"):
            pd.testing.assert_frame_equal(getattr(wb.panel, part), getattr(ref.panel, part), obj=part)
    _assert_same_data(second.data, ref.data)                          # streamed to the cache by the first
