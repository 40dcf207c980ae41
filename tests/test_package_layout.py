"""The package's folders follow the flow study -> data -> models -> insight -> report (issue 13),
and every module name the README documented before the move still imports, as the same object."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cxlab
from cxlab import _aliases

PACKAGE = Path(cxlab.__file__).parent
LAYERS = ["study", "data", "models", "insight", "report"]


def test_the_top_level_is_the_flow_plus_three_cross_cutting_modules():
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert folders == sorted(LAYERS)
    assert modules == ["_aliases", "cli", "errors", "privacy", "workbook"]


@pytest.mark.parametrize("old", sorted(_aliases.MOVED))
def test_an_old_name_is_the_new_module_itself(old):
    new = importlib.import_module(f"cxlab.{_aliases.MOVED[old]}.{old}")
    assert importlib.import_module(f"cxlab.{old}") is new
    assert new.__spec__.name == new.__name__        # the alias did not leave its spec behind


def test_old_submodule_names_and_from_imports_work_in_a_fresh_interpreter():
    code = ("from cxlab.survival.km import kaplan_meier\n"
            "import cxlab.models.survival.km as km\n"
            "from cxlab import segments, value\n"
            "import cxlab.value.whatif as w\n"
            "assert kaplan_meier is km.kaplan_meier\n"
            "assert segments.__name__ == 'cxlab.insight.segments' and value.__name__ == 'cxlab.insight.value'\n"
            "assert w.__name__ == 'cxlab.insight.value.whatif'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _imported_layers(path: Path) -> set[str]:
    """The cxlab layers a module imports (import statements anywhere in it, docstrings aside)."""
    layers = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cxlab" and len(parts) > 1:
                real = (_aliases.target(".".join(parts[:2])) or name).split(".")
                if real[1] in LAYERS:
                    layers.add(real[1])
    return layers


def test_every_module_imports_and_the_layers_point_one_way():
    # study imports no layer; data only study; models study/data; insight not report
    below = {"study": set(), "data": {"study"}, "models": {"study", "data"},
             "insight": {"study", "data", "models"}}
    offenders = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="cxlab."):
        module = importlib.import_module(info.name)
        layer = info.name.split(".")[1]
        if layer in below:
            offenders += [(info.name, up) for up in _imported_layers(Path(module.__file__)) - below[layer] - {layer}]
    assert offenders == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text('"""cxlab.report in a docstring is fine"""\ndef f():\n    from cxlab.segments import x\n')
    assert _imported_layers(bad) == {"insight"}
