"""One Cox path: every Cox fit cxlab reports goes through its own engine, and equals lifelines'."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cxlab.insight.segments import segment_hazard_ratios


def test_segment_hazard_ratios_equal_lifelines_delayed_entry_cox():
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(8)
    n = 1500
    cells = rng.choice(["recognised good customers", "disappointed good customers", "modest but recognised",
                        "modest and unrecognised"], n, p=[0.4, 0.2, 0.25, 0.15])
    lp = np.select([cells == "disappointed good customers", cells == "modest and unrecognised"], [0.6, 0.3], 0.0)
    entry = rng.uniform(0, 30, n)
    t = entry + rng.exponential(30 / np.exp(lp))
    follow = entry + rng.uniform(3, 30, n)
    df = pd.DataFrame({"segment_2x2": cells, "entry": entry, "duration": np.minimum(t, follow),
                       "event": (t <= follow).astype(int), "tenure": rng.uniform(0, 10, n)})
    got = segment_hazard_ratios(df, covariates=["tenure"]).set_index("cell")
    # lifelines 0.30: CoxPHFitter().fit(..., entry_col="entry") on the cell indicators + tenure
    design = pd.DataFrame({c: (cells == c).astype(float) for c in
                           ["disappointed good customers", "modest but recognised", "modest and unrecognised"]})
    design[["tenure", "entry", "duration", "event"]] = df[["tenure", "entry", "duration", "event"]]
    ref = CoxPHFitter().fit(design, "duration", "event", entry_col="entry", fit_options={"precision": 1e-12}).summary
    for c in ["disappointed good customers", "modest but recognised", "modest and unrecognised"]:
        assert got.loc[c, "hr"] == pytest.approx(ref.loc[c, "exp(coef)"], rel=1e-6)
        assert got.loc[c, "lower"] == pytest.approx(ref.loc[c, "exp(coef) lower 95%"], rel=1e-6)
        assert got.loc[c, "upper"] == pytest.approx(ref.loc[c, "exp(coef) upper 95%"], rel=1e-6)
        assert got.loc[c, "p"] == pytest.approx(ref.loc[c, "p"], rel=1e-5, abs=1e-12)


def test_cxlab_imports_neither_lifelines_nor_scikit_survival_at_run_time(small_demo):
    """lifelines and scikit-survival are test references (the dev extra), not run-time needs: a
    whole analysis imports neither (each call below used one of them before)."""
    code = f"""
STUDY = {str(small_demo)!r}
""" + """
import sys, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from cxlab.data import panel
from cxlab.insight import audit
from cxlab.models import drivers, loyalty, measurement
from cxlab.insight import segments, value
from cxlab import workbook
from cxlab.models.survival import evaluate, km, cox, aft, phtest
from cxlab.report import runner, html
rng = np.random.default_rng(0)
n = 400
df = pd.DataFrame({"recognition": rng.normal(3, 1, n), "entry": rng.uniform(0, 10, n)})
t = df.entry + rng.exponential(20, n)
df["duration"] = np.minimum(t, df.entry + 15); df["event"] = (t <= df.entry + 15).astype(int)
df["time_since_survey"] = df.duration - df.entry
evaluate.evaluate_survival(df, ["recognition"], entry_col="entry", n_splits=3, times=[3, 6])
evaluate.calibration(df, ["recognition"], entry_col="entry", time=6, n_splits=3)
p = workbook.open_study(STUDY).panel
audit.censoring_summary(p)
grid = segments.perception_segments(p.respondents, p.recognition, scale=p.scale)
segments.segment_hazard_ratios(grid)
rows = p.model_table([*p.constructs, "dgc", "entry", "duration", "event", "value"])
rows = segments.perception_segments(rows, p.recognition, scale=p.scale)
m = cox.CoxModel(p.constructs, controls=["dgc"]).fit(rows, entry_col="entry")
value.what_if(rows, m, p.recognition, 0.5, n_boot=2, scale=p.scale, n_jobs=1)
bad = [m for m in sys.modules if m.split(".")[0] in ("lifelines", "sksurv")]
print(sorted(bad)[:5])
assert not bad, bad
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_median_follow_up_is_the_reverse_kaplan_meier_median(small_demo):
    from lifelines import KaplanMeierFitter

    from cxlab.insight.audit import censoring_summary
    from cxlab.workbook import open_study

    r = open_study(small_demo).panel.respondents
    got = censoring_summary(open_study(small_demo).panel).set_index("quantity")["value"]
    # lifelines 0.30: KaplanMeierFitter().fit(follow-up, 1 - event).median_survival_time_
    ref = KaplanMeierFitter().fit(r["time_since_survey"], 1 - r["event"]).median_survival_time_
    assert got["median follow-up after the survey (reverse Kaplan-Meier)"] == pytest.approx(ref, rel=1e-12)
