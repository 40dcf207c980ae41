"""Panel on small hand-computed cases: delayed entry, censoring at the snapshot, wave changes,
complaint status, and every exclusion step counted."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cxlab.errors import CxlabError
from cxlab.data.panel import DAYS_PER_MONTH, build_panel
from cxlab.study import parse_study

NaN = np.nan
T = pd.Timestamp


def months(a, b):
    return (T(b) - T(a)).days / DAYS_PER_MONTH


def make_study(**over):
    raw = dict(
        name="hand-made",
        snapshot_date="2026-06-30",
        customers=dict(path="c.csv", id="cust", start="opened", end="closed", value="margin",
                       covariates=["région"]),
        surveys=dict(path="s.csv", id="cust", date="answered", scale=[1, 5], missing_codes=[99],
                     constructs={"reconnaissance": ["a", "b"], "empathie": ["c"]}, self_status="s",
                     outcomes={"recommandation": "nps"}, outcome_scales={"recommandation": [0, 10]}),
        complaints=dict(path="k.csv", id="cust", opened="opened", closed="closed", compensated="geste"),
        segments={"disappointed": {"recognition": "reconnaissance"}},
    )
    raw.update(over)
    return parse_study(raw)


def make_data():
    customers = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6", "C7"],
        "start": pd.to_datetime(["2020-01-01", "2021-06-01", "2022-01-01", "2026-07-01", "2020-01-01",
                                 "2020-01-01", "2019-03-01"]),
        "end": pd.to_datetime([None, "2025-06-01", "2026-08-01", None, "2024-03-01", None, "2026-06-30"]),
        "value": [100.0, 50.0, 10.0, 5.0, 1.0, 2.0, 30.0],
        "région": ["nord", "sud", "nord", "sud", "nord", "sud", "nord"],
    })
    surveys = pd.DataFrame({
        "customer_id": ["C1", "C1", "C2", "C3", "C4", "C5", "C6", "C7"],
        "date": pd.to_datetime(["2024-01-01", "2025-01-01", "2023-06-01", "2026-07-15", "2026-08-01",
                                "2024-03-01", "2024-01-01", "2023-01-01"]),
        "a": [4, 2, 1, 3, 3, 3, NaN, 5],
        "b": [4, 2, NaN, 3, 3, 3, NaN, 5],
        "c": [3, 2, 2, 3, 3, 3, 3, 4],
        "s": [5, 5, 4, 3, 3, 3, 3, 2],
        "nps": [9, 3, 2, 5, 5, 5, 5, 10],
    }).astype({c: float for c in "abcs"} | {"nps": float})
    complaints = pd.DataFrame({
        "customer_id": ["C1", "C2", "C7"],
        "opened": pd.to_datetime(["2025-03-01", "2020-01-01", "2026-06-01"]),
        "closed": pd.to_datetime(["2025-04-01", "2020-02-01", "2026-07-10"]),
        "compensated": [1.0, 0.0, 0.0],
    })
    return SimpleNamespace(customers=customers, surveys=surveys, complaints=complaints)


@pytest.fixture(scope="module")
def panel():
    return build_panel(make_study(), make_data())


def test_respondents_delayed_entry_and_censoring(panel):
    r = panel.respondents.sort_values("entry").reset_index(drop=True)
    assert len(r) == 3 and panel.n_events == 2
    by_entry = {round(e, 6): row for e, row in zip(r["entry"], r.to_dict("records"))}
    c2 = by_entry[round(months("2021-06-01", "2023-06-01"), 6)]
    assert c2["duration"] == pytest.approx(months("2021-06-01", "2025-06-01"))
    assert c2["event"] == 1
    assert c2["reconnaissance"] == 1.0          # one of two items answered: half is enough
    assert c2["dgc"] == 1                       # good customer (4) not recognised (1 < 3)
    assert c2["région"] == "sud" and c2["value"] == 50.0
    assert c2["recommandation"] == 2.0
    c1 = by_entry[round(months("2020-01-01", "2024-01-01"), 6)]
    assert c1["event"] == 0                     # still active: censored at the snapshot
    assert c1["duration"] == pytest.approx(months("2020-01-01", "2026-06-30"))
    assert c1["reconnaissance"] == 4.0 and c1["dgc"] == 0  # the FIRST answer anchors the row
    assert c1["n_answers"] == 2
    c7 = by_entry[round(months("2019-03-01", "2023-01-01"), 6)]
    assert c7["event"] == 1                     # defected on the snapshot day: seen
    assert np.allclose(r["time_since_survey"], r["duration"] - r["entry"], rtol=0, atol=1e-9)
    # whole days: equal day counts give exactly equal times (no round-off near-ties)
    assert r.loc[r["entry"].idxmin(), "time_since_survey"] == (T("2025-06-01") - T("2023-06-01")).days / DAYS_PER_MONTH
    assert "customer_id" not in r.columns       # no identifiers in analysis tables
    # margin tertiles as a control: C2 (50) is the middle of 30, 50, 100
    assert r.set_index("value")["value_band"].to_dict() == {30.0: "low", 50.0: "middle", 100.0: "high"}


def test_nothing_after_snapshot(panel):
    # C3 defects after the snapshot and answered after it: not a respondent, and no event counted
    assert panel.respondents["duration"].max() <= months("2019-03-01", "2026-06-30") + 1e-9


def test_exclusion_flow_counts_every_row(panel):
    ex = panel.exclusions.set_index("step")
    assert ex.loc["customers known at the snapshot", ["rows_in", "rows_out"]].tolist() == [7, 6]
    assert ex.loc["answers on or before the snapshot", ["rows_in", "rows_out"]].tolist() == [8, 6]
    assert ex.loc["customers with an answer on or before the snapshot", "rows_out"] == 5
    assert ex.loc["follow-up after the survey", ["rows_in", "rows_out"]].tolist() == [5, 4]
    assert ex.loc["reconnaissance score available", ["rows_in", "rows_out"]].tolist() == [4, 3]
    assert ex.loc["empathie score available", "excluded"] == 0
    assert (panel.exclusions["excluded"] == panel.exclusions["rows_in"] - panel.exclusions["rows_out"]).all()
    # the flow ends where the table ends
    assert panel.exclusions["rows_out"].iloc[-1] == len(panel.respondents)


def test_counting_process_waves_and_complaints(panel):
    iv = panel.intervals
    c1_key = panel.respondents.loc[panel.respondents["n_answers"] == 2, "customer_key"].item()
    c1 = iv[iv["customer_key"] == c1_key].reset_index(drop=True)
    s = "2020-01-01"
    assert c1["start"].tolist() == pytest.approx(
        [months(s, "2024-01-01"), months(s, "2025-01-01"), months(s, "2025-03-01"), months(s, "2025-04-01")])
    assert c1["stop"].tolist() == pytest.approx(
        [months(s, "2025-01-01"), months(s, "2025-03-01"), months(s, "2025-04-01"), months(s, "2026-06-30")])
    assert c1["reconnaissance"].tolist() == [4.0, 2.0, 2.0, 2.0]      # updated at the second answer
    assert c1["dgc"].tolist() == [0, 1, 1, 1]
    assert c1["complaint_open"].tolist() == [0, 0, 1, 0]
    assert c1["complaint_resolved_goodwill"].tolist() == [0, 0, 0, 1]
    assert c1["event"].sum() == 0
    # C2 complained before the survey and the complaint was resolved without goodwill
    c2 = iv[iv["dgc"] == 1].groupby("customer_key").filter(lambda g: len(g) == 1)
    assert c2["complaint_resolved_no_goodwill"].tolist() == [1]
    assert c2["event"].tolist() == [1]
    # C7: complaint opened before the snapshot, closed after it -> still open at the snapshot
    c7 = iv[iv["reconnaissance"] == 5.0]
    assert c7["complaint_open"].tolist() == [0, 1] and c7["event"].tolist() == [0, 1]
    # every respondent's intervals tile [entry, duration] and carry exactly its event
    g = iv.groupby("customer_key").agg(start=("start", "min"), stop=("stop", "max"), event=("event", "sum"))
    r = panel.respondents.set_index("customer_key")
    assert np.allclose(g["start"], r.loc[g.index, "entry"]) and np.allclose(g["stop"], r.loc[g.index, "duration"])
    assert (g["event"] == r.loc[g.index, "event"]).all()
    assert (iv["stop"] > iv["start"]).all()


def test_follow_up_until_next_survey():
    p = build_panel(make_study(), make_data(), follow_up="next_survey")
    c1 = p.respondents[p.respondents["n_answers"] == 2].iloc[0]
    assert c1["duration"] == pytest.approx(months("2020-01-01", "2025-01-01")) and c1["event"] == 0


def test_no_complaints_file_and_custom_cuts():
    study = make_study(complaints=None)
    data = make_data()
    data.complaints = None
    p = build_panel(study, data, recognised_min=4.5)
    assert set(p.intervals.filter(like="complaint").stack().unique()) == {0}
    assert p.respondents["dgc"].sum() == 2      # C1 (4 < 4.5, self 5) and C2


def test_dgc_follows_the_study_definition():
    # the spec's own thresholds reach the panel: good customers answer 5 only, recognised from 4.5
    segments = {"disappointed": {"recognition": "reconnaissance", "good_customer_min": 5, "recognised_min": 4.5}}
    study = make_study(segments=segments)
    assert (study.dgc_definition.good_customer_min, study.dgc_definition.recognised_min) == (5, 4.5)
    p = build_panel(study, make_data())
    by_rec = dict(zip(p.respondents["reconnaissance"], p.respondents["dgc"]))
    assert by_rec == {4.0: 1, 1.0: 0, 5.0: 0}      # C1 (self 5, 4 < 4.5) yes; C2 (self 4) no; C7 no
    # an explicit argument still overrides the spec
    p = build_panel(study, make_data(), good_customer_min=4)
    assert dict(zip(p.respondents["reconnaissance"], p.respondents["dgc"]))[1.0] == 1


def test_reserved_names_are_refused():
    with pytest.raises(CxlabError, match="rename these constructs"):
        make_study(surveys=dict(path="s.csv", id="cust", date="answered", constructs={"event": ["a"]}),
                   segments={})


def test_model_table_counts_rows_with_missing_model_columns():
    p = build_panel(make_study(), make_data())
    p.respondents.loc[0, "self_status"] = np.nan
    n_steps = len(p.exclusions)
    sample = p.model_table(["reconnaissance", "self_status"], label="Cox")
    assert len(sample) == len(p.respondents) - 1
    last = p.exclusions.iloc[-1]
    assert len(p.exclusions) == n_steps + 1
    assert (last["step"], last["rows_in"], last["rows_out"], last["excluded"]) == ("Cox: self_status available", 3, 2, 1)
    p.model_table(["reconnaissance", "self_status"], label="Cox")   # asked twice: counted once
    assert len(p.exclusions) == n_steps + 1
    with pytest.raises(CxlabError, match="'nope' is not in the respondents table"):
        p.model_table(["nope"])


# ---- duplicates ---------------------------------------------------------------------------

def with_rows(df, rows):
    out = pd.concat([df, pd.DataFrame(rows)], ignore_index=True)
    return out.assign(source_row=np.arange(1, len(out) + 1))


def test_duplicate_and_conflicting_answers_are_decided_and_counted():
    data = make_data()
    s = data.surveys
    data.surveys = with_rows(s, [
        # C1's first answer again, later the same day: a copy (dropped)
        {**s.iloc[0].to_dict(), "date": T("2024-01-01 16:00")},
        # C5 answered twice on 2024-03-01 with different answers: both set aside
        {**s.iloc[5].to_dict(), "a": 1.0},
        # C2's answer again on another day with the same answers: a new wave, kept
        {**s.iloc[2].to_dict(), "date": T("2024-06-01")},
    ])
    p = build_panel(make_study(), data)
    ex = p.exclusions.set_index("step")
    assert ex.loc["one answer per customer, day and answers", ["rows_in", "rows_out"]].tolist() == [11, 10]
    assert ex.loc["no conflicting answers on one day", ["rows_in", "rows_out"]].tolist() == [10, 8]
    assert ex.loc["answers on or before the snapshot", "rows_in"] == 8
    base = build_panel(make_study(), make_data())
    # C1 keeps one first answer (its two waves unchanged); C5 has no answer left (it had no time at
    # risk anyway); C2 gets a second wave
    assert p.respondents["n_answers"].value_counts().to_dict() == {2: 2, 1: 1}
    assert len(p.respondents) == len(base.respondents)
    assert (p.exclusions["excluded"] == p.exclusions["rows_in"] - p.exclusions["rows_out"]).all()
    assert list(dict.fromkeys(p.exclusions["table"])) == ["customers", "survey answers", "complaints",
                                                         "respondents"]


def test_survey_answers_are_the_panels_answers():
    from cxlab.data.panel import survey_answers

    data = make_data()
    s = data.surveys
    data.surveys = with_rows(s, [{**s.iloc[0].to_dict(), "date": T("2024-01-01 16:00")},   # a copy
                                 {**s.iloc[5].to_dict(), "a": 1.0}])                       # a conflict
    got = survey_answers(make_study(), data)
    assert list(got.columns) == list(data.surveys.columns)
    # rows kept: not the copy (row 9), not C5's two answers (rows 6, 10), not the two after the snapshot
    assert got["source_row"].tolist() == [1, 2, 3, 7, 8]
    p = build_panel(make_study(), data)
    ex = p.exclusions.set_index("step")
    assert len(got) == ex.loc["answers on or before the snapshot", "rows_out"]


def test_conflicting_answers_of_a_respondent_leave_it_out():
    data = make_data()
    s = data.surveys
    data.surveys = with_rows(s, [{**s.iloc[2].to_dict(), "c": 5.0}])   # C2, same day, empathy differs
    p = build_panel(make_study(), data)
    assert len(p.respondents) == len(build_panel(make_study(), make_data()).respondents) - 1
    assert p.exclusions.set_index("step").loc["no conflicting answers on one day", "excluded"] == 2


def test_duplicate_complaints_are_dropped_or_merged():
    data = make_data()
    k = data.complaints
    data.complaints = with_rows(k, [
        k.iloc[0].to_dict(),                                            # C1: exact copy
        {**k.iloc[0].to_dict(), "closed": T("2025-05-01"), "compensated": 0.0},   # C1: same day, differs
    ])
    p = build_panel(make_study(), data)
    ex = p.exclusions.set_index("step")
    assert ex.loc["one row per complaint", ["rows_in", "rows_out"]].tolist() == [5, 4]
    assert ex.loc["one complaint per customer and opening day", ["rows_in", "rows_out"]].tolist() == [4, 3]
    iv = p.intervals
    c1_key = p.respondents.loc[p.respondents["n_answers"] == 2, "customer_key"].item()
    c1 = iv[iv["customer_key"] == c1_key].reset_index(drop=True)
    s = "2020-01-01"
    # one episode: open from 2025-03-01 until its last part is resolved (2025-05-01), goodwill
    assert c1["start"].tolist() == pytest.approx(
        [months(s, "2024-01-01"), months(s, "2025-01-01"), months(s, "2025-03-01"), months(s, "2025-05-01")])
    assert c1["complaint_open"].tolist() == [0, 0, 1, 0]
    assert c1["complaint_resolved_goodwill"].tolist() == [0, 0, 0, 1]
    # a part still open keeps the episode open
    data.complaints.loc[4, "closed"] = pd.NaT
    c1 = build_panel(make_study(), data).intervals.query("customer_key == @c1_key")
    assert c1["complaint_open"].tolist() == [0, 0, 1]


# ---- the snapshot day ----------------------------------------------------------------------

def test_anything_on_the_snapshot_day_is_inside_whatever_its_time():
    data = make_data()
    # C7 defects at 10:00 on the snapshot day; C6 answers again and complains on it; a customer
    # who started at 08:00 that day is known at the snapshot
    data.customers.loc[6, "end"] = T("2026-06-30 10:00")
    data.customers = with_rows(data.customers, [{"customer_id": "C8", "start": T("2026-06-30 08:00"),
                                                 "end": pd.NaT, "value": 1.0, "région": "sud"}])
    data.surveys = with_rows(data.surveys, [{"customer_id": "C6", "date": T("2026-06-30 23:59:59"), "a": 1.0,
                                             "b": 1.0, "c": 1.0, "s": 5.0, "nps": 0.0}])
    data.complaints = with_rows(data.complaints, [{"customer_id": "C1", "opened": T("2026-06-30 09:00"),
                                                   "closed": T("2026-06-30 18:00"), "compensated": 1.0}])
    p = build_panel(make_study(), data)
    ex = p.exclusions.set_index("step")
    assert ex.loc["customers known at the snapshot", ["rows_in", "rows_out"]].tolist() == [8, 7]
    assert ex.loc["answers on or before the snapshot", ["rows_in", "rows_out"]].tolist() == [9, 7]
    assert ex.loc["complaints opened on or before the snapshot", "excluded"] == 0
    c7 = p.respondents[p.respondents["reconnaissance"] == 5.0]
    assert c7["event"].tolist() == [1]
    assert c7["duration"].item() == pytest.approx(months("2019-03-01", "2026-06-30"))
    # one day later, everything is outside
    data.customers.loc[6, "end"] = T("2026-07-01 00:00")
    data.customers.loc[7, "start"] = T("2026-07-01 00:00")
    data.surveys.loc[8, "date"] = T("2026-07-01")
    p = build_panel(make_study(), data)
    ex = p.exclusions.set_index("step")
    assert ex.loc["customers known at the snapshot", "rows_out"] == 6
    assert ex.loc["answers on or before the snapshot", "rows_out"] == 6
    assert p.respondents.loc[p.respondents["reconnaissance"] == 5.0, "event"].tolist() == [0]


def test_audit_counts_customers_with_the_panels_cut():
    from cxlab.insight.audit import response_summary

    data = tie_heavy_data(n=60)
    data.customers.loc[:1, "start"] = [T("2026-06-30 08:00"), T("2026-07-01")]   # snapshot day; the day after
    p = build_panel(make_study(), data)
    known = p.exclusions.set_index("step").loc["customers known at the snapshot", "rows_out"]
    summary = response_summary(p, data.customers, min_cell=5)
    assert known == 59 and summary.loc[summary["group"] == "all customers", "customers"].item() == known


# ---- determinism ---------------------------------------------------------------------------

def tie_heavy_data(n=400, seed=3):
    """Many customers with several answers and complaints resolved on the same day, some with a
    goodwill gesture and some without: orderings without a complete tie-breaker show here."""
    rng = np.random.default_rng(seed)
    ids = [f"K{i:04d}" for i in range(n)]
    customers = pd.DataFrame({"customer_id": ids, "start": T("2018-01-01"),
                              "end": [T("2026-01-01") if i % 3 == 0 else pd.NaT for i in range(n)],
                              "value": rng.random(n), "région": rng.choice(["nord", "sud"], n)})
    days = pd.to_datetime(["2022-01-01", "2023-01-01", "2024-01-01"])
    surveys = pd.DataFrame({"customer_id": np.repeat(ids, 3), "date": np.tile(days, n),
                            **{c: rng.integers(1, 6, 3 * n).astype(float) for c in "abcs"},
                            "nps": rng.integers(0, 11, 3 * n).astype(float)})
    # per customer: three complaints opened on different days, all resolved on one day, goodwill mixed
    opened = pd.to_datetime(["2024-02-01", "2024-03-01", "2024-04-01"])
    complaints = pd.DataFrame({"customer_id": np.repeat(ids, 3), "opened": np.tile(opened, n),
                               "closed": T("2024-05-01"), "compensated": rng.integers(0, 2, 3 * n).astype(float)})
    return SimpleNamespace(customers=customers, surveys=with_rows(surveys, []), complaints=with_rows(complaints, []))


def test_same_files_give_identical_tables_whatever_the_threads_and_row_order():
    study = make_study()
    a = build_panel(study, tie_heavy_data(), threads=1)
    b = build_panel(study, tie_heavy_data(), threads=4)
    pd.testing.assert_frame_equal(a.respondents, b.respondents)
    pd.testing.assert_frame_equal(a.intervals, b.intervals)
    pd.testing.assert_frame_equal(a.exclusions, b.exclusions)
    # the complaint file in another order (same rows, same source row numbers): same tables, and
    # the documented rule holds: resolutions on one day give goodwill if any of them had it
    data = tie_heavy_data()
    data.complaints = data.complaints.iloc[::-1].reset_index(drop=True)
    c = build_panel(study, data, threads=1)
    pd.testing.assert_frame_equal(a.intervals, c.intervals)
    k = tie_heavy_data().complaints
    any_goodwill = k.groupby("customer_id")["compensated"].max()
    last = a.intervals.sort_values("start").groupby("customer_key").nth(-1).set_index("customer_key")
    after = last[last["complaint_open"] == 0]
    want = any_goodwill.iloc[after.index.to_numpy()].to_numpy()
    assert len(after) > 100
    np.testing.assert_array_equal(after["complaint_resolved_goodwill"].to_numpy(), want)
    np.testing.assert_array_equal(after["complaint_resolved_no_goodwill"].to_numpy(), 1 - want)


def test_property_events_are_exactly_the_defections_by_the_end_of_the_snapshot_day():
    # random defection times within three days of the snapshot (any time of day), fixed seed
    rng = np.random.default_rng(11)
    n = 300
    ids = [f"R{i:04d}" for i in range(n)]
    start = T("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    end = T("2026-06-27") + pd.to_timedelta(rng.integers(0, 6 * 24 * 60, n), unit="min")
    end = pd.Series(end).where(rng.random(n) < 0.7)
    customers = pd.DataFrame({"customer_id": ids, "start": start, "end": end.to_numpy(),
                              "value": 1.0, "région": "nord"})
    surveys = pd.DataFrame({"customer_id": ids, "date": start + pd.to_timedelta(400, unit="D"),
                            **{c: rng.integers(1, 6, n).astype(float) for c in "abcs"},
                            "nps": rng.integers(0, 11, n).astype(float)})
    data = SimpleNamespace(customers=customers.assign(source_row=np.arange(1, n + 1)),
                           surveys=surveys.assign(source_row=np.arange(1, n + 1)), complaints=None)
    p = build_panel(make_study(complaints=None), data)
    r = p.respondents.set_index("customer_key")
    ends = customers["end"].iloc[r.index.to_numpy()]
    want = (ends.notna() & (ends < T("2026-07-01"))).astype(int).to_numpy()
    assert len(r) == n and 0 < want.sum() < n
    np.testing.assert_array_equal(r["event"].to_numpy(), want)
    # nobody is followed beyond the snapshot day
    tenure_at_snapshot = ((T("2026-06-30") - customers["start"].iloc[r.index.to_numpy()]).dt.days
                          / DAYS_PER_MONTH).to_numpy()
    assert (r["duration"].to_numpy() <= tenure_at_snapshot + 1e-9).all()
    assert (p.intervals.groupby("customer_key")["stop"].max().to_numpy() <= tenure_at_snapshot + 1e-9).all()


def test_cohort_survivors_cut_at_the_snapshot_day():
    # value.cohort_survivors uses the same calendar-day cut: a member who starts at 10:00 on the
    # snapshot day is in the cohort and does not hide the cohort's first period; a defection at
    # 09:00 on the snapshot day is seen
    from cxlab.insight.value import cohort_survivors

    starts = [T("2026-01-15")] * 12 + [T("2026-06-30 10:00")]
    ends = [pd.NaT] * 11 + [T("2026-06-30 09:00"), pd.NaT]
    df = pd.DataFrame({"start": starts, "end": ends})
    got = cohort_survivors(df, "start", "end", snapshot=T("2026-06-30"), min_cell=5, period="year")
    assert got[["cohort", "period", "survivors", "cohort_size"]].values.tolist() == [["2026", 0, 13, 13]]
