"""The run config file is parsed by a pydantic model (cxlab.report.params.RunConfigFile), as the
study spec is: unknown keys name the closest valid key, wrong kinds name the key and what it takes."""

from __future__ import annotations

import pytest
import yaml

from cxlab.cli import main
from cxlab.errors import CxlabError
from cxlab.report.params import RunConfigFile, parse_run_config
from cxlab.report.runner import load_run_config


def _write(tmp_path, **keys):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir(exist_ok=True)
    (nb_dir / "01-first.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    cfg = tmp_path / "monthly.yaml"
    cfg.write_text(yaml.safe_dump({"study": "study.yaml", "notebooks_dir": "notebooks", **keys}))
    return cfg


@pytest.mark.parametrize("key, closest", [("jobz", "jobs"), ("notebook_params", "notebook_parameters"),
                                          ("secrets", "secret"), ("timout", "timeout")])
def test_unknown_key_exits_2_naming_the_closest_key(tmp_path, capsys, key, closest):
    code = main(["run", str(_write(tmp_path, **{key: 2}))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"unknown key {key!r}" in err and f"Did you mean {closest!r}?" in err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_every_problem_is_listed_at_once():
    with pytest.raises(CxlabError) as exc:
        parse_run_config({"study": "s.yaml", "jobz": 2, "timeout": 0, "secret": "x"}, "monthly.yaml")
    lines = str(exc.value).splitlines()
    assert len(lines) == 3, lines
    assert any("unknown key 'jobz'. Did you mean 'jobs'?" in line for line in lines)
    assert any("`timeout` must be a whole number" in line and "got 0" in line for line in lines)
    assert any("`secret` must be a list of parameter names" in line for line in lines)


@pytest.mark.parametrize("key, value", [("timeout", True), ("timeout", 2.5), ("timeout", "60"), ("jobs", 0),
                                        ("jobs", -1), ("notebooks", "01-data-audit"),
                                        ("parameters", ["min_cell", 10]), ("notebook_parameters", {"01": 3}),
                                        ("study", 12)])
def test_values_of_the_wrong_kind_are_refused(key, value):
    with pytest.raises(CxlabError, match=f"`{key}` must be "):
        parse_run_config({key: value}, "monthly.yaml")


def test_a_wrong_kind_never_quotes_the_value():
    secret = "postgres://analyst:hunter2@db/warehouse"
    with pytest.raises(CxlabError) as exc:
        parse_run_config({"parameters": secret, "secret": secret}, "monthly.yaml")
    assert "hunter2" not in str(exc.value) and "got a str" in str(exc.value)


def test_valid_keys_pass_through_and_null_means_default(tmp_path):
    raw = {"name": 2026, "study": "s.yaml", "notebooks": ["01-first"], "parameters": {"min_cell": 10, "x": None},
           "notebook_parameters": {"01-first": None}, "secret": ["warehouse_url"], "timeout": 60, "jobs": None}
    out = parse_run_config(raw)
    assert out == {"name": "2026", "study": "s.yaml", "notebooks": ["01-first"],
                   "parameters": {"min_cell": 10, "x": None}, "notebook_parameters": {"01-first": None},
                   "secret": ["warehouse_url"], "timeout": 60}
    assert set(RunConfigFile.model_fields) == {"name", "study", "out", "notebooks", "notebooks_dir", "parameters",
                                               "notebook_parameters", "secret", "timeout", "jobs"}
    cfg = load_run_config(_write(tmp_path, jobs=None, timeout=60, notebook_parameters={"01-first": None}))
    assert (cfg.jobs, cfg.timeout, cfg.notebook_parameters, cfg.notebooks) == (0, 60, {"01-first": {}}, ["01-first"])
