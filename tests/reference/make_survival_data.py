"""Regenerate the small simulated datasets that ``survival_reference.R`` fits.

Run from the repository root: ``.venv/bin/python tests/reference/make_survival_data.py``.
The CSVs are committed; the R script and the Python tests read the same files.

``rossi.csv``: lifelines' ``load_rossi()`` (Rossi et al. 1980, 432 released prisoners,
52 weeks follow-up, time = ``week``, event = ``arrest``).

``delayed_entry.csv``: 300 simulated respondents on a tenure clock in months. Each enters the
risk set at ``entry`` (tenure at survey, integer months) and leaves at ``duration`` (integer
months, > entry); Weibull baseline (shape 0.9, scale 30 months) with true log-hazard ratios
recognition -0.5, empathy -0.2, segment B +0.3, segment C -0.2 (reference A). Durations are
rounded up to whole months, so there are many tied event times (Efron ties matter).

``counting_process.csv``: the same respondents split at the midpoint of their follow-up into
(start, stop] rows, with ``customer_key`` and a time-varying ``complaint_open`` flag set at
random on second rows only (not generated from the hazard; because only second rows carry it,
its estimate is not zero and means nothing). Used for cluster-robust SEs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def simulate_delayed_entry(n: int = 300, seed: int = 20240611) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    entry_cont = rng.uniform(0, 36, n)
    recognition = np.clip(np.round((3.3 + 0.9 * rng.standard_normal(n)) * 3) / 3, 1, 5)
    empathy = np.clip(np.round((0.5 * recognition + 1.6 + 0.8 * rng.standard_normal(n)) * 2) / 2, 1, 5)
    segment = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.3, 0.2])
    lp = -0.5 * recognition - 0.2 * empathy + 0.3 * (segment == "B") - 0.2 * (segment == "C")
    lp = lp - lp.mean()
    shape, scale = 0.9, 30.0
    # T | T > entry for a Weibull proportional-hazards model
    e = rng.exponential(1.0, n)
    t = scale * ((entry_cont / scale) ** shape + e / np.exp(lp)) ** (1 / shape)
    follow_up = rng.uniform(6, 30, n)
    end = entry_cont + follow_up
    event = (t <= end).astype(int)
    stop = np.where(event == 1, t, end)
    entry = np.floor(entry_cont)
    duration = np.ceil(stop)
    return pd.DataFrame(
        {
            "entry": entry,
            "duration": duration,
            "event": event,
            "recognition": recognition,
            "empathy": empathy,
            "segment": segment,
        }
    )


def split_counting_process(df: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for key, r in enumerate(df.itertuples(index=False), start=1):
        mid = np.floor((r.entry + r.duration) / 2)
        base = {"customer_key": key, "recognition": r.recognition, "empathy": r.empathy, "segment": r.segment}
        if mid > r.entry and mid < r.duration:
            rows.append({**base, "start": r.entry, "stop": mid, "event": 0, "complaint_open": 0})
            rows.append(
                {**base, "start": mid, "stop": r.duration, "event": r.event, "complaint_open": int(rng.random() < 0.3)}
            )
        else:
            rows.append({**base, "start": r.entry, "stop": r.duration, "event": r.event, "complaint_open": 0})
    cols = ["customer_key", "start", "stop", "event", "recognition", "empathy", "segment", "complaint_open"]
    return pd.DataFrame(rows)[cols]


def main() -> None:
    from lifelines.datasets import load_rossi

    load_rossi().to_csv(HERE / "rossi.csv", index=False)
    delayed = simulate_delayed_entry()
    delayed.to_csv(HERE / "delayed_entry.csv", index=False)
    split_counting_process(delayed).to_csv(HERE / "counting_process.csv", index=False)


if __name__ == "__main__":
    main()
