"""The data contract on tiny hand-made studies: a clean study passes and yields canonical typed
tables; each rule is broken by one bad file and reported with its exact file, column, rule and
row count, with row numbers (never identifiers) as examples; problems in several files come
together; Parquet works; the CLI exits 2 on bad data without a traceback.

Reference: the expected rows are counted by hand from the tables below (row 1 = first data row
under the CSV header).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cxlab.errors import CxlabError, DataContractError
from cxlab.study import load_study
from cxlab.data.validate import PROBLEM_COLUMNS, StudyData, ValidationReport, load_study_data, validate_study

CANARY = "SECRET-ID-123"
PYTHON = sys.executable  # the interpreter running the tests (a fresh clone has its own venv)
ROOT = Path(__file__).resolve().parents[1]

# the user's own names: French, with spaces, accents and punctuation
ID = "n° client"
START, END, VALUE, REGION = "date d'entrée", "date de départ", "marge 12 mois", "région"
ANSWERED = "répondu le"
REC1, REC2, EMP1, EMP2 = "q reconnaissance 1", "q reconnaissance 2", "q empathie 1", "q empathie 2"
SELF, NPS = "je suis bon client", "recommandation (0-10)"
OPENED, CLOSED, GESTURE = "ouverte le", "fermée le", "geste commercial"


def clean_tables() -> dict[str, pd.DataFrame]:
    """12 customers, 14 answers, 4 complaints; every value valid. All cells are strings."""
    ids = ["C01", "C02", CANARY, "C04", "C05", "C06", "C07", "C08", "C09", "C10", "C11", "C12"]
    customers = pd.DataFrame({
        ID: ids,
        START: ["2019-01-15", "2020-03-01", "2018-06-30", "2021-01-01", "2019-09-09", "2017-02-02",
                "2020-12-31", "2022-05-05", "2016-01-01", "2019-07-01", "2023-01-01", "2018-11-11"],
        END: ["", "2025-06-01", "", "2024-02-29", "", "2023-12-31T17:30:00", "", "2026-09-01", "",
              "2026-06-30", "", ""],
        VALUE: ["120.5", "80", "-3.25", "0", "", "45", "310", "12", "77.7", "5", "66", "1e2"],
        REGION: ["nord", "sud", "nord", "est", "ouest", "sud", "nord", "", "est", "sud", "nord", "ouest"],
    })
    sid = ["C01", "C02", CANARY, "C04", "C05", "C06", "C07", "C08", "C09", "C10", "C11", "C12", "C01", CANARY]
    surveys = pd.DataFrame({
        ID: sid,
        ANSWERED: ["2024-01-10", "2023-05-05", "2024-02-01 09:15:00", "2023-03-03", "2024-04-04",
                   "2023-12-31", "2024-06-06", "2026-08-15", "2024-01-01", "2025-01-01", "2024-03-03",
                   "2024-05-05", "2025-01-10", "2025-02-01"],
        REC1: ["4", "2", "5", "99", "3", "1", "", "4", "5", "3", "2", "4", "4", "5"],
        REC2: ["4", "1", "5", "3", "", "2", "3", "4", "4", "3", "2", "4", "3", "5"],
        EMP1: ["3", "2", "4", "3", "3", "99", "3", "5", "4", "2", "1", "3", "3", "4"],
        EMP2: ["3.0", "2", "4", "3", "3", "2", "3", "5", "4", "2", "1", "3", "3", "4"],
        SELF: ["5", "4", "5", "4", "3", "5", "4", "2", "5", "99", "3", "4", "5", "5"],
        NPS: ["9", "0", "10", "7", "", "3", "8", "10", "6", "99", "5", "9", "8", "10"],
    })
    complaints = pd.DataFrame({
        ID: ["C02", CANARY, "C06", "C10"],
        OPENED: ["2024-01-01", "2022-02-02", "2023-12-31 18:00:00", "2025-05-05"],  # same day as closed
        CLOSED: ["2024-02-01", "", "2023-12-31", "2025-06-01"],
        GESTURE: ["yes", "0", "TRUE", ""],
    })
    return {"customers": customers, "surveys": surveys, "complaints": complaints}


def spec_dict(**over) -> dict:
    spec = dict(
        name="Baromètre relationnel (test)",
        snapshot_date="2026-06-30",
        customers=dict(path="clients.csv", id=ID, start=START, end=END, value=VALUE, covariates=[REGION]),
        surveys=dict(path="barometre.csv", id=ID, date=ANSWERED, scale=[1, 5], missing_codes=[99],
                     constructs={"reconnaissance": [REC1, REC2], "empathie": [EMP1, EMP2]},
                     self_status=SELF, outcomes={"recommandation": NPS},
                     outcome_scales={"recommandation": [0, 10]}),
        complaints=dict(path="reclamations.csv", id=ID, opened=OPENED, closed=CLOSED, compensated=GESTURE),
        segments={"disappointed": {"recognition": "reconnaissance"}},
    )
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


def write_study(folder: Path, tables: dict[str, pd.DataFrame] | None = None, fmt: str = "csv",
                **spec_over) -> Path:
    """Write the tables (default: the clean ones) and a study.yaml into ``folder``."""
    tables = clean_tables() if tables is None else tables
    spec = spec_dict(**spec_over)
    for role, df in tables.items():
        if df is None or spec.get(role) is None:
            continue
        path = folder / spec[role]["path"]
        if fmt == "parquet":
            path = path.with_suffix(".parquet")
            spec[role]["path"] = path.name
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
    spec_path = folder / "study.yaml"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return spec_path


def validate(folder: Path, tables=None, **over) -> ValidationReport:
    return validate_study(load_study(write_study(folder, tables, **over)))


def problem_keys(report: ValidationReport) -> list[tuple]:
    return [tuple(r) for r in report.problems[["file", "column", "rule", "rows"]].itertuples(index=False)]


def assert_private(report: ValidationReport) -> None:
    """No identifier in anything the report shows; examples are row numbers only."""
    assert CANARY not in report.to_text()
    assert CANARY not in report.problems.to_string()
    assert CANARY not in report._repr_html_()
    assert CANARY not in report.summary.to_string()
    for ex in report.problems["examples"]:
        assert ex == "" or all(part.strip().isdigit() for part in ex.split(","))


def only_problem(report: ValidationReport) -> dict:
    assert len(report.problems) == 1, report.to_text()
    assert not report.ok and report.data is None
    assert_private(report)
    return report.problems.iloc[0].to_dict()


# --------------------------------------------------------------------------------------------
# clean study


def test_clean_study_passes_with_canonical_tables(tmp_path):
    report = validate(tmp_path)
    assert report.ok, report.to_text()
    assert list(report.problems.columns) == PROBLEM_COLUMNS and report.problems.empty
    assert report.to_text() == ("All checks passed: clients.csv 12 rows, barometre.csv 14 rows, "
                                "reclamations.csv 4 rows.")
    data = load_study_data(load_study(tmp_path / "study.yaml"))
    assert isinstance(data, StudyData)

    c = data.customers
    assert list(c.columns) == ["customer_id", "start", "end", "value", REGION, "source_row"]
    assert c["customer_id"].tolist()[:3] == ["C01", "C02", CANARY]       # original order kept
    assert c["start"].dtype == "datetime64[ns]" and c["end"].dtype == "datetime64[ns]"
    assert c["value"].dtype == "float64"
    assert str(c[REGION].dtype) in ("string", "category")
    assert c["end"].isna().sum() == 7                                    # NaT = still active
    assert c.loc[5, "end"] == pd.Timestamp("2023-12-31 17:30:00")        # a date-time
    assert c["value"].tolist()[:5] == pytest.approx([120.5, 80, -3.25, 0, np.nan], nan_ok=True)
    assert c.loc[11, "value"] == 100.0
    assert pd.isna(c.loc[7, REGION])
    assert c["source_row"].tolist() == list(range(1, 13))

    s = data.surveys
    assert list(s.columns) == ["customer_id", "date", REC1, REC2, EMP1, EMP2, SELF, NPS, "source_row"]
    assert s["date"].dtype == "datetime64[ns]"
    assert all(s[col].dtype == "float64" for col in (REC1, REC2, EMP1, EMP2, SELF, NPS))
    assert np.isnan(s.loc[3, REC1]) and np.isnan(s.loc[5, EMP1])          # 99 -> NaN
    assert np.isnan(s.loc[9, SELF]) and np.isnan(s.loc[9, NPS])
    assert s[NPS].max() == 10.0 and s[NPS].min() == 0.0
    assert s.loc[2, "date"] == pd.Timestamp("2024-02-01 09:15:00")

    k = data.complaints
    assert list(k.columns) == ["customer_id", "opened", "closed", "compensated", "source_row"]
    assert k["compensated"].tolist() == pytest.approx([1.0, 0.0, 1.0, np.nan], nan_ok=True)
    assert pd.isna(k.loc[1, "closed"]) and k["closed"].dtype == "datetime64[ns]"


def test_summary_counts_missing_codes_and_empty_cells(tmp_path):
    summary = validate(tmp_path).summary
    files = summary[summary["column"].isna()].set_index("file")
    assert files.loc["clients.csv", ["rows", "columns"]].tolist() == [12, 5]
    assert files.loc["barometre.csv", ["rows", "columns"]].tolist() == [14, 8]
    items = summary.dropna(subset=["column"]).set_index("column")
    # counted by hand in clean_tables(): 99 = don't know, "" = empty
    assert items.loc[REC1, ["missing_codes", "empty"]].tolist() == [1, 1]
    assert items.loc[REC2, ["missing_codes", "empty"]].tolist() == [0, 1]
    assert items.loc[EMP1, ["missing_codes", "empty"]].tolist() == [1, 0]
    assert items.loc[SELF, ["missing_codes", "empty"]].tolist() == [1, 0]
    assert items.loc[NPS, ["missing_codes", "empty"]].tolist() == [1, 1]


def test_optional_columns_absent_from_spec(tmp_path):
    t = clean_tables()
    report = validate(tmp_path, t, customers={"value": None, "covariates": []},
                      complaints={"closed": None, "compensated": None})
    assert report.ok, report.to_text()
    assert report.data.customers["value"].isna().all()
    assert report.data.complaints["closed"].isna().all()
    assert report.data.complaints["compensated"].isna().all()
    report = validate(tmp_path, t, complaints=None)
    assert report.ok and report.data.complaints is None


# --------------------------------------------------------------------------------------------
# one bad file per rule


def test_missing_file_is_one_problem_and_others_still_checked(tmp_path):
    t = clean_tables()
    t["customers"].loc[1, START] = "pas une date"
    write_study(tmp_path, t, surveys={"path": "absent.csv"})
    (tmp_path / "absent.csv").unlink()
    report = validate_study(load_study(tmp_path / "study.yaml"))
    assert problem_keys(report) == [("clients.csv", START, "date_parseable", 1),
                                    ("absent.csv", "", "file_exists", 0)]
    assert "surveys.path" in report.problems.loc[1, "fix"]
    assert_private(report)


def test_unreadable_file(tmp_path):
    write_study(tmp_path)
    (tmp_path / "reclamations.csv").write_bytes("n° client,ouverte le\nC01,é\n".encode("latin-1"))
    report = validate_study(load_study(tmp_path / "study.yaml"))
    p = only_problem(report)
    assert (p["file"], p["column"], p["rule"], p["rows"]) == ("reclamations.csv", "", "file_readable", 0)
    assert "UTF-8" in p["fix"]


def test_file_without_rows(tmp_path):
    t = clean_tables()
    t["complaints"] = t["complaints"].iloc[:0]
    p = only_problem(validate(tmp_path, t))
    assert (p["file"], p["rule"], p["rows"]) == ("reclamations.csv", "has_rows", 0)


def test_missing_column_names_the_spec_key(tmp_path):
    report = validate(tmp_path, customers={"start": "opened"})
    p = only_problem(report)
    assert (p["file"], p["column"], p["rule"], p["rows"]) == ("clients.csv", "opened", "column_present", 0)
    assert p["fix"].startswith("customers.start names column 'opened', which clients.csv does not "
                               "have; columns are: 'n° client', \"date d'entrée\"")


def test_missing_item_and_outcome_columns(tmp_path):
    report = validate(tmp_path, surveys={"constructs": {"reconnaissance": [REC1, "q reconaissance 2"],
                                                       "empathie": [EMP1, EMP2]},
                                         "outcomes": {"recommandation": "nps"}})
    assert problem_keys(report) == [("barometre.csv", "q reconaissance 2", "column_present", 0),
                                    ("barometre.csv", "nps", "column_present", 0)]
    fixes = report.problems["fix"].tolist()
    assert fixes[0].startswith("surveys.constructs.reconnaissance names column")
    assert f"Did you mean {REC2!r}?" in fixes[0]
    assert fixes[1].startswith("surveys.outcomes.recommandation names column 'nps'")


def test_empty_ids_and_required_dates(tmp_path):
    t = clean_tables()
    t["surveys"].loc[[4, 10], ID] = ""
    t["surveys"].loc[6, ID] = "   "          # blank is empty too
    t["customers"].loc[2, START] = ""
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("clients.csv", START, "not_empty", 1),
                                    ("barometre.csv", ID, "not_empty", 3)]
    assert report.problems["examples"].tolist() == ["3", "5, 7, 11"]
    assert_private(report)


def test_duplicate_customer_ids(tmp_path):
    t = clean_tables()
    extra = t["customers"].iloc[[2, 0, 0]].assign(**{ID: [CANARY, "C77", "C77"]})
    t["customers"] = pd.concat([t["customers"], extra], ignore_index=True)
    # rows 3 and 13 share the canary id, rows 14 and 15 share another
    p = only_problem(validate(tmp_path, t))
    assert (p["file"], p["column"], p["rule"], p["rows"]) == ("clients.csv", ID, "unique", 4)
    assert p["examples"] == "3, 13, 14, 15"
    assert "2 ids appear more than once" in p["fix"]


def test_unparseable_dates_in_every_date_column(tmp_path):
    t = clean_tables()
    t["customers"].loc[1, START] = "01/03/2020"      # not ISO: day/month order is ambiguous
    t["customers"].loc[3, END] = "9999-12-31"        # placeholder for "active"
    t["customers"].loc[[6, 7], END] = ["2020-02-30", "soon"]
    t["surveys"].loc[0, ANSWERED] = "hier"
    t["complaints"].loc[2, CLOSED] = "31.12.2023"
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("clients.csv", START, "date_parseable", 1),
                                    ("clients.csv", END, "date_parseable", 3),
                                    ("barometre.csv", ANSWERED, "date_parseable", 1),
                                    ("reclamations.csv", CLOSED, "date_parseable", 1)]
    assert report.problems["examples"].tolist() == ["2", "4, 7, 8", "1", "3"]
    assert "9999-12-31" in report.problems.loc[1, "fix"]   # the hint, not the cell
    assert_private(report)


def test_end_before_start_and_closed_before_opened(tmp_path):
    t = clean_tables()
    # a 13th customer (no answer, no complaint) who leaves before arriving
    extra = pd.DataFrame([["C13", "2022-01-01", "2021-12-31", "1", "nord"]], columns=t["customers"].columns)
    t["customers"] = pd.concat([t["customers"], extra], ignore_index=True)
    t["complaints"].loc[3, CLOSED] = "2025-05-04"    # opened 2025-05-05
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("clients.csv", END, "start_before_end", 1),
                                    ("reclamations.csv", CLOSED, "opened_before_closed", 1)]
    assert report.problems["examples"].tolist() == ["13", "4"]


def test_value_and_items_must_be_numbers(tmp_path):
    t = clean_tables()
    t["customers"].loc[[0, 3], VALUE] = ["12,5", "€40"]
    t["surveys"].loc[2, REC2] = "beaucoup"
    t["surveys"].loc[5, NPS] = "NaN"
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("clients.csv", VALUE, "numeric", 2),
                                    ("barometre.csv", REC2, "numeric", 1),
                                    ("barometre.csv", NPS, "numeric", 1)]
    assert report.problems["examples"].tolist() == ["1, 4", "3", "6"]


def test_items_and_outcomes_inside_their_scale(tmp_path):
    t = clean_tables()
    t["surveys"].loc[[1, 12], EMP2] = ["6", "0"]      # item scale [1, 5]
    t["surveys"].loc[4, SELF] = "98"                   # not a declared missing code
    t["surveys"].loc[[0, 3], NPS] = ["11", "-1"]      # outcome scale [0, 10]; 7 and 0 are fine
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("barometre.csv", EMP2, "in_scale", 2),
                                    ("barometre.csv", SELF, "in_scale", 1),
                                    ("barometre.csv", NPS, "in_scale", 2)]
    assert report.problems["examples"].tolist() == ["2, 13", "5", "1, 4"]
    assert "surveys.outcome_scales.recommandation [0, 10]" in report.problems.loc[2, "fix"]
    assert "surveys.scale [1, 5]" in report.problems.loc[0, "fix"]


def test_many_offending_rows_are_all_counted_and_five_shown(tmp_path):
    t = clean_tables()
    t["surveys"].loc[[1, 2, 4, 6, 8, 9, 11], EMP1] = "7"
    p = only_problem(validate(tmp_path, t))
    assert (p["column"], p["rule"], p["rows"], p["examples"]) == (EMP1, "in_scale", 7, "2, 3, 5, 7, 9")


def test_compensated_is_boolean(tmp_path):
    t = clean_tables()
    t["complaints"].loc[[0, 2], GESTURE] = ["oui", "2"]
    p = only_problem(validate(tmp_path, t))
    assert (p["file"], p["column"], p["rule"], p["rows"], p["examples"]) == (
        "reclamations.csv", GESTURE, "boolean", 2, "1, 3")


def test_survey_and_complaint_ids_must_be_customers(tmp_path):
    t = clean_tables()
    t["surveys"].loc[[3, 7], ID] = ["X404", "c01"]   # ids are case-sensitive
    t["complaints"].loc[0, ID] = "Z9"
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("barometre.csv", ID, "id_in_customers", 2),
                                    ("reclamations.csv", ID, "id_in_customers", 1)]
    assert report.problems["examples"].tolist() == ["4, 8", "1"]
    assert_private(report)


def test_dates_inside_the_relationship(tmp_path):
    t = clean_tables()
    t["surveys"].loc[0, ANSWERED] = "2019-01-14"             # C01 starts 2019-01-15
    t["surveys"].loc[1, ANSWERED] = "2025-06-02"             # C02 ends 2025-06-01
    t["surveys"].loc[5, ANSWERED] = "2023-12-31 23:59:00"    # C06 ends that day at 17:30: inside
    t["surveys"].loc[7, ANSWERED] = "2026-09-01"             # C08 ends that day, after the snapshot: fine
    t["complaints"].loc[3, OPENED] = "2026-07-01"            # C10 ends 2026-06-30
    t["complaints"].loc[3, CLOSED] = "2026-07-02"
    report = validate(tmp_path, t)
    assert problem_keys(report) == [("barometre.csv", ANSWERED, "inside_relationship", 2),
                                    ("reclamations.csv", OPENED, "inside_relationship", 1)]
    assert report.problems["examples"].tolist() == ["1, 2", "4"]


def test_dates_after_the_snapshot_are_not_errors(tmp_path):
    t = clean_tables()
    t["customers"].loc[10, START] = "2026-12-01"     # C11 arrives after the 2026-06-30 snapshot
    t["surveys"].loc[10, ANSWERED] = "2027-01-01"
    t["complaints"].loc[1, OPENED] = "2026-12-24"
    assert validate(tmp_path, t).ok


def test_survey_column_named_like_a_canonical_column(tmp_path):
    t = clean_tables()
    t["surveys"] = t["surveys"].rename(columns={SELF: "date"})
    p = only_problem(validate(tmp_path, t, surveys={"self_status": "date"}))
    assert (p["file"], p["column"], p["rule"], p["rows"]) == ("barometre.csv", "date", "name_clash", 0)


# --------------------------------------------------------------------------------------------
# everything at once, errors, HTML, Parquet, CLI


def test_problems_in_several_files_reported_together(tmp_path):
    t = clean_tables()
    t["customers"].loc[4, VALUE] = "n/a"
    t["surveys"].loc[13, REC1] = "7"
    t["surveys"].loc[2, ANSWERED] = "2024-13-01"
    t["complaints"].loc[1, GESTURE] = "peut-être"
    report = validate(tmp_path, t, customers={"covariates": ["canal"]})
    assert problem_keys(report) == [("clients.csv", "canal", "column_present", 0),
                                    ("clients.csv", VALUE, "numeric", 1),
                                    ("barometre.csv", ANSWERED, "date_parseable", 1),
                                    ("barometre.csv", REC1, "in_scale", 1),
                                    ("reclamations.csv", GESTURE, "boolean", 1)]
    assert report.to_text().splitlines()[0] == "5 problems in 3 files"
    assert_private(report)
    with pytest.raises(DataContractError) as exc:
        report.raise_if_failed()
    assert str(exc.value) == report.to_text()
    assert exc.value.problems.equals(report.problems)
    with pytest.raises(DataContractError):
        load_study_data(load_study(tmp_path / "study.yaml"))
    assert issubclass(DataContractError, CxlabError)


def test_html_escapes_column_names(tmp_path):
    report = validate(tmp_path, customers={"covariates": ["<b>segment & co</b>"]})
    html = report._repr_html_()
    assert "<b>segment" not in html and "&lt;b&gt;segment &amp; co&lt;/b&gt;" in html


def test_parquet_input_gives_the_same_tables(tmp_path):
    csv_dir, pq_dir = tmp_path / "csv", tmp_path / "pq"
    csv_dir.mkdir()
    pq_dir.mkdir()
    t = clean_tables()
    typed = {
        "customers": t["customers"].assign(**{
            START: pd.to_datetime(t["customers"][START]),
            END: pd.to_datetime(t["customers"][END], format="ISO8601"),
            VALUE: pd.to_numeric(t["customers"][VALUE])}),
        "surveys": t["surveys"].assign(**{ANSWERED: pd.to_datetime(t["surveys"][ANSWERED], format="ISO8601")},
                                       **{c: pd.to_numeric(t["surveys"][c]) for c in
                                          (REC1, REC2, EMP1, EMP2, SELF, NPS)}),
        "complaints": t["complaints"].assign(**{OPENED: pd.to_datetime(t["complaints"][OPENED], format="ISO8601"),
                                                CLOSED: pd.to_datetime(t["complaints"][CLOSED]),
                                                GESTURE: [True, False, True, None]}),
    }
    typed["customers"][REGION] = typed["customers"][REGION].replace("", None)
    from_csv = validate(csv_dir, t)
    from_pq = validate(pq_dir, typed, fmt="parquet")
    assert from_csv.ok and from_pq.ok, from_pq.to_text()
    for role in ("customers", "surveys", "complaints"):
        pd.testing.assert_frame_equal(getattr(from_pq.data, role), getattr(from_csv.data, role),
                                      check_dtype=True)


def test_parquet_bad_values_and_integer_ids(tmp_path):
    t = clean_tables()
    customers = t["customers"].assign(**{ID: range(1, 13)})
    surveys = t["surveys"].assign(**{ID: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 99],
                                     EMP1: pd.to_numeric(t["surveys"][EMP1]).replace(4, 40)})
    complaints = t["complaints"].assign(**{ID: [2, 3, 6, 10]})
    report = validate(tmp_path, {"customers": customers, "surveys": surveys, "complaints": complaints},
                      fmt="parquet")
    assert problem_keys(report) == [("barometre.parquet", EMP1, "in_scale", 3),
                                    ("barometre.parquet", ID, "id_in_customers", 1)]
    assert report.problems["examples"].tolist() == ["3, 9, 14", "14"]


def test_parquet_timestamps_utc_and_out_of_range(tmp_path):
    t = clean_tables()
    ends = pd.to_datetime(t["customers"][END], format="ISO8601").astype("datetime64[us]")
    ends[8] = np.datetime64("9999-12-31", "us")       # "active" placeholder: not a date cxlab takes
    customers = t["customers"].assign(**{END: ends})
    answered = pd.to_datetime(t["surveys"][ANSWERED], format="ISO8601").dt.tz_localize("Europe/Paris")
    surveys = t["surveys"].assign(**{ANSWERED: answered})
    report = validate(tmp_path, {"customers": customers, "surveys": surveys,
                                 "complaints": t["complaints"]}, fmt="parquet")
    assert problem_keys(report) == [("clients.parquet", END, "date_parseable", 1)]
    assert report.problems.loc[0, "examples"] == "9"
    surveys_ok = validate_study(load_study(write_study(tmp_path, {
        "customers": t["customers"], "surveys": surveys, "complaints": t["complaints"]}, fmt="parquet")))
    assert surveys_ok.ok
    # time zones are dropped, the wall-clock time is kept (calendar days of the company's zone)
    assert surveys_ok.data.surveys.loc[2, "date"] == pd.Timestamp("2024-02-01 09:15:00")


def _cli(spec: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "cxlab.cli", "validate", str(spec)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_cli_exit_codes(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    ok = _cli(write_study(good))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("All checks passed")
    t = clean_tables()
    t["customers"].loc[8, ID] = CANARY
    failed = _cli(write_study(bad, t, surveys={"path": "absent.csv"}))
    assert failed.returncode == 2
    out = failed.stdout + failed.stderr
    assert "Traceback" not in out and CANARY not in out
    assert failed.stdout.startswith("2 problems in 2 files")


# --------------------------------------------------------------------------------------------
# real extracts: dialects, broken files, identifiers


def write_dialect_study(folder: Path, tables=None) -> Path:
    """The clean study written as a French Excel export would be: latin-1, ';', decimal commas,
    dd/mm/yyyy dates, "NSP" for don't know."""
    tables = clean_tables() if tables is None else tables
    folder.mkdir(parents=True, exist_ok=True)

    def day_first(v: str) -> str:
        if not v:
            return v
        ts = pd.Timestamp(v)
        return ts.strftime("%d/%m/%Y") + (ts.strftime(" %H:%M:%S") if ts != ts.normalize() else "")

    dialect = dict(delimiter=";", decimal=",", encoding="latin-1", date_format="%d/%m/%Y")
    c = tables["customers"].copy()
    c[START], c[END] = c[START].map(day_first), c[END].map(day_first)
    c[VALUE] = c[VALUE].str.replace(".", ",", regex=False)
    s = tables["surveys"].copy()
    s[ANSWERED] = s[ANSWERED].map(day_first)
    for col in (REC1, REC2, EMP1, EMP2, SELF, NPS):
        s[col] = s[col].str.replace(".", ",", regex=False)
    s[REC1] = s[REC1].replace({"99": "NSP"})           # a string code next to the numeric one
    k = tables["complaints"].copy()
    k[OPENED], k[CLOSED] = k[OPENED].map(day_first), k[CLOSED].map(day_first)
    for df, name in ((c, "clients.csv"), (s, "barometre.csv"), (k, "reclamations.csv")):
        df.to_csv(folder / name, index=False, sep=";", encoding="latin-1")
    spec = spec_dict(customers=dialect, surveys={**dialect, "missing_codes": [99, "NSP"]},
                     complaints=dialect)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_dialect_keys_read_a_french_excel_export_as_the_clean_study(tmp_path):
    (tmp_path / "plain").mkdir()
    plain = load_study_data(load_study(write_study(tmp_path / "plain")))
    report = validate_study(load_study(write_dialect_study(tmp_path / "fr")))
    assert report.ok, report.to_text()
    for role in ("customers", "surveys", "complaints"):
        pd.testing.assert_frame_equal(getattr(report.data, role), getattr(plain, role), check_dtype=False)
    # the string code is counted as a missing code, not as an empty cell
    row = report.summary.set_index("column").loc[REC1]
    assert (row["missing_codes"], row["empty"]) == (1, 1)


def test_decimal_comma_refuses_points(tmp_path):
    t = clean_tables()
    t["customers"][VALUE] = ["120,5", "1.234", "80", "0", "", "45", "310", "12", "77,7", "5", "66", "1e2"]
    report = validate(tmp_path, t, customers={"decimal": ","})
    p = only_problem(report)
    assert (p["column"], p["rule"], p["rows"], p["examples"]) == (VALUE, "numeric", 1, "2")
    assert "decimal comma" in p["fix"]


def test_missing_codes_in_the_customer_file(tmp_path):
    t = clean_tables()
    t["customers"][END] = t["customers"][END].replace({"": "1900-01-01"})   # a date-shaped code
    t["customers"][REGION] = t["customers"][REGION].replace({"": "inconnu"})
    report = validate(tmp_path, t, customers={"missing_codes": ["1900-01-01", "inconnu"]})
    assert report.ok, report.to_text()
    assert report.data.customers["end"].isna().sum() == 7 and report.data.customers[REGION].isna().sum() == 1
    bad = validate(tmp_path, t)                                      # without the codes: real dates
    assert ("clients.csv", END, "start_before_end", 7) in problem_keys(bad)


@pytest.mark.parametrize("name, content, rule, words", [
    ("truncated", None, "row_fields", "fewer fields than the header"),
    ("binary", bytes(range(256)) * 40, "file_readable", "binary"),
    ("binary without NUL", bytes(range(1, 256)) * 40, "file_readable", "binary"),
    ("empty", b"", "file_readable", "is empty"),
    ("blank", b"\n\n  \n", "file_readable", "is empty"),
    ("parquet named csv", b"PAR1" + bytes(200), "file_readable", "Parquet"),
])
def test_broken_files_are_problems_not_exceptions(tmp_path, name, content, rule, words):
    write_study(tmp_path)
    path = tmp_path / "reclamations.csv"
    if content is None:      # the export stopped mid-line: the last row lacks its last fields
        text = path.read_text(encoding="utf-8").rstrip("\n")
        content = text[: text.rindex(",")].encode("utf-8")
    path.write_bytes(content)
    p = only_problem(validate_study(load_study(tmp_path / "study.yaml")))
    assert (p["file"], p["rule"]) == ("reclamations.csv", rule)
    assert words in p["fix"]
    if name == "truncated":
        assert (p["rows"], p["examples"]) == (1, "4")


def test_a_row_with_extra_fields_is_a_problem(tmp_path):
    write_study(tmp_path)
    path = tmp_path / "reclamations.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] += ",surplus"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    p = only_problem(validate_study(load_study(tmp_path / "study.yaml")))
    assert (p["rule"], p["rows"], p["examples"]) == ("row_fields", 1, "2")
    assert "more fields than the header" in p["fix"] and "surplus" not in p["fix"]


def test_undecodable_file_suggests_the_encoding_key(tmp_path):
    write_study(tmp_path)
    (tmp_path / "reclamations.csv").write_bytes("n° client,ouverte le\nC01,é\n".encode("latin-1"))
    p = only_problem(validate_study(load_study(tmp_path / "study.yaml")))
    assert p["rule"] == "file_readable"
    assert "complaints.encoding: cp1252" in p["fix"] and "line 1" in p["fix"]


def test_duplicate_header_names(tmp_path):
    write_study(tmp_path)
    (tmp_path / "reclamations.csv").write_text(f"{ID},{OPENED},{OPENED}\nC02,2024-01-01,x\n", encoding="utf-8")
    p = only_problem(validate_study(load_study(tmp_path / "study.yaml")))
    assert p["rule"] == "header_unique" and repr(OPENED) in p["fix"]


@pytest.mark.parametrize("fmt, suggested", [("%d/%m/%Y", "'%d/%m/%Y'"), ("%d.%m.%Y", "'%d.%m.%Y'")])
def test_day_first_dates_without_date_format_suggest_the_key(tmp_path, fmt, suggested):
    t = clean_tables()
    t["customers"][START] = [pd.Timestamp(v).strftime(fmt) for v in t["customers"][START]]
    p = only_problem(validate(tmp_path, t))
    assert (p["column"], p["rule"], p["rows"]) == (START, "date_parseable", 12)
    assert f"date_format: {suggested}" in p["fix"] and "customers: in the spec" in p["fix"]


def test_ambiguous_day_month_dates_name_both_formats(tmp_path):
    t = clean_tables()
    t["complaints"][OPENED] = ["01/02/2024", "02/02/2022", "03/12/2023", "05/05/2025"]
    t["complaints"][CLOSED] = ["", "", "", ""]
    p = only_problem(validate(tmp_path, t))
    assert p["column"] == OPENED and "'%d/%m/%Y' (day first) or '%m/%d/%Y'" in p["fix"]


def test_date_format_given_and_broken_dates(tmp_path):
    t = clean_tables()
    t["customers"][START] = [pd.Timestamp(v).strftime("%d/%m/%Y") for v in t["customers"][START]]
    t["customers"].loc[3, START] = "2021-01-01"                       # ISO among day-first dates
    t["customers"][END] = [pd.Timestamp(v).strftime("%d/%m/%Y %H:%M") if v else "" for v in t["customers"][END]]
    p = only_problem(validate(tmp_path, t, customers={"date_format": "%d/%m/%Y"}))
    assert (p["column"], p["rule"], p["rows"], p["examples"]) == (START, "date_parseable", 1, "4")
    assert "date_format '%d/%m/%Y' (e.g. 30/06/2026)" in p["fix"]


def test_a_file_that_is_not_the_extract_is_never_quoted(tmp_path):
    write_study(tmp_path)
    (tmp_path / "reclamations.csv").write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1\n")
    report = validate_study(load_study(tmp_path / "study.yaml"))
    assert set(report.problems["rule"]) == {"column_present"}
    text = report.to_text()
    assert "root" not in text and "daemon" not in text and "bin/bash" not in text
    assert "none of them a column the spec names" in text
    # a recognisable extract with one renamed column: the header is listed, with the closest name
    t = clean_tables()
    t["complaints"] = t["complaints"].rename(columns={OPENED: "ouvert le"})
    p = only_problem(validate(tmp_path, t))
    assert "columns are:" in p["fix"] and "Did you mean 'ouvert le'" in p["fix"]


def test_semicolon_file_without_delimiter_key_is_named(tmp_path):
    write_study(tmp_path)
    df = pd.read_csv(tmp_path / "reclamations.csv", dtype=str)
    df.to_csv(tmp_path / "reclamations.csv", sep=";", index=False)
    report = validate_study(load_study(tmp_path / "study.yaml"))
    assert "add delimiter: ';' to complaints: in the spec" in report.to_text()


def test_identifier_like_covariates_are_refused(tmp_path):
    # values of a covariate that are customer ids (a canary id in 'région')
    t = clean_tables()
    t["customers"].loc[[1, 4], REGION] = CANARY                   # another customer's id
    p = only_problem(validate(tmp_path, t))                           # (only_problem: CANARY not shown)
    assert (p["column"], p["rule"], p["rows"], p["examples"]) == (REGION, "not_identifier", 2, "2, 5")
    assert "customer ids" in p["fix"] and f"remove {REGION!r} from customers.covariates" in p["fix"]
    # short codes that happen to equal an id are categories, not identifiers
    t = clean_tables()
    t["customers"][ID] = [str(i) for i in range(1, 13)]
    t["surveys"][ID] = [str(i) for i in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 3]]
    t["complaints"][ID] = ["2", "3", "6", "10"]
    t["customers"][REGION] = ["1", "2", "1", "3", "2", "1", "3", "2", "1", "2", "3", "1"]
    assert validate(tmp_path, t).ok
    # the id column itself as a covariate
    p = only_problem(validate(tmp_path, customers={"covariates": [ID]}))
    assert (p["column"], p["rule"]) == (ID, "not_identifier") and "is the customer id column" in p["fix"]


@pytest.mark.parametrize("n, n_distinct, refused", [(38, 20, True), (38, 19, False), (50, 26, True),
                                                    (50, 25, False)])
def test_nearly_one_value_per_customer_is_an_identifier(tmp_path, n, n_distinct, refused):
    # a covariate with n_distinct values over n customers: refused from 20 distinct values when
    # they are more than half of the filled rows (20 > 38 / 2; 26 > 50 / 2 but not 25)
    ids = [f"K{i:03d}" for i in range(n)]
    levels = [f"L{i}" for i in range(n_distinct)]
    customers = pd.DataFrame({ID: ids, START: "2019-01-01", END: "", VALUE: "1",
                              REGION: [levels[i % n_distinct] for i in range(n)]})
    surveys = pd.DataFrame({ID: ids[:3], ANSWERED: "2024-01-01", REC1: "3", REC2: "3", EMP1: "3",
                            EMP2: "3", SELF: "4", NPS: "8"})
    report = validate(tmp_path, {"customers": customers, "surveys": surveys, "complaints": None},
                      complaints=None)
    assert (not report.ok) == refused, report.to_text()
    if refused:
        p = only_problem(report)
        assert p["rule"] == "not_identifier" and f"{n_distinct} distinct values for {n} filled rows" in p["fix"]
        # the rows holding a value no other customer has
        assert p["rows"] == 2 * n_distinct - n


def test_categories_that_collide_as_metric_names(tmp_path):
    t = clean_tables()
    t["customers"][REGION] = ["Île", "sud", "Ile", "est", "ouest", "sud", "Île", "", "est", "sud", "nord", "ouest"]
    p = only_problem(validate(tmp_path, t))
    assert (p["column"], p["rule"], p["rows"], p["examples"]) == (REGION, "label_slug_unique", 3, "1, 3, 7")
    t["customers"][REGION] = ["Île", "sud", "Île", "est", "ouest", "sud", "Île", "", "est", "sud", "nord", "ouest"]
    assert validate(tmp_path, t).ok


def test_cli_exit_2_for_a_truncated_extract_and_a_path_outside_the_study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    spec = write_study(folder)
    path = folder / "barometre.csv"
    text = path.read_text(encoding="utf-8").rstrip("\n")
    path.write_text(text[: text.rindex(",")], encoding="utf-8")          # cut mid-line
    out = _cli(spec)
    assert out.returncode == 2 and "Traceback" not in out.stdout + out.stderr
    assert "row_fields" in out.stdout and "barometre.csv" in out.stdout
    # a spec path leading outside the spec's folder: refused before any file is read
    (tmp_path / "outside.csv").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    spec = write_study(folder, complaints={"path": "../outside.csv"})
    out = _cli(spec)
    both = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in both
    assert "outside the spec's folder" in both and "root:x" not in both


def test_self_status_and_long_form_outcomes_have_their_own_scales(tmp_path):
    # items on 1-5; the self-status item on 1-7; the outcome's scale in its long form
    t = clean_tables()
    t["surveys"][SELF] = ["7", "6", "5", "4", "3", "5", "4", "2", "5", "99", "3", "4", "5", "1"]
    long_nps = {"recommandation": {"column": NPS, "role": "recommend", "scale": [0, 10]}}
    spec = dict(surveys={"self_status_scale": [1, 7], "outcomes": long_nps, "outcome_scales": {}})
    report = validate(tmp_path, t, **spec)
    assert report.ok, report.to_text()
    # the same answers against the item scale: the 6 and 7 are out of scale
    p = only_problem(validate(tmp_path, t, surveys={"outcomes": long_nps, "outcome_scales": {}}))
    assert (p["column"], p["rule"], p["rows"], p["examples"]) == (SELF, "in_scale", 2, "1, 2")
    assert "surveys.scale" in p["fix"]
    long_nps["recommandation"]["scale"] = [0, 5]
    p = only_problem(validate(tmp_path, t, **spec))
    assert (p["column"], p["rule"]) == (NPS, "in_scale") and "surveys.outcomes.recommandation.scale" in p["fix"]


def test_utf16_file_names_the_encoding_key_and_reads_with_it(tmp_path):
    write_study(tmp_path)
    path = tmp_path / "reclamations.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))   # with its byte-order mark
    p = only_problem(validate_study(load_study(tmp_path / "study.yaml")))
    assert p["rule"] == "file_readable" and "complaints.encoding: utf-16" in p["fix"]
    spec = yaml.safe_load((tmp_path / "study.yaml").read_text(encoding="utf-8"))
    spec["complaints"]["encoding"] = "utf-16"
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    assert validate_study(load_study(tmp_path / "study.yaml")).ok
