"""cxlab: survival and loyalty models linking customer-experience perceptions to defection.

The package follows the flow of a study: ``study`` (the spec) -> ``data`` (sources, validation,
panel) -> ``models`` (survival, measurement, loyalty) -> ``insight`` (segments, value, wording)
-> ``report`` (runner, HTML, plots). ``workbook`` is the notebooks' front door; ``privacy`` and
``errors`` serve every layer.
"""

from cxlab import _aliases
from cxlab.errors import CxlabError
from cxlab.study import Study, load_study

_aliases.install()   # cxlab.panel, cxlab.survival, ... still import (see _aliases.MOVED)

__version__ = "0.1.0"
__all__ = ["CxlabError", "Study", "load_study", "__version__"]
