"""The privacy layer: no figure about fewer than ``min_cell`` customers ever reaches an output.

One threshold, ``min_cell`` (default 10, README "Methods"), one set of rules:

* :func:`suppress` — a row describing a group of fewer than ``min_cell`` customers (its count
  column below ``min_cell``) has every figure blanked (NaN) and ``suppressed = True``.
* :func:`complementary_suppression` — in a table whose rows add up to a known total (the total
  row, or a total shown elsewhere in the report), blanking one row's count is not enough: the
  count would be the total minus the others. Other cells (the next-smallest groups) are blanked
  too until the blanked counts together are at least ``min_cell`` and at least two rows are
  blanked, so no single blanked count can be recovered by subtraction.
* :func:`pool_rare_levels` — category levels held by fewer than ``min_cell`` customers are pooled
  into ``"other"`` before a model is fitted (no model term, hence no hazard ratio, for a tiny
  group; no separation failure on it); :func:`pooling_sentences` says so in words.
* :func:`flow_suppression` — the exclusion flow (rows in -> rows out, step by step): a count of
  1..``min_cell - 1`` reads "fewer than 10" (:func:`count_text`), the next-smallest count is
  withheld until no reader can narrow a withheld count below the whole 1..min_cell-1 from the
  other figures, and rows in / out are blanked between withheld steps (they would give a count by
  subtraction). Zero stays 0; a total of at least ``min_cell`` stays exact.

:func:`set_min_cell` sets the threshold of the process (a notebook calls it once with its
``min_cell`` parameter); functions that take ``min_cell=None`` use it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from cxlab.errors import ParameterError

__all__ = [
    "MIN_CELL",
    "get_min_cell",
    "set_min_cell",
    "resolve_min_cell",
    "is_small",
    "suppress",
    "complementary_suppression",
    "pool_levels",
    "pool_rare_levels",
    "pooling_sentences",
    "pool_for_model",
    "pool_codes",
    "pool_codes_for_model",
    "text_codes",
    "pooled",
    "curve_suppressed",
    "count_text",
    "flow_suppression",
    "WITHHELD",
]

#: default threshold: no figure about fewer than this many customers is shown
MIN_CELL = 10

_state = {"min_cell": MIN_CELL}
#: pooling done in this process (column -> report row), for the report's omission sentences
pooled: dict[str, dict] = {}


def _check(min_cell, what="min_cell") -> int:
    if isinstance(min_cell, bool) or not isinstance(min_cell, (int, np.integer)) or min_cell < 1:
        raise ParameterError(f"The '{what}' parameter must be a whole number of customers >= 1 "
                             f"(default {MIN_CELL}). Got {min_cell!r} instead.")
    return int(min_cell)


def set_min_cell(min_cell: int) -> int:
    """Set the process-wide ``min_cell`` (used wherever a function gets ``min_cell=None``)."""
    _state["min_cell"] = _check(min_cell)
    return _state["min_cell"]


def get_min_cell() -> int:
    """The process-wide ``min_cell`` (default :data:`MIN_CELL`)."""
    return _state["min_cell"]


def resolve_min_cell(min_cell: int | None = None) -> int:
    """``min_cell`` itself when given (checked), else the process-wide value."""
    return get_min_cell() if min_cell is None else _check(min_cell)


def is_small(n, min_cell: int | None = None):
    """True where a count describes fewer than ``min_cell`` customers (NaN counts: False)."""
    m = resolve_min_cell(min_cell)
    x = pd.to_numeric(pd.Series(n) if not isinstance(n, pd.Series) else n, errors="coerce")
    out = (x.notna() & (x < m)).to_numpy()
    return bool(out[0]) if np.ndim(n) == 0 else out


def curve_suppressed(at_risk, group_size, min_cell: int | None = None) -> np.ndarray:
    """The Kaplan–Meier rule: a point of a survival curve is withheld where fewer than
    ``min_cell`` customers are at risk, and every point of a group of fewer than ``min_cell``
    customers (a curve stops before it would describe fewer than ``min_cell`` customers).
    Used by :func:`cxlab.models.survival.km.kaplan_meier` (and so ``plot_km``) and
    :func:`cxlab.insight.value.cohort_survivors`."""
    m = resolve_min_cell(min_cell)
    return (np.asarray(at_risk) < m) | (np.asarray(group_size) < m)


def _figure_columns(table: pd.DataFrame, exclude=()) -> list[str]:
    return [c for c in table.columns if c not in exclude and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])]


def _blank(out: pd.DataFrame, rows: np.ndarray, columns: Iterable[str]) -> None:
    if not rows.any():
        return
    for c in columns:
        if c in out.columns:
            out[c] = out[c].astype("float64").where(~rows)


def suppress(table: pd.DataFrame, count_cols: str | Sequence[str] = "n", min_cell: int | None = None, *,
             columns: Sequence[str] | None = None, keep: Sequence[str] = (), flag: str = "suppressed") -> pd.DataFrame:
    """Blank every figure of the rows describing fewer than ``min_cell`` customers.

    A row is suppressed when any of ``count_cols`` (group sizes: ``n``, ``at_risk``, ``customers``
    ...) is below ``min_cell``, or when its ``flag`` column is already True. ``columns``: which
    columns to blank (default every numeric column, the counts included, except the labels named in
    ``keep``, e.g. ``time`` or ``horizon``). Returns a copy with a boolean ``flag`` column.
    """
    m = resolve_min_cell(min_cell)
    count_cols = [count_cols] if isinstance(count_cols, str) else list(count_cols)
    missing = [c for c in count_cols if c not in table.columns]
    if missing:
        raise ParameterError(f"suppress: count column(s) {missing} not in the table (columns: {list(table.columns)}).")
    out = table.copy()
    small = np.zeros(len(out), dtype=bool)
    for c in count_cols:
        small |= is_small(out[c], m)
    if flag in out.columns:
        small |= out[flag].fillna(False).astype(bool).to_numpy()
    _blank(out, small, columns if columns is not None else _figure_columns(out, exclude=(flag, *keep)))
    out[flag] = small
    return out


def _rows_mask(table: pd.DataFrame, rows) -> np.ndarray:
    if rows is None:
        return np.zeros(len(table), dtype=bool)
    if callable(rows):
        rows = rows(table)
    mask = np.asarray(rows)
    if mask.dtype != bool or mask.shape != (len(table),):
        raise ParameterError("complementary_suppression: 'total_row' must be a boolean mask (or a function of "
                             "the table returning one) with one entry per row.")
    return mask


def complementary_suppression(table: pd.DataFrame, count_col: str = "n", min_cell: int | None = None, *,
                              total_row=None, by: str | Sequence[str] | None = None,
                              columns: Sequence[str] | None = None, keep: Sequence[str] = (),
                              flag: str = "suppressed") -> pd.DataFrame:
    """Suppress small rows, then enough other cells that no blanked count can be recovered.

    The rows of each block (``by``: the column(s) naming a block; default the whole table) are
    taken to add up to a total that a reader knows (the ``total_row`` rows, or a total shown
    elsewhere, e.g. the number of respondents). Primary suppression: rows with ``count_col`` below
    ``min_cell`` (or already flagged) have every figure blanked and ``flag = True``. Complementary
    suppression: while a block's blanked rows are a single row, or together hold fewer than
    ``min_cell`` customers, the shown row with the smallest count is blanked too — only its
    ``columns`` (the counts and whatever reveals them: totals, shares; default every figure),
    its other figures (a rate, a median) stay, and ``flag`` stays False for it. Positions of those
    rows are listed in ``out.attrs["complementary"]``.

    The total rows are never blanked by the block (they are suppressed only if they are small).
    ``keep``: label columns never blanked (the ``by`` columns are always kept).
    """
    m = resolve_min_cell(min_cell)
    if count_col not in table.columns:
        raise ParameterError(f"complementary_suppression: count column {count_col!r} not in the table "
                             f"(columns: {list(table.columns)}).")
    total = _rows_mask(table, total_row)
    counts = pd.to_numeric(table[count_col], errors="coerce").to_numpy(float)
    primary = is_small(table[count_col], m)
    if flag in table.columns:
        primary = primary | table[flag].fillna(False).astype(bool).to_numpy()
    secondary = np.zeros(len(table), dtype=bool)
    if by is None:
        blocks = [np.arange(len(table))]
    else:
        keys = table[[by] if isinstance(by, str) else list(by)].astype(str).agg("\x1f".join, axis=1).to_numpy()
        blocks = [np.flatnonzero(keys == k) for k in pd.unique(keys)]
    for idx in blocks:
        idx = idx[~total[idx]]
        hidden = primary[idx] | secondary[idx]
        if not hidden.any():
            continue
        while True:
            h = idx[primary[idx] | secondary[idx]]
            known = np.nansum(counts[h])   # what subtraction from the total reveals about the blanked rows
            if len(h) >= 2 and known >= m:
                break
            candidates = idx[~(primary[idx] | secondary[idx]) & np.isfinite(counts[idx])]
            if candidates.size == 0:
                break
            secondary[candidates[np.argmin(counts[candidates])]] = True
    out = table.copy()
    labels = (flag, *keep, *([] if by is None else [by] if isinstance(by, str) else list(by)))
    _blank(out, primary, _figure_columns(out, exclude=labels))
    _blank(out, secondary, columns if columns is not None else _figure_columns(out, exclude=labels))
    out[flag] = primary
    out.attrs["complementary"] = np.flatnonzero(secondary).tolist()
    return out


# ---- rare category levels before a model ------------------------------------------------------


def text_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The levels of a categorical column as text, in one pass over the rows: ``(codes, labels)``
    with ``labels[codes[i]] == str(series[i])`` (``-1`` = missing), labels in order of first
    appearance. Shared by :func:`pool_levels` and the design builder (pooling and dummy coding
    read the same codes)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    labels = np.asarray(uniques, dtype=object).astype(str).astype(object)
    merged, merged_labels = pd.factorize(labels)   # 1 and "1" are one text level, as astype(str) makes them
    if len(merged_labels) < len(labels):
        codes = np.where(codes >= 0, np.asarray(merged)[np.maximum(codes, 0)], -1)
        labels = np.asarray(merged_labels, dtype=object)
    return codes, labels


def pool_codes(codes: np.ndarray, labels: np.ndarray, min_cell: int | None = None, other_label: str = "other",
               name: str = "column", ids=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """:func:`pool_levels` on the codes of :func:`text_codes`: ``(codes, labels, report)`` after
    pooling (unchanged when no level is small)."""
    m = resolve_min_cell(min_cell)
    present = codes >= 0
    if ids is None:
        sizes = np.bincount(codes if codes.min(initial=0) >= 0 else codes[present], minlength=len(labels))
    else:
        sizes = pd.Series(np.asarray(ids)[present]).groupby(codes[present]).nunique().reindex(
            range(len(labels)), fill_value=0).to_numpy()
    counts = pd.Series(sizes, index=labels).sort_values(ascending=False, kind="stable")
    small = [lvl for lvl, n in counts.items() if n < m and lvl != other_label]
    pool = set(small)
    if small:
        if other_label in counts.index:
            pool.add(other_label)
        size = int(counts[list(pool)].sum())
        rest = counts.drop(index=list(pool)).sort_values(kind="stable")
        while size < m and len(rest):
            lvl = rest.index[0]
            pool.add(lvl)
            size += int(rest.iloc[0])
            rest = rest.iloc[1:]
    report = {"column": str(name), "levels": sorted(lvl for lvl in pool if lvl != other_label),
              "n_small": len(small), "n_pooled": int(counts[list(pool)].sum()) if pool else 0,
              "remaining": sorted(set(counts.index) - pool) + ([other_label] if pool else []),
              "min_cell": m, "other_label": other_label}
    if not small:
        return codes, labels, report
    merged, new_labels = pd.factorize(np.where(np.isin(labels, list(pool)), other_label, labels).astype(object))
    new_codes = np.where(present, np.asarray(merged)[np.maximum(codes, 0)], -1)
    return new_codes, np.asarray(new_labels, dtype=object), report


def pool_levels(series: pd.Series, min_cell: int | None = None, other_label: str = "other",
                name: str | None = None, ids: pd.Series | None = None) -> tuple[pd.Series, dict]:
    """Pool the levels of one categorical series held by fewer than ``min_cell`` customers.

    Customers are rows, or the distinct ``ids`` (aligned with ``series``) when a customer has
    several rows (counting-process intervals).

    Levels below ``min_cell`` become ``other_label``; when the pooled group is itself below
    ``min_cell`` the smallest remaining level joins it, until it is large enough or no level is
    left. Missing values stay missing. Returns (series, report) with report keys ``column``,
    ``levels`` (the levels pooled), ``n_pooled`` (rows in the pool), ``remaining`` (levels left),
    ``min_cell``, ``other_label``.
    """
    name = name if name is not None else (series.name if series.name is not None else "column")
    codes, labels = text_codes(series)     # vectorised: a million rows
    codes, labels, report = pool_codes(codes, labels, min_cell, other_label, name, ids)
    if not report["n_small"]:
        return series, report
    out = np.full(len(series), None, dtype=object)
    present = codes >= 0
    out[present] = labels[codes[present]]
    return pd.Series(out, index=series.index, name=series.name), report


def pool_rare_levels(frame: pd.DataFrame, columns: Sequence[str], min_cell: int | None = None,
                     other_label: str = "other", *, warn: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool rare levels of the categorical ``columns`` of ``frame`` (numeric columns are left alone).

    Returns (frame copy, report) where the report has one row per column whose levels were
    pooled: column, levels (pooled, comma-separated), n_levels, n_pooled, remaining, sentence.
    With ``warn`` each pooling is also a warning (shown in the report) and recorded in
    :data:`pooled`.
    """
    out = frame.copy()
    rows = []
    for c in columns:
        if c not in out.columns:
            raise ParameterError(f"pool_rare_levels: column {c!r} not in the table (columns: {list(out.columns)}).")
        s = out[c]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_bool_dtype(s):
            continue
        new, rep = pool_levels(s, min_cell, other_label, name=c)
        if not rep["n_small"]:
            continue
        out[c] = new
        rep["sentence"] = _sentence(rep)
        rows.append({"column": c, "levels": ", ".join(rep["levels"]), "n_levels": len(rep["levels"]),
                     "n_pooled": rep["n_pooled"], "remaining": ", ".join(rep["remaining"]),
                     "sentence": rep["sentence"]})
        if warn:
            _announce(rep)
    report = pd.DataFrame(rows, columns=["column", "levels", "n_levels", "n_pooled", "remaining", "sentence"])
    return out, report


def _sentence(rep: dict) -> str:
    k = rep["n_small"]
    extra = len(rep["levels"]) - k
    s = (f"{rep['column']}: {k} level{'s' if k != 1 else ''} with fewer than {rep['min_cell']} customers "
         f"pooled into '{rep['other_label']}'")
    if extra > 0:
        s += f" (with the {extra} next-smallest level{'s' if extra != 1 else ''}, so the pool reaches {rep['min_cell']})"
    if len(rep["remaining"]) < 2:
        s += "; a single level is left, so the model cannot use this column"
    return s + "."


def _announce(rep: dict) -> None:
    sentence = _sentence(rep)
    key = f"{rep['column']}|{sentence}"
    if key not in pooled:
        pooled[key] = dict(rep, sentence=sentence)
        warnings.warn(sentence, UserWarning, stacklevel=4)


def pooling_sentences() -> list[str]:
    """Every pooling done in this process, in words (for a report's warnings)."""
    return [r["sentence"] for r in pooled.values()]


def pool_for_model(series: pd.Series, name: str, min_cell: int | None = None,
                   ids: pd.Series | None = None) -> tuple[pd.Series, bool]:
    """The hook of the design-matrix builders: a categorical control enters a model only after its
    rare levels are pooled (:func:`pool_levels`, with a warning the report shows).

    ``ids``: the customer of each row when a customer has several rows (levels are then counted
    in customers). Returns (series as text, usable); ``usable`` is False when pooling left a single level (the
    control cannot be estimated and is left out; the warning says so).
    """
    if pd.api.types.is_bool_dtype(series) or (pd.api.types.is_numeric_dtype(series)
                                              and not isinstance(series.dtype, pd.CategoricalDtype)):
        return series, True
    new, rep = pool_levels(series, min_cell, name=name, ids=ids)
    if not rep["n_small"]:
        return series, True
    _announce(rep)
    return new, len(rep["remaining"]) >= 2


def pool_codes_for_model(codes: np.ndarray, labels: np.ndarray, name: str, min_cell: int | None = None,
                         ids=None) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`pool_for_model` on the codes of :func:`text_codes` (the design builder's one pass):
    ``(codes, labels, usable)``, the pooling announced as by :func:`pool_for_model`."""
    new_codes, new_labels, rep = pool_codes(codes, labels, min_cell, name=name, ids=ids)
    if not rep["n_small"]:
        return codes, labels, True
    _announce(rep)
    return new_codes, new_labels, len(rep["remaining"]) >= 2


# ---- a flow of exclusions (rows in -> rows out, step by step) ---------------------------------


def count_text(n, min_cell: int | None = None) -> str:
    """A count for a sentence or a table: ``0`` and counts of at least ``min_cell`` exactly
    (``1,234``), counts 1..``min_cell - 1`` as ``"fewer than 10"`` (with the run's ``min_cell``)."""
    m = resolve_min_cell(min_cell)
    n = int(n)
    return f"fewer than {m}" if 0 < n < m else f"{n:,}"


#: how a count withheld only to protect a smaller one (complementary suppression) is shown
WITHHELD = "withheld"


def _flow_protected(counts: np.ndarray, primary: np.ndarray, secondary: np.ndarray, m: int) -> bool:
    """Whether every count below ``m`` (``primary``) of one block of a flow could still be any of
    1..m-1, for a reader who sees everything else: the exact counts, the block's ends (so the sum
    of the withheld counts), "fewer than m" for the primary counts (1..m-1), and, for the counts
    withheld to protect them, that they are at least ``m`` and at most the smallest count shown
    that is at least ``m`` (the rule picks the smallest)."""
    if not primary.any():
        return True
    shown_big = counts[~primary & ~secondary & (counts >= m)]
    cap = float(shown_big.min()) if shown_big.size else np.inf
    w = primary | secondary
    total = float(counts[w].sum())
    lo = np.where(primary, 1.0, float(m))[w]
    hi = np.where(primary, float(m - 1), cap)[w]
    for i in np.flatnonzero(primary[w]):
        lo_i = max(1.0, total - (hi.sum() - hi[i]))
        hi_i = min(float(m - 1), total - (lo.sum() - lo[i]))
        if lo_i > 1 or hi_i < m - 1:
            return False
    return True


def flow_suppression(flow: pd.DataFrame, min_cell: int | None = None, *, block: str = "table",
                     count_col: str = "excluded", rows_in: str = "rows_in", rows_out: str = "rows_out",
                     prefer=None) -> pd.DataFrame:
    """The exclusion flow as a report shows it: no count of 1..``min_cell - 1`` excluded rows, and
    none recoverable by difference.

    ``flow``: one row per step, in order, with ``rows_in``, ``rows_out`` and the ``count_col``
    (rows_in - rows_out); within a ``block`` (a table) each step's rows in are the previous
    step's rows out. Rules, per block:

    * a count of 1..``min_cell - 1`` reads ``"fewer than <min_cell>"`` (primary); 0 stays 0;
    * complementary: while some primary count could be narrowed below the full 1..min_cell-1 by a
      reader who sees the rest (:func:`_flow_protected`: the block's ends give the sum of the withheld
      counts), the smallest other non-zero count is withheld too and reads ``"withheld"``
      (``prefer``: a boolean mask of rows to take it from first, e.g. the rows a sentence totals);
    * rows in / rows out are shown at the block's ends and around the withheld steps, and
      blanked (``NaN``) between the first and the last withheld step of the block, where they would
      give a withheld count by subtraction; if no count is left to withhold, every rows in / out
      after the first withheld step is blanked.

    Returns a copy with ``count_col``, ``rows_in``, ``rows_out`` as display text (``"–"`` where
    blanked) and boolean ``small`` (primary) and ``withheld`` (complementary) columns.
    """
    m = resolve_min_cell(min_cell)
    for c in (count_col, rows_in, rows_out):
        if c not in flow.columns:
            raise ParameterError(f"flow_suppression: column {c!r} not in the table (columns: {list(flow.columns)}).")
    counts = pd.to_numeric(flow[count_col]).to_numpy(float)
    nin = pd.to_numeric(flow[rows_in]).to_numpy(float)
    nout = pd.to_numeric(flow[rows_out]).to_numpy(float)
    primary = (counts > 0) & (counts < m)
    secondary = np.zeros(len(flow), dtype=bool)
    blank_in = np.zeros(len(flow), dtype=bool)
    blank_out = np.zeros(len(flow), dtype=bool)
    pref = np.zeros(len(flow), dtype=bool) if prefer is None else np.asarray(prefer, dtype=bool)
    keys = flow[block].astype(str).to_numpy() if block in flow.columns else np.zeros(len(flow), dtype=str)
    for k in pd.unique(keys):
        idx = np.flatnonzero(keys == k)
        p, s = primary[idx], secondary[idx]
        exhausted = False
        while not _flow_protected(counts[idx], p, s, m):
            cand = ~p & ~s & (counts[idx] > 0)
            if not cand.any():
                exhausted = True
                break
            first = cand & pref[idx]
            pool = np.flatnonzero(first if first.any() else cand)
            s[pool[np.argmin(counts[idx][pool])]] = True
        secondary[idx] = s
        w = np.flatnonzero(p | s)
        if not w.size:
            continue
        a, b = w.min(), (len(idx) - 1 if exhausted else w.max())
        blank_out[idx[a:b]] = True
        blank_in[idx[a + 1:b + 1]] = True
        if exhausted:
            blank_out[idx[b]] = True
    out = flow.copy()
    out[count_col] = [WITHHELD if s else count_text(n, m) for n, s in zip(counts, secondary)]
    out[rows_in] = ["–" if bl else f"{int(n):,}" for n, bl in zip(nin, blank_in)]
    out[rows_out] = ["–" if bl else f"{int(n):,}" for n, bl in zip(nout, blank_out)]
    out["small"] = primary
    out["withheld"] = secondary
    return out
