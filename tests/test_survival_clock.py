"""The survival table carries its clock (issue 13): the panel's respondent table says which columns are
duration / event / entry and its snapshot date (``attrs["cxlab.survival"]``), and every model defaults
to its delayed entry, so the biased (no-entry) fit needs ``entry_col=False``.

References are the same functions called with ``entry_col="entry"`` (the delayed-entry fit, itself
checked against R and lifelines elsewhere) and with ``entry_col=False``; a plain frame keeps today's
behaviour (no entry unless given)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from cxlab.models.drivers import cox_loglik_fit, shapley_importance
from cxlab.models.survival import (CoxModel, NO_ENTRY, calibration, evaluate_survival, fit_aft, kaplan_meier,
                                   logrank, mark_survival_table, resolve_entry, survival_spec)


def _plain(n=1500, seed=11):
    """Respondents on the tenure clock with delayed entry at the survey (entry ~ U(0, 48) months):
    the no-entry fit credits the time before the survey to the perception (immortal time)."""
    rng = np.random.default_rng(seed)
    rec = rng.normal(3, 1, n)
    entry = np.round(rng.uniform(0, 48, n), 2)
    t = rng.exponential(30 * np.exp(0.3 * (rec - 3)))
    keep = t > entry   # defected before the survey: never a respondent (left truncation)
    rec, entry, t = rec[keep], entry[keep], t[keep]
    cens = entry + rng.uniform(3, 36, len(t))
    duration = np.round(np.minimum(t, cens), 2)
    df = pd.DataFrame({"recognition": rec, "empathy": rng.normal(3, 1, len(t)),
                       "segment": rng.choice(["mass", "affluent"], len(t), p=[0.6, 0.4]),
                       "entry": entry, "duration": np.maximum(duration, entry + 0.01),
                       "event": (t <= cens).astype(int)})
    df["time_since_survey"] = df["duration"] - df["entry"]
    return df


def _panel_table(df):
    return mark_survival_table(df.copy(), clock="tenure in months; entry at the survey", snapshot_date="2025-06-30")


@pytest.fixture(scope="module")
def tables():
    plain = _plain()
    return plain, _panel_table(plain)


def test_the_accessor_reads_the_clock_and_only_on_the_tables_duration(tables):
    plain, table = tables
    assert survival_spec(plain) is None and resolve_entry(plain, None, "duration") is None
    assert survival_spec(table) == {"duration": "duration", "event": "event", "entry": "entry",
                                    "clock": "tenure in months; entry at the survey", "snapshot_date": "2025-06-30"}
    assert resolve_entry(table, None, "duration") == "entry"
    assert resolve_entry(table, NO_ENTRY, "duration") is None and resolve_entry(table, "other", "duration") == "other"
    # another clock (time since the survey starts at 0): the table's entry does not apply
    assert resolve_entry(table, None, "time_since_survey") is None


def test_cox_defaults_to_the_tables_delayed_entry(tables):
    _, table = tables
    default = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(table)
    with_entry = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(table, entry_col="entry")
    biased = CoxModel(["recognition", "empathy"], controls=["segment"]).fit(table, entry_col=False)
    np.testing.assert_array_equal(default.params_, with_entry.params_)
    assert default.fit_columns_["entry_col"] == "entry" and biased.fit_columns_["entry_col"] is None
    assert np.max(np.abs(biased.params_ - with_entry.params_)) > 0.01


def test_a_plain_frame_behaves_as_before(tables):
    plain, _ = tables
    default = CoxModel(["recognition"]).fit(plain.drop(columns="entry").assign(entry=plain["entry"]))
    none = CoxModel(["recognition"]).fit(plain, entry_col=False)
    assert default.fit_columns_["entry_col"] is None
    np.testing.assert_array_equal(default.params_, none.params_)


def test_aft_km_logrank_and_the_driver_fits_default_to_it(tables):
    _, table = tables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = dict(distributions=("weibull",))
        aft = [fit_aft(table, ["recognition"], entry_col=e, **kw).summary for e in (None, "entry", False)]
        pd.testing.assert_frame_equal(aft[0], aft[1])
        assert not np.allclose(aft[0]["time_ratio"], aft[2]["time_ratio"])
        km = [kaplan_meier(table, entry_col=e).summary for e in (None, "entry", False)]
        pd.testing.assert_frame_equal(km[0], km[1])
        assert not km[0].equals(km[2])
        lr = [logrank(table, "segment", entry_col=e) for e in (None, "entry", False)]
        pd.testing.assert_frame_equal(lr[0], lr[1])
        assert lr[0]["chi2"].iloc[0] != lr[2]["chi2"].iloc[0]
        ll = [cox_loglik_fit(table, ["recognition"], entry_col=e)[1] for e in (None, "entry", False)]
        assert ll[0] == ll[1] != ll[2]
        sh = [shapley_importance(table, ["recognition", "empathy"], model="cox", entry_col=e).summary
              for e in (None, "entry", False)]
        pd.testing.assert_frame_equal(sh[0], sh[1])
        assert not np.allclose(sh[0]["importance"], sh[2]["importance"])


def test_evaluation_and_calibration_default_to_it(tables):
    _, table = tables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = [evaluate_survival(table, ["recognition"], entry_col=e, n_splits=3, times=(6,)).summary
              for e in (None, "entry", False)]
        pd.testing.assert_frame_equal(ev[0], ev[1])
        assert not ev[0].equals(ev[2])
        cal = [calibration(table, ["recognition"], entry_col=e, time=6, bins=3, n_splits=3, min_cell=10)
               for e in (None, "entry")]
        pd.testing.assert_frame_equal(cal[0], cal[1])


def test_the_clock_survives_what_the_notebooks_do_to_the_table(tables):
    _, table = tables
    spec = survival_spec(table)
    kept = [table[table["segment"] == "mass"], table.copy(), table.assign(band="x"),
            table.dropna().reset_index(drop=True), table.loc[:, ["recognition", "duration", "event", "entry"]]]
    assert all(survival_spec(t) == spec for t in kept)
    buffer = io.BytesIO()   # the run's shared panel is a parquet file
    table.to_parquet(buffer)
    buffer.seek(0)
    assert survival_spec(pd.read_parquet(buffer)) == spec
    # a merge drops pandas' attrs: the caller passes entry_col there (documented in clock.py)
    merged = table.merge(pd.DataFrame({"segment": ["mass", "affluent"], "w": [1, 2]}), on="segment")
    assert survival_spec(merged) is None


def test_the_panels_respondent_table_carries_its_clock():
    from test_panel import make_data, make_study   # the panel's hand-checked toy study

    from cxlab.data.panel import CLOCK_DESCRIPTION, build_panel

    study = make_study()
    panel = build_panel(study, make_data())
    assert survival_spec(panel.respondents) == {"duration": "duration", "event": "event", "entry": "entry",
                                                "clock": CLOCK_DESCRIPTION,
                                                "snapshot_date": str(study.snapshot_date)}
    assert survival_spec(panel.model_table(["entry"])) == survival_spec(panel.respondents)


def test_parameter_lists_written_once_still_take_every_spelling(tables):
    # fit_aft takes AFTComparison's parameters, pairwise_logrank logrank's (one list each, issue 13):
    # positional, by name and by default they give the same fit
    import inspect

    from cxlab.models.survival import AFTComparison, pairwise_logrank

    _, table = tables
    assert list(inspect.signature(fit_aft).parameters)[1:] == list(inspect.signature(AFTComparison).parameters)
    assert list(inspect.signature(pairwise_logrank).parameters) == list(inspect.signature(logrank).parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_position = fit_aft(table, ["recognition"], (), "duration", "event", "entry", ("weibull",)).summary
        by_name = fit_aft(table, constructs=["recognition"], distributions=("weibull",), entry_col="entry").summary
    pd.testing.assert_frame_equal(by_position, by_name)
    a = pairwise_logrank(table, "segment", "duration", "event", "entry", True, 10)
    b = pairwise_logrank(table, "segment", entry_col="entry", min_cell=10)
    pd.testing.assert_frame_equal(a, b)
    assert a["suppressed"].tolist() == [False]
    with pytest.raises(TypeError):
        pairwise_logrank(table, "segment", colour="red")


def test_the_ph_fallback_keeps_the_clock_of_the_model_it_replaces():
    # a categorical control whose effect fades with tenure (non-proportional): check_and_fallback
    # refits stratified on it; the refit of an explicit no-entry model stays without entry, the
    # refit of the default model keeps the table's entry
    from cxlab.models.survival import check_and_fallback

    rng = np.random.default_rng(5)
    n = 3000
    seg = rng.choice(["a", "b"], n)
    t = np.where(seg == "b", rng.weibull(0.5, n) * 20, rng.weibull(2.0, n) * 20)   # crossing hazards
    entry = np.round(rng.uniform(0, 5, n), 2)
    keep = t > entry + 0.01
    df = pd.DataFrame({"recognition": rng.normal(3, 1, keep.sum()), "segment": seg[keep], "entry": entry[keep]})
    cens = df["entry"] + rng.uniform(5, 60, len(df))
    df["duration"] = np.minimum(t[keep], cens)
    df["event"] = (t[keep] <= cens).astype(int)
    table = _panel_table(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for asked, expected in ((False, None), (None, "entry")):
            model = CoxModel(["recognition"], controls=["segment"]).fit(table, entry_col=asked)
            checked = check_and_fallback(model, table)
            assert checked.fallback is not None and "strat" in " ".join(checked.actions_["action"])
            assert checked.fallback.fit_columns_["entry_col"] == model.fit_columns_["entry_col"] == expected
