"""The snapshot cut-off at its boundaries, and the panel against an independent pandas panel.

Rules (DESIGN "No look-ahead"; issue 8 item 5 "calendar-day cut-off"): customers still active at
``snapshot_date`` are right-censored there; anything dated ON the snapshot day is inside the
window whatever its time of day (a defection at ``2026-06-30 10:00`` is an event); defections,
answers and complaints dated after the snapshot day are invisible.

References: the hand-made cases below are computed by hand (months = days / 30.4375 since the
customer's start); the demo comparison rebuilds the respondents table with pandas only, from the
written CSV files (not through cxlab's loaders or panel), with the scoring rule of
tests/test_synth.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cxlab.data.panel import DAYS_PER_MONTH, build_panel
from cxlab.study import load_study, parse_study
from cxlab.data.synth import write_demo
from cxlab.data.validate import load_study_data
from test_synth import ITEMS, _dates, _scores

T = pd.Timestamp
SNAPSHOT = "2026-06-30"
START = "2020-01-01"
SURVEY = "2024-01-01"


def months(a, b=START):
    return (T(a) - T(b)).days / DAYS_PER_MONTH


def study():
    return parse_study(dict(
        name="boundaries", snapshot_date=SNAPSHOT,
        customers=dict(path="c.csv", id="cust", start="opened", end="closed", value="tag"),
        surveys=dict(path="s.csv", id="cust", date="answered", scale=[1, 5], constructs={"recognition": ["a"]},
                     self_status="s"),
        complaints=dict(path="k.csv", id="cust", opened="opened", closed="closed", compensated="goodwill"),
        segments={"disappointed": {"recognition": "recognition"}},
    ))


# one customer per case; ``value`` is a tag that finds the customer in the (id-free) panel
CASES = {  # tag: (case, end of the relationship)
    1: ("defects after the snapshot", "2026-07-01"),
    2: ("defects on the snapshot day (midnight)", "2026-06-30"),
    3: ("defects on the snapshot day at 10:00", "2026-06-30 10:00"),
    4: ("defects the day before the snapshot", "2026-06-29"),
    5: ("active, answers again after the snapshot", None),
    6: ("answers only after the snapshot", None),
    7: ("active, complains after the snapshot", None),
    8: ("active, complaint resolved after the snapshot", None),
    9: ("defects after the snapshot at 00:30", "2026-07-01 00:30"),
    10: ("answers only on the snapshot day at 09:00", None),
}


def data():
    tags = list(CASES)
    customers = pd.DataFrame({
        "customer_id": [f"K{t}" for t in tags],
        "start": pd.to_datetime([START] * len(tags)),
        "end": pd.to_datetime([CASES[t][1] for t in tags], format="ISO8601"),
        "value": [float(t) for t in tags],
    })
    answers = [(t, SURVEY) for t in tags if t not in (6, 10)] + [(5, "2026-07-01"), (6, "2026-07-02"),
                                                                  (10, "2026-06-30 09:00")]
    surveys = pd.DataFrame({"customer_id": [f"K{t}" for t, _ in answers],
                            "date": pd.to_datetime([d for _, d in answers], format="ISO8601"),
                            "a": [4.0] * len(answers), "s": [3.0] * len(answers)})
    surveys.loc[(surveys["customer_id"] == "K5") & (surveys["date"] > T(SNAPSHOT)), "a"] = 1.0
    complaints = pd.DataFrame({
        "customer_id": ["K7", "K8"],
        "opened": pd.to_datetime(["2026-07-02", "2026-05-01"]),
        "closed": pd.to_datetime(["2026-07-05", "2026-07-03"]),
        "compensated": [1.0, 1.0],
    })
    return SimpleNamespace(customers=customers, surveys=surveys, complaints=complaints)


@pytest.fixture(scope="module")
def panel():
    return build_panel(study(), data())


def _row(panel, tag):
    r = panel.respondents
    return r[r["value"] == float(tag)].iloc[0]


def _intervals(panel, tag):
    key = _row(panel, tag)["customer_key"]
    iv = panel.intervals
    return iv[iv["customer_key"] == key].sort_values("start").reset_index(drop=True)


def test_defection_after_the_snapshot_is_censored_at_the_snapshot(panel):
    for tag in (1, 9):                       # the next day, even half an hour after midnight
        r = _row(panel, tag)
        assert r["event"] == 0, CASES[tag][0]
        assert r["duration"] == pytest.approx(months(SNAPSHOT)), CASES[tag][0]
        assert _intervals(panel, tag)["event"].sum() == 0


def test_defection_on_the_snapshot_day_is_an_event(panel):
    r = _row(panel, 2)
    assert r["event"] == 1
    assert r["duration"] == pytest.approx(months(SNAPSHOT))
    assert _intervals(panel, 2)["event"].tolist() == [1]


def test_defection_on_the_snapshot_day_with_a_time_of_day_is_an_event(panel):
    r = _row(panel, 3)
    assert r["event"] == 1                 # 2026-06-30 10:00 is on the snapshot day
    assert months(SNAPSHOT) <= r["duration"] < months("2026-07-01")
    assert _intervals(panel, 3)["event"].tolist() == [1]


def test_defection_the_day_before_the_snapshot_is_an_event(panel):
    r = _row(panel, 4)
    assert r["event"] == 1
    assert r["duration"] == pytest.approx(months("2026-06-29"))
    assert r["duration"] < months(SNAPSHOT)


def test_answers_after_the_snapshot_are_invisible(panel):
    tags = set(panel.respondents["value"].astype(int))
    assert 6 not in tags                     # answered only after the snapshot: not a respondent
    r = _row(panel, 5)
    assert r["n_answers"] == 1               # its later answer is not counted ...
    iv = _intervals(panel, 5)
    assert len(iv) == 1 and iv["recognition"].tolist() == [4.0]   # ... nor does it update the score
    assert iv["stop"].tolist() == pytest.approx([months(SNAPSHOT)])
    ex = panel.exclusions.set_index("step")
    # 11 answers, 2 after the snapshot day (K5's second, K6's)
    assert ex.loc["answers on or before the snapshot", "rows_in"] == 11
    assert ex.loc["answers on or before the snapshot", "rows_out"] <= 9


def test_an_answer_on_the_snapshot_day_with_a_time_of_day_is_inside_the_window(panel):
    ex = panel.exclusions.set_index("step")
    assert ex.loc["answers on or before the snapshot", ["rows_in", "rows_out"]].tolist() == [11, 9]
    # K10 answered on the snapshot day itself: no time at risk after it, set aside at that step
    assert ex.loc["follow-up after the survey", "excluded"] >= 1
    assert 10 not in set(panel.respondents["value"].astype(int))


def test_complaint_after_the_snapshot_is_invisible(panel):
    iv = _intervals(panel, 7)
    assert len(iv) == 1                      # no change point at the later complaint
    ex = panel.exclusions.set_index("step")  # and it is counted as set aside
    assert ex.loc["complaints opened on or before the snapshot", ["rows_in", "rows_out"]].tolist() == [2, 1]
    assert iv[["complaint_open", "complaint_resolved_goodwill", "complaint_resolved_no_goodwill"]].sum().sum() == 0
    assert iv["stop"].tolist() == pytest.approx([months(SNAPSHOT)])


def test_complaint_resolved_after_the_snapshot_is_open_at_the_snapshot(panel):
    iv = _intervals(panel, 8)
    assert iv["start"].tolist() == pytest.approx([months(SURVEY), months("2026-05-01")])
    assert iv["stop"].tolist() == pytest.approx([months("2026-05-01"), months(SNAPSHOT)])
    assert iv["complaint_open"].tolist() == [0, 1]
    assert iv["complaint_resolved_goodwill"].tolist() == [0, 0]   # its resolution is not yet known


# ---- the demo study against an independent pandas panel -----------------------------------------


def independent_respondents(folder, snapshot=T(SNAPSHOT)) -> pd.DataFrame:
    """One row per respondent, from the CSV files with pandas only: customers started on or before
    the snapshot; first answer on or before it; event = defection on or before the snapshot
    (else censored there); every construct scored at the first answer; time at risk after it."""
    c = pd.read_csv(folder / "customers.csv", dtype={"cust": str})
    c = c.assign(o=_dates(c["opened"]), e=_dates(c["closed"]))
    c = c[c["o"] <= snapshot]
    c["event"] = (c["e"].notna() & (c["e"] <= snapshot)).astype(int)
    c["duration"] = (c["e"].where(c["event"] == 1, snapshot) - c["o"]).dt.days / DAYS_PER_MONTH
    s = pd.read_csv(folder / "barometer.csv", dtype={"cust": str})
    s = s.assign(d=_dates(s["answered"]))
    s = s[(s["d"] <= snapshot) & s["cust"].isin(c["cust"])]
    first = s.sort_values(["cust", "d"], kind="stable").groupby("cust").head(1)
    first = first.join(_scores(first)).merge(c, on="cust")
    first["entry"] = (first["d"] - first["o"]).dt.days / DAYS_PER_MONTH
    first = first[first["duration"] > first["entry"]].dropna(subset=list(ITEMS))
    return first[["entry", "duration", "event", *ITEMS]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    spec = write_demo(tmp_path_factory.mktemp("boundaries-demo") / "study", n_customers=3000, seed=5)
    study = load_study(spec)
    return SimpleNamespace(folder=spec.parent, panel=build_panel(study, load_study_data(study)))


def _sorted(frame, cols):
    return frame[cols].round(9).sort_values(cols).reset_index(drop=True)


def test_demo_panel_equals_the_independent_panel(demo):
    ours = demo.panel.respondents
    ref = independent_respondents(demo.folder)
    # the demo's extracts run past the snapshot: there is something to cut
    raw = pd.read_csv(demo.folder / "customers.csv")
    late = _dates(raw["closed"]) > T(SNAPSHOT)
    assert late.sum() > 20
    assert len(ours) == len(ref) and ours["event"].sum() == ref["event"].sum()
    cols = ["entry", "duration", "event", *ITEMS]
    pd.testing.assert_frame_equal(_sorted(ours, cols), _sorted(ref, cols), check_dtype=False)
    # the counting-process rows carry exactly the respondents' events
    assert demo.panel.intervals["event"].sum() == ref["event"].sum()
    assert demo.panel.intervals["stop"].max() <= ref["duration"].max() + 1e-9
