"""The engine path's whole-study steps: reading a ``source:`` table, the rules across tables
(as joins on the engine), the summary and the typed tables
(:class:`cxlab.data.tables.EngineData`)."""

from __future__ import annotations

import ibis
import pandas as pd

from . import engine_parse as ep
from . import messages as msg
from .engine import ROW, EngineTable, NotOnEngine, drop, first_rows, numbered
from .flow import Path, linked_tables, run_rules
from .frame_study import summary_frame
from .parsing import Dialect
from .report import ROLE_ORDER, Problems, ValidationReport


class EnginePath(Path):
    def __init__(self, con):
        self.con = con

    def read(self, study, role: str, problems: Problems) -> EngineTable:
        from cxlab.data.sources import table as source_table

        t = source_table(self.con, study, role)        # StudyError (exit 2) names the table
        made: list[str] = []
        base = numbered(self.con, t, study.source.name_of(role), made)
        table = EngineTable(role, study.label(role), con=self.con, base=base,
                            dialect=Dialect.of(getattr(study, role)), made=made)
        table.n = int(base.count().execute())
        table.width = len(table.columns)
        if table.n == 0:
            problems.add(table.label, "", "has_rows", msg.empty_table(table.label, role))
        return table

    def cross_checks(self, study, tables: dict[str, EngineTable], problems: Problems) -> None:
        """id_in_customers and inside_relationship, as joins with the customers' first rows."""
        cust = tables["customers"]
        cs = study.customers
        if cust.ids is None:
            return
        start = cust.dates.get(cs.start)
        end = cust.dates.get(cs.end)
        cols = {}
        if start is not None:
            cols["_cx_s"] = start.value.cast("date")
            cols["_cx_e"] = end.value.cast("date") if end is not None else ibis.null().cast("date")
        # the first row of every distinct id (ids may repeat: reported as unique already)
        w = ibis.window(group_by="_cx_cid", order_by=ROW)
        keep = ["_cx_cid"] + (["_cx_s", "_cx_e"] if start is not None else [])
        firsts = cust.base.mutate(_cx_cid=cust.ids, **cols) \
            .filter(ibis._["_cx_cid"].notnull()) \
            .mutate(_cx_k=ibis.row_number().over(w)).filter(ibis._["_cx_k"] == 0).select(*keep)
        for role, t, spec, key_id, date_key, date_col in linked_tables(study, tables):
            d = t.dates.get(date_col)
            on = t.base.mutate(_cx_sid=t.ids, _cx_d=d.value.cast("date") if d is not None else
                               ibis.null().cast("date"))
            on = on.left_join(firsts, on["_cx_sid"] == firsts["_cx_cid"])
            unknown = on["_cx_sid"].notnull() & on["_cx_cid"].isnull()
            _report(problems, t.label, spec.id, "id_in_customers",
                    msg.unknown_ids(spec.id, key_id, cust.label, role), on, unknown)
            if d is None or start is None:
                continue
            dd, s, e = on["_cx_d"], on["_cx_s"], on["_cx_e"]
            outside = on["_cx_cid"].notnull() & dd.notnull() & s.notnull() & \
                ep.false_if_null((dd < s) | (e.notnull() & (dd > e)))
            _report(problems, t.label, date_col, "inside_relationship",
                    msg.outside_relationship(date_col, date_key, cs.start, cs.end, cust.label, role),
                    on, outside)


def _report(problems: Problems, label: str, column: str, rule: str, fix: str, on, bad) -> None:
    on = on.mutate(_cx_bad=ep.false_if_null(bad))
    n = int(on.aggregate(n=ibis.ifelse(on["_cx_bad"], 1, 0).sum()).to_pandas().iloc[0]["n"] or 0)
    if n:
        problems.add(label, column, rule, fix, first_rows(on, on["_cx_bad"]), n_rows=n)


def engine_summary(tables: dict[str, EngineTable], survey_columns: list[str]) -> pd.DataFrame:
    rows = []
    for role in ROLE_ORDER:
        t = tables.get(role)
        if t is None:
            continue
        rows.append(dict(file=t.label, role=role, column=pd.NA, rows=t.n, columns=t.width,
                         missing_codes=pd.NA, empty=pd.NA))
        if role == "surveys":
            for col in survey_columns:
                if col in t.counts:
                    coded, empty = t.counts[col]
                    rows.append(dict(file=t.label, role=role, column=col, rows=t.n, columns=pd.NA,
                                     missing_codes=coded, empty=empty))
    return summary_frame(rows)


def engine_data(study, con, tables: dict[str, EngineTable], survey_columns: list[str]):
    """The typed tables (StudyData's columns and types) as expressions on ``con``."""
    from cxlab.data.tables import EngineData

    cs, ss, ks = study.customers, study.surveys, study.complaints
    f64, ts = ibis.null().cast("float64"), ibis.null().cast("timestamp")
    c = tables["customers"]
    cols = {"customer_id": c.ids.cast("string"), "start": c.dates[cs.start].value,
            "end": c.dates[cs.end].value,
            "value": c.numbers[cs.value].value if cs.value is not None else f64}
    for cov in cs.covariates:
        if cov not in cols:
            cols[cov] = c.labels[cov] if cov in c.labels else ep.labels(cov, c.dtype(cov), c.dialect, c.stage)
    cols["source_row"] = ibis._[ROW].cast("int64")
    customers = c.base.select(**cols)

    s = tables["surveys"]
    cols = {"customer_id": s.ids.cast("string"), "date": s.dates[ss.date].value}
    for col in survey_columns:
        cols[col] = s.numbers[col].value
    cols["source_row"] = ibis._[ROW].cast("int64")
    surveys = s.base.select(**cols)

    complaints = None
    if ks is not None:
        k = tables["complaints"]
        complaints = k.base.select(
            customer_id=k.ids.cast("string"), opened=k.dates[ks.opened].value,
            closed=k.dates[ks.closed].value if ks.closed is not None else ts,
            compensated=k.numbers[ks.compensated].value if ks.compensated is not None else f64,
            source_row=ibis._[ROW].cast("int64"))
    made = [name for t in tables.values() for name in t.made if not name.startswith("cxlab_n")]
    return EngineData(con, customers, surveys, complaints, made=made)


def validate_on_engine(study, con) -> ValidationReport:
    if study.source is None:
        raise ValueError("validate_engine checks a study with a source: section; use validate_study "
                         "for files.")
    problems = Problems()
    try:
        tables, survey_columns = run_rules(study, EnginePath(con), problems)
    except NotOnEngine:
        return _collected(study, con)
    problems_df = problems.frame()
    summary = engine_summary(tables, survey_columns)
    files = {t.label: t.n for t in tables.values() if t.base is not None}
    engine = engine_data(study, con, tables, survey_columns) if problems_df.empty else None
    made = [name for t in tables.values() for name in t.made]
    # the numbered views are no longer needed (the typed tables read the materialised ones)
    drop(con, [name for name in made if engine is None or name.startswith("cxlab_n")])
    return ValidationReport(problems=problems_df, summary=summary, files=files, engine=engine)


def _collected(study, con) -> ValidationReport:
    """A rule the engine cannot run: the tables are collected and checked in pandas (as before
    validation was pushed down), and the typed tables uploaded back to ``con``."""
    from cxlab.data.tables import EngineData

    from . import validate_frames

    report = validate_frames(study)
    if report.data is not None:
        report.engine = EngineData.upload(con, report.data)
    return report
