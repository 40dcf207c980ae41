"""Input checks and the privacy step shared by the value modules (margins, survival columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab import privacy
from cxlab.errors import DataContractError, ParameterError


def _values(values, what="values") -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ParameterError(f"{what} is empty: pass at least one customer's margin.")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise DataContractError(
            f"{what} has {bad.size} missing or infinite values (positions {bad[:5].tolist()}...): "
            "drop or impute them before measuring concentration."
        )
    return x


def _require_columns(df: pd.DataFrame, cols, what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"{what} needs a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in cols if c is not None and c not in df.columns]
    if missing:
        raise DataContractError(
            f"{what}: column(s) {missing} not found in the table (columns: {list(df.columns)[:20]}). "
            "Pass the right names with duration_col=/entry_col=/event_col=/... ."
        )


def _survival_arrays(df, entry_col, duration_col, event_col, what):
    _require_columns(df, [entry_col, duration_col, event_col], what)
    T = df[duration_col].to_numpy(dtype=float)
    E = df[event_col].to_numpy(dtype=float)
    S = np.zeros_like(T) if entry_col is None else df[entry_col].to_numpy(dtype=float)
    bad = ~np.isfinite(T) | ~np.isfinite(E) | ~np.isfinite(S)
    if bad.any():
        rows = df.index[bad][:5].tolist()
        raise DataContractError(
            f"{what}: {int(bad.sum())} rows have missing {entry_col}/{duration_col}/{event_col} "
            f"(e.g. rows {rows}); drop them first."
        )
    if not np.isin(E, (0, 1)).all():
        raise DataContractError(f"{what}: column {event_col!r} must be 0/1.")
    wrong = T <= S
    if wrong.any():
        rows = df.index[wrong][:5].tolist()
        raise DataContractError(
            f"{what}: {int(wrong.sum())} rows have {duration_col} <= {entry_col} (e.g. rows {rows}); "
            "a respondent must be followed for some time after the survey."
        )
    return S, T, E.astype(int)


def _protect(table: pd.DataFrame, min_cell: int, additive, keep) -> pd.DataFrame:
    """Privacy step of the group tables: rows of fewer than ``min_cell`` customers blanked; with
    several groups, complementary suppression of the ``additive`` columns (they add up to totals a
    reader knows)."""
    if len(table) > 1:
        return privacy.complementary_suppression(table, "n", min_cell, columns=additive, keep=keep)
    return privacy.suppress(table, "n", min_cell, keep=keep)


def _monthly_margin(df, margin_col, margin_months, what):
    _require_columns(df, [margin_col], what)
    v = df[margin_col].to_numpy(dtype=float)
    if np.isnan(v).any():
        raise DataContractError(f"{what}: column {margin_col!r} has {int(np.isnan(v).sum())} missing values; "
                                "impute them or drop those respondents.")
    return v / float(margin_months)
