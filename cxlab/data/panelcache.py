"""The panel built once per run and shared by the notebooks.

Every notebook starts with :func:`cxlab.workbook.open_study`, which builds the analysis tables of
the study (:func:`cxlab.data.panel.build_panel`). A run executes four notebooks on the same study, so
``cxlab run`` points the environment variable ``CXLAB_PANEL_CACHE`` at a folder inside the run's
temporary work folder (removed before the run folder is published: the respondent-level tables
never reach a report) and :func:`cached_build_panel` then builds each distinct panel once:

* the key is the SHA-256 of the study spec (every field, as parsed), the data files' contents, the
  panel options bound to :func:`~cxlab.data.panel.build_panel`'s defaults (so ``open_study(p)`` and
  ``open_study(p, recognised_min=None)`` share one panel) and the source of ``cxlab/data/panel.py``;
* the first process that needs a panel builds it under an exclusive file lock (notebooks started
  at the same time wait for it rather than building it twice) and stores its data frames as
  Parquet and its other fields as a small JSON file; the others read it back;
* the panel read back is equal to the panel built, column types included (tested), so results are
  identical with and without the cache.

Without ``CXLAB_PANEL_CACHE`` (a researcher in JupyterLab) nothing is cached.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

import cxlab.data.panel as panel_module
from cxlab.data.panel import Panel, build_panel

__all__ = ["ENV_VAR", "cached_build_panel", "panel_key", "load_panel", "store_panel"]

ENV_VAR = "CXLAB_PANEL_CACHE"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bound_options(panel_options: dict) -> dict:
    """The panel options with every default of build_panel filled in (a TypeError names a wrong one)."""
    sig = inspect.signature(build_panel)
    bound = sig.bind(None, None, **panel_options)
    bound.apply_defaults()
    # ``threads`` changes the speed of the build, not the panel
    return {k: v for k, v in bound.arguments.items() if k not in ("study", "data", "threads", "con")}


def panel_key(study, panel_options: dict) -> str:
    """SHA-256 of everything a panel depends on: spec, data, options, panel code."""
    files = {role: _file_digest(Path(p)) for role, p in sorted(study.files.items()) if Path(p).is_file()}
    payload = {
        "spec": study.model_dump(mode="json"),
        "files": files,
        "options": _bound_options(panel_options),
        "code": _file_digest(Path(panel_module.__file__)),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _encode(value):
    if isinstance(value, dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    if isinstance(value, dict):
        if "__datetime__" in value:
            return dt.datetime.fromisoformat(value["__datetime__"])
        if "__date__" in value:
            return dt.date.fromisoformat(value["__date__"])
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def store_panel(panel: Panel, folder: Path) -> None:
    """Write ``panel`` into ``folder`` (created whole or not at all)."""
    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        meta = {}
        for f in dataclasses.fields(panel):
            value = getattr(panel, f.name)
            if isinstance(value, pd.DataFrame):
                value.to_parquet(tmp / f"{f.name}.parquet")
            else:
                meta[f.name] = _encode(value)
        (tmp / "panel.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_panel(folder: Path) -> Panel:
    """Read a panel written by :func:`store_panel`."""
    folder = Path(folder)
    meta = json.loads((folder / "panel.json").read_text(encoding="utf-8"))
    values = {}
    for f in dataclasses.fields(Panel):
        path = folder / f"{f.name}.parquet"
        if path.exists():
            values[f.name] = pd.read_parquet(path)
        elif f.name in meta:
            values[f.name] = _decode(meta[f.name])
    return Panel(**values)


def cached_build_panel(study, data, **panel_options) -> Panel:
    """:func:`cxlab.data.panel.build_panel`, built once per key in the folder named by ``CXLAB_PANEL_CACHE``
    (when the variable is set; else simply built)."""
    root = os.environ.get(ENV_VAR)
    files = [Path(p) for p in study.files.values()]
    if (not root or panel_options.get("con") is not None or getattr(study, "source", None) is not None
            or not files or not all(p.is_file() for p in files)):
        # no cache asked for, or data not in files (a database source or connection): the key
        # could not fingerprint it, so the panel is built
        return build_panel(study, data, **panel_options)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    key = panel_key(study, panel_options)
    folder = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # a notebook started at the same time waits, then reads
        try:
            if (folder / "panel.json").exists():
                return load_panel(folder)
            panel = build_panel(study, data, **panel_options)
            store_panel(panel, folder)
            return panel
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
