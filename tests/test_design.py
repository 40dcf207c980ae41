"""One design-matrix builder (cxlab.models.survival.design, issue 13): the reference level of a categorical
control is chosen once, by one rule, for every model, and stated in every model table.

Truth by construction: tables whose most frequent level (rows or customers) is known."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab.models.survival import CoxModel, fit_aft
from cxlab.models.survival.design import dummy_code, reference_level

PACKAGE = Path(__file__).resolve().parents[1] / "cxlab"


def _table(sizes, n_extra=0, seed=0):
    """Respondents with a categorical 'region' of the given level sizes, a construct and a
    delayed-entry survival outcome."""
    rng = np.random.default_rng(seed)
    region = np.concatenate([[level] * n for level, n in sizes.items()])
    n = region.size
    rec = rng.integers(1, 6, n).astype(float)
    entry = rng.uniform(0, 12, n)
    duration = entry + rng.exponential(20 * np.exp(0.2 * (rec - 3)), n) + 0.1
    cut = entry + 24
    event = (duration < cut).astype(int)
    return pd.DataFrame({"region": region, "recognition": rec, "entry": entry,
                         "duration": np.minimum(duration, cut), "event": event})


def test_reference_is_the_most_frequent_level_ties_first_in_text_order():
    assert reference_level(pd.Series({"north": 40, "south": 60, "east": 10})) == "south"
    assert reference_level(pd.Series({"south": 50, "north": 50, "east": 10})) == "north"
    assert reference_level(pd.Series({"b": 5, "a": 5, "c": 5})) == "a"


def test_levels_are_counted_in_customers_when_customers_have_several_rows():
    # 'a': 30 customers with 5 rows each (150 rows), 'b': 50 customers with one row each
    ids = pd.Series(np.r_[np.repeat(np.arange(30), 5), 100 + np.arange(50)])
    region = pd.Series(["a"] * 150 + ["b"] * 50)
    coding, X = dummy_code(region, "region", ids=ids)
    assert coding.reference == "b" and coding.levels == ("a",)
    np.testing.assert_array_equal(X[:, 0], (region == "a").to_numpy(float))
    assert dummy_code(region, "region")[0].reference == "a"   # counted in rows without ids


def test_cox_and_aft_choose_the_same_reference_and_state_it():
    # a tie between 'north' and 'south': both models must break it the same way (text order)
    df = _table({"south": 400, "north": 400, "east": 200})
    cox = CoxModel(["recognition"], controls=["region"]).fit(df, entry_col="entry")
    aft = fit_aft(df, ["recognition"], controls=["region"], entry_col="entry", distributions=("weibull",))
    assert cox.reference_levels_ == aft.design_.references == {"region": "north"}
    cox_terms = cox.summary.set_index("term")
    assert list(cox_terms.loc[["region[east]", "region[south]"], "reference"]) == ["north", "north"]
    aft_terms = aft.summary.set_index("term")
    assert list(aft_terms.loc[["region=east", "region=south"], "reference"]) == ["north", "north"]
    assert aft_terms.loc["recognition", "reference"] is None and cox_terms.loc["recognition", "reference"] is None


def test_what_if_rebuilds_the_models_own_columns():
    df = _table({"south": 300, "north": 500, "east": 200}, seed=4)
    cox = CoxModel(["recognition"], controls=["region"]).fit(df, entry_col="entry")
    coding = cox.codings_["region"]
    X = cox._fit_data["X"]
    j = [list(cox.params_.index).index(t) for t in coding.terms]
    np.testing.assert_array_equal(coding.encode(df["region"]), X[:, j])
    # on other rows (one level absent), the same levels in the same order
    sub = df[df["region"] != "east"]
    np.testing.assert_array_equal(coding.encode(sub["region"]), X[(df["region"] != "east").to_numpy()][:, j])


def test_no_second_dummy_coder_in_the_model_modules():
    # get_dummies / hand-made level loops belong to cxlab/models/survival/design.py only
    offenders = []
    for path in [*(PACKAGE / "models" / "survival").glob("*.py"), *(PACKAGE / "insight" / "value").glob("*.py"),
                 PACKAGE / "insight" / "segments.py", PACKAGE / "models" / "drivers.py",
                 PACKAGE / "models" / "loyalty.py"]:
        if path.name == "design.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"get_dummies|pool_for_model\(", text):
            offenders.append(path.name)
    assert offenders == []


@pytest.mark.parametrize("sizes, expected", [({"x": 11, "y": 10}, "x"), ({"x": 10, "y": 11}, "y")])
def test_reference_boundary_by_one_customer(sizes, expected):
    coding, _ = dummy_code(pd.Series(np.concatenate([[k] * n for k, n in sizes.items()])), "g")
    assert coding.reference == expected


def test_the_report_table_of_a_model_states_the_reference():
    from cxlab.insight.narrative import ci_table

    df = _table({"south": 300, "north": 500, "east": 200}, seed=2)
    cox = CoxModel(["recognition"], controls=["region"]).fit(df, entry_col="entry")
    t = ci_table(cox.summary, {"hazard ratio (95 % CI)": ("hr", "lower", "upper")})
    assert t["term"].tolist() == ["recognition", "region: east (vs north)", "region: south (vs north)"]


def test_loyalty_models_state_the_same_reference_as_the_survival_models():
    # 'north' is the most frequent level (not the first in text order, which get_dummies' drop_first
    # would have left out): the ordinal and the retention model compare with it and say so
    from cxlab.models.loyalty import ordinal_model, retention_logit

    df = _table({"east": 250, "north": 500, "south": 250}, seed=5)
    rng = np.random.default_rng(5)
    df["recommend"] = np.clip(np.round(6 + df["recognition"] - 3 + rng.logistic(size=len(df))), 0, 10)
    df["time_since_survey"] = df["duration"] - df["entry"]
    cox = CoxModel(["recognition"], controls=["region"]).fit(df, entry_col="entry")
    ordinal = ordinal_model(df, "recommend", ["recognition"], controls=["region"], bins="nps").summary
    retention = retention_logit(df, 6, ["recognition"], controls=["region"]).summary
    for table in (ordinal, retention):
        t = table.set_index("term")
        assert list(t.loc[["region=east", "region=south"], "reference"]) == ["north", "north"]
        assert t.loc["recognition", "reference"] is None and "region=north" not in t.index
    assert cox.reference_levels_ == {"region": "north"}


def test_driver_controls_leave_out_the_most_frequent_level():
    from cxlab.models.drivers import _design

    df = pd.DataFrame({"region": ["b"] * 30 + ["a"] * 20 + ["c"] * 15})
    X, names = _design(df, ["region"], what="control")
    assert names == ["region=a", "region=c"]
    np.testing.assert_array_equal(X, np.column_stack([df["region"] == "a", df["region"] == "c"]).astype(float))


def _pool_levels_by_text(series, m, ids=None, other="other"):
    """The pooling rule written out on the text of each row (privacy.pool_levels before it read the
    shared codes): levels below m customers pooled, the smallest remaining joining until the pool
    reaches m."""
    present = series.notna()
    text = series[present].astype(str)
    sizes = (text.groupby(text, sort=False).size() if ids is None
             else pd.Series(np.asarray(ids)[present.to_numpy()]).groupby(text.to_numpy(), sort=False).nunique())
    order = list(dict.fromkeys(text))   # first appearance
    sizes = sizes.reindex(order).sort_values(ascending=False, kind="stable")
    small = [lvl for lvl, n in sizes.items() if n < m and lvl != other]
    pool = set(small) | ({other} if small and other in sizes.index else set())
    if small:
        size = int(sizes[list(pool)].sum())
        for lvl, n in sizes.drop(index=list(pool)).sort_values(kind="stable").items():
            if size >= m:
                break
            pool.add(lvl)
            size += int(n)
    out = series.astype(object).copy()
    out[present] = np.where(text.isin(pool), other, text)
    return out, sorted(lvl for lvl in pool if lvl != other)


@pytest.mark.parametrize("seed", range(6))
def test_pooling_on_shared_codes_matches_the_rule_on_text(seed):
    from cxlab import privacy

    rng = np.random.default_rng(seed)
    n = 400
    m = privacy.resolve_min_cell(None)   # the run's threshold, which dummy_code applies
    sizes = rng.integers(1, 3 * m, 7)
    values = np.repeat(np.array(["a", "b", "c", "other", 1, "1", 2.5], dtype=object), sizes)[:n]
    s = pd.Series(rng.permutation(values))
    s[rng.random(len(s)) < 0.05] = None
    if seed % 2:
        s = s.astype(str).where(s.notna(), None).astype("category")
    ids = pd.Series(rng.integers(0, len(s) // 2, len(s))) if seed % 3 == 0 else None
    expected, pooled_levels = _pool_levels_by_text(s, m, ids=ids)
    got, report = privacy.pool_levels(s, m, ids=ids)
    assert report["levels"] == pooled_levels
    if pooled_levels:
        pd.testing.assert_series_equal(got.astype(object), expected.astype(object), check_names=False,
                                       check_categorical=False)
    # the design builder reads the same codes: 1 and "1" are one level, missing rows in no column
    coded = dummy_code(s, "g", ids=ids)
    if coded is not None:
        coding, X = coded
        text = expected.where(expected.notna(), None)
        for j, level in enumerate(coding.levels):
            np.testing.assert_array_equal(X[:, j], (text == level).to_numpy(float))
        assert "1" in set(coding.levels) | {coding.reference} or "1" in pooled_levels


def test_pooling_boundary_and_one_text_level_on_the_shared_codes():
    from cxlab import privacy

    m = privacy.resolve_min_cell(None)
    # 'y' has m - 1 customers (pooled, with the next smallest, to reach m); '1' has m customers
    # only when the number 1 and the text "1" are one level (as str() makes them)
    values = ["x"] * (m + 3) + ["y"] * (m - 1) + [1] * (m // 2) + ["1"] * (m - m // 2) + ["z"] * (m + 5)
    s = pd.Series(np.array(values, dtype=object))
    expected, pooled_levels = _pool_levels_by_text(s, m)
    got, report = privacy.pool_levels(s, m)
    assert report["levels"] == pooled_levels == ["1", "y"]   # '1' (m) is the smallest remaining level
    pd.testing.assert_series_equal(got, expected, check_names=False)
    exactly = pd.Series(["a"] * m + ["b"] * (m + 1))
    assert privacy.pool_levels(exactly, m)[1]["levels"] == []   # m customers: not small
    coding, X = dummy_code(pd.Series(np.array([1] * 30 + ["1"] * 30 + ["b"] * 40, dtype=object)), "g")
    assert (coding.reference, coding.levels) == ("1", ("b",))
    np.testing.assert_array_equal(X[:, 0], np.r_[np.zeros(60), np.ones(40)])
