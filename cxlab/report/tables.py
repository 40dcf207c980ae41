"""Tables for people: no row index, rounded numbers, shares as percentages, units in headers."""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["show_table"]


def _fmt_number(digits: int, whole: bool):
    def fmt(v):
        if v is None or v is pd.NA or pd.isna(v):
            return "–"
        # counts stay whole even in a column of mixed quantities (e.g. "value" with a unit column)
        return f"{int(round(v)):,}" if whole or (float(v).is_integer() and abs(v) >= 10) else f"{v:,.{digits}f}"
    return fmt


def _whole(col: pd.Series) -> bool:
    x = pd.to_numeric(col, errors="coerce").dropna()
    return pd.api.types.is_integer_dtype(col) or (len(x) > 0 and bool((x == x.round()).all()))


def _fmt_p(v):
    if v is None or pd.isna(v):
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def _is_p(name) -> bool:
    """p, p_holm, global_p, log-rank p, p-value, p value ..."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return bool(words) and (words[0] == "p" or words[-1] == "p" or words[-2:] == ["p", "value"])


def _fmt_percent(v):
    if v is None or pd.isna(v):
        return "–"
    return f"{100 * v:.1f} %"


def show_table(df: pd.DataFrame, *, percent: list[str] = (), digits: int = 2, caption: str | None = None,
               rename: dict[str, str] | None = None):
    """A pandas Styler for a report: index hidden, numbers rounded, ``percent`` columns shown as %.

    Rows flagged in a ``suppressed`` column (fewer than ``min_cell`` customers) have every number
    blanked; blanks show as "–". Column labels and values are escaped.
    """
    out = df.reset_index(drop=True)
    if "suppressed" in out.columns:
        small = out["suppressed"].fillna(False).astype(bool)
        if small.any():   # privacy: no figure about fewer than min_cell customers is shown
            for c in out.columns:
                if c != "suppressed" and pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
                    out[c] = out[c].astype("float64").where(~small)
        else:
            out = out.drop(columns="suppressed")
    fmt = {}
    for c in out.columns:
        if c in percent:
            fmt[c] = _fmt_percent
        elif _is_p(c) and pd.api.types.is_numeric_dtype(out[c]):
            fmt[c] = _fmt_p
        elif pd.api.types.is_bool_dtype(out[c]):
            fmt[c] = lambda v: "yes" if v else ""
        elif pd.api.types.is_numeric_dtype(out[c]):
            fmt[c] = _fmt_number(digits, _whole(out[c]))
    if rename:
        out = out.rename(columns=rename)
        fmt = {rename.get(k, k): v for k, v in fmt.items()}
    styler = out.style.format(fmt, na_rep="–", escape="html").hide(axis="index")
    styler = styler.format_index(escape="html", axis=1)
    if caption:
        styler = styler.set_caption(caption)
    return styler
