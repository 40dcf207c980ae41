"""The run config of ``cxlab run``: the file read and its paths resolved (:class:`RunConfig`), and
every notebook's parameters checked against its parameters cell (:func:`resolve_parameters`).

Run config (YAML; paths relative to the config file; the keys and kinds of values are checked by
:class:`cxlab.report.params.RunConfigFile`)::

    name: monthly                      # default: the file name
    study: ../data/demo/study.yaml
    out: ../reports                    # default: reports/ next to the notebooks' folder
    notebooks: [01-data-audit, 02-survival-drivers]   # default: every notebooks/NN-*.ipynb
    parameters: {min_cell: 10}         # shared: given to every notebook that declares them
    notebook_parameters: {02-survival-drivers: {horizon_months: 36}}
    secret: [warehouse_url]            # never rendered or stored in outputs
    timeout: 1800                      # seconds per notebook
    jobs: 2                            # notebooks at once (default: number of cores)

``min_cell`` is set once per run for every notebook (default 10, at least 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cxlab.errors import CxlabError, ParameterError
from cxlab.report.params import (check_parameters, closest_hint, parse_override, parse_run_config, read_parameters,
                                 unknown_key_message)
from cxlab.report.scrub import MASK as REDACTED
from cxlab.report.scrub import SECRET_WORDS as _SECRET_WORDS

__all__ = ["RunConfig", "load_run_config", "resolve_parameters", "DEFAULT_MIN_CELL", "MIN_CELL_FLOOR",
           "MOVED_PARAMETERS"]


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@dataclass
class RunConfig:
    name: str
    study: Path
    notebooks_dir: Path
    notebooks: list[str]
    out: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    notebook_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret: list[str] = field(default_factory=list)
    timeout: int = 1800
    jobs: int = 0
    source: str | None = None
    #: secret names no notebook declares on purpose: the study's ``source.url_param`` (set by
    #: :func:`cxlab.report.params.take_url_parameter`; its value goes to the kernels' environment)
    engine_secrets: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "study": str(self.study),
                "notebooks_dir": str(self.notebooks_dir), "notebooks": self.notebooks, "timeout": self.timeout, "jobs": self.jobs,
                "parameters": _redact(self.parameters, self.secret),
                "notebook_parameters": {k: _redact(v, self.secret)
                                        for k, v in self.notebook_parameters.items()},
                "secret": list(self.secret)}


def _redact(params: dict, secret: list[str]) -> dict:
    return {k: (REDACTED if _is_secret(k, secret) else v) for k, v in params.items()}


def _is_secret(name: str, secret: list[str]) -> bool:
    return name in secret or any(w in name.lower() for w in _SECRET_WORDS)


def _notebook_paths(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("[0-9][0-9]-*.ipynb"))


def load_run_config(path: Path | None = None, *, study: Path | None = None, out: Path | None = None,
                    notebooks_dir: Path | None = None) -> RunConfig:
    """Read a run config (or build one from ``--study``) and resolve its paths."""
    raw: dict = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise CxlabError(f"Run config {str(path)!r} does not exist (e.g. runs/monthly.yaml).")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise CxlabError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise CxlabError(f"{path}: a run config is a YAML mapping (study:, notebooks:, ...).")
        raw = parse_run_config(raw, str(path))   # pydantic: unknown keys, kinds of values
        base = path.parent.resolve()
    source = str(path) if path is not None else None

    def resolve(p) -> Path:
        p = Path(p)
        return p if p.is_absolute() else (base / p).resolve()

    study_path = Path(study).resolve() if study is not None else (resolve(raw["study"]) if "study" in raw else None)
    if study_path is None:
        raise CxlabError("No study: give a run config with a `study:` key or --study STUDY.yaml.")
    nb_dir = (Path(notebooks_dir).resolve() if notebooks_dir is not None
              else resolve(raw["notebooks_dir"]) if "notebooks_dir" in raw
              else (Path.cwd() / "notebooks") if (Path.cwd() / "notebooks").is_dir()
              else _repo_root() / "notebooks")
    if not nb_dir.is_dir():
        raise CxlabError(f"Notebook folder {str(nb_dir)!r} does not exist.")
    names = raw.get("notebooks") or _notebook_paths(nb_dir)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CxlabError(f"{source}: `notebooks` must be a list of notebook names, e.g. [01-data-audit].")
    names = [n.removesuffix(".ipynb") for n in names]
    missing = [n for n in names if not (nb_dir / f"{n}.ipynb").is_file()]
    if missing:
        available = _notebook_paths(nb_dir)
        raise CxlabError("\n".join(f"{source}: notebooks: no notebook {n!r} in {nb_dir}.{closest_hint(n, available)} "
                                   f"Available: {', '.join(available)}." for n in missing))
    if not names:
        raise CxlabError(f"No notebooks (NN-topic.ipynb) in {nb_dir}.")
    out_dir = (Path(out).resolve() if out is not None else resolve(raw["out"]) if "out" in raw
               else nb_dir.parent / "reports")
    unknown_nb = set(raw.get("notebook_parameters", {})) - set(names)
    if unknown_nb:   # the keys of notebook_parameters are the run's notebooks
        raise ParameterError("\n".join(unknown_key_message(source, n, names, where=f"notebook_parameters.{n}")
                                        for n in sorted(unknown_nb)))
    name = raw.get("name") or (path.stem if path is not None else f"study-{study_path.parent.name}")
    return RunConfig(name=str(name), study=study_path, notebooks_dir=nb_dir, notebooks=names, out=out_dir,
                     parameters=dict(raw.get("parameters", {})),
                     notebook_parameters={k: dict(v or {}) for k, v in raw.get("notebook_parameters", {}).items()},
                     secret=list(raw.get("secret", [])), timeout=int(raw.get("timeout", 1800)),
                     jobs=int(raw.get("jobs", 0)), source=source)


#: the smallest group any output may describe, set once per run for every notebook
DEFAULT_MIN_CELL = 10
#: values of ``min_cell`` below this are refused: a group of 4 or fewer is never shown
MIN_CELL_FLOOR = 5
#: parameters that left the notebooks, and where they live now
MOVED_PARAMETERS = {
    "good_customer_min": "the study spec, as segments.disappointed.good_customer_min",
    "recognised_min": "the study spec, as segments.disappointed.recognised_min",
}


def _check_min_cell(value) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"min_cell must be a whole number >= {MIN_CELL_FLOOR}, got {value!r}."]
    if value < MIN_CELL_FLOOR:
        return [f"min_cell must be >= {MIN_CELL_FLOOR} (the smallest group of customers any output may "
                f"describe), got {value}. Set it once per run: `parameters: {{min_cell: 10}}` in the run "
                f"config or --set min_cell=10."]
    return []


def resolve_parameters(config: RunConfig, overrides: list[str] = ()) -> dict[str, dict[str, Any]]:
    """Parameters per notebook, checked against each notebook's parameters cell.

    ``min_cell`` is set once per run (config ``parameters:`` or ``--set min_cell=``, default
    :data:`DEFAULT_MIN_CELL`, at least :data:`MIN_CELL_FLOOR`) and given to every notebook, each
    of which must declare it. Every problem is reported at once, before any kernel starts.
    """
    shared = dict(config.parameters)
    per_nb = {n: dict(config.notebook_parameters.get(n, {})) for n in config.notebooks}
    problems = []
    for text in overrides:
        nb, name, value = parse_override(text)
        if nb is None:
            shared[name] = value
        elif nb not in per_nb:
            raise ParameterError(f"--set {text!r}: no notebook {nb!r} in this run.{closest_hint(nb, config.notebooks)} "
                                 f"Notebooks of this run: {', '.join(config.notebooks)}.")
        else:
            per_nb[nb][name] = value
    for where, values in [("parameters", shared), *((f"notebook_parameters of {n}", v) for n, v in per_nb.items())]:
        for key in values:
            if key in MOVED_PARAMETERS:
                problems.append(f"parameter {key!r} ({where}) is no longer a notebook parameter: it moved to "
                                f"{MOVED_PARAMETERS[key]}. Remove it from the run config / --set and set it there.")
    for n, values in per_nb.items():
        if "min_cell" in values:
            problems.append(f"min_cell is set once per run for every notebook, not for {n} alone: use "
                            f"`parameters: {{min_cell: ...}}` in the run config or --set min_cell=...")
    min_cell = shared.setdefault("min_cell", DEFAULT_MIN_CELL)
    problems += _check_min_cell(min_cell)
    declared = {n: read_parameters(config.notebooks_dir / f"{n}.ipynb") for n in config.notebooks}
    for n, decl in declared.items():
        if "study_path" not in decl:
            problems.append(f"{n}: the parameters cell must declare `study_path: str = ...`.")
        if "min_cell" not in decl:
            problems.append(f"{n}: the parameters cell must declare `min_cell: int = {DEFAULT_MIN_CELL}` "
                            f"(the run gives every notebook the same smallest group size).")
    all_names = set().union(*(d.keys() for d in declared.values()))
    for key in shared:
        if key not in all_names and key not in MOVED_PARAMETERS and key != "min_cell":
            problems.append(f"unknown parameter {key!r}.{closest_hint(key, sorted(all_names))} Valid parameters "
                            f"(declared by the notebooks): {', '.join(sorted(all_names))}.")
    for key in config.secret:   # a misspelt secret name would leave the real parameter unmasked
        if key not in all_names and key not in config.engine_secrets:
            problems.append(f"secret: {key!r} is not a parameter of this run's notebooks, so nothing would be "
                            f"masked under that name.{closest_hint(key, sorted(all_names))} Valid parameters "
                            f"(declared by the notebooks): {', '.join(sorted(all_names))}.")
    resolved: dict[str, dict[str, Any]] = {}
    for n, decl in declared.items():
        values = {k: v for k, v in shared.items() if k in decl and k not in MOVED_PARAMETERS}
        values.update({k: v for k, v in per_nb[n].items() if k not in MOVED_PARAMETERS and k != "min_cell"})
        values["study_path"] = str(config.study)
        try:
            resolved[n] = check_parameters(config.notebooks_dir / f"{n}.ipynb", values, decl)
        except ParameterError as exc:
            problems.append(str(exc))
    if problems:
        raise ParameterError("\n".join(dict.fromkeys(problems)))
    return resolved


def _secret_setup(config: RunConfig, overrides, declared: dict) -> tuple[set[str], list]:
    """Secret parameter names (config ``secret:``, ``# secret`` comments, secret-sounding
    names) and every value given to them (config, --set, notebook defaults), before any check,
    so that even an error message quoting a value can be scrubbed."""
    names = set(config.secret)
    for decl in declared.values():
        names |= {p.name for p in decl.values() if p.secret}
    values = []
    given = [config.parameters, *config.notebook_parameters.values()]
    for text in overrides:
        try:
            given.append({parse_override(text)[1]: parse_override(text)[2]})
        except ParameterError:
            continue
    for d in given:
        values += [v for k, v in d.items() if _is_secret(k, sorted(names))]
    for decl in declared.values():
        values += [p.default for p in decl.values() if _is_secret(p.name, sorted(names))]
    return names, [str(v) for v in values if v not in (None, "")]

