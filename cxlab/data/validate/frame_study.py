"""The file path's whole-study steps: the rules across files (plain pandas on parsed values),
the summary table and the typed tables (:class:`.report.StudyData`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import messages as msg
from .flow import Path, linked_tables
from .frame import FrameTable, read_file
from .parsing import clean_text
from .report import ROLE_ORDER, SUMMARY_COLUMNS, Problems, StudyData


class FramePath(Path):
    def read(self, study, role: str, problems: Problems) -> FrameTable:
        return read_file(study, role, problems)

    def cross_checks(self, study, tables: dict[str, FrameTable], problems: Problems) -> None:
        """id_in_customers and inside_relationship (plain pandas, on parsed values)."""
        cust = tables["customers"]
        cs = study.customers
        if cust.ids is None:
            return  # the customer file or its id column is missing: already reported
        index, first_row = cust.id_index, cust.id_rows  # first row of every distinct customer id
        starts = cust.dates.get(cs.start)
        ends = cust.dates.get(cs.end)
        day = "datetime64[D]"
        for role, t, spec, key_id, date_key, date_col in linked_tables(study, tables):
            pos = index.get_indexer(t.ids)
            present = t.ids.notna().to_numpy()
            problems.add_mask(t.label, spec.id, "id_in_customers",
                              msg.unknown_ids(spec.id, key_id, cust.label, role), present & (pos < 0))
            if date_col not in t.dates or starts is None:
                continue
            found = pos >= 0
            rows = first_row[np.where(found, pos, 0)] if len(first_row) else np.zeros(len(pos), int)
            d = t.dates[date_col].astype(day)
            none = np.full(len(pos), np.datetime64("NaT"), day)
            s = starts[rows].astype(day) if len(starts) else none
            e = ends[rows].astype(day) if ends is not None and len(ends) else none
            valid = found & ~np.isnat(d) & ~np.isnat(s)
            outside = valid & ((d < s) | (~np.isnat(e) & (d > e)))
            problems.add_mask(t.label, date_col, "inside_relationship",
                              msg.outside_relationship(date_col, date_key, cs.start, cs.end, cust.label, role),
                              outside)


def frame_summary(study, tables: dict[str, FrameTable], survey_columns: list[str]) -> pd.DataFrame:
    rows = []
    for role in ROLE_ORDER:
        t = tables.get(role)
        if t is None:
            continue
        n_cols = None if t.raw is None else t.raw.shape[1]
        rows.append(dict(file=t.label, role=role, column=pd.NA, rows=t.n if t.raw is not None else pd.NA,
                         columns=n_cols, missing_codes=pd.NA, empty=pd.NA))
        if role == "surveys":
            for col in survey_columns:
                if col not in t.numbers:
                    continue
                coded = t.coded.get(col, np.zeros(t.n, dtype=bool))
                rows.append(dict(file=t.label, role=role, column=col, rows=t.n, columns=pd.NA,
                                 missing_codes=int(coded.sum()),
                                 empty=int((t.empties[col] & ~coded).sum())))
    return summary_frame(rows)


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.astype({c: "Int64" for c in ("rows", "columns", "missing_codes", "empty")})


def frame_data(study, tables: dict[str, FrameTable], survey_columns: list[str]) -> StudyData:
    """The typed tables (see :class:`StudyData`) from the parsed columns."""
    cs, ss, ks = study.customers, study.surveys, study.complaints

    c = tables["customers"]
    customers = pd.DataFrame({
        "customer_id": c.ids.to_numpy(dtype=object),
        "start": c.dates[cs.start],
        "end": c.dates[cs.end],
        "value": c.numbers[cs.value] if cs.value is not None else np.full(c.n, np.nan),
    })
    for cov in cs.covariates:
        if cov not in customers.columns:
            text = c.texts[cov] if cov in c.texts else clean_text(c.raw[cov], c.dialect)
            customers[cov] = text.array
    customers["source_row"] = np.arange(1, c.n + 1)

    s = tables["surveys"]
    codes = np.asarray(ss.numeric_codes, dtype="float64")
    cols = {"customer_id": s.ids.to_numpy(dtype=object), "date": s.dates[ss.date]}
    for col in survey_columns:
        v = s.numbers[col].copy()
        v[np.isin(v, codes)] = np.nan
        cols[col] = v
    surveys = pd.DataFrame(cols)
    surveys["source_row"] = np.arange(1, s.n + 1)

    complaints = None
    if ks is not None:
        k = tables["complaints"]
        nat = np.full(k.n, np.datetime64("NaT"), "datetime64[ns]")
        complaints = pd.DataFrame({
            "customer_id": k.ids.to_numpy(dtype=object),
            "opened": k.dates[ks.opened],
            "closed": k.dates[ks.closed] if ks.closed is not None else nat,
            "compensated": k.numbers[ks.compensated] if ks.compensated is not None else np.full(k.n, np.nan),
            "source_row": np.arange(1, k.n + 1),
        })
    return StudyData(customers=customers, surveys=surveys, complaints=complaints)
