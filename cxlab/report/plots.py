"""Plots: every function is ``plot_*(..., ax=None) -> Axes`` and never calls ``plt.show()``.

One visual style for every report lives here (:data:`STYLE`, :func:`new_axes`).
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker

#: colours used across reports (colour-blind safe, Okabe-Ito)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.figsize": (7.5, 4.5),
    "figure.dpi": 100,
    "savefig.dpi": 200,   # 2x: sharp on laptop and retina screens (shown at the 100-dpi size)
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
    """Apply cxlab's plotting style (every plot function does it too).

    The style is set globally rather than in ``plt.rc_context``: a context would also restore
    the ``interactive`` flag that Jupyter's inline backend sets when the first figure is made,
    and later figures would then not be shown.
    """
    plt.rcParams.update(STYLE)
    _retina()


def _retina() -> None:
    """In a Jupyter kernel, embed figures at twice their pixel size with their display size
    stated (the inline backend's "retina" format), so reports show sharp figures and at-risk
    tables at the same layout size."""
    try:
        from IPython import get_ipython

        if get_ipython() is None:
            return
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except Exception:  # noqa: BLE001 - outside a kernel, or an older IPython: plain PNG
        return


def _subplots(*args, **kwargs):
    use_style()
    return plt.subplots(*args, **kwargs)


def new_axes(ax=None, figsize=None):
    """Return ``ax`` or a fresh Axes in cxlab's style."""
    if ax is not None:
        return ax
    _, ax = _subplots(figsize=figsize or STYLE["figure.figsize"])
    return ax


def _labelled(ax, title, xlabel=None, ylabel=None, legend=None):
    """The last step of a plot: title, axis labels and (``legend``: its location) the legend."""
    ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(loc=legend)
    return ax


def plot_construct_distributions(scores, constructs, scale=(1, 5), ax=None):
    """Histograms of construct scores, one row of small panels sharing the scale."""
    import numpy as np

    if ax is None:
        fig, axes = _subplots(1, len(constructs), figsize=(2.4 * len(constructs) + 1, 2.8),
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


def plot_calibration(calibration_df, ax=None):
    """Predicted vs observed defection by risk decile (:func:`cxlab.models.survival.evaluate.calibration`).

    Points at (mean predicted, 1 - Kaplan-Meier) with the KM 95 % CI as vertical bars, and the
    diagonal of perfect calibration. Suppressed deciles (fewer than ``min_cell`` customers) are
    not drawn.
    """
    import numpy as np

    ax = new_axes(ax, figsize=(5.5, 5))
    d = calibration_df.dropna(subset=["predicted_defection", "observed_defection"])
    top = float(np.nanmax(d[["predicted_defection", "upper"]].to_numpy())) if len(d) else 1.0
    top = min(1.0, 1.05 * top) if np.isfinite(top) and top > 0 else 1.0
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    yerr = np.vstack([d["observed_defection"] - d["lower"], d["upper"] - d["observed_defection"]])
    ax.errorbar(d["predicted_defection"], d["observed_defection"], yerr=np.clip(yerr, 0, None), fmt="o",
                color=PALETTE[0], ecolor=PALETTE[0], capsize=3, label="risk decile (95% CI)")
    # decile numbers only at the two ends (labels on every point overlap where deciles crowd)
    for _, r in (d.iloc[[0, -1]] if len(d) > 1 else d).iterrows():
        ax.annotate(f"decile {int(r['decile'])}", (r["predicted_defection"], r["observed_defection"]),
                    textcoords="offset points", xytext=(6, -12), fontsize=9, color="grey")
    n_hidden = int(calibration_df.get("suppressed", calibration_df["predicted_defection"].isna()).sum())
    if n_hidden:
        ax.text(0.98, 0.02, f"{n_hidden} decile(s) suppressed (< min cell)", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color="grey")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    return _labelled(ax, "Calibration by risk decile", "predicted defection",
                     "observed defection (1 - Kaplan-Meier)", legend="upper left")


def plot_km(km_result, ax=None, at_risk=True):
    """Kaplan–Meier curves with confidence bands and the number-at-risk table under the plot.

    ``km_result`` is a :class:`cxlab.models.survival.km.KaplanMeierResult`. Privacy: a group of fewer
    than ``min_cell`` customers gets no curve; a curve starts at the first time with at least
    ``min_cell`` customers at risk and stops before the first later time with fewer (it is never
    drawn again, even if late entries refill the risk set); at-risk cells under ``min_cell`` are
    shown as ``<min_cell`` and cells blanked to protect them as "–". The time axis is in the
    result's unit (months of tenure).
    """
    import numpy as np

    ax = new_axes(ax)
    curve = km_result.survival_
    groups = list(dict.fromkeys(curve["group"]))
    for i, g in enumerate(groups):
        full = curve[curve["group"] == g]
        hidden = full["suppressed"].to_numpy(bool)
        if hidden.all():
            continue
        first = int(np.argmax(~hidden))
        stop = np.flatnonzero(hidden[first:])
        c = full.iloc[first: first + (stop[0] if stop.size else len(full) - first)]
        colour = PALETTE[i % len(PALETTE)]
        before = full[full["time"] < c["time"].iloc[0]]
        s0 = before["survival"].iloc[-1] if len(before) else 1.0
        t0 = 0.0 if before.empty else c["time"].iloc[0]
        t = np.r_[t0, c["time"].to_numpy()]
        s = np.r_[s0, c["survival"].to_numpy()]
        lo = np.r_[np.nan, c["lower"].to_numpy()]
        up = np.r_[np.nan, c["upper"].to_numpy()]
        label = None if len(groups) == 1 and g == "all" else str(g)
        ax.step(t, s, where="post", color=colour, label=label, linewidth=1.6)
        ax.fill_between(t, lo, up, step="post", color=colour, alpha=0.18, linewidth=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel("tenure (months)")
    ax.set_ylabel("share still a customer")
    ax.set_title("Kaplan–Meier retention (95% CI)")
    if any(lbl for lbl in ax.get_legend_handles_labels()[1]):
        ax.legend(loc="lower left")
    if at_risk:
        lo_x, hi_x = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo_x <= t <= hi_x]
        table = km_result.at_risk_table(ticks)
        trans = ax.get_xaxis_transform()
        ax.text(lo_x - 0.06 * (hi_x - lo_x), -0.2, "at risk", transform=trans, ha="right", va="top", fontsize=9, fontweight="bold")
        for i, g in enumerate(groups):
            y = -0.27 - 0.075 * i
            ax.text(lo_x - 0.06 * (hi_x - lo_x), y, str(g), transform=trans, ha="right", va="top", fontsize=9,
                    color=PALETTE[i % len(PALETTE)])
            for r in table[table["group"] == g].itertuples():
                txt = (f"<{km_result.min_cell}" if r.suppressed else "–" if np.isnan(r.at_risk)
                       else f"{int(r.at_risk)}")
                ax.text(r.time, y, txt, transform=trans, ha="center", va="top", fontsize=9)
        ax.figure.subplots_adjust(bottom=min(0.5, 0.2 + 0.05 * len(groups)))
    return ax


def plot_forest(summary_df, ax=None):
    """Hazard ratios with 95% CIs on a log axis, reference line at 1.

    ``summary_df``: a Cox ``summary`` (columns term, hr, lower, upper; ``kind`` colours
    constructs vs controls). Construct HRs are per SD of the score.
    """
    import numpy as np

    d = summary_df.dropna(subset=["hr", "lower", "upper"]).reset_index(drop=True)
    ax = new_axes(ax, figsize=(7.5, max(2.5, 0.45 * len(d) + 1.2)))
    y = np.arange(len(d))[::-1]
    kinds = list(dict.fromkeys(d["kind"])) if "kind" in d else ["term"]
    for j, kind in enumerate(kinds):
        m = (d["kind"] == kind).to_numpy() if "kind" in d else np.ones(len(d), bool)
        hr, lo, up = (d.loc[m, c].to_numpy(float) for c in ("hr", "lower", "upper"))
        ax.errorbar(hr, y[m], xerr=np.vstack([hr - lo, up - hr]), fmt="s", color=PALETTE[j % len(PALETTE)], capsize=3, label=str(kind))
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(fmt)
    ax.set_yticks(y)
    from cxlab.insight.narrative import human_label

    ax.set_yticklabels([human_label(t) for t in d["term"]])
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("hazard ratio (log scale; < 1 = longer retention)")
    ax.set_title("Hazard ratios (95% CI)")
    if len(kinds) > 1:
        ax.legend(loc="best")
    return ax


# ---- measurement, segment and value plots (quadrant, Lorenz, retention projection) ----------


def plot_lorenz(lorenz_df, ax=None):
    """Lorenz curve(s) of margin from :func:`cxlab.insight.value.lorenz`, with the line of equality."""
    ax = new_axes(ax)
    for i, (name, g) in enumerate(lorenz_df.groupby("group", sort=False)):
        ax.plot(g["customer_share"], g["margin_share"], color=PALETTE[i % len(PALETTE)], label=str(name))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="equality")
    import numpy as np

    first = next(iter(lorenz_df.groupby("group", sort=False)), None)
    if first is not None:  # the top 20 %: the margin share above the curve at 80 % of customers
        name, g = first
        at80 = float(np.interp(0.8, g["customer_share"], g["margin_share"]))
        ax.plot([0.8], [at80], "o", color="black", zorder=5)
        ax.annotate(f"top 20 % ({name}) hold {1 - at80:.0%} of the margin", (0.8, at80), textcoords="offset points",
                    xytext=(-12, 18), ha="right", fontsize=9,
                    arrowprops={"arrowstyle": "-", "color": "black", "linewidth": 0.8})
        ax.vlines(0.8, 0, at80, colors="black", linestyles=":", linewidth=0.8)
    return _labelled(ax, "Profit concentration (Lorenz curve)",
                     "cumulative share of customers (least profitable first)", "cumulative share of margin",
                     legend="upper left")


def plot_retention_projection(sbg_result, ax=None, periods=None):
    """Observed vs shifted-beta-geometric projected retention (:func:`cxlab.insight.value.fit_sbg`)."""
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
    return _labelled(ax, "Retention: observed and projected", "period since acquisition",
                     "share of cohort still active", legend="best")


def plot_segment_grid(table_df, ax=None, value="share"):
    """2x2 heat table of the perception segments (:func:`cxlab.insight.segments.segment_table`).

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
    vmax = np.nanmax(grid) if np.isfinite(grid).any() else 1.0
    ax.imshow(np.ma.masked_invalid(grid), cmap="Blues", vmin=0, vmax=vmax)
    for (r, c), cell in layout.items():
        i, j = rows.index(r), cols.index(c)
        suppressed = cell in t.index and bool(t.loc[cell].get("suppressed", False))
        if cell not in t.index:
            text = "no respondents"
        elif suppressed:
            text = "< min cell"
        elif not np.isfinite(grid[i, j]):
            text = "withheld (privacy)"
        else:
            v = grid[i, j]
            text = f"{100 * v:.0f}%" if value in ("share", "margin_share") or value.startswith("defection") else f"{v:,.3g}"
        dark = np.isfinite(grid[i, j]) and grid[i, j] > 0.6 * vmax
        label = cell.replace(" good", "\ngood").replace(" but", "\nbut").replace(" and", "\nand")
        ax.text(j, i, f"{label}\n{text}", ha="center", va="center", fontsize=9,
                color="white" if dark else "black")
    ax.set_xticks([0, 1], cols)
    ax.set_yticks([0, 1], ["good\ncustomer", "modest"])
    ax.grid(False)
    ax.set_xlabel("recognition")
    ax.set_ylabel("self-status")
    from cxlab.insight.narrative import human_label

    ax.set_title(f"Perception segments ({'share of respondents' if value == 'share' else human_label(value)})")
    return ax


def plot_quadrant(importance_df, performance_df, ax=None):
    """Importance x performance map of the drivers ("fix first" = important but weak).

    ``importance_df``: construct, share (e.g. ``DriverImportance.summary``; ``lower``/``upper``
    drawn as vertical bars when present). ``performance_df``: construct and one of
    ``performance``, ``mean`` or ``top_box`` (mean score or top-box share). x = performance,
    y = importance share; dashed lines at the means split the four quadrants.
    """
    import numpy as np

    from cxlab.errors import ParameterError

    ax = new_axes(ax)
    perf_col = next((c for c in ("performance", "mean", "top_box") if c in performance_df.columns), None)
    for df, cols, what in ((importance_df, ["construct", "share"], "importance_df"),
                           (performance_df, ["construct"], "performance_df")):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ParameterError(f"plot_quadrant: {what} lacks column(s) {missing}.")
    if perf_col is None:
        raise ParameterError("plot_quadrant: performance_df needs a 'performance', 'mean' or 'top_box' column.")
    d = importance_df.merge(performance_df[["construct", perf_col]], on="construct", how="inner")
    if d.empty:
        raise ParameterError("plot_quadrant: no construct is in both importance_df and performance_df.")
    x, y = d[perf_col].to_numpy(float), d["share"].to_numpy(float)
    xm, ym = float(np.mean(x)), float(np.mean(y))
    fix = (y > ym) & (x < xm)
    with plt.rc_context(STYLE):
        if {"lower", "upper"} <= set(d.columns) and d[["lower", "upper"]].notna().all().all():
            ax.errorbar(x, y, yerr=[y - d["lower"].to_numpy(float), d["upper"].to_numpy(float) - y],
                        fmt="none", ecolor="0.6", elinewidth=1, capsize=2, zorder=1)
        ax.scatter(x[~fix], y[~fix], color=PALETTE[0], zorder=2, label="other")
        ax.scatter(x[fix], y[fix], color=PALETTE[3], zorder=3, label="fix first")
        for xi, yi, name, f in zip(x, y, d["construct"], fix):
            ax.annotate(f"{name} (fix first)" if f else str(name), (xi, yi), xytext=(5, 4),
                        textcoords="offset points", fontsize=9, color=PALETTE[3] if f else "0.2")
        ax.axvline(xm, ls="--", color="0.5", lw=1)
        ax.axhline(ym, ls="--", color="0.5", lw=1)
        for tx, ty, label, ha, va in ((0.02, 0.98, "fix first", "left", "top"),
                                      (0.98, 0.98, "keep up", "right", "top"),
                                      (0.02, 0.02, "lower priority", "left", "bottom"),
                                      (0.98, 0.02, "possible overkill", "right", "bottom")):
            ax.text(tx, ty, label, transform=ax.transAxes, ha=ha, va=va, fontsize=8, color="0.4")
        ax.set_xlabel({"performance": "performance", "mean": "mean score",
                       "top_box": "top-box share"}[perf_col])
        ax.set_ylabel("importance (share of explained fit)")
        ax.set_title("Driver importance x performance")
    return ax


def plot_importance(importance_df, ax=None, title="Which perception matters most"):
    """Share of explanatory power of each perception with its bootstrap 95 % interval, as a
    bar chart (:func:`cxlab.models.drivers.shapley_importance` ``summary``: construct, share, lower,
    upper, rank_stability); each bar is labelled with the probability it keeps its rank."""
    import numpy as np

    d = importance_df.sort_values("share").reset_index(drop=True)
    ax = new_axes(ax, figsize=(7.5, max(2.5, 0.55 * len(d) + 1.2)))
    y = np.arange(len(d))
    share = d["share"].to_numpy(float)
    err = np.vstack([share - d["lower"].to_numpy(float), d["upper"].to_numpy(float) - share])
    ax.barh(y, share, color=PALETTE[0], alpha=0.85, xerr=np.clip(err, 0, None), capsize=4,
            error_kw={"ecolor": "black", "linewidth": 1})
    if "rank_stability" in d:
        for yi, (sh, up, st) in enumerate(zip(share, d["upper"], d["rank_stability"])):
            ax.text(max(sh, float(up)) + 0.01, yi, f"keeps its rank in {st:.0%} of resamples", va="center", fontsize=9)
    ax.set_yticks(y)
    ax.set_yticklabels([str(c) for c in d["construct"]])
    ax.set_xlim(0, min(1.0, float(np.nanmax(d["upper"])) + 0.35))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("share of the model's explanatory power (95 % CI)")
    ax.set_title(title)
    return ax


def plot_whatif(whatif_df, metric="expected defections", ax=None, title=None):
    """What-if before / after: for each horizon the figure as today and with the change, the
    change's bootstrap 95 % interval drawn on the "with the change" bar
    (:func:`cxlab.insight.value.what_if`: metric, horizon, baseline, scenario, delta, lower, upper)."""
    import numpy as np

    d = whatif_df[whatif_df["metric"] == metric].sort_values("horizon").reset_index(drop=True)
    ax = new_axes(ax, figsize=(6.5, 4))
    x = np.arange(len(d))
    w = 0.38
    base = d["baseline"].to_numpy(float)
    scen = base + d["delta"].to_numpy(float)
    lo, up = base + d["lower"].to_numpy(float), base + d["upper"].to_numpy(float)
    ax.bar(x - w / 2, base, w, color=PALETTE[7], alpha=0.35, label="as today")
    ax.bar(x + w / 2, scen, w, color=PALETTE[0], alpha=0.9, label="with the change (95 % CI)",
           yerr=np.clip(np.vstack([scen - lo, up - scen]), 0, None), capsize=4)
    for xi, (b, sc) in enumerate(zip(base, scen)):
        ax.annotate(f"{sc - b:+,.0f}", (xi + w / 2, max(sc, up[xi])), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=9)
    ax.set_xticks(x)
    ax.set_xticklabels([f"within {h:g} months" for h in d["horizon"]])
    ax.grid(axis="x", visible=False)
    return _labelled(ax, title or f"What-if: {metric}, as today and with the change", None, metric,
                     legend="upper left")


def ph_residuals(model, terms=None):
    """Scaled Schoenfeld residuals of a fitted :class:`cxlab.models.survival.cox.CoxModel` (Grambsch &
    Therneau 1994, as R's ``residuals(fit, "scaledsch")``; Breslow handling of ties): one row per
    event with ``time`` and, per term, ``beta + d * V r`` where ``r`` is the event's covariates
    minus their risk-weighted mean over the risk set (delayed entry and strata honoured), ``d``
    the number of events and ``V`` the coefficients' variance. Their smoothed trend over time
    estimates how the log hazard ratio changes; a flat line means proportional hazards."""
    import numpy as np
    import pandas as pd

    fd = model._fit_data
    start, stop, event = (np.asarray(fd[k], float) for k in ("start", "stop", "event"))
    X, beta, names = np.asarray(fd["X"], float), np.asarray(fd["beta"], float), list(fd["names"])
    w = np.asarray(fd["weights"], float) if fd.get("weights") is not None else np.ones(len(stop))
    strata = fd.get("strata")
    strata = np.zeros(len(stop), int) if strata is None else np.asarray(strata)
    risk = w * np.exp(X @ beta)
    ev = np.flatnonzero(event == 1)
    # risk-weighted mean over each event's risk set (start < t <= stop, same stratum), by the
    # engine's sorted risk sets: O(n p), not a pass over every row per event (hours at 1 M rows)
    from cxlab.models.survival.engine import RiskSets

    rs = RiskSets(stop, event == 1, start, strata)
    group = rs.hi[ev] - 1
    resid = X[ev] - (rs.risk_sums(np.ascontiguousarray((X * risk[:, None]).T))[:, group] / rs.risk_sums(risk)[group]).T
    V = np.asarray(model.naive_variance_matrix_, float)
    scaled = beta + ev.size * resid @ V
    out = pd.DataFrame(scaled, columns=names)
    out.insert(0, "time", stop[ev])
    keep = ["time", *(names if terms is None else [t for t in names if t in set(terms)])]
    return out[keep].sort_values("time").reset_index(drop=True)


def plot_ph_residuals(model, terms, ax=None):
    """Scaled Schoenfeld residuals over tenure for ``terms`` (the ones that failed the
    proportional-hazards test), with a running-mean trend and the model's constant log hazard
    ratio; one small panel per term."""
    import numpy as np

    res = ph_residuals(model, terms)
    terms = [t for t in res.columns if t != "time"]
    if ax is None:
        fig, axes = _subplots(1, max(1, len(terms)), figsize=(min(12, 4.2 * max(1, len(terms)) + 0.6), 3.6),
                              squeeze=False)
        axes = list(axes[0])
    else:
        axes = [ax]
    from cxlab.insight.narrative import human_label

    beta = dict(zip(model._fit_data["names"], model._fit_data["beta"]))
    for a, t in zip(axes, terms):
        a.scatter(res["time"], res[t], s=6, alpha=0.35, color=PALETTE[0], linewidths=0)
        k = max(5, len(res) // 10)
        trend = res[t].rolling(k, center=True, min_periods=max(2, k // 2)).mean()
        a.plot(res["time"], trend, color=PALETTE[3], linewidth=1.8, label="trend (running mean)")
        a.axhline(beta[t], color="grey", linestyle="--", linewidth=1, label="constant effect (Cox)")
        lo, hi = np.nanpercentile(res[t], [2, 98])
        a.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        a.set_title(human_label(t))
        a.set_xlabel("tenure at defection (months)")
    axes[0].set_ylabel("log hazard ratio (scaled residual)")
    axes[0].legend(loc="upper right", fontsize=8)
    return axes[0]
