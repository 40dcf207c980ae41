"""The run config file is parsed by a pydantic model (cxlab.report.params.RunConfigFile), as the
study spec is: unknown keys name the closest valid key, wrong kinds name the key and what it takes."""

from __future__ import annotations

import re

import pytest
import yaml

from cxlab.cli import main
from cxlab.errors import CxlabError, ParameterError
from cxlab.report.params import RunConfigFile, parse_run_config
from cxlab.report.runner import load_run_config, resolve_parameters


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


# ---- closest-name suggestions: the study spec's style at every level of a run config ---------------


#: the study spec's message for an unknown key (cxlab.study.spec), checked against its own output below
UNKNOWN_KEY = re.compile(r"^(?P<source>\S+): unknown key '(?P<where>[^']+)'\. Did you mean '(?P<close>[^']+)'\? "
                         r"Valid keys here: (?P<valid>[^.]+(\.[^ .]+)*)\.$")


def _lines(exc_info) -> list[str]:
    return str(exc_info.value).splitlines()


def _match(lines: list[str], where: str):
    found = [m for m in map(UNKNOWN_KEY.match, lines) if m and m["where"] == where]
    assert len(found) == 1, lines
    return found[0]


def test_the_study_spec_message_has_the_shape_the_run_config_follows():
    from cxlab.errors import StudyError
    from cxlab.study import parse_study

    with pytest.raises(StudyError) as exc:
        parse_study({"name": "x", "snapshot_dat": "2026-06-30"}, source="study.yaml")
    m = _match(_lines(exc), "snapshot_dat")
    assert (m["source"], m["close"]) == ("study.yaml", "snapshot_date") and "customers" in m["valid"]


def test_top_level_unknown_key_in_the_study_spec_style():
    with pytest.raises(CxlabError) as exc:
        parse_run_config({"study": "s.yaml", "notebook_parameter": {}}, "monthly.yaml")
    m = _match(_lines(exc), "notebook_parameter")
    assert m["source"] == "monthly.yaml" and m["close"] == "notebook_parameters"
    assert m["valid"].split(", ") == list(RunConfigFile.model_fields)


def _project(tmp_path, **keys):
    """Two notebooks whose parameters cells declare study_path, min_cell and horizon_months."""
    from test_runner import notebook, tiny_study

    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir(exist_ok=True)
    params = 'study_path: str = "s.yaml"\nmin_cell: int = 10\nhorizon_months: int = 24  # [> 0]\n'
    for name in ("01-first", "02-second"):
        notebook(nb_dir / f"{name}.ipynb", params=params, body="print(1)")
    tiny_study(tmp_path)
    cfg = tmp_path / "monthly.yaml"
    cfg.write_text(yaml.safe_dump({"study": "study.yaml", "notebooks_dir": "notebooks", **keys}))
    return cfg


def test_a_misspelt_notebook_in_notebook_parameters_names_the_closest_notebook(tmp_path):
    cfg = _project(tmp_path, notebook_parameters={"01-frist": {"horizon_months": 12}, "02-second": {}})
    with pytest.raises(ParameterError) as exc:
        load_run_config(cfg)
    m = _match(_lines(exc), "notebook_parameters.01-frist")
    assert m["source"] == str(cfg) and m["close"] == "01-first" and m["valid"] == "01-first, 02-second"


def test_a_misspelt_notebook_in_the_notebooks_list_or_a_set_names_the_closest_notebook(tmp_path):
    with pytest.raises(CxlabError) as exc:
        load_run_config(_project(tmp_path, notebooks=["01-first", "02-secnd"]))
    assert _lines(exc) == [f"{tmp_path / 'monthly.yaml'}: notebooks: no notebook '02-secnd' in "
                           f"{tmp_path / 'notebooks'}. Did you mean '02-second'? Available: 01-first, 02-second."]
    with pytest.raises(ParameterError, match=r"^--set '01-frist:horizon_months=12': no notebook '01-frist' in this "
                                             r"run\. Did you mean '01-first'\? Notebooks of this run: 01-first, "
                                             r"02-second\.$"):
        resolve_parameters(load_run_config(_project(tmp_path)), ["01-frist:horizon_months=12"])


DECLARED = "horizon_months, min_cell, study_path"


@pytest.mark.parametrize("where", ["shared", "notebook", "set"])
def test_a_misspelt_parameter_names_the_closest_declared_parameter(tmp_path, where):
    keys = ({"parameters": {"horizon_month": 12}} if where == "shared"
            else {"notebook_parameters": {"02-second": {"horizon_month": 12}}} if where == "notebook" else {})
    overrides = ["horizon_month=12"] if where == "set" else []
    with pytest.raises(ParameterError) as exc:
        resolve_parameters(load_run_config(_project(tmp_path, **keys)), overrides)
    expected = {"shared": "unknown parameter 'horizon_month'. Did you mean 'horizon_months'? Valid parameters "
                          f"(declared by the notebooks): {DECLARED}.",
                "notebook": "02-second: unknown parameter 'horizon_month'. Did you mean 'horizon_months'? Valid "
                            "parameters: study_path, min_cell, horizon_months."}
    assert _lines(exc) == [expected.get(where, expected["shared"])]


def test_suggestions_use_the_study_specs_measure_and_stay_silent_when_nothing_is_close(tmp_path):
    # difflib ratio of 'month' to 'horizon_months' is 0.53: suggested at the study spec's cutoff (0.5)
    with pytest.raises(ParameterError) as exc:
        resolve_parameters(load_run_config(_project(tmp_path, parameters={"month": 1, "zzz": 2})))
    assert _lines(exc) == [
        f"unknown parameter 'month'. Did you mean 'horizon_months'? Valid parameters (declared by the notebooks): "
        f"{DECLARED}.",
        f"unknown parameter 'zzz'. Valid parameters (declared by the notebooks): {DECLARED}."]


def test_a_secret_name_no_notebook_declares_is_refused_with_the_closest_parameter(tmp_path):
    # `secret: [horizon_month]` would mask nothing while 'horizon_months' went out in clear
    with pytest.raises(ParameterError) as exc:
        resolve_parameters(load_run_config(_project(tmp_path, secret=["horizon_month"])))
    assert _lines(exc) == ["secret: 'horizon_month' is not a parameter of this run's notebooks, so nothing would "
                           "be masked under that name. Did you mean 'horizon_months'? Valid parameters (declared "
                           f"by the notebooks): {DECLARED}."]
    # the declared name passes, and so does the study source's url_param, which no notebook declares
    assert resolve_parameters(load_run_config(_project(tmp_path, secret=["horizon_months"])))
    import dataclasses

    config = dataclasses.replace(load_run_config(_project(tmp_path, secret=["warehouse_url"])),
                                 engine_secrets=("warehouse_url",))
    assert resolve_parameters(config)


def test_exit_2_for_a_misspelt_secret_before_any_kernel_starts(tmp_path, capsys):
    cfg = _project(tmp_path, secret=["horizon_mnths"])
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "secret: 'horizon_mnths' is not a parameter" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
