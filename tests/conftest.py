"""Shared fixtures: small demo studies, and one that looks nothing like the demo (French names,
a 0–10 scale, Parquet files, other missing codes, an extract dated after the snapshot); the one
helper every R-reference test goes through (``r_reference``); and the "cxlab checks" summary
printed at the end of every test session (R references, skips by reason)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab.data.synth import write_demo

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


# ---- R references: one policy --------------------------------------------------------------------
#
# Each script under tests/reference/*.R writes its JSON (and any data it derives) to paths given on
# its command line; with no arguments it rewrites the committed files (done on purpose only).
# * Rscript and every package the script loads are installed: the script is re-run into a
#   temporary folder, a failing script FAILS the test, the fresh output must equal the committed
#   one (a stale reference fails), and the tests compare cxlab with the fresh output.
# * Otherwise the tests compare cxlab with the committed output, and the session summary says so.

REFERENCE = REPO / "tests" / "reference"
_R_STATUS: dict[str, str] = {}          # script -> how its reference was obtained (for the summary)
_R_CACHE: dict[tuple, dict] = {}
_R_ENV: dict | None = None


def _r_environment() -> dict:
    """{"rscript": path or None, "version": "4.2.2", "packages": {name: installed}} (probed once)."""
    global _R_ENV
    if _R_ENV is None:
        rscript = shutil.which("Rscript")
        _R_ENV = {"rscript": rscript, "version": None, "packages": {}}
        if rscript:
            proc = subprocess.run([rscript, "-e", "cat(R.version$major, R.version$minor, sep='.')"],
                                  capture_output=True, text=True, timeout=120)
            _R_ENV["version"] = proc.stdout.strip() if proc.returncode == 0 else None
    return _R_ENV


def _r_packages_missing(script: Path) -> list[str]:
    """The packages ``script`` loads with library()/require() that R cannot find."""
    env = _r_environment()
    wanted = sorted(set(re.findall(r"(?:library|require|requireNamespace)\(\s*[\"']?([A-Za-z][\w.]*)",
                                   script.read_text())))
    unknown = [p for p in wanted if p not in env["packages"]]
    if unknown:
        code = "for (p in commandArgs(TRUE)) cat(p, requireNamespace(p, quietly = TRUE), '\\n')"
        proc = subprocess.run([env["rscript"], "-e", code, "--args", *unknown], capture_output=True,
                              text=True, timeout=120)
        found = dict(line.split() for line in proc.stdout.splitlines() if len(line.split()) == 2)
        for p in unknown:
            env["packages"][p] = found.get(p) == "TRUE"
    return [p for p in wanted if not env["packages"][p]]


def _json_diff(fresh, stored, path="", *, rtol=1e-6, atol=1e-10) -> list[str]:
    """Where two reference JSONs differ: numbers within rtol/atol, version strings ignored."""
    if isinstance(fresh, dict) and isinstance(stored, dict):
        out = [f"{path}/{k}: only in one of them" for k in sorted(set(fresh) ^ set(stored))]
        for k in sorted(set(fresh) & set(stored)):
            if not k.endswith("version"):
                out += _json_diff(fresh[k], stored[k], f"{path}/{k}", rtol=rtol, atol=atol)
        return out
    if isinstance(fresh, list) and isinstance(stored, list):
        if len(fresh) != len(stored):
            return [f"{path}: {len(fresh)} values fresh, {len(stored)} stored"]
        return [d for i, (a, b) in enumerate(zip(fresh, stored))
                for d in _json_diff(a, b, f"{path}[{i}]", rtol=rtol, atol=atol)]
    numbers = (int, float)
    if isinstance(fresh, numbers) and isinstance(stored, numbers) and not isinstance(fresh, bool):
        if math.isclose(fresh, stored, rel_tol=rtol, abs_tol=atol):
            return []
    elif fresh == stored:
        return []
    return [f"{path}: fresh {fresh!r}, stored {stored!r}"]


def r_reference(script: str, stored: str, tmp_dir: Path, extra_outputs: tuple[str, ...] = ()) -> dict:
    """The reference values of ``tests/reference/<script>`` (see the policy above).

    ``stored`` is the committed JSON the script writes; ``extra_outputs`` are other committed files
    it writes (passed after the JSON path on its command line, compared byte for byte)."""
    key = (script, stored, extra_outputs)
    if key in _R_CACHE:
        return _R_CACHE[key]
    committed = json.loads((REFERENCE / stored).read_text())
    env = _r_environment()
    path = REFERENCE / script
    if env["rscript"] is None:
        _R_STATUS[script] = "R not found: compared with stored outputs"
        _R_CACHE[key] = committed
        return committed
    missing = _r_packages_missing(path)
    if missing:
        _R_STATUS[script] = f"R {env['version']} lacks {', '.join(missing)}: compared with stored outputs"
        _R_CACHE[key] = committed
        return committed
    tmp_dir.mkdir(parents=True, exist_ok=True)
    outputs = [tmp_dir / stored, *(tmp_dir / name for name in extra_outputs)]
    proc = subprocess.run([env["rscript"], str(path), *map(str, outputs)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0 or not outputs[0].is_file():
        _R_STATUS[script] = f"R {env['version']}: the script FAILED"
        pytest.fail(f"Rscript tests/reference/{script} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}",
                    pytrace=False)
    fresh = json.loads(outputs[0].read_text())
    stale = _json_diff(fresh, committed)
    for name, out in zip(extra_outputs, outputs[1:]):
        if out.read_bytes() != (REFERENCE / name).read_bytes():
            stale.append(f"{name}: the fresh file differs from the committed one")
    if stale:
        _R_STATUS[script] = f"R {env['version']}: the committed outputs are STALE"
        pytest.fail(f"tests/reference/{stored} (committed) differs from a fresh run of {script} with "
                    f"R {env['version']}: " + "; ".join(stale[:10]) +
                    f". Regenerate with `Rscript tests/reference/{script}` and review the diff.", pytrace=False)
    _R_STATUS[script] = f"re-computed with R {env['version']} (equal to the stored outputs)"
    _R_CACHE[key] = fresh
    return fresh


@pytest.fixture(scope="session")
def r_reference_dir(tmp_path_factory) -> Path:
    """Where re-computed R references are written (never tests/reference itself)."""
    return tmp_path_factory.mktemp("r-reference")


# ---- what `make test` checked and skipped -----------------------------------------------------------

_R_SENT: dict[str, str] = {}
_SESSION_R_STATUS = _R_STATUS          # (tests of the policy swap _R_STATUS for a throw-away dict)
R_STATUS_KEY = "cxlab_r_reference"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each test's report carries the R-reference states that test settled, so the summary can
    list them when the tests ran in other processes (pytest-xdist's workers)."""
    outcome = yield
    new = {k: v for k, v in _SESSION_R_STATUS.items() if _R_SENT.get(k) != v}
    if new:
        _R_SENT.update(new)
        outcome.get_result().user_properties.append((R_STATUS_KEY, new))


def _r_states(tr) -> dict[str, str]:
    states: dict[str, str] = {}
    for reports in tr.stats.values():
        for rep in reports:
            for key, value in getattr(rep, "user_properties", None) or ():
                if key == R_STATUS_KEY:
                    states.update(value)
    return states


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    tr = terminalreporter
    tr.section("cxlab checks")
    r_states = _r_states(tr)
    if r_states:
        env = _r_environment()
        states = set(r_states.values())
        if len(states) == 1 and next(iter(states)).startswith("re-computed"):
            tr.write_line(f"R references: re-computed with R {env['version']} ({', '.join(sorted(r_states))}; "
                          "each equal to its stored output)")
        elif env["rscript"] is None:
            tr.write_line(f"R references: R not found: compared with stored outputs ({', '.join(sorted(r_states))})")
        else:
            for script, state in sorted(r_states.items()):
                tr.write_line(f"R references: {script}: {state}")
    else:
        tr.write_line("R references: no R-reference test ran in this session")
    counts = {k: len(tr.stats.get(k, [])) for k in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")}
    if any(counts.values()):
        tr.write_line("tests: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    reasons = Counter()
    for rep in tr.stats.get("skipped", []):
        longrepr = rep.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    for reason, n in reasons.most_common():
        tr.write_line(f"skipped ({n}): {reason}")
