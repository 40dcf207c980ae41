"""Plots: every function is ``plot_*(..., ax=None) -> Axes`` and never calls ``plt.show()``.

One visual style for every report lives here (:data:`STYLE`, :func:`new_axes`).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402

#: colours used across reports (colour-blind safe, Okabe-Ito)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.figsize": (7.5, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "legend.frameon": False,
}


def use_style() -> None:
    """Apply cxlab's plotting style (called by notebooks once)."""
    plt.rcParams.update(STYLE)


def new_axes(ax=None, figsize=None):
    """Return ``ax`` or a fresh Axes in cxlab's style."""
    if ax is not None:
        return ax
    with plt.rc_context(STYLE):
        _, ax = plt.subplots(figsize=figsize or STYLE["figure.figsize"])
    return ax


# ---- survival plots (KM + at-risk table, forest, calibration) --------------------------------


# ---- measurement, segment and value plots (quadrant, Lorenz, retention projection) ----------
