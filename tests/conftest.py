"""Shared fixtures: small demo studies, and one that looks nothing like the demo (French names,
a 0–10 scale, Parquet files, other missing codes, an extract dated after the snapshot)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab.synth import write_demo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """A 6 000-customer demo study (spec path)."""
    return write_demo(tmp_path_factory.mktemp("small-demo"), n_customers=6_000, seed=11)


FRENCH_CONSTRUCTS = {"reconnaissance": ["q7", "q8", "q9"], "empathie": ["q10", "q11", "q12"],
                     "proximité": ["q13", "q14"], "attachement": ["q15", "q16"]}


@pytest.fixture(scope="session")
def french_study(tmp_path_factory, small_demo) -> Path:
    """The small demo re-expressed as another company's extract: other column and construct names,
    items on 0–10 with 98/99 as "don't know"/"refused", Parquet files, accents in names."""
    src = small_demo.parent
    out = tmp_path_factory.mktemp("etude-fr")
    customers = pd.read_csv(src / "customers.csv", dtype=str)
    customers = customers.rename(columns={"cust": "n° client", "opened": "date_entrée", "closed": "date_sortie",
                                          "margin_12m": "marge_annuelle", "segment": "gamme", "channel": "canal"})
    customers.to_parquet(out / "clients.parquet", index=False)
    answers = pd.read_csv(src / "barometer.csv", dtype=str)
    items = [i for its in FRENCH_CONSTRUCTS.values() for i in its] + ["q3", "q2"]
    rng = np.random.default_rng(5)
    for col in items:
        x = pd.to_numeric(answers[col])
        rescaled = ((x - 1) * 2.5).round().where(x != 99, 99.0)
        # some "refused" answers coded 98
        rescaled = rescaled.where(rng.random(len(x)) > 0.01, 98.0)
        answers[col] = rescaled.astype(int).astype(str)
    answers = answers.rename(columns={"cust": "n° client", "answered": "date_réponse",
                                      **{i: f"Q{i[1:]}_fr" for i in items}, "q1": "recommandation_0_10"})
    answers.to_csv(out / "baromètre.csv", index=False)
    complaints = pd.read_csv(src / "complaints.csv", dtype=str)
    complaints = complaints.rename(columns={"cust": "n° client", "opened": "ouverte_le", "closed": "close_le",
                                            "goodwill": "geste_commercial"})
    complaints.to_csv(out / "réclamations.csv", index=False)
    constructs = ", ".join(f"{c}: [{', '.join(f'Q{i[1:]}_fr' for i in its)}]" for c, its in FRENCH_CONSTRUCTS.items())
    spec = out / "étude.yaml"
    spec.write_text(textwrap.dedent(f"""
        name: Baromètre relationnel — banque de détail
        snapshot_date: 2026-06-30
        customers:  {{path: clients.parquet, id: "n° client", start: date_entrée, end: date_sortie,
                     value: marge_annuelle, covariates: [gamme, canal]}}
        surveys:    {{path: baromètre.csv, id: "n° client", date: date_réponse, scale: [0, 10],
                     missing_codes: [98, 99], constructs: {{{constructs}}},
                     self_status: Q3_fr, outcomes: {{recommandation: recommandation_0_10, satisfaction: Q2_fr}},
                     outcome_scales: {{recommandation: [0, 10]}}}}
        complaints: {{path: réclamations.csv, id: "n° client", opened: ouverte_le, closed: close_le,
                     compensated: geste_commercial}}
        segments:   {{disappointed: {{recognition: reconnaissance}}}}
    """), encoding="utf-8")
    return spec
