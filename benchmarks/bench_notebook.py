"""Benchmark: a whole notebook, as a scheduled run executes it, at growing numbers of respondents.

For each size a demo study is generated with enough customers for about that many respondents
(about 37 % of customers answer), then the notebook runs under papermill with its defaults
pointing at that study. Prints wall time, the kernel's peak memory and the share of each section
(cells grouped under their markdown heading; papermill records every cell's duration).

    .venv/bin/python benchmarks/bench_notebook.py [--notebook 02-survival-drivers] [--respondents 20000 200000 1000000]

Targets (issue 3, notebook 02 on 2 cores): 200 000 respondents <= 60 s; 1 000 000 <= 5 min and <= 8 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESPONSE_RATE = 0.37   # respondents per customer in the demo generator

RUN = r"""
import json, resource, sys, time
import nbformat, papermill as pm
src, out, study = sys.argv[1:4]
t0 = time.perf_counter()
pm.execute_notebook(src, out, parameters={"study_path": study}, cwd=str(__import__("pathlib").Path(src).parent),
                    kernel_name="python3", progress_bar=False)
wall = time.perf_counter() - t0
nb = nbformat.read(out, as_version=4)
sections, current = {}, "set-up"
for cell in nb.cells:
    if cell.cell_type == "markdown":
        heads = [l.lstrip("#").strip() for l in cell.source.splitlines() if l.startswith("#")]
        if heads:
            current = heads[0]
    elif cell.cell_type == "code":
        d = cell.metadata.get("papermill", {}).get("duration") or 0.0
        sections[current] = sections.get(current, 0.0) + d
kernel_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
print(json.dumps({"wall_s": wall, "kernel_peak_gib": kernel_peak, "sections": sections}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebook", default="02-survival-drivers")
    ap.add_argument("--respondents", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    args = ap.parse_args()
    src = REPO / "notebooks" / f"{args.notebook}.ipynb"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.respondents:
            customers = int(round(n / RESPONSE_RATE))
            folder = Path(tmp) / f"study-{n}"
            subprocess.run([sys.executable, "-m", "cxlab.cli", "demo", "--customers", str(customers), "--seed", "3",
                            "--out", str(folder), "--format", "parquet"], check=True, capture_output=True)
            out = subprocess.run([sys.executable, "-c", RUN, str(src), str(Path(tmp) / f"out-{n}.ipynb"),
                                  str(folder / "study.yaml")], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append((n, r))
            print(f"\n{args.notebook} at ~{n:,} respondents ({customers:,} customers): {r['wall_s']:.1f} s wall, "
                  f"kernel peak {r['kernel_peak_gib']:.2f} GiB", flush=True)
            total = sum(r["sections"].values()) or 1.0
            for name, secs in sorted(r["sections"].items(), key=lambda kv: -kv[1]):
                print(f"  {secs:7.1f} s  {100 * secs / total:5.1f} %  {name}")
    base_n, base = results[0]
    for n, r in results[1:]:
        print(f"x{n / base_n:.0f} respondents: time x{r['wall_s'] / base['wall_s']:.1f}, "
              f"memory x{r['kernel_peak_gib'] / max(base['kernel_peak_gib'], 1e-9):.1f}")


if __name__ == "__main__":
    main()
