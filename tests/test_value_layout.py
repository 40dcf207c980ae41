"""cxlab.insight.value is a package with one module per concern (issue 13); every public name stays
importable from ``cxlab.insight.value`` (notebooks, README and workbook use it so)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import cxlab.insight.value as value

ROOT = Path(__file__).resolve().parents[1]
HOME = {"lorenz": "concentration", "gini": "concentration", "top_share": "concentration", "rmst": "retention",
        "clv": "retention", "value_at_risk": "retention", "what_if": "whatif", "fit_sbg": "sbg",
        "SBGResult": "sbg", "cohort_survivors": "sbg"}


def test_every_public_name_is_importable_from_cxlab_value_and_lives_in_its_concern():
    assert sorted(value.__all__) == sorted(HOME)
    for name, module in HOME.items():
        obj = getattr(value, name)
        assert obj.__module__ == f"cxlab.insight.value.{module}", name
        assert getattr(importlib.import_module(f"cxlab.insight.value.{module}"), name) is obj


def test_names_the_notebooks_and_readme_call_exist():
    used = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            used |= set(re.findall(r"\bvalue\.([A-Za-z_]\w*)\(", "".join(cell["source"])))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    used |= set(re.findall(r"from cxlab\.value import ([A-Za-z_]\w*)", readme))
    used |= set(re.findall(r"cxlab\.value\.([A-Za-z_]\w*)", readme))
    assert used, "no use of cxlab.insight.value found: the scan is broken"
    missing = sorted(n for n in used if not hasattr(value, n))
    assert missing == []
