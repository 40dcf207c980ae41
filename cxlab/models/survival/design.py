"""One design-matrix builder for cxlab's survival models: how a control enters a model.

Used by :class:`~cxlab.models.survival.cox.CoxModel` (and so the PH test, segment hazard ratios and
:func:`cxlab.insight.value.what_if`, which rebuilds the model's columns on new rows with
:meth:`DummyCoding.encode`), :func:`~cxlab.models.survival.aft.fit_aft` and the cross-validated
evaluation and calibration (:mod:`cxlab.models.survival.evaluate`).

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

        with warnings.catch_warnings():   # the pooling was announced when the model was fitted
            warnings.simplefilter("ignore")
            text = privacy.pool_for_model(series, self.variable)[0].astype(str).to_numpy()
        return np.column_stack([text == level for level in self.levels]).astype(float)


def dummy_code(series: pd.Series, name: str, *, ids: pd.Series | None = None, style: str = "[]",
               what: str = "Cox model") -> tuple[DummyCoding, np.ndarray] | None:
    """Dummy-code a categorical control: ``(coding, n x k matrix)``, or None when pooling its rare
    levels left one level (the control is left out; the pooling warning says so).

    ``ids``: the customer of each row when customers have several rows (levels, and so the
    reference, are counted in customers). Raises :class:`~cxlab.errors.ModelError` when the
    control has a single level to begin with."""
    pooled, usable = privacy.pool_for_model(series, name, ids=ids)   # privacy: rare levels pooled
    if not usable:
        return None
    codes, uniques = pd.factorize(pooled.astype(str))   # once: a million rows, several levels
    if ids is not None:   # customers per level
        first = ~pd.Series(np.asarray(ids)).duplicated().to_numpy()
        counts = pd.Series(np.bincount(codes[first], minlength=len(uniques)), index=uniques)
    else:
        counts = pd.Series(np.bincount(codes, minlength=len(uniques)), index=uniques)
    if len(counts) < 2:
        raise ModelError(f"{what}: control '{name}' has a single level ({counts.index[0]!r}); it cannot be "
                         "estimated. Drop it from the controls.")
    ref = reference_level(counts)
    levels = tuple(level for level in sorted(counts.index) if level != ref)
    X = np.column_stack([codes == uniques.get_loc(level) for level in levels]).astype(float)
    return DummyCoding(name, ref, levels, style), X
