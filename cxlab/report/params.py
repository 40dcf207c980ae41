"""Notebook parameters: read each notebook's ``parameters`` cell and check values against it.

A parameters cell holds annotated literals, one per line::

    study_path: str = "../data/demo/study.yaml"  # the study spec
    horizon_months: int = 24                      # horizon for retention figures

The type is the annotation (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``, or an
``X | None``); without one, the default's type. Values given to a run are checked before any
kernel starts: an unknown name is an error listing the valid ones, a wrong type is an error.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from cxlab.errors import ParameterError

__all__ = ["NotebookParameter", "read_parameters", "check_parameters", "parse_override"]

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


@dataclass(frozen=True)
class NotebookParameter:
    name: str
    type: str            # e.g. "int", "float | None"
    default: Any
    help: str = ""

    def accepts(self, value) -> bool:
        for t in (p.strip() for p in self.type.split("|")):
            if t == "None" and value is None:
                return True
            kinds = _TYPES.get(t)
            if kinds is None:           # an annotation we do not know: accept anything
                return True
            if isinstance(value, bool) and t in ("int", "float"):
                continue                # True is not a number here
            if isinstance(value, kinds):
                return True
        return False


def _parameters_cell(nb, path) -> str:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    raise ParameterError(f"{path}: no cell is tagged 'parameters'. Tag the cell that holds the "
                         f"notebook's parameters (View > Cell toolbar > Tags in Jupyter).")


def read_parameters(notebook: str | Path) -> dict[str, NotebookParameter]:
    """Parameters declared in a notebook's ``parameters`` cell, in order."""
    path = Path(notebook)
    nb = nbformat.read(path, as_version=4)
    source = _parameters_cell(nb, path)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{path}: the parameters cell is not valid Python: {exc}") from None
    lines = source.splitlines()
    out: dict[str, NotebookParameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value_node = node.target.id, ast.unparse(node.annotation), node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value_node = node.targets[0].id, None, node.value
        else:
            raise ParameterError(f"{path}: line {node.lineno} of the parameters cell is not a "
                                 f"`name: type = literal` assignment.")
        try:
            default = ast.literal_eval(value_node) if value_node is not None else None
        except ValueError:
            raise ParameterError(f"{path}: parameter {name!r} must default to a literal "
                                 f"(number, string, list, dict, True/False/None).") from None
        if annotation is None:
            annotation = "None" if default is None else type(default).__name__
        line = lines[node.lineno - 1]
        help_text = line.split("#", 1)[1].strip() if "#" in line else ""
        out[name] = NotebookParameter(name, annotation.replace("Optional[", "").rstrip("]")
                                      if annotation.startswith("Optional[") else annotation,
                                      default, help_text)
    return out


def check_parameters(notebook: str | Path, values: dict[str, Any],
                     declared: dict[str, NotebookParameter] | None = None) -> dict[str, Any]:
    """Check ``values`` against a notebook's parameters; return them (ints widened for floats)."""
    declared = read_parameters(notebook) if declared is None else declared
    name = Path(notebook).stem
    problems = []
    checked = {}
    for key, value in values.items():
        p = declared.get(key)
        if p is None:
            import difflib

            close = difflib.get_close_matches(key, list(declared), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(f"{name}: unknown parameter {key!r}.{hint} Valid parameters: "
                            f"{', '.join(declared)}.")
            continue
        if not p.accepts(value):
            problems.append(f"{name}: parameter {key!r} must be {p.type}, got {value!r} "
                            f"({type(value).__name__}).")
            continue
        checked[key] = float(value) if p.type.split("|")[0].strip() == "float" and isinstance(value, int) else value
    if problems:
        raise ParameterError("\n".join(problems))
    return checked


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """``name=value`` or ``notebook:name=value`` -> (notebook or None, name, value).

    The value is read as YAML, so ``24`` is an int, ``0.1`` a float, ``true`` a bool and
    ``[a, b]`` a list; anything else is a string.
    """
    import yaml

    if "=" not in text:
        raise ParameterError(f"--set {text!r}: expected name=value (or notebook:name=value).")
    key, raw = text.split("=", 1)
    notebook, _, name = key.rpartition(":")
    name = name.strip()
    if not name.isidentifier():
        raise ParameterError(f"--set {text!r}: {name!r} is not a parameter name.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return (notebook.strip() or None), name, value
