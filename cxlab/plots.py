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


def plot_construct_distributions(scores, constructs, scale=(1, 5), ax=None):
    """Histograms of construct scores, one row of small panels sharing the scale."""
    import numpy as np

    if ax is None:
        with plt.rc_context(STYLE):
            fig, axes = plt.subplots(1, len(constructs), figsize=(2.4 * len(constructs) + 1, 2.8),
                                     sharey=True, squeeze=False)
        axes = axes[0]
    else:
        axes = [ax] * len(constructs)
    lo, hi = scale
    bins = np.linspace(lo, hi, int(round((hi - lo) * 4)) + 2) - 0.125
    for i, (a, c) in enumerate(zip(axes, constructs)):
        x = scores[c].dropna()
        a.hist(x, bins=bins, color=PALETTE[i % len(PALETTE)], alpha=0.85,
               weights=np.full(len(x), 100 / max(len(x), 1)))
        a.set_title(str(c))
        a.set_xlabel("score")
        a.set_xlim(lo - 0.25, hi + 0.25)
    axes[0].set_ylabel("% of respondents")
    return axes[0]


# ---- survival plots (KM + at-risk table, forest, calibration) --------------------------------


# ---- measurement, segment and value plots (quadrant, Lorenz, retention projection) ----------


def plot_lorenz(lorenz_df, ax=None):
    """Lorenz curve(s) of margin from :func:`cxlab.value.lorenz`, with the line of equality."""
    ax = new_axes(ax)
    for i, (name, g) in enumerate(lorenz_df.groupby("group", sort=False)):
        ax.plot(g["customer_share"], g["margin_share"], color=PALETTE[i % len(PALETTE)], label=str(name))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="equality")
    ax.set_xlabel("cumulative share of customers (least profitable first)")
    ax.set_ylabel("cumulative share of margin")
    ax.set_title("Profit concentration (Lorenz curve)")
    ax.legend(loc="upper left")
    return ax


def plot_retention_projection(sbg_result, ax=None, periods=None):
    """Observed vs shifted-beta-geometric projected retention (:func:`cxlab.value.fit_sbg`)."""
    ax = new_axes(ax)
    proj = sbg_result.project(periods)
    ax.plot(proj["period"], proj["survival"], color=PALETTE[0], label="sBG projection")
    obs = proj.dropna(subset=["observed_survivors"])
    size = sbg_result.survivors_[0]
    fitted = obs[obs["fitted"]]
    held = obs[~obs["fitted"]]
    ax.plot(fitted["period"], fitted["observed_survivors"] / size, "o", color=PALETTE[1], label="observed (fitted)")
    if len(held):
        ax.plot(held["period"], held["observed_survivors"] / size, "o", mfc="none", color=PALETTE[1],
                label="observed (held out)")
    ax.axvline(sbg_result.fit_on_, color="grey", linestyle=":", linewidth=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("period since acquisition")
    ax.set_ylabel("share of cohort still active")
    ax.set_title("Retention: observed and projected")
    ax.legend()
    return ax


def plot_segment_grid(table_df, ax=None, value="share"):
    """2x2 heat table of the perception segments (:func:`cxlab.segments.segment_table`).

    Rows: self-status (good customer / modest); columns: recognised / not recognised. Each cell
    shows ``value`` (default the share of respondents); suppressed cells are shown as "< min cell".
    """
    import numpy as np

    ax = new_axes(ax, figsize=(5.5, 4.5))
    layout = {("good customer", "not recognised"): "disappointed good customers",
              ("good customer", "recognised"): "recognised good customers",
              ("modest", "recognised"): "modest but recognised",
              ("modest", "not recognised"): "modest and unrecognised"}
    rows, cols = ["good customer", "modest"], ["recognised", "not recognised"]
    t = table_df.set_index("cell")
    grid = np.full((2, 2), np.nan)
    for (r, c), cell in layout.items():
        if cell in t.index:
            grid[rows.index(r), cols.index(c)] = t.loc[cell, value]
    ax.imshow(np.ma.masked_invalid(grid), cmap="Blues", vmin=0, vmax=np.nanmax(grid) if np.isfinite(grid).any() else 1)
    for (r, c), cell in layout.items():
        i, j = rows.index(r), cols.index(c)
        suppressed = cell in t.index and bool(t.loc[cell].get("suppressed", False))
        if cell not in t.index:
            text = "no respondents"
        elif suppressed:
            text = "< min cell"
        else:
            v = grid[i, j]
            text = f"{100 * v:.0f}%" if value in ("share", "margin_share") or value.startswith("defection") else f"{v:,.3g}"
        ax.text(j, i, f"{cell}\n{text}", ha="center", va="center", fontsize=9)
    ax.set_xticks([0, 1], cols)
    ax.set_yticks([0, 1], rows)
    ax.grid(False)
    ax.set_xlabel("recognition")
    ax.set_ylabel("self-status")
    ax.set_title(f"Perception segments ({value})")
    return ax
