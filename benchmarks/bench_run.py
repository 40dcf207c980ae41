"""Benchmark: the whole ``cxlab run --study`` on the demo study, against issue 13's targets.

Builds ``cxlab demo --customers N`` (not timed in the run figure), then times
``cxlab run --study <demo>/study.yaml --jobs J`` end to end while sampling the resident memory of
the whole process tree (runner, notebook workers, kernels, joblib workers) every 0.2 s. Prints:

* wall time, peak memory of the process tree, the machine's load average before and after;
* each notebook's phases from the manifest (``timings``) and its share of the run's wall time;
* the slowest cells (papermill's per-cell durations in the executed notebooks);
* the targets of issue 13 and whether they were met.

    .venv/bin/python benchmarks/bench_run.py --customers 200000 [--jobs 2] [--keep DIR]
    .venv/bin/python benchmarks/bench_run.py --customers 20000     # what `make report` runs

Targets (issue 13, 2 cores): 200 k customers <= 120 s; 1 M <= 600 s and <= 4 GiB peak memory;
20 k (``make report`` once the environment exists) <= 45 s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
CXLAB = [str(Path(sys.executable).parent / "cxlab")]
PROCESS_PEAKS: dict = {}     # (pid, label) -> peak RSS over the run
AT_PEAK: dict = {}           # (pid, label) -> RSS at the moment the tree's RSS peaked
TARGETS = {20_000: (45, None), 200_000: (120, None), 1_000_000: (600, 4 * 1024**3)}


def _tree_rss(proc: psutil.Process, parts: dict | None = None) -> int:
    """RSS of the process tree; ``parts`` (if given) gets each process's RSS by (pid, label)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
            total += rss
            if parts is not None:
                parts[(p.pid, _label(p))] = rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _label(p: psutil.Process) -> str:
    """What a process of the run is: runner, notebook worker, kernel, joblib worker, JVM..."""
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return "?"
    text = " ".join(cmd)
    for key, name in (("ipykernel", "kernel"), ("loky", "joblib worker"), ("java", "JVM"),
                      ("cxlab run", "runner"), ("multiprocessing", "worker"), ("Rscript", "R")):
        if key in text:
            return name
    return (Path(cmd[0]).name if cmd else "?") + (" " + Path(cmd[1]).name if len(cmd) > 1 else "")


def _tree_cpu(proc: psutil.Process, seen: dict) -> None:
    """Record the CPU seconds (user + system) of every process of the tree, by pid."""
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            seen[(p.pid, p.create_time())] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def _run_sampled(cmd, env=None):
    """Run ``cmd``; return (returncode, wall seconds, peak RSS of its process tree, CPU seconds of
    the tree, stderr tail). CPU: the larger of the reaped children's rusage and the per-process
    samples (a process's last 0.2 s may be missed by the samples, an orphan by the rusage)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    ps = psutil.Process(proc.pid)
    peak = [0]
    cpu: dict = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                parts: dict = {}
                total = _tree_rss(ps, parts)
                for key, rss in parts.items():
                    PROCESS_PEAKS[key] = max(PROCESS_PEAKS.get(key, 0), rss)
                if total > peak[0]:
                    peak[0] = total
                    AT_PEAK.clear()
                    AT_PEAK.update(parts, _t=time.perf_counter() - t0)
                _tree_cpu(ps, cpu)
            except psutil.NoSuchProcess:
                break
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, wall, peak[0], max(reaped, sum(cpu.values())), err[-3000:]


def _slowest_cells(run_dir: Path, k: int):
    cells = []
    for nb_path in sorted(run_dir.glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for i, c in enumerate(nb.cells):
            d = c.get("metadata", {}).get("papermill", {}).get("duration")
            if c.cell_type == "code" and d:
                first = next((ln for ln in c.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
                cells.append((float(d), nb_path.stem, i, first[:70]))
    return sorted(cells, reverse=True)[:k]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="folder for the demo and the run (default: a temp dir)")
    ap.add_argument("--slowest", type=int, default=8)
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="cxlab-bench-run-"))
    root.mkdir(parents=True, exist_ok=True)
    data, out = root / "data", root / "reports"
    t0 = time.perf_counter()
    subprocess.run([*CXLAB, "demo", "--customers", str(args.customers), "--out", str(data)], check=True,
                   capture_output=True, cwd=REPO)
    demo_s = time.perf_counter() - t0
    load_before = os.getloadavg()
    rc, wall, peak, cpu, err = _run_sampled([*CXLAB, "run", "--study", str(data / "study.yaml"), "--out", str(out),
                                             "--jobs", str(args.jobs)])
    load_after = os.getloadavg()
    print(f"cxlab run --study (demo, {args.customers:,} customers, --jobs {args.jobs}) on {os.cpu_count()} cores")
    print(f"  demo data built in {demo_s:.1f} s (not counted)")
    cores = os.cpu_count() or 1
    print(f"  exit code {rc}; wall {wall:.1f} s; peak memory of the process tree {peak / 1024**3:.2f} GiB")
    print(f"  CPU of the process tree {cpu:.1f} s = {cpu / wall:.2f} cores busy on average "
          f"(CPU / {cores} cores = {cpu / cores:.1f} s: the wall time's floor on an idle machine)")
    print(f"  load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if AT_PEAK:
        at = {k: v for k, v in AT_PEAK.items() if k != "_t"}
        print(f"  at the tree's peak ({AT_PEAK['_t']:.0f} s into the run): "
              + ", ".join(f"{label} {pid} {rss / 1024**3:.2f}" for (pid, label), rss
                          in sorted(at.items(), key=lambda kv: -kv[1]) if rss > 50 * 1024**2) + " GiB")
        print("  each process's own peak: "
              + ", ".join(f"{label} {pid} {rss / 1024**3:.2f}" for (pid, label), rss
                          in sorted(PROCESS_PEAKS.items(), key=lambda kv: -kv[1]) if rss > 100 * 1024**2) + " GiB")
    if rc not in (0, 1):
        print(err)
    runs = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "latest")
    if not runs:
        print("  no run folder written")
        return
    run_dir = runs[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if rc != 0:
        print(f"  status {manifest['status']}: {manifest.get('failed_reason')}")
    print(f"  run {manifest['run_id']}: manifest duration {manifest['duration_s']:.1f} s")
    print(f"  {'notebook':28s} {'status':10s} {'execute s':>9s} {'total s':>8s} {'share of wall':>13s}")
    for nbk in manifest["notebooks"]:
        t = nbk.get("timings") or {}
        total = t.get("total_s") or 0.0
        print(f"  {nbk['name']:28s} {nbk['status']:10s} {t.get('execute_s') or float('nan'):9.1f} {total:8.1f} "
              f"{total / wall:13.0%}")
    print("  slowest cells:")
    for d, name, i, first in _slowest_cells(run_dir, args.slowest):
        print(f"    {d:7.1f} s  {name} cell {i}: {first}")
    target = TARGETS.get(args.customers)
    if target:
        t_wall, t_mem = target
        print(f"  target wall <= {t_wall} s: {'met' if wall <= t_wall else 'NOT met'} ({wall / t_wall:.2f}x)")
        if t_mem:
            print(f"  target peak memory <= {t_mem / 1024**3:.0f} GiB: {'met' if peak <= t_mem else 'NOT met'}")
    print(f"  leftover panel cache in the run folder: {sorted(str(p) for p in run_dir.rglob('panel-cache'))}")


if __name__ == "__main__":
    main()
