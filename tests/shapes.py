"""Study shapes: small generated studies that differ from the demo, for the study-shape matrix.

Each shape starts from the demo's synthetic data (:func:`cxlab.data.synth.generate_demo`, ~1,500
customers) and changes what a researcher's own study would change: a part of the spec left out
(complaints, self-status, segments, covariates, value), single-item constructs, another answer
scale, French and accented names, Parquet files, a latin-1 ``;`` CSV with decimal commas and
day-first dates, an outcome under its own name with a declared role.

``write_shape(name, folder)`` writes ``study.yaml`` and its data files into ``folder`` and returns
the spec's path; :data:`SHAPES` says, per shape, which spec parts each notebook must state as
left out (the ``part`` of its recorded omissions).

    python tests/shapes.py OUT_DIR [NAME ...]   # write shapes for a look by hand
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from cxlab.data.synth import generate_demo

N_CUSTOMERS = 1500
SEED = 7

#: the demo's spec as a mapping (the same as cxlab.data.synth.STUDY_YAML)
BASE_SPEC = {
    "name": "Shape study (synthetic)",
    "snapshot_date": "2026-06-30",
    "customers": {"path": "customers.csv", "id": "cust", "start": "opened", "end": "closed",
                  "value": "margin_12m", "covariates": ["segment", "channel"]},
    "surveys": {"path": "barometer.csv", "id": "cust", "date": "answered", "scale": [1, 5],
                "missing_codes": [99],
                "constructs": {"recognition": ["q7", "q8", "q9"], "empathy": ["q10", "q11", "q12"],
                               "proximity": ["q13", "q14"], "affect": ["q15", "q16"]},
                "self_status": "q3", "outcomes": {"recommend": "q1", "satisfaction": "q2"},
                "outcome_scales": {"recommend": [0, 10]}},
    "complaints": {"path": "complaints.csv", "id": "cust", "opened": "opened", "closed": "closed",
                   "compensated": "goodwill"},
    "segments": {"disappointed": {"recognition": "recognition"}},
}

ITEMS = ["q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14", "q15", "q16"]


@dataclass
class Study:
    """Tables and spec of one shape, before writing."""

    customers: pd.DataFrame
    surveys: pd.DataFrame
    complaints: pd.DataFrame | None
    spec: dict
    fmt: str = "csv"
    csv: dict = field(default_factory=dict)  # pandas to_csv options (sep, decimal, encoding)


@dataclass(frozen=True)
class Shape:
    """A study shape: how it differs from the demo, and what each notebook must say is left out."""

    doc: str
    build: Callable[[Study], Study]
    #: notebook -> spec parts it must state as left out (the `part` of its recorded omissions)
    omissions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: a strict xfail reason while a part another engineer owns is missing ("" = must pass)
    xfail: str = ""


@lru_cache(maxsize=2)
def _demo(n_customers: int, seed: int):
    return generate_demo(n_customers=n_customers, seed=seed)


def base_study(n_customers: int = N_CUSTOMERS, seed: int = SEED) -> Study:
    demo = _demo(n_customers, seed)
    return Study(customers=demo.customers.copy(), surveys=demo.surveys.copy(),
                 complaints=demo.complaints.copy(), spec=copy.deepcopy(BASE_SPEC))


# --------------------------------------------------------------------------------------------
# the shapes


def _no_complaints(s: Study) -> Study:
    s.spec.pop("complaints")
    s.complaints = None
    return s


def _no_self_status(s: Study) -> Study:
    del s.spec["surveys"]["self_status"]   # recognition still named under segments
    s.surveys = s.surveys.drop(columns="q3")
    return s


def _no_segments(s: Study) -> Study:
    # no `segments:` key and no construct called "recognition": nothing plays recognition
    cons = s.spec["surveys"]["constructs"]
    s.spec["surveys"]["constructs"] = {"esteem" if k == "recognition" else k: v for k, v in cons.items()}
    s.spec.pop("segments")
    return s


def _single_items(s: Study) -> Study:
    s.spec["surveys"]["constructs"] = {"recognition": ["q7"], "empathy": ["q10"], "proximity": ["q13"],
                                       "affect": ["q15"]}
    return s


def _scale_0_10(s: Study) -> Study:
    # items on 0-10 (answers 1..5 spread over 0..10), self-status stays on 1-5
    rng = np.random.default_rng(11)
    for q in ITEMS:
        x = pd.to_numeric(s.surveys[q])
        known = x != 99
        spread = np.clip((x - 1) * 2.5 + rng.integers(-1, 2, len(x)), 0, 10).round()
        s.surveys[q] = np.where(known, spread, 99).astype(int)
    s.spec["surveys"]["scale"] = [0, 10]
    s.spec["surveys"]["self_status_scale"] = [1, 5]
    s.spec["surveys"]["outcome_scales"] = {"recommend": [0, 10], "satisfaction": [1, 5]}
    return s


def _no_covariates(s: Study) -> Study:
    s.spec["customers"]["covariates"] = []
    s.customers = s.customers.drop(columns=["segment", "channel"])
    return s


def _no_value(s: Study) -> Study:
    del s.spec["customers"]["value"]
    s.customers = s.customers.drop(columns="margin_12m")
    return s


_FR_SEGMENTS = {"mass": "masse", "affluent": "aisé", "private": "privé"}
_FR_CHANNELS = {"branch": "agence", "online": "en ligne", "phone": "téléphone"}


def _french(s: Study) -> Study:
    s.customers = s.customers.rename(columns={"cust": "client", "opened": "ouverture", "closed": "clôture",
                                              "margin_12m": "marge 12 mois", "segment": "segment",
                                              "channel": "canal de contact"})
    s.customers["segment"] = s.customers["segment"].map(_FR_SEGMENTS)
    s.customers["canal de contact"] = s.customers["canal de contact"].map(_FR_CHANNELS)
    s.surveys = s.surveys.rename(columns={"cust": "client", "answered": "réponse"})
    s.complaints = s.complaints.rename(columns={"cust": "client", "opened": "ouverte", "closed": "clôturée",
                                                "goodwill": "geste commercial"})
    s.spec.update({
        "name": "Baromètre relationnel (synthétique)",
        "customers": {"path": "clients.csv", "id": "client", "start": "ouverture", "end": "clôture",
                      "value": "marge 12 mois", "covariates": ["segment", "canal de contact"]},
        "complaints": {"path": "réclamations.csv", "id": "client", "opened": "ouverte", "closed": "clôturée",
                       "compensated": "geste commercial"},
        "segments": {"disappointed": {"recognition": "reconnaissance"}},
    })
    sv = s.spec["surveys"]
    sv.update({"path": "baromètre.csv", "id": "client", "date": "réponse",
               "constructs": {"reconnaissance": ["q7", "q8", "q9"], "empathie": ["q10", "q11", "q12"],
                              "proximité": ["q13", "q14"], "attachement": ["q15", "q16"]}})
    return s


def _parquet(s: Study) -> Study:
    s.fmt = "parquet"
    return s


def _latin1(s: Study) -> Study:
    # a French extract as it comes: latin-1, ';', decimal commas, dd/mm/yyyy dates
    s = _french(s)
    s.csv = {"sep": ";", "decimal": ",", "encoding": "latin-1"}
    for frame, cols in ((s.customers, ["ouverture", "clôture"]), (s.surveys, ["réponse"]),
                        (s.complaints, ["ouverte", "clôturée"])):
        for c in cols:
            d = pd.to_datetime(frame[c], errors="coerce")
            frame[c] = d.dt.strftime("%d/%m/%Y").where(d.notna(), "")
    s.customers["marge 12 mois"] = pd.to_numeric(s.customers["marge 12 mois"])
    dialect = {"delimiter": ";", "decimal": ",", "encoding": "latin-1", "date_format": "%d/%m/%Y"}
    for key in ("customers", "surveys", "complaints"):
        s.spec[key].update(dialect)
    return s


def _other_role(s: Study) -> Study:
    s.surveys = s.surveys.rename(columns={"q1": "nps"})
    s.spec["surveys"]["outcomes"] = {"recommandation": {"column": "nps", "role": "recommend", "scale": [0, 10]},
                                     "satisfaction": "q2"}
    s.spec["surveys"]["outcome_scales"] = {}
    return s


def _minimal(s: Study) -> Study:
    # every optional part left out at once
    for f in (_no_complaints, _no_self_status, _no_covariates, _no_value):
        s = f(s)
    s.spec["surveys"]["outcomes"] = {}
    s.spec["surveys"]["outcome_scales"] = {}
    s.surveys = s.surveys.drop(columns=["q1", "q2"])
    return s


SHAPES: dict[str, Shape] = {
    "no_complaints": Shape("no complaints: file", _no_complaints,
                           {"02-survival-drivers": ("complaints",)}),
    "no_self_status": Shape("no self-status item (recognition still named)", _no_self_status,
                            {"02-survival-drivers": ("dgc",), "04-segments-value": ("dgc",)}),
    "no_segments": Shape("no segments: key and no construct called recognition", _no_segments,
                         {"02-survival-drivers": ("recognition", "dgc"), "04-segments-value": ("dgc", "recognition")}),
    "single_items": Shape("every construct a single item", _single_items),
    "scale_0_10": Shape("items on 0-10, self-status on 1-5", _scale_0_10),
    "no_covariates": Shape("no covariates", _no_covariates,
                           {"01-data-audit": ("covariates",), "02-survival-drivers": ("covariates",)}),
    "no_value": Shape("no value column", _no_value, {"04-segments-value": ("value",)}),
    "french": Shape("French and accented names (constructs, columns, a covariate with a space, "
                    "category values, file names)", _french),
    "parquet": Shape("Parquet files", _parquet),
    "latin1_semicolon": Shape("latin-1 CSV with ';', decimal commas and dd/mm/yyyy dates", _latin1),
    "other_role": Shape("the recommendation outcome under its own name with role: recommend", _other_role),
    "minimal": Shape("no complaints, self-status, covariates, value or outcomes", _minimal,
                     {"01-data-audit": ("covariates",),
                      "02-survival-drivers": ("complaints", "covariates", "dgc"),
                      "03-measurement-loyalty": ("outcome:recommend",),
                      "04-segments-value": ("dgc", "value")}),
}


def _write(frame: pd.DataFrame, path: Path, s: Study) -> None:
    if s.fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, lineterminator="\n", **s.csv)


def write_shape(name: str, folder, n_customers: int = N_CUSTOMERS, seed: int = SEED) -> Path:
    """Write shape ``name`` into ``folder`` (created); return the path of its ``study.yaml``."""
    shape = SHAPES[name]
    s = shape.build(base_study(n_customers, seed))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = copy.deepcopy(s.spec)
    tables = {"customers": s.customers, "surveys": s.surveys, "complaints": s.complaints}
    for key, frame in tables.items():
        if key not in spec:
            continue
        stem = Path(spec[key]["path"]).stem
        spec[key]["path"] = f"{stem}.{s.fmt}"
        _write(frame, folder / spec[key]["path"], s)
    spec["name"] = f"{spec['name']} — shape {name}"
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - a look by hand
    out = Path(sys.argv[1])
    for n in sys.argv[2:] or SHAPES:
        print(write_shape(n, out / n))
