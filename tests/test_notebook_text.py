"""Reviewer text in the notebooks: no parameter or spec-key code names in the prose a reviewer reads.

Markdown cells are shown as written in the HTML report; a reviewer who never saw Python cannot
read `retention_horizon_months` or `discount_rate` (the value it stands for is stated where the
result is shown)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from cxlab.report.params import read_parameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_names_no_parameter_or_spec_key(path):
    names = set(read_parameters(path))
    nb = nbformat.read(path, as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for code in re.findall(r"`([^`]+)`", cell.source):
            if code in names or re.fullmatch(r"[a-z_]+\.[a-z_.]+", code):   # a parameter, or a dotted spec key
                bad.append((i, code))
    assert not bad, f"{path.name}: code names in reviewer prose (cell, name): {bad}"
