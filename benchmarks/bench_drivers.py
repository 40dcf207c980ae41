"""Benchmark: Shapley Cox driver importance with a bootstrap on a large simulated base.

Usage: ``python benchmarks/bench_drivers.py [--n 200000] [--boot 200] [--refit auto|chord|one-step|converge]``. The fit runs in a
subprocess so that its peak memory (``ru_maxrss``) is measured on its own; prints one JSON line
with wall time, CPU time, peak memory of the main
process and of the largest bootstrap worker (``n_jobs=2``), and the load average.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np, pandas as pd
from cxlab.models.drivers import shapley_importance

n, B, seed, refit = int(sys.argv[1]), int(sys.argv[2]), 7, sys.argv[3]
rng = np.random.default_rng(seed)
names = ["recognition", "empathy", "proximity", "affect"]
common = rng.normal(size=n)
X = 0.5 * common[:, None] + rng.normal(size=(n, 4))
beta = np.array([-0.40, -0.20, -0.10, 0.0])
entry = rng.uniform(0, 60, n)                      # tenure at survey, months
t = entry + rng.exponential(1 / (0.02 * np.exp(X @ beta)))
cens = entry + rng.uniform(1, 36, n)               # follow-up to the snapshot
df = pd.DataFrame(np.clip(3 + X, 1, 5), columns=names)
df["segment"] = rng.choice(["mass", "affluent", "private"], n, p=[0.7, 0.25, 0.05])
df["entry"] = entry
df["duration"] = np.minimum(t, cens)
df["event"] = (t <= cens).astype(int)
t0 = time.perf_counter()
res = shapley_importance(df, names, model="cox", controls=["segment"], n_boot=B, seed=1, n_jobs=2,
                         boot_refit=refit)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"n": n, "n_boot": B, "boot_refit": refit, "events": int(df.event.sum()), "fits": 16 * (B + 1),
                  "fit_seconds": round(wall, 1), "peak_rss_mb": round(peak, 1), "peak_rss_worker_mb": round(peak_worker, 1),
                  "cpu_seconds": round(time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime, 1),
                  "summary": res.summary.round(4).to_dict(orient="records")}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--refit", choices=["auto", "chord", "converge", "one-step"], default="auto")
    args = ap.parse_args(argv)
    load_before = open("/proc/loadavg").read().split()[:3] if sys.platform == "linux" else None
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.n), str(args.boot), args.refit],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_seconds_incl_startup"] = round(time.perf_counter() - t0, 1)
    res["load_average_before"] = load_before
    res["load_average_after"] = open("/proc/loadavg").read().split()[:3] if sys.platform == "linux" else None
    sys.stdout.write(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
