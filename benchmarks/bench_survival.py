"""Benchmark: wall time and peak memory of the survival models at growing sample sizes.

    python benchmarks/bench_survival.py --max 200000

Each size runs in its own subprocess (so peak memory is that size's own): simulated respondents
with 4 constructs and 2 categorical controls, tenure in whole days (as months), delayed entry at the survey (tenure clock). Steps:
Cox fit (lifelines ``CoxPHFitter`` with ``entry_col``, the engine under cxlab's Cox), the AFT trio
(``cxlab.survival.aft.fit_aft``) and the 5-fold evaluation (``cxlab.survival.evaluate``).
Peak memory is the process's maximum resident set size (``ru_maxrss``) after each step, so it is
cumulative: the peak so far, including the simulated data.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SIZES = (20_000, 200_000, 1_000_000)
CONSTRUCTS = ["recognition", "empathy", "proximity", "affect"]
CONTROLS = ["segment", "channel"]


def simulate(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    m = 3 * n
    x = rng.normal(size=(m, 4))
    segment = rng.choice(["mass", "affluent", "private"], size=m, p=[0.6, 0.3, 0.1])
    channel = rng.choice(["branch", "online"], size=m)
    log_scale = np.log(60) + x @ np.log([1.25, 1.10, 1.05, 1.0]) + 0.2 * (segment == "affluent")
    t = np.exp(log_scale) * rng.exponential(size=m) ** (1 / 1.4)
    entry = rng.uniform(0, 120, size=m)
    keep = np.flatnonzero(t > entry)[:n]
    follow = rng.uniform(1, 36, size=keep.size)
    df = pd.DataFrame(np.clip(3 + 0.8 * x[keep], 1, 5), columns=CONSTRUCTS)
    df["segment"], df["channel"] = segment[keep], channel[keep]
    # tenure is recorded in days and expressed in months, as in real extracts
    day = 12 / 365.25
    df["entry"] = np.floor(entry[keep] / day) * day
    df["duration"] = np.maximum(np.ceil(np.minimum(t[keep], entry[keep] + follow) / day) * day, df["entry"] + day)
    df["event"] = (t[keep] <= entry[keep] + follow).astype(int)
    return df


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(n: int) -> dict:
    import warnings

    from lifelines import CoxPHFitter

    from cxlab.survival.aft import _prepare_design, fit_aft
    from cxlab.survival.evaluate import evaluate_survival

    warnings.simplefilter("ignore")
    out = {"n": n}
    t0 = time.perf_counter()
    df = simulate(n)
    out["simulate_s"], out["simulate_peak_mb"] = time.perf_counter() - t0, _peak_mb()

    t0 = time.perf_counter()
    design = _prepare_design(df, CONSTRUCTS, CONTROLS, "duration", "event", "entry")
    CoxPHFitter().fit(design.frame, "duration", "event", entry_col="entry")
    out["cox_s"], out["cox_peak_mb"] = time.perf_counter() - t0, _peak_mb()

    t0 = time.perf_counter()
    fit_aft(df, CONSTRUCTS, CONTROLS, entry_col="entry")
    out["aft_s"], out["aft_peak_mb"] = time.perf_counter() - t0, _peak_mb()

    t0 = time.perf_counter()
    evaluate_survival(df, CONSTRUCTS, CONTROLS, entry_col="entry", n_splits=5, times=(12, 24))
    out["evaluate_s"], out["evaluate_peak_mb"] = time.perf_counter() - t0, _peak_mb()
    out["events"] = int(df["event"].sum())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=200_000, help="skip sizes above this (default 200000)")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: run one size
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0
    results = []
    for n in sorted(args.sizes):
        if n > args.max:
            print(f"skipping n = {n:,} (> --max {args.max:,})")
            continue
        proc = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"n = {n:,} failed:\n{proc.stderr[-2000:]}")
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"n={r['n']:>9,}  events={r['events']:>8,}  cox {r['cox_s']:8.1f}s  aft {r['aft_s']:8.1f}s  "
            f"evaluate {r['evaluate_s']:8.1f}s  peak {r['evaluate_peak_mb']:8.0f} MB",
            flush=True,
        )
    if len(results) > 1:
        print("\nratio to the previous size:")
        for a, b in zip(results, results[1:]):
            ratios = "  ".join(f"{k[:-2]} x{b[k] / a[k]:.1f}" for k in ("cox_s", "aft_s", "evaluate_s"))
            print(f"{a['n']:,} -> {b['n']:,} (x{b['n'] / a['n']:.0f} rows): {ratios}  "
                  f"peak MB x{b['evaluate_peak_mb'] / a['evaluate_peak_mb']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
