"""Run notebooks, export them to HTML, write manifests and the run index.

Notebooks talk to the runner through three functions only: :func:`record_metric`,
:func:`record_finding` and :func:`record_omission`. Each emits a display output with a cxlab MIME type; the runner reads
them back from the executed notebook, so metrics survive parallel runs and failed cells, and
need no side files.
"""

from cxlab.report.record import (
    FINDING_MIME,
    METRIC_MIME,
    OMISSION_MIME,
    read_findings,
    read_metrics,
    read_omissions,
    record_finding,
    record_metric,
    record_omission,
)

__all__ = [
    "FINDING_MIME",
    "METRIC_MIME",
    "OMISSION_MIME",
    "read_findings",
    "read_metrics",
    "read_omissions",
    "record_finding",
    "record_metric",
    "record_omission",
]
