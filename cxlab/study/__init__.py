"""Study: the spec that maps a company's extracts onto cxlab's vocabulary (YAML -> pydantic).

The first layer of cxlab's flow: study -> data -> models -> insight -> report.
"""

from cxlab.study.spec import *  # noqa: F401,F403  (the spec's public names, listed in spec.__all__)
from cxlab.study.spec import (  # noqa: F401  (used by the data layer)
    DATA_ROOTS_ENV, RESERVED_NAMES, TableReadError, snapshot_cutoff,
)
from cxlab.study.spec import __all__  # noqa: F401
