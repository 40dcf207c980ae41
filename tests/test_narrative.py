"""Findings in words are generated from numbers: direction, size, uncertainty and scope.

The grammar (cxlab.insight.narrative.effect_sentence) is checked over every model kind x sign of the
effect x position of the 95 % interval (below, above or straddling the null): the direction word
must follow the estimate, and an interval that includes the null must read "no clear link"."""

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from cxlab.insight.narrative import (EFFECT_KINDS, cox_findings, diagnostic_warnings, direction, effect_sentence,
                             flag_findings, format_money, hazard_sentence, human_label, retention_findings)

RATIO_KINDS = [k for k, v in EFFECT_KINDS.items() if v["ratio"]]

# (estimate, lower, upper) relative to the null: "below", "above", "straddle-" (estimate below
# the null, interval across it), "straddle+" (estimate above, interval across it)
RATIO_CASES = {"below": (0.70, 0.60, 0.80), "above": (1.30, 1.20, 1.45), "straddle-": (0.90, 0.80, 1.10),
               "straddle+": (1.10, 0.95, 1.30), "far-above": (2.50, 2.10, 3.00)}
DIFF_CASES = {"below": (-12.0, -20.0, -5.0), "above": (12.0, 5.0, 20.0), "straddle-": (-3.0, -10.0, 4.0),
              "straddle+": (3.0, -4.0, 10.0), "far-above": (250.0, 100.0, 400.0)}

SUBJECT = "Group A"   # no direction word in the subject, so every direction word comes from the grammar


def words(kind):
    spec = EFFECT_KINDS[kind]
    return spec["up"], spec["down"]


@pytest.mark.parametrize("kind,case", list(itertools.product(EFFECT_KINDS, RATIO_CASES)))
def test_every_kind_sign_and_interval(kind, case):
    est, lo, hi = (RATIO_CASES if EFFECT_KINDS[kind]["ratio"] else DIFF_CASES)[case]
    s = effect_sentence(kind, SUBJECT, est, lo, hi)
    up, down = words(kind)
    tokens = set(re.findall(r"[a-z]+", s.lower()))
    if case.startswith("straddle"):
        assert "no clear" in s, s
        assert up not in tokens and down not in tokens, s   # no direction when the CI includes the null
    else:
        assert "no clear" not in s, s
        expected, other = (up, down) if case in ("above", "far-above") else (down, up)
        assert expected in tokens and other not in tokens, s
    assert "times higher" not in s and "times lower" not in s, s   # "0.44 times higher" is impossible
    assert s.endswith(".") and s[0].isupper()
    if EFFECT_KINDS[kind]["ratio"]:
        assert f"{est:.2f}" in s and f"{lo:.2f}–{hi:.2f}" in s, s   # estimate and its CI are stated


def test_direction_follows_the_estimate_property():
    rng = np.random.default_rng(1)
    for kind in EFFECT_KINDS:
        spec = EFFECT_KINDS[kind]
        for _ in range(300):
            if spec["ratio"]:
                log_est = rng.normal(0, 0.5)
                half = abs(rng.normal(0, 0.3))
                est, lo, hi = np.exp([log_est, log_est - half, log_est + half])
            else:
                est = rng.normal(0, 50)
                half = abs(rng.normal(0, 30))
                lo, hi = est - half, est + half
            s = effect_sentence(kind, SUBJECT, est, lo, hi)
            tokens = set(re.findall(r"[a-z]+", s.lower()))
            d = direction(kind, est, lo, hi)
            if lo <= spec["null"] <= hi:
                assert d is None and "no clear" in s
            else:
                want = spec["up"] if est > spec["null"] else spec["down"]
                assert d == want and want in tokens, s
                assert "no clear" not in s


def test_ratio_sizes_in_words():
    assert "30 % lower risk of defecting at any given time" in effect_sentence("cox", SUBJECT, 0.7, 0.6, 0.8)
    assert "2.5-fold higher risk" in effect_sentence("dgc", SUBJECT, 2.5, 2.1, 3.0)
    assert "stay 20 % longer" in effect_sentence("aft", SUBJECT, 1.2, 1.1, 1.3)
    assert "stay 15 % shorter" in effect_sentence("aft", SUBJECT, 0.85, 0.8, 0.9)
    assert "have 20 % higher odds of still being a customer" in effect_sentence("logistic", SUBJECT, 1.2, 1.1, 1.3)
    assert "a better recommendation answer" in effect_sentence("ordinal", SUBJECT, 1.2, 1.1, 1.3)


def test_time_dependent_ratio_states_its_tenure():
    s = effect_sentence("cox", SUBJECT, 0.75, 0.6, 0.9, at_tenure=24)
    assert "at a tenure of 24 months only" in s and "at any given time" not in s
    assert "at any given time" in effect_sentence("cox", SUBJECT, 0.75, 0.6, 0.9)
    summary = pd.DataFrame({
        "term": ["recognition", "empathy", "recognition x log(t/24)"],
        "variable": ["recognition", "empathy", "recognition"],
        "kind": ["construct", "construct", "time_interaction"],
        "hr_per_sd": [0.75, 0.9, np.nan], "lower_per_sd": [0.6, 0.85, np.nan], "upper_per_sd": [0.9, 0.95, np.nan]})
    out = cox_findings(summary, t_ref=24)
    rec = [s for s in out if "on recognition" in s][0]
    emp = [s for s in out if "on empathy" in s][0]
    assert "at a tenure of 24 months only" in rec and "at any given time" in emp


def test_whatif_counts_and_money():
    s = effect_sentence("whatif", "Raising recognition", -12.4, -20.2, -5.3, outcome="defections within 24 months")
    assert s == ("Raising recognition would mean 12 fewer defections within 24 months (95 % CI 5 to 20 fewer).")
    m = effect_sentence("whatif", "Raising recognition", 12345.67, 5000.2, 20000.9,
                        outcome="discounted margin", amount=True, money="EUR")
    assert "EUR 12,346 more discounted margin" in m and "EUR 5,000 to EUR 20,001 more" in m
    assert not re.search(r"\d\.\d", m)   # whole currency units: no cents
    nc = effect_sentence("whatif", "Raising recognition", -3, -10, 4, outcome="defections")
    assert "no clear change in defections" in nc and "fewer" not in nc and "more" not in nc
    assert format_money(-1234.4, "EUR", signed=True) == "−EUR 1,234"
    assert format_money(1234567) == "1,234,567"


def test_missing_and_inconsistent_inputs():
    assert "could not be estimated" in effect_sentence("cox", SUBJECT, float("nan"), 0.1, 0.2)
    assert "could not be estimated" in hazard_sentence("x", None, 0.1, 0.2)
    with pytest.raises(ValueError, match="outside its interval"):
        effect_sentence("cox", SUBJECT, 0.5, 0.6, 0.8)     # columns mixed up
    with pytest.raises(ValueError, match="kind"):
        effect_sentence("poisson", SUBJECT, 0.5, 0.4, 0.6)


def test_hazard_sentence_direction_and_uncertainty():
    assert hazard_sentence("recognition", 0.7, 0.6, 0.8).startswith(
        "Customers one SD higher on recognition have a 30 % lower risk of defecting")
    assert "20 % higher risk" in hazard_sentence("price", 1.2, 1.1, 1.3)
    assert "no clear link" in hazard_sentence("affect", 0.95, 0.85, 1.05)


def summary(rows):
    return pd.DataFrame(rows, columns=["term", "hr_per_sd", "lower_per_sd", "upper_per_sd"]).assign(kind="construct")


def test_cox_findings_name_the_strongest_and_grammar():
    out = cox_findings(summary([["empathie", 0.9, 0.85, 0.95], ["reconnaissance", 0.7, 0.6, 0.78],
                                ["proximité", 0.85, 0.8, 0.9]]))
    assert out[0].startswith("Reconnaissance matters most: customers one SD higher on reconnaissance have a 30 %")
    assert "Proximité and empathie also protect, less strongly." in out[0]
    assert len(out) == 3
    # overlapping intervals: the order is not claimed
    close = cox_findings(summary([["a", 0.7, 0.6, 0.82], ["b", 0.78, 0.7, 0.88]]))
    assert close[0].startswith("A has the strongest estimated link, though its interval overlaps that of b, "
                               "so which matters most is uncertain: customers one SD higher on a have a 30 %")
    assert "matters most:" not in close[0] and "less strongly" not in close[0]
    # the verifier's demo case: the other perception's interval includes 1 AND reaches this one's
    vague = cox_findings(summary([["affect", 0.62, 0.50, 0.77], ["recognition", 0.86, 0.66, 1.11]]))
    assert "matters most:" not in vague[0] and "overlaps that of recognition" in vague[0]
    # boundary: the other's lower bound just above / at this one's upper bound
    assert "matters most:" in cox_findings(summary([["a", 0.62, 0.5, 0.77], ["b", 0.9, 0.771, 1.1]]))[0]
    assert "matters most:" not in cox_findings(summary([["a", 0.62, 0.5, 0.77], ["b", 0.9, 0.77, 1.1]]))[0]
    two = cox_findings(summary([["a", 0.7, 0.6, 0.8], ["b", 0.9, 0.85, 0.95]]))
    assert "B also protects" in two[0]
    none = cox_findings(summary([["a", 1.0, 0.9, 1.1]]))
    assert none[0].startswith("No perception is clearly linked")
    assert "no clear link" in none[1]
    # a harmful perception is never named as the one that "matters most"
    harm = cox_findings(summary([["a", 1.3, 1.2, 1.4]]))
    assert harm[0].startswith("No perception is clearly linked") and "30 % higher risk" in harm[1]


def test_flag_findings_for_complaints():
    tv = pd.DataFrame({"term": ["complaint_open", "complaint_resolved_no_goodwill"], "hr": [0.44, 1.8],
                       "lower": [0.17, 1.2], "upper": [1.18, 2.7]})
    out = flag_findings(tv, ["complaint_open", "complaint_resolved_no_goodwill", "absent"])
    assert len(out) == 2
    assert out[0].startswith("Customers with a complaint open: no clear link")
    assert "80 % higher risk" in out[1] and "without a goodwill gesture" in out[1]


def test_human_labels():
    assert human_label("channel[online]") == "channel: online"
    assert human_label("p_holm") == "p-value (Holm-adjusted)"
    assert human_label("defection_12m_lower") == "defection within 12 months, lower bound"
    assert human_label("dgc") == "disappointed good customer"
    assert human_label("ame") == "average marginal effect"
    assert human_label("affect x log(t/24.5)") == "affect: change with tenure"
    assert human_label("some_new_name") == "some new name"
    assert human_label("channel[T.online]") == "channel: online" and human_label("channel=online") == "channel: online"
    assert human_label("auc_24m") == "AUC at 24 months" and human_label("defection_6m") == "defection within 6 months"
    assert human_label("complaint_open[x]") == "a complaint open: x"   # the level's variable in words too


def test_defector_table_is_narrow_and_blanks_a_suppressed_cell():
    from cxlab.insight.narrative import defector_table

    wt = pd.DataFrame({"cell": ["disappointed good customers", "recognised others"], "n": [250, 8],
                       "customer_share": [0.25, 0.008], "defector_share": [0.40, 0.01],
                       "defector_share_lower": [0.35, 0.0], "defector_share_upper": [0.45, 0.02],
                       "ratio": [1.6, 1.25], "lower": [1.4, 0.5], "upper": [1.8, 2.0],
                       "p_highest_share": [0.97, 0.0], "suppressed": [False, True]})
    view = defector_table(wt)
    assert list(view.columns) == ["cell", "respondents", "share of respondents",
                                  "share of expected defectors (95 % CI)",
                                  "ratio to its share of respondents (95 % CI)", "probability of the largest share",
                                  "suppressed"]
    assert view.iloc[0].tolist() == ["disappointed good customers", 250, 0.25, "40.0 % (35.0–45.0 %)",
                                     "1.60 (1.40–1.80)", 0.97, False]
    assert view.iloc[1, 3] == "–" and view.iloc[1, 4] == "–"


def test_retention_and_diagnostics_in_words():
    ret = pd.DataFrame({"time": [12.0, 24.0], "estimate": [0.891, 0.5], "lower": [0.88, 0.4], "upper": [0.9, 0.6],
                        "suppressed": [False, True]})
    out = retention_findings(ret)
    assert out == ["89 % of respondents were still customers 12 months after the survey (95 % CI 88 %–90 %)."]
    diag = pd.DataFrame({"check": ["events_per_parameter", "vif"], "term": [None, "empathy"], "value": [6.0, 2.0],
                         "threshold": [10.0, 5.0], "status": ["warning", "ok"], "message": ["60 events for 10", ""]})
    assert diagnostic_warnings(diag) == ["Few events per model parameter (value 6, threshold 10): 60 events for 10."]


def test_interval_touching_the_null_includes_it():
    assert "no clear link" in effect_sentence("cox", SUBJECT, 0.8, 0.64, 1.0)
    assert "no clear change" in effect_sentence("whatif", SUBJECT, -5.0, -10.0, 0.0)
    assert direction("aft", 1.2, 1.0, 1.4) is None


def test_ci_table_is_narrow_and_labelled():
    from cxlab.insight.narrative import ci_table

    df = pd.DataFrame({"term": ["recognition", "channel[online]"], "hr": [0.72, 1.1], "lower": [0.65, 0.9],
                       "upper": [0.8, 1.3], "p": [0.0001, 0.2346]})
    t = ci_table(df, {"hazard ratio (95 % CI)": ("hr", "lower", "upper")})
    assert list(t.columns) == ["term", "hazard ratio (95 % CI)", "p-value"]
    assert t.iloc[0].tolist() == ["recognition", "0.72 (0.65–0.80)", "< 0.001"]
    assert t.iloc[1].tolist() == ["channel: online", "1.10 (0.90–1.30)", "0.235"]


def test_dgc_answer_yes_no_cant_tell():
    from cxlab.insight.narrative import dgc_answer

    dgc = "disappointed good customers"
    yes, s = dgc_answer({dgc: (2.0, 1.5, 2.6), "disappointed others": (1.4, 1.1, 1.8)})
    assert yes == "yes" and s.startswith("Yes: ") and "highest estimated risk of the four cells" in s
    assert "not clearly higher" not in s
    # the highest estimate, but another cell's interval includes it: not a "yes"
    ct0, s = dgc_answer({dgc: (3.42, 2.40, 4.89), "modest and unrecognised": (3.07, 1.94, 4.84)})
    assert ct0 == "can't tell" and "not clearly higher than that of modest and unrecognised (hazard ratio 3.07" in s
    # boundary: the other cell's upper bound just below / at the focus estimate
    assert dgc_answer({dgc: (3.0, 2.0, 4.0), "modest and unrecognised": (2.0, 1.5, 2.99)})[0] == "yes"
    assert dgc_answer({dgc: (3.0, 2.0, 4.0), "modest and unrecognised": (2.0, 1.5, 3.0)})[0] == "can't tell"
    no, s = dgc_answer({dgc: (0.7, 0.55, 0.9)})
    assert no == "no" and "30 % lower risk" in s
    no2, s = dgc_answer({dgc: (1.3, 1.1, 1.5), "disappointed others": (2.5, 1.9, 3.2)})
    assert no2 == "no" and s.startswith("No: disappointed others leave sooner")
    ct, s = dgc_answer({dgc: (1.1, 0.9, 1.4)})
    assert ct == "can't tell" and "no clear link" in s
    ct2, s = dgc_answer({dgc: (1.6, 1.2, 2.0), "disappointed others": (1.9, 1.3, 2.6)})
    assert ct2 == "can't tell" and "intervals overlap" in s
    assert dgc_answer({dgc: (float("nan"), 1, 2)})[0] == "can't tell"
    assert dgc_answer({})[0] == "can't tell"


def test_dgc_answer_on_direct_comparisons():
    from cxlab.insight.narrative import dgc_answer

    dgc, rgc, mau, mbr = ("disappointed good customers", "recognised good customers", "modest and unrecognised",
                          "modest but recognised")
    cells = {dgc: (3.0, 2.5, 3.6), mau: (2.4, 2.0, 3.05), mbr: (1.5, 1.2, 1.9)}
    # overlapping intervals against the reference: the conservative reading can't tell ...
    assert dgc_answer(cells)[0] == "can't tell"
    # ... the direct comparison (same model, covariance counted) can
    direct = {rgc: (3.0, 2.5, 3.6), mau: (1.25, 1.05, 1.49), mbr: (2.0, 1.6, 2.5)}
    yes, s = dgc_answer(cells, contrasts=direct)
    assert yes == "yes" and "the closest is 1.25 times that of modest and unrecognised (95 % CI 1.05–1.49)" in s
    # boundary: the lower bound at 1 is not "clearly higher"
    ct, s = dgc_answer(cells, contrasts=dict(direct, **{mau: (1.2, 1.0, 1.44)}))
    assert ct == "can't tell" and s.endswith("not clearly higher than that of modest and unrecognised: compared "
                                             "directly, 1.20 times theirs (95 % CI 1.00–1.44, which includes 1).")
    assert dgc_answer(cells, contrasts=dict(direct, **{mau: (1.2, 1.001, 1.44)}))[0] == "yes"
    # "no" needs another cell clearly riskier allowing for the 3 comparisons (Bonferroni):
    # 0.80 (0.66-0.97) is below 1 at 95 % but not after the allowance -> can't tell, naming that cell
    ct2, s = dgc_answer(cells, contrasts=dict(direct, **{mau: (0.80, 0.66, 0.97)}))
    assert ct2 == "can't tell" and s.endswith("not the highest: compared directly, it is 0.80 times that of "
                                              "modest and unrecognised (95 % CI 0.66–0.97; 0.63–1.01 allowing for "
                                              "3 comparisons, which includes 1).")
    # an interval that includes 1 on its own says so without the allowance
    assert dgc_answer(cells, contrasts=dict(direct, **{mau: (0.9, 0.7, 1.15)}))[1].endswith(
        "(95 % CI 0.70–1.15, which includes 1).")
    no, s = dgc_answer(cells, contrasts=dict(direct, **{mau: (0.70, 0.58, 0.85)}))
    assert no == "no" and s.startswith("No: modest and unrecognised leave sooner. Compared directly") and "3 comparisons" in s
    # with a single comparison there is no allowance: 0.80 (0.66-0.97) is then a "no"
    assert dgc_answer({dgc: (0.8, 0.66, 0.97)}, contrasts={rgc: (0.80, 0.66, 0.97)})[0] == "no"
    # not finite (withheld) comparisons are ignored; none left -> the interval rule
    assert dgc_answer(cells, contrasts={mau: (float("nan"),) * 3}) == dgc_answer(cells)
