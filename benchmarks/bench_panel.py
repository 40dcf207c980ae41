"""Benchmark: `cxlab demo` and the panel build at 20 000, 200 000 and 1 000 000 customers.

Prints wall time and peak memory (max RSS of a fresh subprocess per step and size) and the
ratios between sizes. Targets (issue 2): panel for 1 000 000 customers in <= 60 s and <= 4 GiB
on 2 cores.

    .venv/bin/python benchmarks/bench_panel.py [--sizes 20000 200000 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = r"""
import json, resource, sys, time
step, size, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
if step == "demo":
    from cxlab.data.synth import write_demo
    write_demo(folder, n_customers=size, seed=1)
    extra = {}
else:
    from cxlab.study import load_study
    from cxlab.data.validate import validate_study
    from cxlab.data.panel import build_panel
    study = load_study(f"{folder}/study.yaml")
    t_load = time.perf_counter()
    report = validate_study(study)
    report.raise_if_failed()
    t_valid = time.perf_counter()
    panel = build_panel(study, report.data)
    t_panel = time.perf_counter()
    extra = {"validate_s": t_valid - t_load, "panel_only_s": t_panel - t_valid,
             "respondents": panel.n_respondents, "intervals": len(panel.intervals)}
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB -> GiB
print(json.dumps({"step": step, "size": size, "wall_s": wall, "peak_gib": peak, **extra}))
"""


def measure(step: str, size: int, folder: str) -> dict:
    out = subprocess.run([sys.executable, "-c", STEP, step, str(size), folder], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = str(Path(tmp) / f"demo-{size}")
            demo = measure("demo", size, folder)
            panel = measure("panel", size, folder)
            rows.append((size, demo, panel))
            print(f"{size:>9,} customers | demo {demo['wall_s']:6.1f} s {demo['peak_gib']:5.2f} GiB | "
                  f"validate+panel {panel['wall_s']:6.1f} s {panel['peak_gib']:5.2f} GiB "
                  f"(validate {panel['validate_s']:.1f} s, panel {panel['panel_only_s']:.1f} s; "
                  f"{panel['respondents']:,} respondents, {panel['intervals']:,} intervals)", flush=True)
    base = rows[0]
    for size, demo, panel in rows[1:]:
        print(f"x{size / base[0]:.0f} customers: demo time x{demo['wall_s'] / base[1]['wall_s']:.1f}, "
              f"panel time x{panel['wall_s'] / base[2]['wall_s']:.1f}")
    size, _, panel = rows[-1]
    print(f"target at {size:,}: panel <= 60 s and <= 4 GiB -> measured {panel['wall_s']:.1f} s, "
          f"{panel['peak_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
