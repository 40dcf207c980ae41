"""Benchmark of the demo generator: wall time and peak memory of generate_demo and write_demo.

Each size runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its own.

    .venv/bin/python benchmarks/bench_synth.py                 # 20 000, 200 000, 1 000 000
    .venv/bin/python benchmarks/bench_synth.py 20000 --fmt parquet
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
n, fmt = int(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
from cxlab.data.synth import generate_demo, write_demo
demo = generate_demo(n_customers=n, seed=2026)
t1 = time.perf_counter()
rows = {"answers": len(demo.surveys), "complaints": len(demo.complaints)}
del demo
rss_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with tempfile.TemporaryDirectory() as tmp:
    t2 = time.perf_counter()
    spec = write_demo(Path(tmp) / "demo", n_customers=n, seed=2026, fmt=fmt)
    t3 = time.perf_counter()
    size = sum(p.stat().st_size for p in spec.parent.iterdir()) / 2**20
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"customers": n, "format": fmt, **rows, "generate_s": round(t1 - t0, 2),
                  "write_demo_s": round(t3 - t2, 2), "peak_rss_generate_mib": round(rss_gen),
                  "peak_rss_mib": round(rss), "files_mib": round(size, 1)}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--fmt", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args(argv)
    print(f"{'customers':>10} {'answers':>9} {'complaints':>10} {'generate s':>10} {'write_demo s':>12} "
          f"{'peak MiB (gen)':>14} {'peak MiB':>9} {'files MiB':>9}")
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), args.fmt], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['customers']:>10,} {r['answers']:>9,} {r['complaints']:>10,} {r['generate_s']:>10} "
              f"{r['write_demo_s']:>12} {r['peak_rss_generate_mib']:>14} {r['peak_rss_mib']:>9} "
              f"{r['files_mib']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
