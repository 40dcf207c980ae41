"""The customer-level summaries notebooks 01 and 04 need — customers known at the snapshot by
covariate level (`audit.response_summary`) and survivors by acquisition cohort
(`value.cohort_survivors`) — computed on the engine that holds the customers (issue 11: the
driver holds only respondent tables) give the very figures of the pandas path.

The pandas path is today's implementation (its own tests pin it to hand-counted cases); the
engine path is an independent set of queries; both run on the same rows: random customers with
times of day, month-end starts (Jan 31 + 1 month), ends on a period's boundary, ends after the
snapshot and starts on the snapshot day itself.
"""

from __future__ import annotations

import warnings

import ibis
import numpy as np
import pandas as pd
import pytest

import warehouse as wh
from cxlab.insight import audit
from cxlab.insight.value import cohort_survivors

SNAPSHOT = pd.Timestamp("2026-06-30")


def customers(n=4000, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2014-01-01") + pd.to_timedelta(rng.integers(0, 12 * 365 + 200, n), unit="D")
    start = start + pd.to_timedelta(rng.integers(0, 24 * 60, n), unit="min") * (rng.random(n) < 0.3)
    end = (start + pd.to_timedelta(rng.exponential(5 * 365, n), unit="D")).round("s")
    end = pd.Series(end).where(rng.random(n) < 0.7)
    edge_start = pd.to_datetime(format="ISO8601", arg=["2019-01-31", "2020-01-31", "2021-01-31", "2026-06-30 14:00", "2018-03-01",
                                 "2018-03-01", "2016-02-29", "2026-07-01"])
    edge_end = pd.to_datetime(format="ISO8601", arg=["2019-02-28", "2021-01-31", None, None, "2019-03-01", "2019-03-01 00:00:01",
                               "2017-02-28", None])
    df = pd.DataFrame({"start": list(start) + list(edge_start), "end": list(end) + list(edge_end)})
    df["end"] = pd.to_datetime(df["end"])
    df["start"] = pd.to_datetime(df["start"])
    df["channel"] = pd.Series(rng.choice(["branch", "online", "phone", None], len(df), p=[.5, .3, .19, .01]),
                              dtype="string")
    df["segment"] = pd.Series(rng.choice(["mass", "affluent"], len(df)), dtype="string")
    return df


class _Panel:   # what response_summary reads of a panel
    def __init__(self, df):
        self.snapshot_date = SNAPSHOT.date()
        self.covariates = ["channel", "segment"]
        self.respondents = df.sample(frac=0.2, random_state=1).reset_index(drop=True)


def _both(con_table, frame, **kw):
    with warnings.catch_warnings(record=True) as w_frame:
        warnings.simplefilter("always")
        a = cohort_survivors(frame, snapshot=SNAPSHOT, **kw)
    with warnings.catch_warnings(record=True) as w_engine:
        warnings.simplefilter("always")
        b = cohort_survivors(con_table, snapshot=SNAPSHOT, **kw)
    assert [str(w.message) for w in w_frame] == [str(w.message) for w in w_engine]
    return a, b


def _check_engine(con):
    df = customers()
    table = con.create_table("customers_t", ibis.memtable(df))
    for period in ("year", "month"):
        for min_cell in (5, 40):
            a, b = _both(table, df, period=period, min_cell=min_cell)
            assert len(a) > 10
            pd.testing.assert_frame_equal(a, b)
    panel = _Panel(df)
    for min_cell in (1, 30):
        pd.testing.assert_frame_equal(audit.response_summary(panel, df, min_cell),
                                      audit.response_summary(panel, table, min_cell))


def test_cohorts_and_known_customers_on_duckdb_equal_the_pandas_path():
    _check_engine(ibis.duckdb.connect())


def test_the_engine_check_sees_a_wrong_boundary():
    # break-it on purpose: counting ends *at* the horizon as survivors changes the counts of the
    # edge rows (an end exactly one period after the start), so the comparison would catch it
    df = customers()
    a = cohort_survivors(df, snapshot=SNAPSHOT, period="month", min_cell=1)
    shifted = df.assign(end=df["end"] + pd.Timedelta(seconds=1))
    b = cohort_survivors(shifted, snapshot=SNAPSHOT, period="month", min_cell=1)
    assert not a.equals(b)


def test_no_customer_row_comes_back_from_the_engine(monkeypatch):
    # only aggregates are executed: any attempt to fetch the customer table itself fails
    con = ibis.duckdb.connect()
    df = customers(500)
    table = con.create_table("c", ibis.memtable(df))
    n_rows = []
    real = ibis.expr.types.Table.to_pyarrow

    def counted(self, *a, **k):
        out = real(self, *a, **k)
        n_rows.append(out.num_rows)
        return out

    monkeypatch.setattr(ibis.expr.types.Table, "to_pyarrow", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cohort_survivors(table, snapshot=SNAPSHOT, period="month", min_cell=5)
    audit.response_summary(_Panel(df), table, 5)
    assert n_rows and max(n_rows) <= 200   # one row per cohort / level, never ~500 customers


try:
    import psycopg  # noqa: F401
except ImportError:
    psycopg = None


@pytest.mark.slow
@pytest.mark.skipif(wh.postgres_bin() is None or psycopg is None, reason="PostgreSQL or psycopg not installed")
def test_cohorts_and_known_customers_on_postgres_equal_the_pandas_path():
    with wh.postgres_server() as url:
        con = ibis.connect(url)
        try:
            _check_engine(con)
        finally:
            con.disconnect()
