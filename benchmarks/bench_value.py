"""Benchmark: cxlab.insight.value.what_if with B bootstrap draws on a large simulated respondent table.

Usage:  .venv/bin/python benchmarks/bench_value.py [--n 200000] [--boot 200] [--seed 0] [--n-jobs 2]
                                                  [--refit converge one-step] [--before b2696ff]
Prints one JSON line per bootstrap kind: n, n_boot, wall seconds of what_if, peak RSS (MiB), the
12-month delta and its interval; then the ratio of each kind's time to the first one's.
``--before REV`` also times what_if as it was at git revision REV (its whatif.py loaded from git,
on today's engine), as the first line. Target (brief): <= 2 min for B = 200 on 200 000
respondents on 2 cores; notebook 04's what-if (two what_if calls) was 20 s at 200 k customers.

The model handed to what_if is cxlab's CoxModel fitted on the full table (delayed entry); what_if
re-estimates it with the engine it shares. Each kind runs once (the machine is shared: note its
load, printed with the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd


def simulate(n: int, seed: int) -> pd.DataFrame:
    """Respondent table on the tenure clock (Weibull baseline, delayed entry at the survey), four
    constructs on a 1..5 scale, a string covariate, margin; true log-HRs -0.35, -0.15, -0.1, 0."""
    rng = np.random.default_rng(seed)
    entry = rng.uniform(1, 60, n)
    cons = {name: np.clip(np.round(rng.normal(mu, 1.0, n)), 1, 5)
            for name, mu in (("recognition", 3.2), ("empathy", 3.5), ("proximity", 3.0), ("affect", 3.4))}
    channel = rng.choice(["branch", "online", "phone"], n)
    lp = -0.35 * cons["recognition"] - 0.15 * cons["empathy"] - 0.1 * cons["proximity"] + 0.2 * (channel == "online")
    target = (entry / 80.0) ** 1.3 + rng.exponential(1.0, n) / np.exp(lp)
    t_def = 80.0 * target ** (1 / 1.3)
    follow = entry + rng.uniform(6, 36, n)
    df = pd.DataFrame({"entry": entry, "duration": np.minimum(t_def, follow),
                       "event": (t_def <= follow).astype(int), **cons, "channel": channel,
                       "value": rng.gamma(2.0, 300.0, n)})
    df["online"] = (df["channel"] == "online").astype(float)
    return df


def _what_if_at(rev: str):
    """what_if as it was at git revision ``rev``: its whatif.py from git, written as a module of its
    own in a temporary folder on sys.path (worker processes import it by name), on today's engine."""
    import importlib
    import subprocess
    import tempfile
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    for path in ("cxlab/insight/value/whatif.py", "cxlab/value/whatif.py"):
        out = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True, text=True)
        if out.returncode == 0:
            break
    else:
        raise SystemExit(f"bench_value: no whatif.py at {rev}")
    folder = tempfile.mkdtemp(prefix="bench-value-")
    name = f"whatif_{rev}"
    (Path(folder) / f"{name}.py").write_text(out.stdout)
    sys.path.insert(0, folder)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))   # workers
    return importlib.import_module(name).what_if


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--refit", nargs="+", default=["converge", "one-step"], help="what_if boot_refit kinds to time")
    ap.add_argument("--before", default=None, help="also time what_if as at this git revision (first)")
    args = ap.parse_args(argv)

    from cxlab.insight.value import what_if
    from cxlab.models.survival import CoxModel

    df = simulate(args.n, args.seed)
    t0 = time.perf_counter()
    cox = CoxModel(["recognition", "empathy", "proximity", "affect"], controls=["online"]).fit(
        df, duration_col="duration", event_col="event", entry_col="entry")
    fit_s = time.perf_counter() - t0
    low = (df["recognition"] <= 2).to_numpy()
    kinds = ([(f"before ({args.before})", _what_if_at(args.before), {})] if args.before else [])
    kinds += [(refit, what_if, {"boot_refit": refit}) for refit in args.refit]
    times = []
    small = df.head(3000)
    small_cox = CoxModel(["recognition", "empathy", "proximity", "affect"], controls=["online"]).fit(
        small, duration_col="duration", event_col="event", entry_col="entry")
    for name, fn, extra in kinds:
        # warm-up (not timed): the worker processes start and import once
        fn(small, small_cox, "recognition", 1.0, segment=low[:3000], n_boot=2 * args.n_jobs, n_jobs=args.n_jobs,
           **extra)
        t1 = time.perf_counter()
        out = fn(df, cox, "recognition", 1.0, segment=low, n_boot=args.boot, seed=args.seed, n_jobs=args.n_jobs,
                 **extra)
        times.append(time.perf_counter() - t1)
        row = out[(out["metric"] == "expected defections") & (out["horizon"] == 12)].iloc[0]
        print(json.dumps({
            "what_if": name, "n": args.n, "events": int(df["event"].sum()), "n_boot": int(row["n_boot"]),
            "n_jobs": args.n_jobs, "cox_fit_s": round(fit_s, 2), "what_if_s": round(times[-1], 1),
            "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_rss_largest_worker_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "delta_defections_12m": round(float(row["delta"]), 2),
            "ci_12m": [round(float(row["lower"]), 2), round(float(row["upper"]), 2)],
            "load_1min": round(os.getloadavg()[0], 2),
        }), flush=True)
    for (name, _, _), t in zip(kinds[1:], times[1:]):
        print(f"{name}: {t:.1f} s = {t / times[0]:.2f} x {kinds[0][0]} ({times[0]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
