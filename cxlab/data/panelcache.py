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

:func:`cached_open` (what ``open_study`` calls) caches the validation with the panel: the first
notebook validates and builds, and stores the validation's summary and the typed tables (for a
``source:`` study streamed from the engine in Arrow batches, never whole in memory); the others
neither validate nor connect (a PySpark source starts no JVM in them) and read what they use when
they use it: a role's typed table on first access of ``wb.data.<role>``, the counting-process
rows on first access of ``panel.intervals`` (only the survival notebook reads them). A source
study's key is its spec and options: within one run (the cache's lifetime) its tables are taken
as they were when the run started.
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

__all__ = ["ENV_VAR", "cached_build_panel", "cached_open", "panel_key", "load_panel", "store_panel"]

_ROLES = ("customers", "surveys", "complaints")

ENV_VAR = "CXLAB_PANEL_CACHE"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bound_options(panel_options: dict) -> dict:
    """The panel options with every default of build_panel filled in (a TypeError names a wrong one)."""
    sig = inspect.signature(panel_module.build_panel)
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


class _CachedPanel(Panel):
    """A panel read back from the cache: the counting-process rows are read on first use."""

    _intervals_path: Path | None = None
    _intervals_frame: pd.DataFrame | None = None

    @property
    def intervals(self) -> pd.DataFrame:
        if self._intervals_frame is None and self._intervals_path is not None:
            self._intervals_frame = pd.read_parquet(self._intervals_path)
        return self._intervals_frame

    @intervals.setter
    def intervals(self, value) -> None:
        self._intervals_frame = value


def load_panel(folder: Path) -> Panel:
    """Read a panel written by :func:`store_panel` (the counting-process rows when first used)."""
    folder = Path(folder)
    meta = json.loads((folder / "panel.json").read_text(encoding="utf-8"))
    values = {}
    for f in dataclasses.fields(Panel):
        path = folder / f"{f.name}.parquet"
        if f.name == "intervals" and path.exists():
            values[f.name] = None
        elif path.exists():
            values[f.name] = pd.read_parquet(path)
        elif f.name in meta:
            values[f.name] = _decode(meta[f.name])
    panel = _CachedPanel(**values)
    if (folder / "intervals.parquet").exists():
        panel._intervals_path = folder / "intervals.parquet"
    return panel


class _CachedData:
    """The typed tables (``StudyData``'s fields) read from the cache on first access."""

    def __init__(self, folder: Path):
        self._folder = folder
        self._frames: dict = {}

    def _get(self, role: str):
        if role not in self._frames:
            path = self._folder / f"data-{role}.parquet"
            if not path.exists():
                self._frames[role] = None
            else:
                from cxlab.data.tables import typed

                self._frames[role] = typed(role, pd.read_parquet(path))
        return self._frames[role]

    customers = property(lambda self: self._get("customers"))
    surveys = property(lambda self: self._get("surveys"))
    complaints = property(lambda self: self._get("complaints"))

    def table(self, role: str):
        """The cached ``role`` table for aggregate queries: the frame if a notebook already read it,
        else an ibis table on an embedded DuckDB scanning the Parquet copy (nothing read into memory);
        None when the study has no such table."""
        if self._frames.get(role) is not None:
            return self._frames[role]
        path = self._folder / f"data-{role}.parquet"
        if not path.exists():
            return None
        if getattr(self, "_con", None) is None:
            import ibis

            self._con = ibis.duckdb.connect()
        return self._con.read_parquet(path)


def _store_data(validation, folder: Path) -> None:
    """The typed tables as Parquet: pandas frames as they are; engine tables streamed in batches."""
    import pyarrow.parquet as pq

    for role in _ROLES:
        path = folder / f"data-{role}.parquet"
        if validation.data is not None:
            df = getattr(validation.data, role)
            if df is not None:
                df.to_parquet(path)
            continue
        table = getattr(validation.engine, role)
        if table is None:
            continue
        writer = None
        try:
            for batch in table.order_by("source_row").to_pyarrow_batches(chunk_size=500_000):
                if writer is None:
                    writer = pq.ParquetWriter(path, batch.schema)
                writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()


def _store_validation(validation, folder: Path) -> None:
    validation.summary.to_pickle(folder / "validation-summary.pkl")     # (exact: NA stays NA)
    (folder / "validation.json").write_text(json.dumps({"files": validation.files}), encoding="utf-8")


def _load_validation(folder: Path):
    from cxlab.data.validate import ValidationReport
    from cxlab.data.validate import PROBLEM_COLUMNS

    meta = json.loads((folder / "validation.json").read_text(encoding="utf-8"))
    return ValidationReport(problems=pd.DataFrame(columns=PROBLEM_COLUMNS),
                            summary=pd.read_pickle(folder / "validation-summary.pkl"),
                            data=_CachedData(folder), files=meta["files"])


def cached_open(study, validate, **panel_options):
    """``(validation, panel)`` of a study: ``validate()`` (a passing report, else it raises) and
    :func:`~cxlab.data.panel.build_panel` on its tables, both done once per run and key when
    ``CXLAB_PANEL_CACHE`` is set (see the module docstring; else simply done)."""
    root = os.environ.get(ENV_VAR)
    files = [Path(p) for p in study.files.values()]
    source = getattr(study, "source", None) is not None
    if not root or (not source and (not files or not all(p.is_file() for p in files))):
        validation = validate()
        return validation, build_panel(study, validation.engine or validation.data, **panel_options)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    key = "open-" + panel_key(study, panel_options)
    folder = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # a notebook started at the same time waits, then reads
        try:
            if (folder / "validation.json").exists():
                return _load_validation(folder), load_panel(folder)
            shutil.rmtree(folder, ignore_errors=True)     # (what an interrupted build left)
            validation = validate()
            panel = build_panel(study, validation.engine or validation.data, **panel_options)
            store_panel(panel, folder)
            _store_data(validation, folder)
            _store_validation(validation, folder)
            return validation, panel
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
