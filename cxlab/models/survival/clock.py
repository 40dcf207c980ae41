"""The clock a survival table carries, and the delayed entry every model takes from it (issue 13).

The panel's respondent table (:func:`cxlab.data.panel.build_panel`) says which of its columns are
the duration, the event and the entry, on which clock (tenure in months; a respondent enters the
risk set at the survey) and at which snapshot date, in ``DataFrame.attrs["cxlab.survival"]``::

    {"duration": "duration", "event": "event", "entry": "entry",
     "clock": "tenure in months ...", "snapshot_date": "2025-06-30"}

pandas keeps ``attrs`` through boolean masks, ``.loc``/``.iloc``, column selections, ``.copy()``,
``.assign``, ``dropna``, ``sort_values``, ``reset_index``, ``query`` and a parquet round trip (the
run's shared panel); it drops them in ``merge`` and in ``concat`` with a frame without them: there
the caller passes ``entry_col`` (or copies ``attrs``) itself.

**The rule every model follows** (:class:`~cxlab.models.survival.cox.CoxModel`,
:func:`~cxlab.models.survival.aft.fit_aft`, the Kaplan–Meier and log-rank functions, the
cross-validated evaluation and calibration, the driver decomposition's Cox fits, and the
segment and what-if fits of :mod:`cxlab.insight` through them), :func:`resolve_entry`:

* ``entry_col="<column>"``: that column, as given;
* ``entry_col=None`` (the default): the table's entry column when the table carries its clock
  and the model's duration column is the table's duration (a fit on another clock, e.g.
  ``time_since_survey``, starts at 0 as before); on a plain frame, no delayed entry (as before);
* ``entry_col=False`` (:data:`NO_ENTRY`): no delayed entry, explicitly, whatever the table says
  (the immortal-time-biased fit, for a comparison).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ATTR", "NO_ENTRY", "survival_spec", "resolve_entry", "mark_survival_table"]

#: the key of ``DataFrame.attrs`` under which a survival table describes its clock
ATTR = "cxlab.survival"

#: ``entry_col=NO_ENTRY``: fit without delayed entry even on a table whose clock has one
NO_ENTRY = False


def survival_spec(df) -> dict | None:
    """The clock ``df`` carries (``duration``, ``event``, ``entry``, ``clock``, ``snapshot_date``),
    or None for a plain frame."""
    spec = getattr(df, "attrs", {}).get(ATTR) if isinstance(df, pd.DataFrame) else None
    return dict(spec) if isinstance(spec, dict) else None


def resolve_entry(df, entry_col, duration_col: str | None = None) -> str | None:
    """The entry column a model on ``df`` uses (see the module docstring): ``entry_col`` as given,
    ``False`` -> None (explicitly none), ``None`` -> the table's entry when ``df`` carries its clock
    and ``duration_col`` (None: any) is the table's duration."""
    if entry_col is False:
        return None
    if entry_col is not None:
        return entry_col
    spec = survival_spec(df)
    if not spec or not spec.get("entry") or spec["entry"] not in df.columns:
        return None
    if duration_col is not None and duration_col != spec.get("duration"):
        return None
    return spec["entry"]


def mark_survival_table(df: pd.DataFrame, *, duration: str = "duration", event: str = "event",
                        entry: str | None = "entry", clock: str = "", snapshot_date=None) -> pd.DataFrame:
    """Record the clock of ``df`` in its ``attrs`` (in place; returns ``df``)."""
    df.attrs[ATTR] = {"duration": duration, "event": event, "entry": entry, "clock": clock,
                      "snapshot_date": None if snapshot_date is None else str(snapshot_date)}
    return df
