"""Value of retention: profit concentration, expected retained months, CLV, what-if, sBG projection.

Time unit: months. Two clocks are used and each function says which:

* **tenure clock** (months since the customer's start, delayed entry at the survey): :func:`rmst`
  and the Cox model behind :func:`what_if` (a respondent's future is predicted from their entry
  onward: ``S(entry + h | x) / S(entry | x)``);
* **survey clock** (months since the survey, ``duration - entry``): :func:`clv` and
  :func:`value_at_risk`, which answer "from the survey onward, what is a respondent worth".

Every function returns a tidy DataFrame (estimate, lower, upper, n, ...).

The package has one module per concern; every public name is importable from ``cxlab.insight.value``:

* :mod:`.concentration`: :func:`lorenz`, :func:`gini`, :func:`top_share`;
* :mod:`.retention`: :func:`rmst`, :func:`clv`, :func:`value_at_risk`;
* :mod:`.whatif`: :func:`what_if`;
* :mod:`.sbg`: :func:`fit_sbg`, :class:`SBGResult`, :func:`cohort_survivors`.
"""

from cxlab.insight.value._inputs import _require_columns, _survival_arrays, _values  # noqa: F401 (used by segments)
from cxlab.insight.value.concentration import gini, lorenz, top_share
from cxlab.insight.value.retention import clv, rmst, value_at_risk
from cxlab.insight.value.sbg import SBGResult, cohort_survivors, fit_sbg
from cxlab.insight.value.whatif import _cox_fit, what_if  # noqa: F401 (_cox_fit: checked against lifelines in tests)

__all__ = [
    "lorenz",
    "gini",
    "top_share",
    "rmst",
    "clv",
    "value_at_risk",
    "what_if",
    "fit_sbg",
    "SBGResult",
    "cohort_survivors",
]
