"""what_if on cxlab's own Cox model: the same answer as on the lifelines model it replaced."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cxlab.errors import CxlabError
from cxlab.models.survival import CoxModel
from cxlab.insight.value import what_if


def _respondents(n=1200, seed=21):
    rng = np.random.default_rng(seed)
    rec = rng.integers(1, 6, n).astype(float)
    emp = np.clip(rec + rng.normal(0, 1, n), 1, 5).round()
    channel = rng.choice(["branch", "online", "phone"], n, p=[0.5, 0.35, 0.15])
    dgc = ((rec < 3) & (rng.random(n) < 0.6)).astype(float)
    entry = rng.uniform(0, 24, n)
    lp = -0.3 * (rec - 3) - 0.1 * (emp - 3) + 0.5 * dgc + 0.3 * (channel == "online")
    t = entry + rng.exponential(40 / np.exp(lp))
    follow = entry + rng.uniform(6, 36, n)
    return pd.DataFrame({"recognition": rec, "empathy": emp, "channel": channel, "dgc": dgc, "entry": entry,
                         "duration": np.minimum(t, follow), "event": (t <= follow).astype(int),
                         "value": rng.gamma(2, 60, n),
                         "segment_2x2": np.where(dgc == 1, "disappointed good customers", "recognised good customers")})


@pytest.fixture(scope="module")
def fitted():
    from lifelines import CoxPHFitter

    df = _respondents()
    ours = CoxModel(["recognition", "empathy"], controls=["dgc", "channel"]).fit(df, entry_col="entry")
    # lifelines 0.30 CoxPHFitter(entry_col=...) on the same design (channel against its largest level)
    design = df.assign(**{"channel[online]": (df["channel"] == "online").astype(float),
                          "channel[phone]": (df["channel"] == "phone").astype(float)})
    cols = ["recognition", "empathy", "dgc", "channel[online]", "channel[phone]", "entry", "duration", "event"]
    theirs = CoxPHFitter().fit(design[cols], "duration", "event", entry_col="entry")
    return df, design, ours, theirs


def test_what_if_on_cox_model_equals_what_if_on_lifelines(fitted):
    df, design, ours, theirs = fitted
    assert ours.reference_levels_ == {"channel": "branch"}
    kw = dict(horizons=(12, 24), n_boot=20, seed=4, scale=(1, 5), dgc_threshold=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no "refitted coefficients differ" warning: same model
        a = what_if(df, ours, "recognition", 1.0, segment="disappointed good customers", **kw)
    b = what_if(design, theirs, "recognition", 1.0, segment="disappointed good customers", **kw)
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)
    assert (a.loc[a["metric"] == "expected defections", "delta"] < 0).all()
    m1 = what_if(df, ours, "recognition", move_share=0.5, n_boot=0, scale=(1, 5))
    m2 = what_if(design, theirs, "recognition", move_share=0.5, n_boot=0, scale=(1, 5))
    pd.testing.assert_frame_equal(m1, m2, rtol=1e-6)


def test_what_if_refuses_cox_models_it_cannot_refit(fitted):
    df = fitted[0]
    with pytest.raises(CxlabError, match="stratified"):
        what_if(df, CoxModel(["recognition"], strata="channel").fit(df, entry_col="entry"), "recognition", n_boot=0)
    with pytest.raises(CxlabError, match="penal"):
        what_if(df, CoxModel(["recognition"], penalizer=0.1).fit(df, entry_col="entry"), "recognition", n_boot=0)
    with pytest.raises(CxlabError, match="fitted"):
        what_if(df, CoxModel(["recognition"]), "recognition", n_boot=0)
    with pytest.raises(CxlabError, match="CoxModel"):
        what_if(df, object(), "recognition", n_boot=0)


def test_what_if_pools_rare_levels_as_the_cox_model_did():
    """A control level held by fewer than min_cell respondents is pooled by CoxModel (privacy); the
    what-if must rebuild the same pooled design, not compare against the raw level names."""
    from lifelines import CoxPHFitter

    df = _respondents(seed=22)
    df.loc[df.index[:4], "channel"] = "post"           # 4 respondents: pooled with the next-smallest level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = CoxModel(["recognition"], controls=["channel"]).fit(df, entry_col="entry")
    pooled = [t for t in ours.params_.index if t.startswith("channel[")]
    assert pooled == ["channel[online]", "channel[other]"]   # post (4) + phone, the next-smallest
    design = df.assign(**{"channel[online]": (df["channel"] == "online").astype(float),
                          "channel[other]": df["channel"].isin(["post", "phone"]).astype(float)})
    theirs = CoxPHFitter().fit(design[["recognition", *pooled, "entry", "duration", "event"]], "duration", "event",
                               entry_col="entry")
    kw = dict(n_boot=0, scale=(1, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = what_if(df, ours, "recognition", 1.0, **kw)
    b = what_if(design, theirs, "recognition", 1.0, **kw)
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)
