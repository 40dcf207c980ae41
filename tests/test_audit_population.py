"""Who was analysed (notebook 01's run-summary metrics and sentence), as tested cxlab functions:
cxlab.insight.audit.population_metrics / population_finding. Truth: the small panel of test_panel
(6 customers known at the snapshot, 3 respondents, 2 defections; respondents set aside: one who
defected on the survey date and one with too few items answered; a later answer is not one)."""

import numpy as np
import pytest

from cxlab.insight import audit
from cxlab.data.panel import build_panel

from test_panel import make_data, make_study


@pytest.fixture(scope="module")
def panel():
    return build_panel(make_study(), make_data())


def test_population_metrics_count_respondents_customers_and_those_set_aside(panel):
    m = audit.population_metrics(panel, make_data().customers, min_cell=1)
    assert m["panel.respondents"] == 3 and m["panel.events"] == 2
    assert m["panel.censored_share"] == pytest.approx(1 / 3)
    assert m["panel.customers"] == 6 and m["panel.response_rate"] == pytest.approx(0.5)
    assert m["panel.set_aside"] == 2          # a respondent's later answers are not "set aside"
    assert audit.population_finding(m).startswith("3 of the 6 customers known at the snapshot are analysed "
                                                  "respondents (response rate 50 %)")


@pytest.mark.parametrize("min_cell, withheld", [(3, False), (4, True)])
def test_customers_and_rate_withheld_below_min_cell(panel, min_cell, withheld):
    # 3 respondents: from min_cell 4 the overall row is withheld by response_summary (and so the
    # sentence names no customer count or rate)
    m = audit.population_metrics(panel, make_data().customers, min_cell=min_cell)
    assert np.isnan(m["panel.response_rate"]) == withheld and np.isnan(m["panel.customers"]) == withheld
    sentence = audit.population_finding(m)
    assert ("6 customers" in sentence and "50 %" in sentence) != withheld
    assert sentence.startswith("3 analysed respondents") == withheld
