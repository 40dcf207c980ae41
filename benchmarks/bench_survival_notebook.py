"""Benchmark: the steps of notebooks/02-survival-drivers.ipynb, timed as the notebook calls them.

    python benchmarks/bench_survival_notebook.py                 # 20 000, 200 000 and 1 000 000
    python benchmarks/bench_survival_notebook.py --sizes 20000   # one size

The panel build is not included: each size starts from a respondents table and an intervals table
simulated like cxlab's panel (4 constructs on 1..5 as item means, self-status, ``dgc``, segment and
channel, tenure in whole days expressed in months with delayed entry at the survey, about 17 %
defection; counting-process intervals split at later survey answers and complaint openings and
resolutions, with the three complaint flags). One subprocess per size, so each peak memory is that
size's own. For every step: wall time, the process's peak resident memory so far (``ru_maxrss``,
cumulative, including the simulated data) and the step's share of the total. Plots and the
findings cell are not timed.

The simulated truth is a Weibull proportional-hazards model on the tenure clock, except that the
effect of ``proximity`` fades with tenure (a mild PH violation, as large real samples nearly always
show one), so :func:`check_and_fallback` runs its time-interaction fallback as it would on real data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

SIZES = (20_000, 200_000, 1_000_000)
CONSTRUCTS = ["recognition", "empathy", "proximity", "affect"]
DAY = 12 / 365.25  # one day in months


def simulate(n: int, seed: int = 0):
    """Respondents (one row each) and counting-process intervals, shaped like cxlab's panel."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    items = {"recognition": 3, "empathy": 3, "proximity": 2, "affect": 2}
    z = rng.normal(size=(n, 4)) @ np.linalg.cholesky(0.5 * np.eye(4) + 0.5).T  # correlated perceptions
    resp = pd.DataFrame({"customer_key": np.arange(n, dtype="int64")})
    for j, (c, k) in enumerate(items.items()):
        resp[c] = np.clip(np.round((3.5 + 0.9 * z[:, j]) * k) / k, 1, 5)
    resp["self_status"] = np.clip(np.round(4 + 0.5 * z[:, 0] + rng.normal(0, 0.7, n)), 1, 5)
    resp["dgc"] = ((resp["self_status"] >= 4) & (resp["recognition"] < 3)).astype("int64")
    resp["segment"] = rng.choice(["mass", "affluent", "private"], n, p=[0.69, 0.26, 0.05])
    resp["channel"] = rng.choice(["branch", "online"], n)
    entry = np.floor(rng.uniform(1, 100, n) / DAY) * DAY  # tenure at the survey, whole days
    follow = rng.uniform(1, 40, n)  # survey -> snapshot
    # hazard on the tenure clock (Weibull, shape 1.2); proximity's effect fades with tenure
    lp = (-0.35 * (resp["recognition"] - 3.5) - 0.15 * (resp["empathy"] - 3.5) - 0.05 * (resp["affect"] - 3.5)
          + 0.3 * resp["dgc"] + 0.2 * (resp["segment"] == "private")).to_numpy()
    shape, scale = 1.2, 150.0
    # conditional on surviving to entry: H(t) = (t/scale)^shape e^lp (+ a proximity term that decays)
    h_entry = (entry / scale) ** shape
    e = rng.exponential(size=n)
    prox = (resp["proximity"] - 3.5).to_numpy()
    t = scale * (h_entry + e / np.exp(lp - 0.25 * prox * np.exp(-entry / 40))) ** (1 / shape)
    end = entry + follow
    event = t <= end
    duration = np.maximum(np.ceil(np.where(event, t, end) / DAY) * DAY, entry + DAY)
    resp["entry"], resp["duration"], resp["event"] = entry, duration, event.astype("int64")
    resp["time_since_survey"] = duration - entry
    # intervals: cut at later survey answers (perceptions updated) and complaint open / close
    k = 1 + np.minimum(rng.poisson(1.5, n), 12)  # pieces per respondent (panel mean about 2.5)
    row = np.repeat(np.arange(n), k)
    first = np.r_[0, np.cumsum(k)[:-1]]
    pos = np.arange(row.size) - first[row]
    # sorted uniform cut points inside (entry, duration]: cumulative sums of exponential gaps
    g = rng.exponential(size=row.size)
    cs = np.cumsum(g)
    tot = np.add.reduceat(g, first)
    before = cs - g - np.r_[0, cs[first[1:] - 1]][row]
    frac = before / tot[row]
    span = (duration - entry)[row]
    start = entry[row] + np.floor(frac * span / DAY) * DAY
    start[pos == 0] = entry[row][pos == 0]
    start = np.minimum(start, duration[row] - DAY)
    iv = pd.DataFrame({"customer_key": row.astype("int64"), "start": start})
    iv = iv.drop_duplicates(["customer_key", "start"], ignore_index=True)
    r = iv["customer_key"].to_numpy()
    nxt = np.r_[iv["start"].to_numpy()[1:], np.inf]
    last = np.r_[r[1:] != r[:-1], True]
    iv["stop"] = np.where(last, duration[r], nxt)
    iv["event"] = np.where(last, resp["event"].to_numpy()[r], 0)
    for c, kk in items.items():
        base = resp[c].to_numpy()[r]
        drift = np.round(rng.normal(0, 0.4, r.size) * kk) / kk
        iv[c] = np.where(np.r_[True, r[1:] != r[:-1]], base, np.clip(base + drift, 1, 5))
    iv["dgc"] = ((resp["self_status"].to_numpy()[r] >= 4) & (iv["recognition"] < 3)).astype("int64")
    state = rng.choice(4, r.size, p=[0.45, 0.14, 0.23, 0.18])
    state[np.r_[True, r[1:] != r[:-1]]] = 0  # no complaint at the survey
    iv["complaint_open"] = (state == 1).astype("int64")
    iv["complaint_resolved_no_goodwill"] = (state == 2).astype("int64")
    iv["complaint_resolved_goodwill"] = (state == 3).astype("int64")
    iv["segment"] = resp["segment"].to_numpy()[r]
    iv["channel"] = resp["channel"].to_numpy()[r]
    return resp, iv


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(n: int, n_splits: int = 5) -> dict:
    import warnings

    import pandas as pd

    from cxlab.insight.segments import perception_bands
    from cxlab.models.survival import (CoxModel, TimeVaryingCoxModel, calibration, check_and_fallback,
                                evaluate_survival, fit_aft, kaplan_meier, logrank, pairwise_logrank)

    warnings.simplefilter("ignore")
    steps = []
    t0 = time.perf_counter()
    respondents, intervals = simulate(n)
    steps.append({"step": "simulate respondents + intervals (not a notebook step)",
                  "seconds": time.perf_counter() - t0, "peak_mib": _peak_mib(), "notebook": False})

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        steps.append({"step": name, "seconds": time.perf_counter() - t, "peak_mib": _peak_mib(), "notebook": True})
        return out

    min_cell, horizons, band_q = 10, [12, 24], [0.3333, 0.6667]
    controls = ["segment"]
    recognition = "recognition"

    def km_all():
        km = kaplan_meier(respondents, duration_col="time_since_survey", event_col="event", min_cell=min_cell)
        return km.retention(horizons)

    timed("KM after the survey + retention", km_all)

    def km_band():
        b = respondents.assign(band=perception_bands(respondents[recognition], band_q))
        banded = b.dropna(subset=["band"]).sort_values("band")
        km = kaplan_meier(banded, duration_col="time_since_survey", event_col="event", group_col="band",
                          min_cell=min_cell)
        km.retention(horizons)
        km.summary
        return banded

    banded = timed("KM by recognition band + retention", km_band)
    timed("log-rank + pairwise log-rank", lambda: (
        logrank(banded, "band", duration_col="time_since_survey", event_col="event"),
        pairwise_logrank(banded, "band", duration_col="time_since_survey", event_col="event")))

    def every_construct():
        for c in CONSTRUCTS:
            b = respondents.assign(band=perception_bands(respondents[c], band_q)).dropna(subset=["band"])
            km = kaplan_meier(b, duration_col="time_since_survey", event_col="event", group_col="band",
                              min_cell=min_cell)
            logrank(b, "band", duration_col="time_since_survey", event_col="event")
            km.retention([horizons[0]])

    timed("KM + log-rank for every construct", every_construct)
    timed("KM by segment", lambda: kaplan_meier(respondents, duration_col="time_since_survey", event_col="event",
                                                group_col="segment", min_cell=min_cell))
    terms = [*CONSTRUCTS, "dgc", *controls]
    sample = respondents.dropna(subset=terms)
    cox = timed("Cox model (CoxModel.fit, entry_col)", lambda: CoxModel(CONSTRUCTS, controls=["dgc", *controls]).fit(
        sample, duration_col="duration", event_col="event", entry_col="entry"))
    checked = timed("PH test + fallback (check_and_fallback)", lambda: check_and_fallback(cox, sample))
    timed("AFT trio (fit_aft)", lambda: fit_aft(sample, CONSTRUCTS, controls=["dgc", *controls], duration_col="duration",
                                                event_col="event", entry_col="entry"))
    tv_controls = ["dgc", "complaint_open", "complaint_resolved_no_goodwill", "complaint_resolved_goodwill", *controls]
    timed(f"time-varying Cox ({len(intervals):,} intervals)",
          lambda: TimeVaryingCoxModel(CONSTRUCTS, controls=tv_controls).fit(intervals))
    ev = timed(f"evaluate_survival ({n_splits} folds)", lambda: evaluate_survival(
        sample, CONSTRUCTS, controls=["dgc", *controls], duration_col="duration", event_col="event",
        entry_col="entry", n_splits=n_splits, times=horizons))
    timed(f"calibration ({n_splits} folds)", lambda: calibration(
        sample, CONSTRUCTS, controls=["dgc", *controls], duration_col="duration", event_col="event",
        entry_col="entry", time=12, n_splits=n_splits, min_cell=min_cell))
    total = sum(s["seconds"] for s in steps if s["notebook"])
    for s in steps:
        s["share"] = s["seconds"] / total if s["notebook"] else None
    return {"n": n, "intervals": len(intervals), "events": int(sample["event"].sum()), "total_seconds": total,
            "peak_mib": _peak_mib(), "fallback": checked.uses, "harrell_c": float(
                ev.summary.set_index("metric").loc["harrell_c", "estimate"]), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    results = []
    for n in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            print(f"n = {n:,}: failed\n{proc.stderr[-3000:]}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"\nn = {n:,} respondents, {res['intervals']:,} intervals, {res['events']:,} defections: "
              f"notebook steps {res['total_seconds']:.1f} s, peak memory {res['peak_mib'] / 1024:.2f} GiB "
              f"(findings use the {res['fallback']} model; cross-validated C = {res['harrell_c']:.3f})")
        print(f"  {'step':<58} {'seconds':>9} {'share':>7} {'peak MiB':>9}")
        for s in res["steps"]:
            share = f"{100 * s['share']:6.1f}%" if s["share"] is not None else "      -"
            print(f"  {s['step']:<58} {s['seconds']:9.2f} {share} {s['peak_mib']:9.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
