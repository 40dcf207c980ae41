"""Notebook parameters: read each notebook's ``parameters`` cell and check values against it.

A parameters cell holds annotated literals, one per line::

    study_path: str = "../data/demo/study.yaml"  # the study spec
    horizon_months: int = 24                      # horizon for retention figures [> 0]
    warehouse_url: str = ""                       # secret: database URL

The type is the annotation (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``, or an
``X | None``); without one, the default's type. The comment is the parameter's help text.

**Allowed values** go in square brackets at the very end of the comment (the *rule*)::

    n_boot: int = 200                    # bootstrap resamples [>= 50]
    discount_rate: float = 0.10          # annual rate [in [0, 1)]
    band_quantiles: list = [1/3, 2/3]    # cut points [each in (0, 1)]
    horizons: list = [12, 24]            # months after the survey [each > 0]
    recommend_bins: str = "nps"          # "nps" or the raw scale [choices: "nps", ""]
    min_cell: int = 10                   # smallest group shown [>= 5]

A rule is one or more conditions joined by ``;`` or ``and``:

* ``> x``, ``>= x``, ``< x``, ``<= x`` (``x`` a number, ``inf`` allowed);
* ``in (a, b)``, ``in [a, b]``, ``in [a, b)``, ``in (a, b]``: an interval, round bracket = bound
  excluded, square bracket = bound included;
* ``choices: v1, v2, ...``: one of these Python literals;
* ``each <condition>``: the condition holds for every item of a list;
* ``len >= n`` (any comparison): the list's length.

``None`` passes every rule (when the type allows it). A bracket at the end of a comment that
does not start with one of these words (e.g. ``(e.g. ["channel"])``) is plain help text.

**Secret** parameters: a comment that starts with the word ``secret`` (``# secret: database
URL``) marks the parameter secret; its value never reaches an output (see
:mod:`cxlab.report.scrub`).

Values given to a run are checked before any kernel starts: an unknown name is an error listing
the valid ones, a wrong type or a value outside the rule is an error naming the parameter and
what it allows.

**The run config file** (``runs/monthly.yaml``) is read by :func:`parse_run_config`: a pydantic
model (:class:`RunConfigFile`), as the study spec is, so an unknown key is an error that names
the closest valid key, and a value of the wrong kind names the key and what it takes.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import nbformat
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cxlab.errors import CxlabError, ParameterError

__all__ = ["NotebookParameter", "Rule", "parse_rule", "read_parameters", "check_parameters", "parse_override",
           "RunConfigFile", "parse_run_config"]

_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


_OPS = {">": lambda v, x: v > x, ">=": lambda v, x: v >= x, "<": lambda v, x: v < x,
        "<=": lambda v, x: v <= x}
_RULE_START = re.compile(r"^\s*(each\b|len\b|in\s*[\[(]|choices\s*:|[<>]=?\s*[-+.\d]|[<>]=?\s*inf)")
_COMPARISON = re.compile(r"^(>=|<=|>|<)\s*(\S+)$")
_INTERVAL = re.compile(r"^in\s*([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])$")


def _number(text: str, rule: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "+inf"):
        return math.inf
    if t == "-inf":
        return -math.inf
    try:
        return float(ast.literal_eval(t)) if "/" not in t else _fraction(t)
    except (ValueError, SyntaxError, TypeError):
        raise ValueError(f"{text!r} is not a number in rule [{rule}]") from None


def _fraction(t: str) -> float:
    a, b = t.split("/", 1)
    return float(a) / float(b)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Condition:
    kind: str                 # "cmp", "choices"
    text: str                 # as written, for messages
    each: bool = False        # applies to every item of a list
    length: bool = False      # applies to len(value)
    op: str = ""
    bound: float = 0.0
    choices: tuple = ()

    def holds(self, value) -> bool:
        if self.each:
            if not isinstance(value, (list, tuple)):
                return False
            inner = _Condition(self.kind, self.text, False, self.length, self.op, self.bound, self.choices)
            return all(inner.holds(v) for v in value)
        if self.length:
            if not hasattr(value, "__len__"):
                return False
            value = len(value)
        if self.kind == "choices":
            return any(value == c and type(value) is type(c) or (_is_number(value) and _is_number(c)
                                                                   and value == c)
                       for c in self.choices)
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            return False
        return _OPS[self.op](value, self.bound)


@dataclass(frozen=True)
class Rule:
    """Allowed values of a parameter, parsed from ``[...]`` at the end of its comment."""

    text: str
    conditions: tuple = field(default_factory=tuple)

    def holds(self, value) -> bool:
        return value is None or all(c.holds(value) for c in self.conditions)

    def describe(self) -> str:
        return self.text


def parse_rule(text: str) -> Rule:
    """Parse a rule (the text inside the brackets), e.g. ``each in (0, 1)`` or ``>= 50``.

    Raises ``ValueError`` with what is wrong."""
    conditions = []
    parts = [p.strip() for p in re.split(r";|\band\b", text) if p.strip()]
    if not parts:
        raise ValueError("the rule is empty")
    for part in parts:
        each = length = False
        body = part
        if re.match(r"^each\b", body):
            each, body = True, body[4:].strip()
        if re.match(r"^len\b", body):
            length, body = True, body[3:].strip()
        if body.startswith("choices"):
            raw = body.split(":", 1)[1] if ":" in body else ""
            try:
                values = ast.literal_eval(f"({raw},)") if raw.strip() else ()
            except (ValueError, SyntaxError):
                raise ValueError(f"choices must be Python literals separated by commas: [{text}]") from None
            if not values:
                raise ValueError(f"no choices given: [{text}]")
            conditions.append(_Condition("choices", part, each, length, choices=tuple(values)))
            continue
        m = _INTERVAL.match(body)
        if m:
            lo_b, lo, hi, hi_b = m.groups()
            conditions.append(_Condition("cmp", part, each, length, ">=" if lo_b == "[" else ">",
                                         _number(lo, text)))
            conditions.append(_Condition("cmp", part, each, length, "<=" if hi_b == "]" else "<",
                                         _number(hi, text)))
            continue
        m = _COMPARISON.match(body)
        if m:
            conditions.append(_Condition("cmp", part, each, length, m.group(1), _number(m.group(2), text)))
            continue
        raise ValueError(f"cannot read the rule [{text}]: write e.g. [> 0], [>= 50], [in (0, 1)], "
                         f"[each > 0] or [choices: \"a\", \"b\"]")
    return Rule(text.strip(), tuple(conditions))


def _split_rule(comment: str) -> tuple[str, str | None]:
    """(help text, rule text or None): the rule is a bracket closing the comment whose content
    starts with a rule word (the leftmost such ``[``, so ``[in [0, 1)]`` is one rule)."""
    c = comment.rstrip()
    if c.endswith("]"):
        for i, ch in enumerate(c):
            if ch == "[" and _RULE_START.match(c[i + 1:-1]):
                return c[:i].strip(), c[i + 1:-1].strip()
    return comment.strip(), None


@dataclass(frozen=True)
class NotebookParameter:
    name: str
    type: str            # e.g. "int", "float | None"
    default: Any
    help: str = ""
    rule: Rule | None = None

    @property
    def secret(self) -> bool:
        """Declared secret: the comment starts with the word ``secret``."""
        return bool(re.match(r"^secret\b", self.help.strip(), re.I))

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


def _comment(line: str) -> str:
    """The comment of a source line (a ``#`` outside string literals), without the ``#``."""
    import io
    import tokenize

    try:
        for tok in tokenize.generate_tokens(io.StringIO(line + "\n").readline):
            if tok.type == tokenize.COMMENT:
                return tok.string[1:].strip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return line.split("#", 1)[1].strip() if "#" in line else ""


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
        comment = _comment(lines[node.end_lineno - 1])
        help_text, rule_text = _split_rule(comment)
        rule = None
        if rule_text is not None:
            try:
                rule = parse_rule(rule_text)
            except ValueError as exc:
                raise ParameterError(f"{path}: parameter {name!r}: {exc}.") from None
        out[name] = NotebookParameter(name, annotation.replace("Optional[", "").rstrip("]")
                                      if annotation.startswith("Optional[") else annotation,
                                      default, help_text, rule)
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
            problems.append(f"{name}: unknown parameter {key!r}.{closest_hint(key, declared)} Valid parameters: "
                            f"{', '.join(declared)}.")
            continue
        if not p.accepts(value):
            problems.append(f"{name}: parameter {key!r} must be {p.type}, got {value!r} "
                            f"({type(value).__name__}).")
            continue
        if p.rule is not None and not p.rule.holds(value):
            problems.append(f"{name}: parameter {key!r} must be {p.type} [{p.rule.describe()}], "
                            f"got {value!r}.")
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


# ---------------------------------------------------------------------------------------------
# the run config file


_WholeNumber = Annotated[int, Field(strict=True, ge=1)]


class RunConfigFile(BaseModel):
    """The keys of a run config file, as written (paths not yet resolved; see
    :func:`cxlab.report.runconfig.load_run_config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None                                  # default: the file name
    study: str | None = None                                 # the study spec (relative to the file)
    out: str | None = None                                   # output folder
    notebooks: list[str] | None = None                       # default: every notebooks/NN-*.ipynb
    notebooks_dir: str | None = None                         # the notebooks' folder
    parameters: dict[str, Any] = Field(default_factory=dict)  # shared by every notebook
    notebook_parameters: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    secret: list[str] = Field(default_factory=list)          # parameter names never shown
    timeout: _WholeNumber = 1800                             # seconds per notebook
    jobs: _WholeNumber | None = None                         # notebooks at once

    @field_validator("name", mode="before")
    @classmethod
    def _name_as_text(cls, v):
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


#: what each key takes, for the message when a value is of the wrong kind
_RUN_CONFIG_TAKES = {
    "name": "a text",
    "study": "the path of a study spec (text)",
    "out": "a folder path (text)",
    "notebooks": "a list of notebook names, e.g. [01-data-audit]",
    "notebooks_dir": "a folder path (text)",
    "parameters": "a dict (parameter: value)",
    "notebook_parameters": "a dict (notebook: {parameter: value})",
    "secret": "a list of parameter names",
    "timeout": "a whole number (seconds per notebook, > 0)",
    "jobs": "a whole number (notebooks at once, >= 1)",
}


def closest_hint(name: str, valid) -> str:
    """`` Did you mean 'y'?`` for the valid name closest to ``name`` ('' when none is close): the
    same suggestion, by the same measure (difflib, cutoff 0.5), as the study spec's messages
    (:func:`cxlab.study.spec.parse_study`). Every run config, parameter and notebook name
    message uses it."""
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_key_message(source: str, key: str, valid: list[str], where: str | None = None) -> str:
    """``<source>: unknown key 'x'. Did you mean 'y'? Valid keys here: ...`` (``where``: the key's
    dotted place, e.g. ``notebook_parameters.02-survival``), as the study spec's messages."""
    return f"{source}: unknown key {where or key!r}.{closest_hint(key, valid)} Valid keys here: {', '.join(valid)}."


def parse_run_config(raw: dict, source: str = "run config") -> dict[str, Any]:
    """Check a run config mapping against :class:`RunConfigFile`; return the keys it sets.

    A key given as ``null`` counts as not given (its default). Raises
    :class:`cxlab.errors.CxlabError` (exit 2) listing every problem: an unknown key with
    the closest valid one, a value of the wrong kind with what the key takes."""
    try:
        spec = RunConfigFile(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                problems.append(unknown_key_message(source, key, list(RunConfigFile.model_fields)))
            else:
                takes = _RUN_CONFIG_TAKES.get(key, "something else")
                got = raw.get(key)   # a value is quoted only when it is a number (never a secret)
                shown = repr(got) if key in ("timeout", "jobs") else f"a {type(got).__name__}"
                line = f"{source}: `{key}` must be {takes}, got {shown}."
                if line not in problems:
                    problems.append(line)
        raise CxlabError("\n".join(problems)) from None
    return {k: v for k, v in spec.model_dump(exclude_unset=True).items() if v is not None}


def take_url_parameter(study, config, overrides=()):
    """Under ``cxlab run``: take the parameter ``source.url_param`` out of the run's parameters
    (run config ``parameters:`` or ``--set name=value``) and put its value in the environment
    variable the notebooks' kernels read the URL from (they inherit the runner's environment).

    Returns ``(config, overrides)`` without that parameter (it is no notebook's parameter, so it
    is never passed to, or recorded by, a notebook). Nothing changes when the spec names no
    ``url_param`` or the run does not give it (the variable is then read as exported)."""
    import dataclasses
    import os

    from cxlab.data.sources import url_variable

    src = study.source
    name = src.url_param if src is not None else None
    if not name:
        return config, list(overrides)
    value, kept = None, []
    params = dict(config.parameters)
    if name in params:
        value = params.pop(name)
    for text in overrides:
        try:
            nb, key, got = parse_override(text)
        except Exception:  # noqa: BLE001 - the runner reports a malformed --set itself
            kept.append(text)
            continue
        if key == name and nb is None:
            value = got
            continue
        kept.append(text)
    if value not in (None, ""):
        os.environ[url_variable(src)] = str(value)
    secret = list(dict.fromkeys([*config.secret, name]))
    engine = tuple(dict.fromkeys([*getattr(config, "engine_secrets", ()), name]))
    return dataclasses.replace(config, parameters=params, secret=secret, engine_secrets=engine), kept
