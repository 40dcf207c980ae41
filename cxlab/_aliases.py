"""The module names cxlab had before its layers became folders keep working.

``import cxlab.panel`` gives the very module ``cxlab.data.panel`` (one object under both names,
so a monkeypatch or an isinstance check sees the same thing); nothing is copied or re-exported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

#: old name -> its layer (``cxlab.<old>`` is now ``cxlab.<layer>.<old>``)
MOVED = {
    "validate": "data", "panel": "data", "panelcache": "data", "sources": "data",
    "synth": "data",
    "survival": "models", "measurement": "models", "loyalty": "models", "drivers": "models",
    "segments": "insight", "audit": "insight", "narrative": "insight", "value": "insight",
    "plots": "report",
}


def target(fullname: str) -> str | None:
    """The current name of ``fullname`` if it is an old name (``cxlab.survival.km`` included)."""
    parts = fullname.split(".")
    if len(parts) < 2 or parts[0] != "cxlab" or parts[1] not in MOVED:
        return None
    return ".".join(["cxlab", MOVED[parts[1]], *parts[1:]])


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, real: str):
        self.real = real
        self.real_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.real)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.real_spec   # the import system stamped the alias's spec on it


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target_module=None):
        real = target(fullname)
        if real is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real))


def install() -> None:
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
