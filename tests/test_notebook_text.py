"""Reviewer text in the notebooks: no parameter or spec-key code names in the prose a reviewer reads.

Markdown cells are shown as written in the HTML report; a reviewer who never saw Python cannot
read `retention_horizon_months` or `discount_rate` (the value it stands for is stated where the
result is shown)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from cxlab.report.params import read_parameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_names_no_parameter_or_spec_key(path):
    names = set(read_parameters(path))
    nb = nbformat.read(path, as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for code in re.findall(r"`([^`]+)`", cell.source):
            if code in names or re.fullmatch(r"[a-z_]+\.[a-z_.]+", code):   # a parameter, or a dotted spec key
                bad.append((i, code))
    assert not bad, f"{path.name}: code names in reviewer prose (cell, name): {bad}"


# ---- answers first: a notebook leads with a few findings, the evidence folded ------------------

def test_split_findings_leads_with_at_most_the_limit_and_keeps_the_rest_in_order():
    from cxlab.insight.narrative import MAX_LEAD_FINDINGS, split_findings

    assert 5 <= MAX_LEAD_FINDINGS <= 7
    lead = [f"answer {i}." for i in range(9)]
    answers, evidence = split_findings(lead, ["detail a.", "answer 1.", "", "detail b."], limit=6)
    assert answers == lead[:6]
    assert evidence == ["answer 6.", "answer 7.", "answer 8.", "detail a.", "detail b."]   # no repeat, no blank
    assert split_findings(["only."], []) == (["only."], [])


def test_evidence_fold_is_one_closed_fold_of_escaped_sentences():
    from cxlab.insight.narrative import evidence_fold

    html = evidence_fold(["Hazard ratio 0.74 <b>x</b>.", "Second."])
    assert html.startswith('<details class="cx-evidence-fold"><summary>More findings (2:') and " open" not in html
    assert "<li>Hazard ratio 0.74 &lt;b&gt;x&lt;/b&gt;.</li><li>Second.</li>" in html
    assert evidence_fold([]) == "" and evidence_fold(["", None]) == ""


def test_effect_sentences_take_the_article_their_figure_is_said_with():
    from cxlab.insight.narrative import effect_sentence

    def sentence(hr):
        return effect_sentence("cox", "Customers with a complaint open", hr, hr * 0.97, hr * 1.03)

    assert " have an 84 % higher risk" in sentence(1.84)
    assert " have an 8.5-fold higher risk" in sentence(8.5)
    assert " have an 11 % higher risk" in sentence(1.11) and " have an 18 % lower risk" in sentence(0.82)
    assert " have a 26 % lower risk" in sentence(0.74) and " have a 2.5-fold higher risk" in sentence(2.5)


def test_notebook_02_records_its_answers_through_its_findings_function():
    # the rules (answers first through split_findings, only warnings besides, the rest folded) are
    # survival_findings' and tested in tests/test_findings.py; the cell calls it and records it all
    nb = nbformat.read(next(p for p in NOTEBOOKS if p.stem.startswith("02-")), as_version=4)
    cell = next(c for c in nb.cells if "findings" in c.metadata.get("tags", []))
    src = cell.source
    assert "found = survival_findings(" in src and "record_findings(found)" in src
    assert "record_finding(" not in src and "record_metric(" not in src


# ---- thin notebooks: a cell is a short call and what the reader should see (issue 13) -----------

MAX_LOGIC_LINES = 15


def logic_lines(source: str) -> list[str]:
    """The lines of a code cell that do something: neither blank nor a comment."""
    return [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_logic_lines_count_code_not_comments_or_blanks():
    assert logic_lines("# a comment\n\n   # indented comment\nx = 1  # trailing\nif x:\n    y = 2\n") == [
        "x = 1  # trailing", "if x:", "    y = 2"]
    assert len(logic_lines("\n".join(f"x{i} = {i}" for i in range(MAX_LOGIC_LINES + 1)))) > MAX_LOGIC_LINES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_code_cell_holds_more_than_15_lines_of_logic(path):
    # a longer cell (findings assembly, model-term assembly, a table built column by column) is a
    # tested cxlab function; the cell keeps the call
    nb = nbformat.read(path, as_version=4)
    long = {cell.get("id", i): len(logic_lines(cell.source)) for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and len(logic_lines(cell.source)) > MAX_LOGIC_LINES}
    assert not long, f"{path.name}: cells with more than {MAX_LOGIC_LINES} lines of logic (id: lines): {long}"


def test_ci_table_percent_cells_and_suppressed_rows_blank():
    import pandas as pd

    from cxlab.insight.narrative import ci_table

    df = pd.DataFrame({"cell": ["a", "b"], "d": [0.237, 0.5], "lo": [0.211, 0.4], "hi": [0.266, 0.6],
                       "suppressed": [False, True]})
    out = ci_table(df, {"defection (95 % CI)": ("d", "lo", "hi")}, term_col="cell", p_col=None, percent=True)
    assert out["defection (95 % CI)"].tolist() == ["23.7 % (21.1–26.6 %)", "–"]   # privacy: the small row says nothing
    plain = ci_table(df.assign(suppressed=False), {"x": ("d", "lo", "hi")}, term_col="cell", p_col=None)
    assert plain["x"].tolist() == ["0.24 (0.21–0.27)", "0.50 (0.40–0.60)"]


def test_the_fallback_sentence_lists_its_terms_in_words_with_agreement():
    from cxlab.insight.narrative import fallback_sentence

    assert fallback_sentence(["affect"]) == "Findings use the fallback model: the effect of affect changes with tenure"
    assert fallback_sentence(["affect", "segment", "affect"]) == (
        "Findings use the fallback model: the effects of affect and segment change with tenure")
    assert fallback_sentence(["dgc", "channel", "complaint_open"]).endswith(
        "effects of disappointed good customer, channel and a complaint open change with tenure")
