"""cxlab: survival and loyalty models linking customer-experience perceptions to defection."""

from cxlab.errors import CxlabError
from cxlab.study import Study, load_study

__version__ = "0.1.0"
__all__ = ["CxlabError", "Study", "load_study", "__version__"]
