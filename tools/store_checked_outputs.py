"""Execute notebooks with their default parameters and store ONLY the outputs of the cells that
nbval checks (cells containing ``# NBVAL_CHECK_OUTPUT``); every other output stays stripped.

    .venv/bin/python tools/store_checked_outputs.py notebooks/*.ipynb

Run it after changing what a checked cell prints (or the demo generator).
"""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARK = "NBVAL_CHECK_OUTPUT"


def strip(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("papermill", None)
    return nb


def main(paths):
    for path in map(Path, paths):
        stored = nbformat.read(path, as_version=4)
        executed = nbformat.read(path, as_version=4)
        NotebookClient(executed, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        strip(stored)
        for kept, ran in zip(stored.cells, executed.cells):
            if kept.cell_type == "code" and MARK in kept.source:
                kept.outputs = [o for o in ran.outputs if o.get("output_type") == "stream"]
                kept.execution_count = 1
        nbformat.write(stored, path)
        print(f"{path}: checked outputs stored")


if __name__ == "__main__":
    main(sys.argv[1:])
