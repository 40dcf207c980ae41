"""Benchmark (issue 11): validation + panel at 1 M, 3 M and 10 M customers on DuckDB and PySpark local[2].

For each size the demo study is written once as Parquet (``cxlab.data.synth.write_demo(fmt="parquet")``)
and copied into a DuckDB file; then, each in a fresh subprocess (what ``open_study`` does):

* ``duckdb-files``: ``validate_study`` on the Parquet files (pandas: the tables are read whole),
  then ``build_panel`` on the embedded DuckDB;
* ``duckdb``: the same tables in a ``.duckdb`` file read by a ``source: {backend: duckdb}`` spec:
  ``validate_engine`` (the contract as queries) and ``build_panel`` on the typed tables it hands
  over (``EngineData``): only counts, example row numbers, the respondent table and the
  counting-process rows come into Python;
* ``pyspark``: the Parquet files read by a ``source: {backend: pyspark, parquet: ...}`` spec on a
  Spark session ``local[2]``: validation and panel on Spark, as for ``duckdb``.

Prints wall time, the driver's peak memory (max RSS of the Python process, DuckDB included as it
runs in it; for PySpark also the peak RSS of the local JVM, which in ``local[2]`` is driver and
executors at once; for a DuckDB source the peak disk use of its spill folder and scratch database
under ``$TMPDIR``; both sampled every 0.2 s), the machine's load average, and the growth exponent
between sizes (``log(t2 / t1) / log(n2 / n1)``: 1 = linear).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 1000000 3000000] [--engines duckdb pyspark duckdb-files]
        [--data FOLDER]   # keep the generated studies there and reuse them on the next call
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP = r"""
import json, os, resource, sys, threading, time
step, size, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
extra = {}
if step == "demo":
    from cxlab.data.synth import write_demo
    write_demo(folder, n_customers=size, seed=1, fmt="parquet")
    import duckdb, yaml
    raw = yaml.safe_load(open(f"{folder}/study.yaml"))
    os.makedirs(f"{folder}/duckdb", exist_ok=True)
    con = duckdb.connect(f"{folder}/duckdb/demo.duckdb")
    for role in ("customers", "surveys", "complaints"):
        if raw.get(role):
            con.execute(f"CREATE TABLE {role} AS SELECT * FROM read_parquet('{folder}/{raw[role]['path']}')")
    con.close()
else:
    import glob, psutil, tempfile
    jvm_peak, disk_peak = [0], [0]
    stop = threading.Event()
    spill = os.path.join(tempfile.gettempdir(), f"cxlab-duckdb-spill-{os.getpid()}-*")
    def disk():           # DuckDB's spill folder and scratch database (cxlab.data.sources._bounded)
        total = 0
        for root in glob.glob(spill):
            for path, _, files in os.walk(root):
                for f in files:
                    try:
                        total += os.stat(os.path.join(path, f)).st_blocks * 512
                    except OSError:
                        pass
        return total
    def sample():
        me = psutil.Process()
        while not stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                rss = 0
            jvm_peak[0] = max(jvm_peak[0], rss)
            disk_peak[0] = max(disk_peak[0], disk())
            stop.wait(0.2)
    threading.Thread(target=sample, daemon=True).start()
    from cxlab.study import load_study
    from cxlab.data.validate import validate_engine, validate_study
    from cxlab.data.panel import build_panel
    spec = f"{folder}/study.yaml" if step == "duckdb-files" else f"{folder}/{step}/study.yaml"
    study = load_study(spec)
    t_load = time.perf_counter()
    if step == "duckdb-files":
        report = validate_study(study)
    else:
        from cxlab.data.sources import connect
        report = validate_engine(study, connect(study))
    report.raise_if_failed()
    t_valid = time.perf_counter()
    panel = build_panel(study, report.engine or report.data)
    t_panel = time.perf_counter()
    stop.set()
    extra = {"validate_s": t_valid - t_load, "panel_only_s": t_panel - t_valid,
             "respondents": panel.n_respondents, "intervals": len(panel.intervals),
             "jvm_peak_gib": jvm_peak[0] / 2**30, "spill_peak_gib": disk_peak[0] / 2**30}
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB -> GiB
print(json.dumps({"step": step, "size": size, "wall_s": wall, "peak_gib": peak, **extra}))
"""


def source_specs(folder: Path) -> None:
    """Copies of the demo spec reading its tables through a source: the DuckDB file (``duckdb/``)
    and the Parquet files on PySpark local[2] (``pyspark/``)."""
    import yaml

    raw = yaml.safe_load((folder / "study.yaml").read_text())
    roles = [r for r in ("customers", "surveys", "complaints") if raw.get(r)]
    paths = {r: raw[r].pop("path") for r in roles}
    for name, source in (
            ("duckdb", {"backend": "duckdb", "path": "demo.duckdb", "tables": {r: r for r in roles}}),
            ("pyspark", {"backend": "pyspark", "master": "local[2]", "parquet": {r: "../" + paths[r] for r in roles},
                         "spark_conf": {"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": 8}})):
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "study.yaml").write_text(yaml.safe_dump({**raw, "source": source}, sort_keys=False))


def measure(step: str, size: int, folder: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CXLAB_SPARK_MASTER"}
    out = subprocess.run([sys.executable, "-c", STEP, step, str(size), folder], capture_output=True,
                         text=True, env=env)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["(no output)"]
        errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]   # (DuckDB ends with hints)
        return {"step": step, "size": size, "error": (errors or lines)[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def exponent(a: dict, b: dict, key: str) -> float:
    return math.log(b[key] / a[key]) / math.log(b["size"] / a["size"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    ap.add_argument("--engines", nargs="+", default=["duckdb", "pyspark"],
                    choices=["duckdb", "pyspark", "duckdb-files"])
    ap.add_argument("--tmp", default=None, help="folder for the generated data (default: a temporary one)")
    ap.add_argument("--data", default=None,
                    help="keep the generated data in this folder (demo-<size>/) and reuse what is there")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)", flush=True)
    results: dict[str, list[dict]] = {e: [] for e in args.engines}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for size in args.sizes:
            folder = Path(args.data or tmp) / f"demo-{size}"
            t = time.perf_counter()
            if (folder / "duckdb" / "study.yaml").exists():
                print(f"{size:>10,} customers: the demo in {folder}", flush=True)
            else:
                demo = measure("demo", size, str(folder))
                if "error" in demo:
                    print(f"{size:>10,}: demo failed: {demo['error']}")
                    continue
                source_specs(folder)
                print(f"{size:>10,} customers: demo written as Parquet and a DuckDB file in "
                      f"{time.perf_counter() - t:.0f} s", flush=True)
            for engine in args.engines:
                r = measure(engine, size, str(folder))
                results[engine].append(r)
                if "error" in r:
                    print(f"  {engine:12s} failed: {r['error']}", flush=True)
                    continue
                jvm = (f", JVM {r['jvm_peak_gib']:.2f} GiB" if engine == "pyspark" else
                       f", spill folder peak {r['spill_peak_gib']:.2f} GiB on disk" if engine == "duckdb" else "")
                print(f"  {engine:12s} validate+panel {r['wall_s']:7.1f} s (validate {r['validate_s']:.1f} s, "
                      f"panel {r['panel_only_s']:.1f} s), driver peak {r['peak_gib']:.2f} GiB{jvm}; "
                      f"{r['respondents']:,} respondents, {r['intervals']:,} intervals; "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    for engine, rows in results.items():
        rows = [r for r in rows if "error" not in r]
        for a, b in zip(rows, rows[1:]):
            print(f"{engine}: {a['size']:,} -> {b['size']:,} customers: time x{b['wall_s'] / a['wall_s']:.2f} "
                  f"(exponent {exponent(a, b, 'wall_s'):.2f}), driver memory x{b['peak_gib'] / a['peak_gib']:.2f} "
                  f"(exponent {exponent(a, b, 'peak_gib'):.2f})")


if __name__ == "__main__":
    main()
