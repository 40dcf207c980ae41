"""Export a small demo-study analysis table for ``survival_reference.R`` (issue 3: agreement with
R "on a demo study").

Run from the repository root: ``.venv/bin/python tests/reference/make_demo_reference_data.py``.
The CSVs are committed; the R script and ``tests/test_survival_reference.py`` read the same files.

Source: ``cxlab.data.synth.write_demo(n_customers=3000, seed=7)`` (a synthetic study; no real person),
opened with ``cxlab.workbook.open_study`` (default panel: first answer anchors the row, delayed
entry at the survey, follow-up to the snapshot 2026-06-30, tenure clock in months).

``demo_respondents.csv``: ``panel.model_table([...])`` of the respondents, one row each:
``entry`` (tenure at the first survey), ``duration`` (tenure at defection or the snapshot),
``event`` (1 = defected), the construct scores ``recognition``, ``empathy``, ``proximity``,
``affect`` (1-5 scale points), ``dgc`` (disappointed good customer, 0/1) and ``segment``
(mass/affluent/private). Respondents with a missing dgc flag are left out (model_table).

``demo_intervals.csv``: ``panel.model_table([...], table="intervals")``: the same respondents'
counting-process rows (``start``, ``stop``] split at later answers and complaint status changes,
with the latest answer's scores and dgc flag, ``complaint_open`` and
``complaint_resolved_no_goodwill`` (0/1, status at the row's start) and ``segment``. Rows with a
missing score or dgc flag (a later answer with too few items answered) are left out.
``customer_key`` is renumbered 1, 2, ... in order of first appearance: an opaque integer used
only to cluster a customer's rows; no customer identifier is written.

Floats are written with Python's shortest round-trip repr, so R and pandas read the same doubles.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab.data.synth import write_demo
from cxlab.workbook import open_study

HERE = Path(__file__).parent
N_CUSTOMERS, SEED = 3000, 7
RESPONDENT_COLUMNS = ["entry", "duration", "event", "recognition", "empathy", "proximity", "affect", "dgc",
                      "segment"]
INTERVAL_COLUMNS = ["customer_key", "start", "stop", "event", "recognition", "empathy", "proximity", "affect",
                    "dgc", "complaint_open", "complaint_resolved_no_goodwill", "segment"]


def demo_reference_tables(n_customers: int = N_CUSTOMERS, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The respondents and counting-process tables of a freshly written demo study."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_demo(Path(tmp) / "demo", n_customers=n_customers, seed=seed)
        panel = open_study(spec).panel
    respondents = panel.model_table(RESPONDENT_COLUMNS, label="R reference")[RESPONDENT_COLUMNS].copy()
    intervals = panel.model_table(INTERVAL_COLUMNS, label="R reference", table="intervals")[INTERVAL_COLUMNS].copy()
    respondents["dgc"] = respondents["dgc"].astype("int64")
    intervals["dgc"] = intervals["dgc"].astype("int64")
    # opaque cluster key: 1, 2, ... in order of first appearance (rows are sorted by customer, start)
    intervals["customer_key"] = pd.factorize(intervals["customer_key"])[0] + 1
    return respondents, intervals


def main() -> None:
    respondents, intervals = demo_reference_tables()
    for name, frame in (("demo_respondents.csv", respondents), ("demo_intervals.csv", intervals)):
        path = HERE / name
        frame.to_csv(path, index=False, lineterminator="\n")
        back = pd.read_csv(path, float_precision="round_trip")
        num = frame.select_dtypes("number").columns
        if not np.array_equal(back[num].to_numpy(float), frame[num].to_numpy(float)):
            raise RuntimeError(f"{name}: floats did not survive the CSV round trip")


if __name__ == "__main__":
    main()
