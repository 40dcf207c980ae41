"""One design-matrix builder for cxlab's survival models: how a control enters a model.

Used by :class:`~cxlab.models.survival.cox.CoxModel` (and so the PH test, segment hazard ratios and
:func:`cxlab.insight.value.what_if`, which rebuilds the model's columns on new rows with
:meth:`DummyCoding.encode`), :func:`~cxlab.models.survival.aft.fit_aft`, the cross-validated
evaluation and calibration (:mod:`cxlab.models.survival.evaluate`), the loyalty models
(:mod:`cxlab.models.loyalty`, whose ``summary`` states the reference) and the driver
decomposition's controls (:mod:`cxlab.models.drivers`).

* A **categorical** control (text, category, or a boolean in the AFT models) is dummy-coded
  after its rare levels are pooled (:func:`cxlab.privacy.pool_for_model`), one 0/1 column per
  level against **one reference level chosen once** by :func:`reference_level`: the most
  frequent level (counted in customers), ties broken by the first in text order. Every model
  table states it (a ``reference`` column: CoxModel ``terms_``/``summary``, AFT ``summary``).
* Column names: ``variable[level]`` (Cox, as R's ``coxph``) or ``variable=level`` (AFT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxlab import privacy
from cxlab.errors import ModelError

__all__ = ["DummyCoding", "reference_level", "is_categorical", "dummy_code"]


def is_categorical(series: pd.Series) -> bool:
    """Text or category columns (booleans and numbers are not)."""
    return not pd.api.types.is_numeric_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype)


def reference_level(counts: pd.Series) -> str:
    """The reference level of a categorical control, for every model: the most frequent level
    (``counts``: level -> customers), ties broken by the first level in text order."""
    top = counts.max()
    return sorted(str(level) for level in counts.index[counts == top])[0]


@dataclass(frozen=True)
class DummyCoding:
    """How one categorical control entered a model: ``reference`` and the coded ``levels``
    (sorted as text, the reference left out), named ``variable[level]`` or ``variable=level``."""

    variable: str
    reference: str
    levels: tuple[str, ...]
    style: str = "[]"

    @property
    def terms(self) -> list[str]:
        if self.style == "=":
            return [f"{self.variable}={level}" for level in self.levels]
        return [f"{self.variable}[{level}]" for level in self.levels]

    def encode(self, series: pd.Series) -> np.ndarray:
        """The 0/1 columns of this coding on (new) rows, rare levels pooled by the same rule."""
        import warnings

        codes, labels = privacy.text_codes(series)
        if not pd.api.types.is_bool_dtype(series):
            with warnings.catch_warnings():   # the pooling was announced when the model was fitted
                warnings.simplefilter("ignore")
                codes, labels, _ = privacy.pool_codes_for_model(codes, labels, self.variable)
        return _indicators(codes, labels, self.levels)


def _indicators(codes: np.ndarray, labels, levels) -> np.ndarray:
    """n x len(levels) 0/1 matrix: row i has a 1 in the column of its level (none for the reference
    or a missing value). Column-major (each column contiguous, as the Cox engine reads them)."""
    position = {label: j for j, label in enumerate(labels)}
    XT = np.zeros((len(levels), len(codes)))
    for j, level in enumerate(levels):
        if level in position:
            np.equal(codes, position[level], out=XT[j], casting="unsafe")
    return XT.T


def dummy_code(series: pd.Series, name: str, *, ids: pd.Series | None = None, style: str = "[]",
               what: str = "Cox model", codes: tuple[np.ndarray, np.ndarray] | None = None,
               ) -> tuple[DummyCoding, np.ndarray] | None:
    """Dummy-code a categorical control: ``(coding, n x k matrix)``, or None when pooling its rare
    levels left one level (the control is left out; the pooling warning says so).

    ``ids``: the customer of each row when customers have several rows (levels, and so the
    reference, are counted in customers). ``codes``: ``privacy.text_codes(series)`` when the caller
    has it already (the column is read once: missing-value check, pooling, coding). Raises
    :class:`~cxlab.errors.ModelError` when the control has a single level to begin with."""
    codes, labels = privacy.text_codes(series) if codes is None else codes   # once: a million rows
    if not pd.api.types.is_bool_dtype(series):   # privacy: rare levels pooled (booleans are not, as pool_for_model)
        codes, labels, usable = privacy.pool_codes_for_model(codes, labels, name, ids=ids)
        if not usable:
            return None
    if ids is not None:   # customers per level (their first row)
        counted = codes[(codes >= 0) & ~pd.Series(np.asarray(ids)).duplicated().to_numpy()]
    else:
        counted = codes if codes.min(initial=0) >= 0 else codes[codes >= 0]
    counts = pd.Series(np.bincount(counted, minlength=len(labels)), index=labels)
    if len(counts) < 2:
        raise ModelError(f"{what}: control '{name}' has a single level ({counts.index[0]!r}); it cannot be "
                         "estimated. Drop it from the controls.")
    ref = reference_level(counts)
    levels = tuple(level for level in sorted(counts.index) if level != ref)
    return DummyCoding(name, ref, levels, style), _indicators(codes, labels, levels)
