"""Run notebooks, export them to HTML, write manifests and the run index.

Notebooks talk to the runner through two functions only: :func:`record_metric` and
:func:`record_finding`. Each emits a display output with a cxlab MIME type; the runner reads
them back from the executed notebook, so metrics survive parallel runs and failed cells, and
need no side files.
"""

from cxlab.report.record import (
    FINDING_MIME,
    METRIC_MIME,
    read_findings,
    read_metrics,
    record_finding,
    record_metric,
)

__all__ = [
    "FINDING_MIME",
    "METRIC_MIME",
    "read_findings",
    "read_metrics",
    "record_finding",
    "record_metric",
]
