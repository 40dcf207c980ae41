"""Tiny helper to write notebooks from Python lists of cells (used once to create them; the
notebooks themselves are the source researchers edit)."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def md(text, tags=()):
    c = new_markdown_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def code(text, tags=()):
    c = new_code_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def write(path, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (cxlab)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.write(nb, path)
