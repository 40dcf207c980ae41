"""One call that every notebook starts with: study -> validation -> panel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxlab.panel import Panel, build_panel
from cxlab.study import Study, load_study

__all__ = ["Workbook", "open_study"]


@dataclass
class Workbook:
    """A study with its validated data and analysis tables."""

    study: Study
    validation: "object"   # cxlab.validate.ValidationReport
    panel: Panel

    @property
    def data(self):
        return self.validation.data


def open_study(study_path: str | Path, **panel_options) -> Workbook:
    """Load a study spec, check its data against the contract, and build the panel.

    Raises :class:`cxlab.errors.DataContractError` listing every data problem at once.
    ``panel_options`` go to :func:`cxlab.panel.build_panel`.
    """
    from cxlab.validate import validate_study

    study = load_study(study_path)
    validation = validate_study(study)
    validation.raise_if_failed()
    panel = build_panel(study, validation.data, **panel_options)
    return Workbook(study=study, validation=validation, panel=panel)
