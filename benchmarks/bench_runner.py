"""Benchmark: `cxlab run` overhead per notebook, and `make report` on the 20 000-customer demo.

1. Runner overhead: a notebook with one empty cell, run ``--repeat`` times through
   :func:`cxlab.report.runner.run`; prints each phase from the manifest's ``timings``
   (worker start-up, parameter injection, kernel start, execution, kernel shutdown, HTML
   export) and the overhead (everything but execution) per notebook.
2. ``make report`` wall time (the environment and the demo data already present), then the
   per-notebook phases of the run it wrote (``reports/latest/manifest.json``).
   Target (issue 5): <= 90 s on 2 cores.

    .venv/bin/python benchmarks/bench_runner.py [--repeat 3] [--no-make-report]

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
PHASES = ["startup_s", "prepare_s", "kernel_start_s", "execute_s", "shutdown_s", "export_s", "total_s"]


def _table(rows: list[tuple[str, dict]]) -> str:
    head = f"{'notebook':<28}" + "".join(f"{p.removesuffix('_s'):>13}" for p in PHASES) + f"{'overhead':>10}"
    lines = [head, "-" * len(head)]
    for name, t in rows:
        cells = "".join(f"{t[p]:>13.2f}" if t.get(p) is not None else f"{'–':>13}" for p in PHASES)
        overhead = t["total_s"] - (t.get("execute_s") or 0.0)
        lines.append(f"{name:<28}{cells}{overhead:>10.2f}")
    return "\n".join(lines)


def empty_notebook_overhead(repeat: int) -> list[dict]:
    from cxlab.report.runner import load_run_config, run

    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp:
        root = Path(tmp)
        (root / "notebooks").mkdir()
        nb = new_notebook(cells=[new_markdown_cell("# Empty"),
                                 new_code_cell('study_path: str = "study.yaml"  # the study spec\n'
                                               'min_cell: int = 10  # smallest group shown [>= 5]',
                                               metadata={"tags": ["parameters"]}),
                                 new_code_cell("pass")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "notebooks" / "01-empty.ipynb")
        (root / "customers.csv").write_text("id,s,e\nA,2020-01-01,\nB,2021-03-01,2025-01-31\n", encoding="utf-8")
        (root / "answers.csv").write_text("id,d,q1\nA,2024-05-01,4\nB,2024-06-01,2\n", encoding="utf-8")
        (root / "study.yaml").write_text(
            "name: Bench\nsnapshot_date: 2026-06-30\n"
            "customers: {path: customers.csv, id: id, start: s, end: e}\n"
            "surveys: {path: answers.csv, id: id, date: d, scale: [1, 5], constructs: {recognition: [q1]}}\n", encoding="utf-8")
        (root / "run.yaml").write_text(json.dumps({"name": "bench", "study": "study.yaml", "out": "reports",
                                                   "notebooks_dir": "notebooks"}), encoding="utf-8")
        config = load_run_config(root / "run.yaml")
        out = []
        for _ in range(repeat):
            manifest = run(config, log=lambda _m: None, progress=False)
            out.append(manifest["notebooks"][0]["timings"])
        return out


def make_report() -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "report"], cwd=REPO, env=dict(os.environ))
    return time.perf_counter() - t0, proc.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of the empty notebook (default 3)")
    ap.add_argument("--no-make-report", action="store_true", help="skip the `make report` timing")
    args = ap.parse_args(argv)
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}")

    print(f"\n1. Runner overhead: one empty notebook, {args.repeat} runs (seconds)")
    rows = empty_notebook_overhead(args.repeat)
    print(_table([(f"empty (run {i + 1})", t) for i, t in enumerate(rows)]))

    if not args.no_make_report:
        print("\n2. make report (20 000-customer demo, environment present)")
        wall, code = make_report()
        print(f"make report: {wall:.1f} s wall, exit {code} (target <= 90 s on 2 cores)")
        manifest_path = REPO / "reports" / "latest" / "manifest.json"
        if code == 0 and manifest_path.is_file():
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
            print(f"run {m['run_id']}: {m['duration_s']:.1f} s from first notebook start to manifest, "
                  f"{m['config'].get('jobs') or 'default'} jobs in config")
            print(_table([(n["name"], n["timings"]) for n in m["notebooks"] if n.get("timings")]))
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
