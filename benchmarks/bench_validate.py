"""Benchmark (issue 11 part 3): the data contract checked on the engine vs in pandas.

For each size the demo study is written once as CSV (``cxlab demo --customers N``), then loaded
into a DuckDB file by DuckDB's ``read_csv`` (typed by its sniffer, as a warehouse would hold the
tables: DATE / TIMESTAMP / DOUBLE columns) with a copy of the spec reading it (``source:
{backend: duckdb}``). Each measurement runs in a fresh subprocess:

* ``csv-pandas``: ``validate_study`` on the CSV files (the file path: every file read whole
  into pandas);
* ``duckdb-collect``: the DuckDB source checked as before validation was pushed down (each
  table collected into pandas, then the pandas checks: ``validate_frames``);
* ``duckdb-engine``: the DuckDB source checked by queries on the engine (``validate_engine``;
  the typed tables stay on DuckDB as ``EngineData``); with ``--duckdb-memory-limit`` once more
  with DuckDB's ``memory_limit`` set (the embedded engine then spills to disk).

Prints wall time, the process's peak RSS (``ru_maxrss``: DuckDB runs inside the process, so its
memory counts too), the problems found (0 for the demo), the load average at the start, and the
ratios engine / pandas.

    .venv/bin/python benchmarks/bench_validate.py [--sizes 1000000 3000000] [--keep DIR]
                                                  [--duckdb-memory-limit 512MB]
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

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

STEP = r"""
import json, resource, sys, time
mode, spec, limit = sys.argv[1], sys.argv[2], sys.argv[3]
from cxlab.study import load_study
t0 = time.perf_counter()
study = load_study(spec)
if mode == "duckdb-engine":
    from cxlab.data.sources import connect
    from cxlab.data.validate import validate_engine
    con = connect(study)
    if limit:
        con.raw_sql(f"SET memory_limit = '{limit}'")
    report = validate_engine(study, con)
    assert report.ok == (report.engine is not None)
else:
    from cxlab.data.validate import validate_frames
    report = validate_frames(study)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "problems": len(report.problems), "rows": report.files}))
"""

ROLES = {"customers": "crm.customers", "surveys": "crm.barometer", "complaints": "crm.complaints"}


def make_study(size: int, folder: Path) -> tuple[Path, Path]:
    """The demo as CSV files and as a DuckDB file (typed by read_csv), with a spec for each."""
    import duckdb
    import yaml

    spec = folder / "study.yaml"
    if not spec.exists():
        subprocess.run([PY, "-m", "cxlab.cli", "demo", "--customers", str(size), "--out", str(folder)],
                       check=True, capture_output=True)
    raw = yaml.safe_load(spec.read_text())
    db = folder / "warehouse.duckdb"
    if not db.exists():
        con = duckdb.connect(str(db))
        con.execute("CREATE SCHEMA crm")
        for role, table in ROLES.items():
            if raw.get(role):
                path = folder / raw[role]["path"]
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', header=true)")
        con.close()
    for role in ROLES:
        if raw.get(role):
            raw[role].pop("path")
    raw["source"] = {"backend": "duckdb", "path": db.name, "tables": {r: t for r, t in ROLES.items() if raw.get(r)}}
    engine_spec = folder / "engine.yaml"
    engine_spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    return spec, engine_spec


def measure(mode: str, spec: Path, limit: str = "") -> dict:
    proc = subprocess.run([PY, "-c", STEP, mode, str(spec), limit], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    ap.add_argument("--keep", type=Path, help="folder for the demo data (kept, reused)")
    ap.add_argument("--duckdb-memory-limit", default="",
                    help="also run duckdb-engine with DuckDB's memory_limit set (e.g. 512MB): it spills to disk")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="cxlab-bench-validate-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print(f"{'customers':>10}  {'mode':<15} {'wall s':>8} {'peak RSS GiB':>13} {'problems':>9}")
    for size in args.sizes:
        folder = base / f"n{size}"
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        csv_spec, engine_spec = make_study(size, folder)
        print(f"  (data for {size:,} customers ready in {time.perf_counter() - t0:.0f} s; load "
              f"{os.getloadavg()[0]:.2f})")
        got = {}
        for mode, spec in (("csv-pandas", csv_spec), ("duckdb-collect", engine_spec),
                           ("duckdb-engine", engine_spec)):
            got[mode] = r = measure(mode, spec)
            print(f"{size:>10,}  {mode:<15} {r['wall']:>8.1f} {r['rss_gib']:>13.2f} {r['problems']:>9}", flush=True)
        if args.duckdb_memory_limit:
            mode = f"engine@{args.duckdb_memory_limit}"
            r = measure("duckdb-engine", engine_spec, args.duckdb_memory_limit)
            print(f"{size:>10,}  {mode:<15} {r['wall']:>8.1f} {r['rss_gib']:>13.2f} {r['problems']:>9}", flush=True)
        e, p, c = got["duckdb-engine"], got["csv-pandas"], got["duckdb-collect"]
        print(f"{'':>10}  engine / csv-pandas: wall {e['wall'] / p['wall']:.2f}x, RSS {e['rss_gib'] / p['rss_gib']:.2f}x; "
              f"engine / duckdb-collect: wall {e['wall'] / c['wall']:.2f}x, RSS {e['rss_gib'] / c['rss_gib']:.2f}x; "
              f"load now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
