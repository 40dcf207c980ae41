"""The demo study: a synthetic retail-bank relationship barometer with a documented ground truth.

:func:`generate_demo` simulates a customer base, relationship-survey answers and complaints from
a known data-generating model; :func:`write_demo` writes them as a study (``study.yaml``, the data
files, ``truth.json`` and a ``README.md`` stating the truth); :func:`load_truth` reads the truth
back so that notebooks and tests can compare estimates with it.

The generative model (every number is in :data:`DEFAULTS` and in ``truth.json``):

* **Clock.** Time is tenure in months since ``opened`` (days / 30.4375). Customers are acquired
  uniformly from 2018-01-01 to the extract date (2026-09-30), which is *later* than the study's
  snapshot (2026-06-30): the files hold acquisitions, defections, answers and complaints after
  the snapshot, which an analysis must cut (no look-ahead).
* **Perceptions.** Each customer has latent perceptions ``eta ~ N(0, Sigma)`` (recognition,
  empathy, proximity, affect) that drift with tenure: ``theta_c(t) = eta_c + drift_c *
  (tenure_years - 3)``, so long-standing customers feel closer.
* **Survey waves** every six months from 2023-03-15 to 2026-09-15; at each wave a customer with
  tenure >= 3 months who is still active on the answer date (wave + U{0..28} days) answers with
  probability 0.18 (never surveyed before) or 0.35 (fewer than three earlier answers). Items are
  ``0.3 + 0.85 theta_c + N(0, 0.6^2)`` cut into 1..5 (mode 4), each "don't know" (99) w.p. 0.03.
* **Defection.** Weibull baseline hazard on the tenure clock times ``exp(lp(t))``; ``lp`` is
  piecewise constant: before the first answer it uses the latent perceptions, from each answer on
  it uses the *latest* answer's observed construct scores and its disappointed-good-customer flag;
  complaint terms (open / resolved without a goodwill gesture) and the segment apply throughout.
  Defection is simulated exactly by inverting the cumulative hazard, wave by wave, vectorised
  over customers, so a customer can only answer while still active.

Because the hazard after a survey uses the latest answer, a model anchored on first-survey
scores and followed to the snapshot estimates a diluted effect; the counting-process Cox model on
the tenure clock with delayed entry at the first answer, updating scores at every answer and
the complaint status as it changes, recovers the true coefficients.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxlab.errors import CxlabError, ParameterError

__all__ = ["DemoStudy", "generate_demo", "write_demo", "load_truth", "DEFAULTS", "STUDY_YAML"]

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25
CONSTRUCTS = ("recognition", "empathy", "proximity", "affect")
ITEMS = {"recognition": ["q7", "q8", "q9"], "empathy": ["q10", "q11", "q12"],
         "proximity": ["q13", "q14"], "affect": ["q15", "q16"]}
SEGMENTS = ("mass", "affluent", "private")
CHANNELS = ("branch", "online", "phone")

#: the study spec written next to the data (column names are the study spec's)
STUDY_YAML = """\
name: Demo retail bank relationship barometer (synthetic)
snapshot_date: 2026-06-30
customers:  {{path: customers.{ext}, id: cust, start: opened, end: closed, value: margin_12m, value_currency: EUR,
             value_period: 12 months, covariates: [segment, channel]}}
surveys:    {{path: barometer.{ext}, id: cust, date: answered, scale: [1, 5], missing_codes: [99],
             constructs: {{recognition: [q7, q8, q9], empathy: [q10, q11, q12], proximity: [q13, q14], affect: [q15, q16]}},
             self_status: q3, outcomes: {{recommend: q1, satisfaction: q2}}, outcome_scales: {{recommend: [0, 10]}}}}
complaints: {{path: complaints.{ext}, id: cust, opened: opened, closed: closed, compensated: goodwill}}
segments:   {{disappointed: {{recognition: recognition}}}}
"""

#: every parameter of the data-generating model (copied into truth.json)
DEFAULTS: dict[str, Any] = {
    "acquisition": {"first_date": "2018-01-01", "last_date": "extract_date",
                    "distribution": "uniform over calendar days"},
    "segment_shares": {"mass": 0.70, "affluent": 0.25, "private": 0.05},
    "channel_shares": {"branch": 0.45, "online": 0.40, "phone": 0.15},
    "margin_12m": {"distribution": "lognormal", "log_median": {"mass": math.log(150.0),
                   "affluent": math.log(450.0), "private": math.log(1600.0)}, "log_sd": 1.0},
    "perceptions": {
        "constructs": list(CONSTRUCTS),
        "Sigma": [[1.00, 0.55, 0.45, 0.50],
                  [0.55, 1.00, 0.45, 0.55],
                  [0.45, 0.45, 1.00, 0.50],
                  [0.50, 0.55, 0.50, 1.00]],
        "drift_per_year": {"recognition": 0.10, "empathy": 0.08, "proximity": 0.12, "affect": 0.06},
        "drift_centre_years": 3.0,
        "formula": "theta_c(t) = eta_c + drift_c * (tenure_years(t) - 3), eta ~ N(0, Sigma)",
    },
    "items": {
        "intercept": 0.3, "loading": 0.85, "noise_sd": 0.6,
        "thresholds": [-1.3, -0.5, 0.3, 1.5],
        "formula": "y = 0.3 + 0.85*theta_c + N(0, 0.6^2); answer = 1 + number of thresholds below y",
        "dont_know_code": 99, "dont_know_prob": 0.03,
        "outcome_dont_know_prob": 0.005,
        "score_rule": "mean of the non-99 items when at least half of the construct's items "
                      "(ceil(n/2)) are answered, else missing",
    },
    "self_status": {
        "item": "q3", "corr_with_recognition_latent": 0.35,
        "segment_shift": {"mass": 0.0, "affluent": 0.25, "private": 0.50},
        "thresholds": [-2.0, -1.4, -0.7, 0.6],
        "formula": "s = 0.35*theta_rec(t)/sd + sqrt(1-0.35^2)*N(0,1) + segment_shift; "
                   "q3 = 1 + number of thresholds below s",
    },
    "outcomes": {
        "satisfaction": "q2 = cut(0.3 + 0.85*mean_c(theta_c) + N(0, 0.6^2)) with the item thresholds",
        "recommend": "q1 = clip(round(7.0 + 1.6*(0.5*theta_affect + 0.5*mean_c(theta_c)) "
                     "+ N(0, 1.2^2)), 0, 10)",
    },
    "dgc": {"definition": "q3 >= 4 (top-two-box) AND observed recognition score < 3 (the scale "
                          "midpoint); 0 when q3 is 99 or the recognition score is missing",
            "self_status_min": 4, "recognition_below": 3.0},
    "survey": {
        "wave_dates": ["2023-03-15", "2023-09-15", "2024-03-15", "2024-09-15", "2025-03-15",
                       "2025-09-15", "2026-03-15", "2026-09-15"],
        "answer_delay_days": [0, 28],
        "min_tenure_months": 3.0,
        "p_first_answer": 0.18, "p_repeat_answer": 0.35, "max_answers": 3,
        "rule": "at each wave, customers with tenure >= 3 months and still active on their answer "
                "date (wave + U{0..28} days, and not after the extract) answer with probability "
                "0.18 if never surveyed, 0.35 if they have 1 or 2 earlier answers",
    },
    "complaints": {
        "rate_per_year": 0.2, "process": "homogeneous Poisson from opened to the extract date, "
                                         "independent of perceptions",
        "resolution_days": {"distribution": "lognormal, rounded to whole days",
                            "median": 20.0, "log_sd": 1.0},
        "p_goodwill": 0.4,
        "after_defection": "complaints opened after the defection are not recorded; a complaint "
                           "still open at the defection is closed on the defection date",
    },
    "hazard": {
        "time_scale": "tenure_months",
        "baseline": "Weibull: h0(t) = (k/lam) (t/lam)^(k-1), H0(t) = (t/lam)^k, t in tenure months",
        "weibull_k": 0.85, "weibull_lam": 90.0,
        "log_hr_per_point": {"recognition": -0.40, "empathy": -0.20, "proximity": -0.15,
                             "affect": -0.30},
        "score_centre": 3.0,
        "gamma_dgc": 0.35,
        "delta_open": math.log(2.0),
        "delta_resolved": math.log(1.3),
        "delta_resolved_goodwill": 0.0,
        "segment_log_hr": {"mass": 0.0, "affluent": -0.20, "private": -0.40},
        "channel_log_hr": {"branch": 0.0, "online": 0.0, "phone": 0.0},
        # before the first answer the hazard uses the latent perceptions, per latent SD:
        # a_c = beta_c * (reference SD of an observed construct score: 0.93 score points; the
        # realised first-answer SDs are 0.9-1.0, see truth["first_answer_score_sd"])
        "pre_survey_score_sd": 0.93,
        "lp": {
            "before_first_answer": "sum_c a_c * eta_c + segment + complaint terms, "
                                   "a_c = log_hr_per_point_c * pre_survey_score_sd",
            "after_an_answer": "sum_c beta_c * (score_c - 3) + gamma_dgc * DGC + segment + complaint "
                               "terms, using the LATEST answer (a missing score contributes 0)",
            "complaint_terms": "delta_open while any complaint is open; otherwise delta_resolved if "
                               "the latest resolution had no goodwill gesture (until the next "
                               "complaint); 0 after a resolution with goodwill or before any complaint",
        },
        "simulation": "E_i ~ Exp(1); cumulative hazard accumulated over piecewise-constant "
                      "segments in calendar order; defection where it crosses E_i; the defection "
                      "date is the first whole day at or after the crossing",
    },
}


@dataclass
class DemoStudy:
    """A generated demo study: the three tables exactly as written to files, and the truth."""

    customers: pd.DataFrame
    surveys: pd.DataFrame
    complaints: pd.DataFrame
    truth: dict = field(default_factory=dict)

    def _repr_html_(self) -> str:  # pragma: no cover - display only
        return (f"<p><b>Demo study</b>: {len(self.customers):,} customers, {len(self.surveys):,} "
                f"survey answers, {len(self.complaints):,} complaints (synthetic).</p>")


# --------------------------------------------------------------------------------------------
# helpers


def _day(date: str | dt.date) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int(np.datetime64(str(date), "D").astype("int64"))


def _iso(days: np.ndarray) -> np.ndarray:
    """ISO date strings (object array) from days since 1970-01-01; NaN -> None."""
    days = np.asarray(days, dtype="float64")
    out = np.full(days.shape, None, dtype=object)
    ok = ~np.isnan(days)
    out[ok] = days[ok].astype("int64").astype("datetime64[D]").astype(str).astype(object)
    return out


def _cut(y: np.ndarray, thresholds) -> np.ndarray:
    """1 + number of thresholds below y."""
    return (1 + np.searchsorted(np.asarray(thresholds, dtype="float64"), y, side="left")).astype("int64")


def _check_args(n_customers, seed, snapshot_date, extract_date):
    if isinstance(n_customers, bool) or not isinstance(n_customers, (int, np.integer)) or n_customers < 1:
        raise ParameterError(f"The 'n_customers' parameter of the demo generator must be a positive "
                             f"integer (e.g. 20000). Got {n_customers!r} instead.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"The 'seed' parameter of the demo generator must be a non-negative "
                             f"integer. Got {seed!r} instead.")
    try:
        snap, extract = _day(snapshot_date), _day(extract_date)
    except ValueError:
        raise ParameterError(f"snapshot_date and extract_date must be ISO dates (YYYY-MM-DD). Got "
                             f"{snapshot_date!r} and {extract_date!r}.") from None
    first_wave = _day(DEFAULTS["survey"]["wave_dates"][0])
    if not first_wave < snap <= extract:
        raise ParameterError(f"The demo needs 2023-03-15 < snapshot_date <= extract_date (the survey "
                             f"waves start 2023-03-15). Got snapshot {snapshot_date}, extract "
                             f"{extract_date}.")
    return snap, extract


class _ComplaintClock:
    """Per-customer integral G_i(t) = int_0^t exp(complaint_lp_i(s)) dH0(s), piecewise on knots.

    Knots are sorted by (customer, tenure); every customer has a knot at tenure 0. Between knots
    the complaint term is constant, so G is a weighted Weibull cumulative hazard that can be
    evaluated and inverted in closed form for a whole vector of customers at once.
    """

    def __init__(self, cust, t, w, h0, h0_inv, n_customers):
        self.cust, self.t, self.w, self.h0, self.h0_inv = cust, t, w, h0, h0_inv
        h = h0(t)
        inc = np.zeros_like(t)
        same = np.r_[False, cust[1:] == cust[:-1]]
        inc[1:] = np.where(same[1:], w[:-1] * (h[1:] - h[:-1]), 0.0)
        cs = np.cumsum(inc)
        first = np.flatnonzero(~same)
        self.g = cs - np.repeat(cs[first], np.diff(np.r_[first, len(cs)]))
        self.h = h
        self.t_scale = float(t.max()) + 1e4
        self.t_key = cust * self.t_scale + t
        self.g_scale = float(self.g.max()) + float(w.max()) * float(h0(np.array([self.t_scale]))[0]) + 1.0
        self.g_key = cust * self.g_scale + self.g

    def _knot_at(self, idx, t):
        return np.searchsorted(self.t_key, idx * self.t_scale + t, side="right") - 1

    def G(self, idx, t):
        k = self._knot_at(idx, t)
        return self.g[k] + self.w[k] * (self.h0(t) - self.h[k])

    def inverse(self, idx, g):
        k = np.searchsorted(self.g_key, idx * self.g_scale + g, side="right") - 1
        return self.h0_inv(self.h[k] + (g - self.g[k]) / self.w[k])


def _complaint_knots(rng_out, opened, extract, p, h0, h0_inv):
    """Simulate complaints and the per-customer complaint clock (independent of perceptions)."""
    n = len(opened)
    cp = p["complaints"]
    hz = p["hazard"]
    years = (extract - opened) / DAYS_PER_YEAR
    rng = rng_out
    counts = rng.poisson(cp["rate_per_year"] * years)
    owner = np.repeat(np.arange(n), counts)
    span = (extract - opened + 1)[owner]
    c_open = opened[owner] + np.floor(rng.random(len(owner)) * span)
    res = np.rint(np.exp(np.log(cp["resolution_days"]["median"])
                         + cp["resolution_days"]["log_sd"] * rng.standard_normal(len(owner))))
    c_close = c_open + res
    goodwill = (rng.random(len(owner)) < cp["p_goodwill"]).astype("int64")
    order = np.lexsort((c_open, owner))
    owner, c_open, c_close, goodwill = owner[order], c_open[order], c_close[order], goodwill[order]

    # status events: +1 at each opening, -1 at each resolution (nets to zero per customer)
    m = len(owner)
    ev_cust = np.r_[owner, owner]
    ev_day = np.r_[c_open, c_close]
    ev_delta = np.r_[np.ones(m), -np.ones(m)]
    ev_gw = np.r_[np.full(m, -1), goodwill]  # -1: not a resolution
    # same day: openings first, then resolutions (goodwill last, a deterministic tie rule)
    kind = np.r_[np.zeros(m), 1 + goodwill]
    o = np.lexsort((kind, ev_day, ev_cust))
    ev_cust, ev_day, ev_delta, ev_gw = ev_cust[o], ev_day[o], ev_delta[o], ev_gw[o]
    n_open = np.cumsum(ev_delta)
    pos = np.arange(len(ev_cust))
    last_res = np.maximum.accumulate(np.where(ev_gw >= 0, pos, -1))
    has_res = (last_res >= 0)
    has_res[has_res] = ev_cust[last_res[has_res]] == ev_cust[has_res]
    last_gw = np.where(has_res, ev_gw[np.maximum(last_res, 0)], -1)
    lp = np.where(n_open > 0.5, hz["delta_open"],
                  np.where(last_gw == 0, hz["delta_resolved"],
                           np.where(last_gw == 1, hz["delta_resolved_goodwill"], 0.0)))
    keep = ev_day <= extract
    k_cust = np.r_[np.arange(n), ev_cust[keep]]
    k_t = np.r_[np.zeros(n), (ev_day[keep] - opened[ev_cust[keep]]) / DAYS_PER_MONTH]
    k_w = np.r_[np.ones(n), np.exp(lp[keep])]
    kind_k = np.r_[np.zeros(n), np.ones(keep.sum())]
    seq = np.r_[np.zeros(n), np.arange(keep.sum()) + 1.0]
    o = np.lexsort((seq, kind_k, k_t, k_cust))
    clock = _ComplaintClock(k_cust[o].astype("float64"), k_t[o], k_w[o], h0, h0_inv, n)
    complaints = {"cust": owner, "open": c_open, "close": c_close, "goodwill": goodwill}
    return clock, complaints


# --------------------------------------------------------------------------------------------
# the generator


def generate_demo(n_customers: int = 20_000, seed: int = 2026, snapshot_date: str = "2026-06-30",
                  extract_date: str = "2026-09-30") -> DemoStudy:
    """Simulate the demo study (see the module docstring for the model).

    Parameters
    ----------
    n_customers : int
        Customers in the base (acquired uniformly from 2018-01-01 to ``extract_date``).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives identical tables.
    snapshot_date : str
        The study's data cut (written into ``study.yaml`` by :func:`write_demo`).
    extract_date : str
        Date of the extract: the files hold everything up to it, later than the snapshot.

    Returns
    -------
    DemoStudy
        ``customers``, ``surveys``, ``complaints`` (the tables as written to files) and ``truth``.
    """
    snap, extract = _check_args(n_customers, seed, snapshot_date, extract_date)
    p = copy.deepcopy(DEFAULTS)
    p["acquisition"]["last_date"] = str(extract_date)
    hz, it, sv = p["hazard"], p["items"], p["survey"]
    rng = np.random.default_rng(seed)
    n = int(n_customers)
    k, lam = hz["weibull_k"], hz["weibull_lam"]

    def h0(t):
        return (np.maximum(t, 0.0) / lam) ** k

    def h0_inv(h):
        return lam * np.maximum(h, 0.0) ** (1.0 / k)

    # ---- customers ---------------------------------------------------------------------------
    first = _day(p["acquisition"]["first_date"])
    opened = np.sort(rng.integers(first, extract + 1, size=n)).astype("float64")
    segment = rng.choice(3, size=n, p=list(p["segment_shares"].values()))
    channel = rng.choice(3, size=n, p=list(p["channel_shares"].values()))
    log_med = np.array(list(p["margin_12m"]["log_median"].values()))
    margin = np.round(np.exp(log_med[segment] + p["margin_12m"]["log_sd"] * rng.standard_normal(n)), 2)
    sigma = np.array(p["perceptions"]["Sigma"])
    eta = rng.standard_normal((n, 4)) @ np.linalg.cholesky(sigma).T
    drift = np.array([p["perceptions"]["drift_per_year"][c] for c in CONSTRUCTS])
    beta = np.array([hz["log_hr_per_point"][c] for c in CONSTRUCTS])
    seg_lp = np.array(list(hz["segment_log_hr"].values()))[segment]
    exposure_e = rng.exponential(1.0, size=n)

    clock, comp = _complaint_knots(rng, opened, extract, p, h0, h0_inv)

    # ---- walk the calendar wave by wave --------------------------------------------------------
    idx_all = np.arange(n, dtype="float64")
    cursor = np.zeros(n)                 # tenure (months) up to which the hazard is accumulated
    acc = np.zeros(n)                    # cumulative hazard so far
    alive = np.ones(n, dtype=bool)
    defect_t = np.full(n, np.nan)        # tenure at the crossing
    perc_lp = eta @ (beta * hz["pre_survey_score_sd"])
    n_answers = np.zeros(n, dtype="int64")
    last_answer_day = np.full(n, -np.inf)

    def advance(target_day):
        t1 = (target_day - opened) / DAYS_PER_MONTH
        sel = np.flatnonzero(alive & (t1 > cursor))
        if sel.size == 0:
            return
        fi = idx_all[sel]
        g0 = clock.G(fi, cursor[sel])
        g1 = clock.G(fi, t1[sel])
        mult = np.exp(perc_lp[sel] + seg_lp[sel])
        new = acc[sel] + mult * (g1 - g0)
        cross = new >= exposure_e[sel]
        c = sel[cross]
        if c.size:
            g_star = g0[cross] + (exposure_e[c] - acc[c]) / mult[cross]
            t_star = clock.inverse(idx_all[c], np.minimum(g_star, g1[cross]))
            defect_t[c] = np.clip(t_star, cursor[c], t1[c])
            alive[c] = False
        acc[sel] = new
        cursor[sel] = t1[sel]

    answers = []
    wave_days = [_day(w) for w in sv["wave_dates"]]
    lo_delay, hi_delay = sv["answer_delay_days"]
    pre_sd_rec = math.sqrt(sigma[0, 0])
    st = p["self_status"]
    st_shift = np.array(list(st["segment_shift"].values()))
    for wave_no, wave_day in enumerate(wave_days):
        if wave_day > extract:
            break
        day = (wave_day + rng.integers(lo_delay, hi_delay + 1, size=n)).astype("float64")
        u = rng.random(n)
        advance(np.minimum(day, extract))
        tenure = (day - opened) / DAYS_PER_MONTH
        p_ans = np.where(n_answers == 0, sv["p_first_answer"],
                         np.where(n_answers < sv["max_answers"], sv["p_repeat_answer"], 0.0))
        r = np.flatnonzero(alive & (day <= extract) & (tenure >= sv["min_tenure_months"]) & (u < p_ans))
        m = r.size
        if m == 0:
            continue
        ty = tenure[r] / 12.0
        theta = eta[r] + drift * (ty[:, None] - p["perceptions"]["drift_centre_years"])
        row: dict[str, Any] = {"_i": r, "_day": day[r], "_wave": np.full(m, wave_no)}
        scores = np.empty((m, 4))
        for j, c in enumerate(CONSTRUCTS):
            items = ITEMS[c]
            noise = it["noise_sd"] * rng.standard_normal((m, len(items)))
            y = it["intercept"] + it["loading"] * theta[:, [j]] + noise
            val = _cut(y, it["thresholds"])
            dk = rng.random((m, len(items))) < it["dont_know_prob"]
            answered = (~dk).sum(axis=1)
            total = np.where(dk, 0, val).sum(axis=1)
            need = max(1, math.ceil(0.5 * len(items) - 1e-9))
            scores[:, j] = np.where(answered >= need, total / np.maximum(answered, 1), np.nan)
            val = np.where(dk, it["dont_know_code"], val)
            for q, col in enumerate(items):
                row[col] = val[:, q]
        rho = st["corr_with_recognition_latent"]
        s = (rho * theta[:, 0] / pre_sd_rec + math.sqrt(1 - rho ** 2) * rng.standard_normal(m)
             + st_shift[segment[r]])
        q3 = _cut(s, st["thresholds"])
        mean_theta = theta.mean(axis=1)
        q2 = _cut(it["intercept"] + it["loading"] * mean_theta + it["noise_sd"] * rng.standard_normal(m),
                  it["thresholds"])
        q1 = np.clip(np.rint(7.0 + 1.6 * (0.5 * theta[:, 3] + 0.5 * mean_theta)
                             + 1.2 * rng.standard_normal(m)), 0, 10).astype("int64")
        dk_out = rng.random((m, 3)) < it["outcome_dont_know_prob"]
        q1, q2, q3 = (np.where(dk_out[:, j], it["dont_know_code"], q) for j, q in enumerate((q1, q2, q3)))
        row.update(q1=q1, q2=q2, q3=q3)
        dgc = ((q3 >= p["dgc"]["self_status_min"]) & (q3 != it["dont_know_code"])
               & (scores[:, 0] < p["dgc"]["recognition_below"])).astype("int64")   # NaN < 3 is False
        row["_dgc"] = dgc
        for j, c in enumerate(CONSTRUCTS):
            row[f"_{c}"] = scores[:, j]
        answers.append(row)
        centred = np.nan_to_num(scores - hz["score_centre"], nan=0.0)
        perc_lp[r] = centred @ beta + hz["gamma_dgc"] * dgc
        n_answers[r] += 1
        last_answer_day[r] = day[r]
    advance(np.full(n, float(extract)))

    # ---- tables ----------------------------------------------------------------------------------
    # the defection date is the first whole day at or after the crossing; a customer who answered
    # on day d was active on d, so the crossing (and the date) is later (guards rounding only)
    closed = opened + np.ceil(defect_t * DAYS_PER_MONTH)
    closed = np.maximum(closed, np.maximum(opened, last_answer_day + 1))
    closed = np.where(np.isnan(defect_t), np.nan, np.minimum(closed, extract))
    width = max(7, len(str(n)))
    ids = np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)
    customers = pd.DataFrame({
        "cust": ids, "opened": _iso(opened), "closed": _iso(closed), "margin_12m": margin,
        "segment": np.array(SEGMENTS, dtype=object)[segment],
        "channel": np.array(CHANNELS, dtype=object)[channel],
    })

    if answers:
        a = {key: np.concatenate([w[key] for w in answers]) for key in answers[0]}
    else:
        a = {key: np.array([]) for key in ["_i", "_day", "_wave", "_dgc", "q1", "q2", "q3",
                                            *[q for c in CONSTRUCTS for q in ITEMS[c]],
                                            *[f"_{c}" for c in CONSTRUCTS]]}
    order = np.lexsort((a["_day"], a["_i"]))
    a = {key: v[order] for key, v in a.items()}
    qcols = ["q1", "q2", "q3", *[q for c in CONSTRUCTS for q in ITEMS[c]]]
    surveys = pd.DataFrame({"cust": ids[a["_i"].astype("int64")], "answered": _iso(a["_day"]),
                            **{q: a[q].astype("int64") for q in qcols}})

    ci = comp["cust"]
    dday = closed[ci]
    keep = np.isnan(dday) | (comp["open"] < dday)
    ci, c_open, c_close, gw = ci[keep], comp["open"][keep], comp["close"][keep], comp["goodwill"][keep]
    dday = dday[keep]
    c_close = np.where(~np.isnan(dday) & (c_close > dday), dday, c_close)
    c_close = np.where(c_close > extract, np.nan, c_close)
    complaints = pd.DataFrame({"cust": ids[ci], "opened": _iso(c_open), "closed": _iso(c_close),
                               "goodwill": gw.astype("int64")})

    truth = _truth(p, n, seed, snapshot_date, extract_date, opened, closed, margin, a, snap, extract,
                   c_open, c_close)
    return DemoStudy(customers=customers, surveys=surveys, complaints=complaints, truth=truth)


def _truth(p, n, seed, snapshot_date, extract_date, opened, closed, margin, a, snap, extract,
           c_open, c_close) -> dict:
    hz = p["hazard"]
    beta = hz["log_hr_per_point"]
    i = a["_i"].astype("int64")
    is_first = np.r_[True, i[1:] != i[:-1]] if i.size else np.array([], dtype=bool)
    first_ok = is_first & (a["_day"] <= snap) & (opened[i] <= snap)
    sd = {c: float(np.nanstd(a[f"_{c}"][first_ok], ddof=1)) if first_ok.sum() > 1 else None
          for c in CONSTRUCTS}
    top = np.sort(margin)[::-1]
    n_top = max(1, int(round(0.2 * n)))
    # annual defection rate: defections in the year before the snapshot / customers active at its start
    y0 = snap - 365
    active_y0 = (opened <= y0) & (np.isnan(closed) | (closed > y0))
    defected_in_year = active_y0 & ~np.isnan(closed) & (closed <= snap)
    realised = {
        "n_customers": int(n),
        "n_customers_at_snapshot": int((opened <= snap).sum()),
        "n_answers": int(i.size),
        "n_respondents": int(is_first.sum()),
        "respondent_rate": float(is_first.sum() / n),
        "answers_per_respondent": float(i.size / max(1, is_first.sum())),
        "dgc_share_of_answers": float(a["_dgc"].mean()) if i.size else float("nan"),
        "defections_by_extract": int((~np.isnan(closed)).sum()),
        "defections_by_snapshot": int((~np.isnan(closed) & (closed <= snap)).sum()),
        "annual_defection_rate_year_to_snapshot": float(defected_in_year.sum() / max(1, active_y0.sum())),
        "top20_margin_share": float(top[:n_top].sum() / top.sum()),
        "n_complaints": int(len(c_open)),
        "n_complaints_open_at_extract": int(np.isnan(c_close).sum()),
        "records_after_snapshot": {
            "customers_opened": int((opened > snap).sum()),
            "defections": int((~np.isnan(closed) & (closed > snap)).sum()),
            "answers": int((a["_day"] > snap).sum()),
            "complaints_opened": int((c_open > snap).sum()),
        },
    }
    return _no_nan({
        "description": "Ground truth of the synthetic demo study written by cxlab.data.synth "
                       "(Demo retail bank relationship barometer).",
        "seed": int(seed),
        "snapshot_date": str(snapshot_date),
        "extract_date": str(extract_date),
        "time_scale": "tenure_months",
        "days_per_month": DAYS_PER_MONTH,
        "entry": "first survey answer (delayed entry / left truncation at tenure at the first answer)",
        "log_hr_per_point": dict(beta),
        "score_centre": hz["score_centre"],
        "gamma_dgc": hz["gamma_dgc"],
        "delta_open": hz["delta_open"],
        "delta_resolved": hz["delta_resolved"],
        "delta_resolved_goodwill": hz["delta_resolved_goodwill"],
        "segment_log_hr": dict(hz["segment_log_hr"]),
        "channel_log_hr": dict(hz["channel_log_hr"]),
        "weibull_k": hz["weibull_k"],
        "weibull_lam": hz["weibull_lam"],
        "pre_survey_log_hr_per_latent_sd": {c: round(beta[c] * hz["pre_survey_score_sd"], 6)
                                            for c in CONSTRUCTS},
        "drift_per_year": dict(p["perceptions"]["drift_per_year"]),
        "Sigma": p["perceptions"]["Sigma"],
        "log_hr_per_sd": {c: None if sd[c] is None else beta[c] * sd[c] for c in CONSTRUCTS},
        "first_answer_score_sd": sd,
        "log_hr_per_sd_definition": (
            "beta_c (log_hr_per_point) x the sample SD of the observed construct score at the FIRST "
            "answer, among respondents whose first answer is on or before the snapshot date (and who "
            "were customers at the snapshot)"),
        "which_model_recovers_the_truth": (
            "The hazard after a survey uses the LATEST answer's scores and DGC flag, so a model that "
            "uses first-survey scores with follow-up to the snapshot estimates a diluted effect (most "
            "visibly for the DGC flag, which often changes between answers; the construct effects are "
            "attenuated less because perceptions are persistent), and it also omits the complaint "
            "terms unless they are entered as time-varying. The "
            "model that recovers the coefficients exactly is the counting-process (time-varying) Cox "
            "model on the tenure clock (months since opened) with delayed entry at the first answer, "
            "updating the scores at each answer and the complaint status (open / resolved without "
            "goodwill / resolved with goodwill) as it changes, with segment dummies (mass = reference)."),
        "parameters": p,
        "realised": realised,
    })


def _no_nan(x):
    """NaN -> None, recursively (truth.json stays strict JSON)."""
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_no_nan(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


# --------------------------------------------------------------------------------------------
# files


def _readme(truth: dict, ext: str) -> str:
    hz = truth["parameters"]["hazard"]
    sv, it = truth["parameters"]["survey"], truth["parameters"]["items"]
    r = truth["realised"]
    b = truth["log_hr_per_point"]
    sd = truth["log_hr_per_sd"]
    lines = [
        "# Demo study (synthetic): retail bank relationship barometer",
        "",
        f"Written by `cxlab demo` (cxlab.data.synth, seed {truth['seed']}). Every record is simulated; no "
        "real person is described. Snapshot (data cut) "
        f"{truth['snapshot_date']}; the extract is dated {truth['extract_date']}, so the files also hold "
        "acquisitions, defections, answers and complaints after the snapshot, which an analysis must cut.",
        "",
        f"Files: `study.yaml`, `customers.{ext}`, `barometer.{ext}`, `complaints.{ext}`, `truth.json` "
        "(every parameter, machine-readable).",
        "",
        "## The true model",
        "",
        "- Clock: tenure in months since `opened` (days / 30.4375). Entry at the first survey answer.",
        f"- Defection hazard: Weibull baseline, k = {hz['weibull_k']}, lam = {hz['weibull_lam']} months, "
        "times exp(lp(t)), lp piecewise constant.",
        "- After an answer, lp uses the LATEST answer: sum_c beta_c (score_c - 3) + gamma DGC + segment + "
        "complaint terms (a missing score contributes 0). Before the first answer it uses the latent "
        f"perceptions (a_c = beta_c x {hz['pre_survey_score_sd']} per latent SD).",
        "",
        "| term | true log hazard ratio | per SD of first-answer score |",
        "|---|---|---|",
        *[f"| {c} (per scale point) | {b[c]:+.3f} | "
          f"{'n/a' if sd[c] is None else format(sd[c], '+.3f')} |" for c in CONSTRUCTS],
        f"| disappointed good customer (q3 >= 4 and recognition < 3) | {truth['gamma_dgc']:+.3f} | |",
        f"| complaint open | {truth['delta_open']:+.3f} (log 2.0) | |",
        f"| complaint resolved without goodwill (until the next complaint) | "
        f"{truth['delta_resolved']:+.3f} (log 1.3) | |",
        "| complaint resolved with goodwill | 0 | |",
        *[f"| segment {s} (mass = reference) | {v:+.3f} | |"
          for s, v in truth["segment_log_hr"].items() if s != "mass"],
        "| channel | 0 (no effect) | |",
        "",
        "Per-SD effects: beta_c x SD of the observed first-answer score among respondents whose first "
        "answer is on or before the snapshot.",
        "",
        "**Which model recovers the truth.** " + truth["which_model_recovers_the_truth"],
        "",
        "## Surveys, perceptions, complaints",
        "",
        "- Latent perceptions eta ~ N(0, Sigma) (correlations 0.45-0.55), drifting with tenure by "
        + ", ".join(f"{c} {v:+.2f}" for c, v in truth["drift_per_year"].items())
        + " latent SD per year (centred at 3 years), so tenure at the survey correlates with perceptions.",
        "- Waves " + ", ".join(sv["wave_dates"]) + "; answer = wave + U{0..28} days; tenure >= 3 months "
        f"and still active; P(answer) = {sv['p_first_answer']} (never surveyed) or {sv['p_repeat_answer']} "
        "(1-2 earlier answers); at most 3 answers.",
        "- Items q7-q16: 0.3 + 0.85 theta + N(0, 0.6^2) cut at "
        + ", ".join(f"{x:g}" for x in it["thresholds"]) + " into 1..5 (mode 4); 99 = don't know "
        "(3 % per item). Score = mean of the answered items when at least half are answered.",
        "- q3 (self status) correlates ~0.3 with recognition, higher for affluent/private; q1 recommend 0-10, "
        "q2 satisfaction 1-5 (99 rarely).",
        "- Complaints: Poisson, 0.2 per year, independent of perceptions; resolution lognormal (median 20 "
        "days, log-SD 1); goodwill gesture with probability 0.4; empty `closed` = open at the extract.",
        "",
        "## Realised figures",
        "",
        f"- {r['n_customers']:,} customers ({r['n_customers_at_snapshot']:,} known at the snapshot), "
        f"{r['n_respondents']:,} respondents ({r['respondent_rate']:.1%}), {r['n_answers']:,} answers.",
        f"- Disappointed good customers: {r['dgc_share_of_answers'] or 0:.1%} of answers.",
        f"- Defections: {r['defections_by_snapshot']:,} by the snapshot, {r['defections_by_extract']:,} by "
        f"the extract; {r['annual_defection_rate_year_to_snapshot']:.1%} of customers defected in the year "
        "to the snapshot.",
        f"- Top 20 % of customers hold {r['top20_margin_share']:.1%} of the 12-month margin.",
        f"- Complaints: {r['n_complaints']:,} ({r['n_complaints_open_at_extract']:,} open at the extract).",
        "",
    ]
    return "\n".join(lines)


_KNOWN = {"study.yaml", "truth.json", "README.md"} | {
    f"{stem}.{ext}" for stem in ("customers", "barometer", "complaints") for ext in ("csv", "parquet")}


def write_demo(out_dir, n_customers: int = 20_000, seed: int = 2026, fmt: str = "csv") -> Path:
    """Generate the demo study and write it to ``out_dir``; return the path of its ``study.yaml``.

    Writes ``study.yaml``, ``customers``/``barometer``/``complaints`` (``.csv`` or ``.parquet``),
    ``truth.json`` and ``README.md``. The files are written into a temporary folder next to
    ``out_dir``, which then replaces ``out_dir`` in one rename, so a crash leaves either the old
    folder or the new one, never a half-written study. An existing ``out_dir`` that holds files
    other than a demo study's is left alone (error).
    """
    if fmt not in ("csv", "parquet"):
        raise ParameterError(f"The 'fmt' parameter of write_demo must be 'csv' or 'parquet'. Got {fmt!r} "
                             f"instead.")
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise CxlabError(f"The demo output {str(out_dir)!r} exists and is not a folder; give another "
                             f"--out folder.")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in _KNOWN)
        if foreign:
            raise CxlabError(f"The demo output folder {str(out_dir)!r} holds files that the demo did not "
                             f"write ({', '.join(foreign[:5])}); the demo replaces the whole folder, so "
                             f"give an empty or new --out folder.")
    demo = generate_demo(n_customers=n_customers, seed=seed)
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the study folder is an ordinary folder
        tables = {"customers": demo.customers, "barometer": demo.surveys, "complaints": demo.complaints}
        for stem, frame in tables.items():
            path = tmp / f"{stem}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False, lineterminator="\n")
            else:
                frame.to_parquet(path, index=False)
        (tmp / "study.yaml").write_text(STUDY_YAML.format(ext=fmt), encoding="utf-8")
        (tmp / "truth.json").write_text(json.dumps(demo.truth, indent=2, allow_nan=False) + "\n",
                                        encoding="utf-8")
        (tmp / "README.md").write_text(_readme(demo.truth, fmt), encoding="utf-8")
        target = parent / out_dir.name
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            os.replace(target, old / "study")
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:  # put the previous study back
                os.replace(old / "study", target)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / "study.yaml"


def load_truth(study_dir) -> dict:
    """Read ``truth.json`` of a demo study (the folder, or its ``study.yaml``)."""
    path = Path(study_dir)
    if path.is_file():
        path = path.parent
    path = path / "truth.json"
    if not path.is_file():
        raise CxlabError(f"No truth.json in {str(path.parent)!r}: the ground truth exists only for a demo "
                         f"study written by `cxlab demo` (cxlab.data.synth.write_demo).")
    return json.loads(path.read_text(encoding="utf-8"))
