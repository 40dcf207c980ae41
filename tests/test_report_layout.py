"""cxlab/report/html.py split along its seams (issue 13): the page shell and sanitiser
(report.page), formatting shared with the run index (report.formatting), warnings in plain words
(report.notes); html.py keeps the notebook -> page conversion. Every name stays importable from
cxlab.report.html (index, summary, runner and tests import it so)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import cxlab.report.html as html

REPORT = Path(__file__).resolve().parents[1] / "cxlab" / "report"


def _top_level_names(module: str) -> list[str]:
    tree = ast.parse((REPORT / f"{module}.py").read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def test_every_name_of_the_split_modules_is_still_importable_from_report_html():
    for module in ("page", "formatting", "notes"):
        mod = importlib.import_module(f"cxlab.report.{module}")
        names = _top_level_names(module)
        assert names, module
        for name in names:
            assert getattr(html, name) is getattr(mod, name), (module, name)
    for name in html.__all__:
        assert hasattr(html, name), name


def test_each_concern_lives_in_its_module():
    assert html.sanitize_html.__module__ == "cxlab.report.page"
    assert html.format_estimate_ci.__module__ == "cxlab.report.formatting"
    assert html.plain_note.__module__ == "cxlab.report.notes"
    assert html.export_html.__module__ == "cxlab.report.html"
    # the page shell and the formatting know nothing of notebooks
    for module in ("page", "formatting", "notes"):
        text = (REPORT / f"{module}.py").read_text(encoding="utf-8")
        assert "import nbformat" not in text and "nbconvert" not in text, module
