"""Tests for cxlab.data.synth: the demo study generator and its documented ground truth.

The parameter-recovery test is the proof that the simulation does what truth.json says: it
rebuilds counting-process rows from the written tables with pandas only (independently of the
generator's internals and of cxlab.data.panel) and fits lifelines' CoxTimeVaryingFitter.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cxlab.errors import CxlabError, ParameterError
from cxlab.study import load_study
from cxlab.data.synth import DEFAULTS, generate_demo, load_truth, write_demo

SNAPSHOT = pd.Timestamp("2026-06-30")
EXTRACT = pd.Timestamp("2026-09-30")
DAYS_PER_MONTH = 30.4375
ITEMS = {"recognition": ["q7", "q8", "q9"], "empathy": ["q10", "q11", "q12"],
         "proximity": ["q13", "q14"], "affect": ["q15", "q16"]}


@pytest.fixture(scope="module")
def demo():
    return generate_demo(n_customers=4000, seed=11)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "study"
    return write_demo(out, n_customers=3000, seed=5)


def _dates(s):
    return pd.to_datetime(s, format="%Y-%m-%d")


def _scores(surveys: pd.DataFrame) -> pd.DataFrame:
    """Construct scores: mean of the non-99 items when at least half are answered (else NaN)."""
    out = {}
    for c, items in ITEMS.items():
        v = surveys[items].astype(float).where(surveys[items] != 99)
        need = int(np.ceil(len(items) / 2))
        out[c] = v.mean(axis=1).where(v.notna().sum(axis=1) >= need)
    return pd.DataFrame(out, index=surveys.index)


# ---- determinism -------------------------------------------------------------------------------


def test_same_seed_same_frames_and_files(tmp_path):
    a = generate_demo(n_customers=1500, seed=3)
    b = generate_demo(n_customers=1500, seed=3)
    for name in ("customers", "surveys", "complaints"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.truth == b.truth
    p1 = write_demo(tmp_path / "one", n_customers=1500, seed=3).parent
    p2 = write_demo(tmp_path / "two", n_customers=1500, seed=3).parent
    names = sorted(p.name for p in p1.iterdir())
    assert names == sorted(p.name for p in p2.iterdir())
    for name in names:
        assert (p1 / name).read_bytes() == (p2 / name).read_bytes(), name


def test_different_seed_differs():
    a = generate_demo(n_customers=1500, seed=3)
    b = generate_demo(n_customers=1500, seed=4)
    assert not a.customers.equals(b.customers)
    assert not a.surveys.equals(b.surveys)


# ---- files and the study spec --------------------------------------------------------------------


def test_written_study_loads_and_matches_frames(written):
    study = load_study(written)
    assert study.snapshot_date.isoformat() == "2026-06-30"
    assert study.constructs == ["recognition", "empathy", "proximity", "affect"]
    assert study.surveys.outcome_scale("recommend") == (0, 10)
    for role, path in study.files.items():
        assert path.is_file(), role
    assert sorted(p.name for p in written.parent.iterdir()) == [
        "README.md", "barometer.csv", "complaints.csv", "customers.csv", "study.yaml", "truth.json"]
    demo = generate_demo(n_customers=3000, seed=5)
    cust = pd.read_csv(written.parent / "customers.csv", dtype={"cust": str})
    assert list(cust.columns) == ["cust", "opened", "closed", "margin_12m", "segment", "channel"]
    assert cust["cust"].tolist() == demo.customers["cust"].tolist()
    np.testing.assert_allclose(cust["margin_12m"], demo.customers["margin_12m"])
    bar = pd.read_csv(written.parent / "barometer.csv")
    assert list(bar.columns) == ["cust", "answered", "q1", "q2", "q3", *[q for v in ITEMS.values() for q in v]]
    comp = pd.read_csv(written.parent / "complaints.csv")
    assert list(comp.columns) == ["cust", "opened", "closed", "goodwill"]
    assert load_truth(written.parent) == demo.truth
    assert load_truth(written) == demo.truth  # the spec path works too


def test_parquet_format(tmp_path):
    spec = write_demo(tmp_path / "pq", n_customers=800, seed=1, fmt="parquet")
    study = load_study(spec)
    assert study.files["customers"].suffix == ".parquet"
    demo = generate_demo(n_customers=800, seed=1)
    pd.testing.assert_frame_equal(pd.read_parquet(study.files["surveys"]), demo.surveys)


def test_rewrite_replaces_and_refuses_foreign_folder(tmp_path):
    out = tmp_path / "demo"
    write_demo(out, n_customers=500, seed=1)
    write_demo(out, n_customers=700, seed=2)
    assert len(pd.read_csv(out / "customers.csv")) == 700
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    (out / "my_notes.txt").write_text("keep me")
    with pytest.raises(CxlabError, match="my_notes.txt"):
        write_demo(out, n_customers=500, seed=1)
    assert (out / "my_notes.txt").read_text() == "keep me"


def test_crash_while_writing_leaves_the_previous_study(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    write_demo(out, n_customers=500, seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        write_demo(out, n_customers=700, seed=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]   # no temp folder left behind


def test_bad_parameters():
    with pytest.raises(ParameterError, match="n_customers"):
        generate_demo(n_customers=0)
    with pytest.raises(ParameterError, match="fmt"):
        write_demo("unused", n_customers=10, fmt="xlsx")
    with pytest.raises(ParameterError, match="snapshot_date"):
        generate_demo(n_customers=10, snapshot_date="2026-12-31", extract_date="2026-09-30")


def test_tiny_base_still_writes_a_valid_study(tmp_path):
    # too few respondents for a per-SD effect: truth says null, and truth.json stays strict JSON
    spec = write_demo(tmp_path / "tiny", n_customers=1, seed=1)
    truth = json.loads((spec.parent / "truth.json").read_text(),
                       parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert truth["log_hr_per_sd"]["recognition"] is None
    assert load_study(spec).name.startswith("Demo retail bank")


def test_demo_spec_says_what_the_money_is(tmp_path):
    # the margin is a 12-month margin in euros (truth.json: margin_12m); reports state both
    study = load_study(write_demo(tmp_path / "money", n_customers=20, seed=1))
    assert (study.customers.value_currency, study.customers.value_period) == ("EUR", "12 months")
    assert study.dgc_definition.sentence == (
        "Disappointed good customers: answered 4 or 5 on the 1\u20135 'good customer' item and scored "
        "below 3.0 on recognition.")


def test_load_truth_without_truth(tmp_path):
    with pytest.raises(CxlabError, match="truth.json"):
        load_truth(tmp_path)


# ---- the data contract -----------------------------------------------------------------------------


def test_data_contract(demo):
    c, s, k = demo.customers, demo.surveys, demo.complaints
    assert c["cust"].is_unique
    assert c["cust"].str.fullmatch(r"C\d{7}").all()
    opened, closed = _dates(c["opened"]), _dates(c["closed"])
    assert opened.notna().all()
    assert (closed.isna() | (opened <= closed)).all()
    assert (opened <= EXTRACT).all() and (closed.dropna() <= EXTRACT).all()
    assert (c["margin_12m"] >= 0).all() and (c["margin_12m"] == c["margin_12m"].round(2)).all()
    assert set(c["segment"]) == {"mass", "affluent", "private"}
    assert set(c["channel"]) == {"branch", "online", "phone"}

    life = c.assign(o=opened, e=closed.fillna(EXTRACT)).set_index("cust")[["o", "e"]]
    assert s["cust"].isin(life.index).all()
    sa = s.join(life, on="cust").assign(d=lambda x: _dates(x["answered"]))
    assert ((sa["d"] >= sa["o"]) & (sa["d"] <= sa["e"])).all()
    assert not s.duplicated(["cust", "answered"]).any()
    per = s.groupby("cust").size()
    assert per.min() >= 1 and per.max() <= 3
    for q in [q for v in ITEMS.values() for q in v] + ["q2", "q3"]:
        assert s[q].isin([1, 2, 3, 4, 5, 99]).all(), q
    assert s["q1"].isin([*range(11), 99]).all()
    # ~3 % "don't know" per item (binomial sd with ~7000 answers is 0.2 points)
    dk = (s[[q for v in ITEMS.values() for q in v]] == 99).mean()
    assert dk.between(0.02, 0.04).all()

    assert k["cust"].isin(life.index).all()
    ka = k.join(life, on="cust").assign(ko=lambda x: _dates(x["opened"]), kc=lambda x: _dates(x["closed"]))
    assert ((ka["ko"] >= ka["o"]) & (ka["ko"] <= ka["e"])).all()
    assert (ka["kc"].isna() | ((ka["ko"] <= ka["kc"]) & (ka["kc"] <= ka["e"]))).all()
    assert k["goodwill"].isin([0, 1]).all()
    # still-open complaints belong to customers active at the extract
    assert ka.loc[ka["kc"].isna(), "e"].eq(EXTRACT).all()


def test_records_after_the_snapshot_exist(demo):
    c, s, k = demo.customers, demo.surveys, demo.complaints
    assert (_dates(c["opened"]) > SNAPSHOT).sum() > 0
    assert (_dates(c["closed"]) > SNAPSHOT).sum() > 0
    assert (_dates(s["answered"]) > SNAPSHOT).sum() > 0
    assert (_dates(k["opened"]) > SNAPSHOT).sum() > 0
    assert (k["closed"].isna()).sum() > 0
    assert (c["closed"].isna()).sum() > 0


# ---- the documented shape of the data ---------------------------------------------------------------


def test_margin_concentration_and_segments(demo):
    c = demo.customers
    m = np.sort(c["margin_12m"].to_numpy())[::-1]
    share = m[: int(0.2 * len(m))].sum() / m.sum()
    assert 0.6 <= share <= 0.8
    means = c.groupby("segment")["margin_12m"].mean()
    assert means["mass"] < means["affluent"] < means["private"]
    shares = c["segment"].value_counts(normalize=True)
    assert shares["mass"] == pytest.approx(0.70, abs=0.03)
    assert shares["private"] == pytest.approx(0.05, abs=0.015)


def test_respondent_rate_and_dgc_share(demo):
    s = demo.surveys
    rate = s["cust"].nunique() / len(demo.customers)
    assert 0.35 <= rate <= 0.50
    sc = _scores(s)
    dgc = (s["q3"].isin([4, 5]) & (sc["recognition"] < 3)).astype(int)
    assert 0.10 <= dgc.mean() <= 0.20
    assert dgc.mean() == pytest.approx(demo.truth["realised"]["dgc_share_of_answers"])
    # q3 is skewed high: most answer 4-5
    assert s.loc[s["q3"] != 99, "q3"].isin([4, 5]).mean() > 0.6
    # items have mode 4 (negative skew)
    assert (s["q7"].value_counts().idxmax()) == 4


def test_perceptions_correlate_with_tenure_and_self_status(demo):
    # drift (+0.06..+0.12 latent SD a year) and survival selection: long-standing customers feel closer
    s = demo.surveys
    sc = _scores(s)
    opened = _dates(demo.customers.set_index("cust").loc[s["cust"], "opened"]).to_numpy()
    tenure = (_dates(s["answered"]).to_numpy() - opened) / np.timedelta64(1, "D") / DAYS_PER_MONTH
    for c in ITEMS:
        assert pd.Series(tenure, index=s.index).corr(sc[c]) > 0.1, c
    ok = s["q3"] != 99
    assert 0.15 < s.loc[ok, "q3"].corr(sc.loc[ok, "recognition"]) < 0.45   # ~0.3 by design


def test_annual_defection_rate(demo):
    c = demo.customers
    o, e = _dates(c["opened"]), _dates(c["closed"])
    y0 = SNAPSHOT - pd.Timedelta(days=365)
    active = (o <= y0) & (e.isna() | (e > y0))
    rate = (active & (e <= SNAPSHOT)).sum() / active.sum()
    assert 0.08 <= rate <= 0.14   # model: ~10-12 % a year (n ~ 3000 at risk: sd ~0.6 points)


def test_truth_has_every_key(demo, written):
    truth = load_truth(written.parent)
    for key in ("log_hr_per_point", "gamma_dgc", "delta_open", "delta_resolved", "segment_log_hr",
                "weibull_k", "weibull_lam", "drift_per_year", "Sigma", "log_hr_per_sd",
                "log_hr_per_sd_definition", "time_scale", "entry", "snapshot_date", "extract_date",
                "which_model_recovers_the_truth", "parameters", "realised", "seed"):
        assert key in truth, key
    assert truth["time_scale"] == "tenure_months"
    assert set(truth["log_hr_per_point"]) == set(ITEMS)
    assert truth["log_hr_per_point"] == {"recognition": -0.40, "empathy": -0.20, "proximity": -0.15,
                                         "affect": -0.30}
    assert truth["delta_open"] == pytest.approx(np.log(2.0))
    assert truth["delta_resolved"] == pytest.approx(np.log(1.3))
    assert truth["segment_log_hr"] == {"mass": 0.0, "affluent": -0.20, "private": -0.40}
    p = truth["parameters"]
    for key in ("survey", "complaints", "items", "self_status", "hazard", "perceptions"):
        assert key in p
    assert p["survey"]["wave_dates"] == DEFAULTS["survey"]["wave_dates"]
    assert "LATEST" in truth["which_model_recovers_the_truth"]
    # per-SD effect = beta x SD of the observed first-answer score (first answer <= snapshot)
    s = demo.surveys.assign(d=lambda x: _dates(x["answered"]))
    first = s.sort_values(["cust", "d"]).groupby("cust").head(1)
    first = first[first["d"] <= SNAPSHOT]
    sd = _scores(first)["recognition"].std()
    assert demo.truth["log_hr_per_sd"]["recognition"] == pytest.approx(-0.40 * sd)
    readme = (written.parent / "README.md").read_text()
    assert "LATEST" in readme and "-0.400" in readme


# ---- parameter recovery: the generator does what truth.json says -----------------------------------------


def counting_process_rows(demo, snapshot=SNAPSHOT) -> pd.DataFrame:
    """Counting-process rows on the tenure clock (months), entry at the first answer, cut at the snapshot.

    Intervals are split at each later answer and at each complaint opening / resolution; the
    covariates are the latest answer's centred scores (missing -> 0) and DGC flag, and the
    complaint status at the start of the interval.
    """
    c = demo.customers.assign(o=_dates(demo.customers["opened"]), e=_dates(demo.customers["closed"]))
    c = c[c["o"] <= snapshot]
    c = c.assign(event=(c["e"].notna() & (c["e"] <= snapshot)).astype(int))
    c["exit"] = (c["e"].where(c["event"] == 1, snapshot) - c["o"]).dt.days / DAYS_PER_MONTH
    c = c.set_index("cust")

    s = demo.surveys.assign(d=_dates(demo.surveys["answered"]))
    s = s[(s["d"] <= snapshot) & s["cust"].isin(c.index)].copy()
    sc = _scores(s)
    for k in ITEMS:
        s[k] = (sc[k] - 3).fillna(0.0)
    s["dgc"] = (s["q3"].isin([4, 5]) & (sc["recognition"] < 3)).astype(int)
    s["t"] = (s["d"] - c.loc[s["cust"], "o"].to_numpy()).dt.days / DAYS_PER_MONTH
    entry = s.groupby("cust")["t"].min().rename("entry")
    r = c.join(entry, how="inner")
    r = r[r["exit"] > r["entry"]]

    k = demo.complaints
    k = k[k["cust"].isin(r.index)].assign(ko=lambda x: _dates(x["opened"]), kc=lambda x: _dates(x["closed"]))
    k = k[k["ko"] <= snapshot]
    k["kc"] = k["kc"].where(k["kc"] <= snapshot)          # resolved after the snapshot: still open
    o = r.loc[k["cust"], "o"].to_numpy()
    k["t_open"] = (k["ko"] - o).dt.days / DAYS_PER_MONTH
    k["t_close"] = (k["kc"] - o).dt.days / DAYS_PER_MONTH

    pts = pd.concat([s[["cust", "t"]], k[["cust", "t_open"]].rename(columns={"t_open": "t"}),
                     k[["cust", "t_close"]].dropna().rename(columns={"t_close": "t"})])
    pts = pts.join(r[["entry", "exit"]], on="cust", how="inner")
    pts = pts[(pts["t"] >= pts["entry"]) & (pts["t"] < pts["exit"])].drop_duplicates(["cust", "t"])
    iv = pts.sort_values(["cust", "t"]).rename(columns={"t": "start"})
    iv["stop"] = iv.groupby("cust")["start"].shift(-1).fillna(iv["exit"])
    iv["event"] = np.where(iv.groupby("cust")["start"].shift(-1).isna(), r.loc[iv["cust"], "event"], 0)
    iv = iv.reset_index(drop=True)

    # latest answer at or before the start
    ans = s[["cust", "t", *ITEMS, "dgc"]].sort_values("t")
    iv = pd.merge_asof(iv.sort_values("start"), ans, left_on="start", right_on="t", by="cust",
                       direction="backward").drop(columns="t")
    # complaint status at the start: open if any is open; else the latest resolution's goodwill
    j = iv[["cust", "start"]].merge(k[["cust", "t_open", "t_close", "goodwill"]], on="cust")
    j = j[j["t_open"] <= j["start"]]
    j["is_open"] = j["t_close"].isna() | (j["t_close"] > j["start"])
    res = j[~j["is_open"]].sort_values(["t_close", "goodwill"]).groupby(["cust", "start"]).tail(1)
    status = j.groupby(["cust", "start"])["is_open"].any().rename("complaint_open").to_frame()
    status = status.join(res.set_index(["cust", "start"])["goodwill"].rename("last_goodwill"))
    iv = iv.join(status, on=["cust", "start"])
    iv["complaint_open"] = iv["complaint_open"].eq(True).astype(int)
    iv["resolved_no_goodwill"] = ((iv["complaint_open"] == 0) & (iv["last_goodwill"] == 0)).astype(int)
    seg = r.loc[iv["cust"], "segment"].to_numpy()
    iv["affluent"] = (seg == "affluent").astype(int)
    iv["private"] = (seg == "private").astype(int)
    return iv[["cust", "start", "stop", "event", *ITEMS, "dgc", "complaint_open", "resolved_no_goodwill",
               "affluent", "private"]].sort_values(["cust", "start"]).reset_index(drop=True)


@pytest.mark.slow
def test_time_varying_cox_recovers_the_true_coefficients():
    # lifelines 0.30 CoxTimeVaryingFitter (Efron ties) ~ R survival: coxph(Surv(start, stop, event) ~ ...)
    from lifelines import CoxTimeVaryingFitter

    demo = generate_demo(n_customers=20_000, seed=2026)
    truth = demo.truth
    rows = counting_process_rows(demo)
    assert (rows["stop"] > rows["start"]).all()
    assert rows["event"].sum() > 800
    ctv = CoxTimeVaryingFitter().fit(rows, id_col="cust", event_col="event", start_col="start",
                                     stop_col="stop")
    true = {**truth["log_hr_per_point"], "dgc": truth["gamma_dgc"], "complaint_open": truth["delta_open"],
            "resolved_no_goodwill": truth["delta_resolved"], "affluent": truth["segment_log_hr"]["affluent"],
            "private": truth["segment_log_hr"]["private"]}
    summ = ctv.summary
    lower, upper = summ["coef lower 95%"], summ["coef upper 95%"]
    outside = {k: (round(lower[k], 3), round(upper[k], 3), v) for k, v in true.items()
               if not lower[k] <= v <= upper[k]}
    assert not outside, f"true values outside the 95% CI: {outside}"
    # jointly: Wald chi-square of (estimate - truth) on 10 df, p > 0.01
    from scipy import stats

    names = list(ctv.params_.index)          # variance_matrix_ follows params_ order
    d = np.array([ctv.params_[k] - true[k] for k in names])
    cov = np.asarray(ctv.variance_matrix_, dtype=float)
    assert stats.chi2.sf(d @ np.linalg.solve(cov, d), len(d)) > 0.01


def test_complaint_clock_matches_day_by_day_integration():
    # The cumulative hazard the generator inverts, G_i(t) = int_0^t exp(complaint term) dH0, checked
    # against a brute-force sum over days of exp(status on that day) * (H0(day+1) - H0(day)).
    import copy

    import cxlab.data.synth as synth

    p = copy.deepcopy(DEFAULTS)
    hz = p["hazard"]
    k, lam = hz["weibull_k"], hz["weibull_lam"]

    def h0(t):
        return (np.maximum(t, 0) / lam) ** k

    def h0_inv(h):
        return lam * np.maximum(h, 0) ** (1 / k)

    rng = np.random.default_rng(5)
    extract = synth._day("2026-09-30")
    opened = np.sort(rng.integers(synth._day("2018-01-01"), extract + 1, 300)).astype(float)
    clock, comp = synth._complaint_knots(rng, opened, extract, p, h0, h0_inv)
    assert len(comp["cust"]) > 150
    for i in range(len(opened)):
        mine = comp["cust"] == i
        o, c, g = comp["open"][mine], comp["close"][mine], comp["goodwill"][mine]

        days = np.arange(0, extract - opened[i] + 1)
        day = opened[i] + days[None, :-1]
        is_open = ((o[:, None] <= day) & (c[:, None] > day)).any(axis=0)
        done = c[:, None] <= day                                   # resolved by that day
        last = np.where(done, c[:, None], -np.inf).max(axis=0, initial=-np.inf)
        last_gw = np.where(done & (c[:, None] == last), g[:, None], -1).max(axis=0, initial=-1)
        term = np.where(is_open, hz["delta_open"], np.where(last_gw == 0, hz["delta_resolved"], 0.0))
        t = days / DAYS_PER_MONTH
        w = np.exp(term)
        brute = np.r_[0.0, np.cumsum(w * np.diff(h0(t)))]
        idx = np.full(len(t), float(i))
        np.testing.assert_allclose(clock.G(idx, t), brute, rtol=1e-10, atol=1e-12)
        if brute[-1] > 0:
            q, qi = rng.uniform(0, brute[-1], 5), np.full(5, float(i))
            np.testing.assert_allclose(clock.G(qi, clock.inverse(qi, q)), q, rtol=1e-10, atol=1e-12)
