"""Raw tables -> analysis tables, written as ibis expressions on the embedded DuckDB backend.

Two tables and an exclusion flow come out of :func:`build_panel`:

* ``respondents``: one row per respondent, anchored at the customer's **first** survey answer on
  or before the snapshot. The clock is **tenure in months** (days / 30.4375 since the customer's
  start); the respondent enters the risk set at the survey (``entry`` = tenure at survey: delayed
  entry), so time before the survey is never credited to the perception (no immortal time).
  ``duration`` is the tenure at defection, or at the snapshot for customers still active then
  (right-censored). Nothing dated after ``snapshot_date`` is used.
* ``intervals``: counting-process rows (``start``, ``stop``, ``event``) for the same respondents,
  split wherever the perceptions change (a later survey answer) or the complaint status changes
  (opened, resolved with or without a goodwill gesture).
* ``exclusions``: step, reason, rows in, rows out, rows excluded — every row the panel drops is
  counted here, and every report shows it.

The anchor is the *first* answer because choosing a later one would condition on surviving to it
(a decision that looks ahead). The same expressions run on any ibis backend (PySpark for bases
that outgrow one machine); only :class:`_Engine` knows the backend (``build_panel(con=...)``).

Rules the panel applies before anything else (each counted in ``exclusions``):

* **Duplicate survey answers.** Rows of one customer on one calendar day with the same answers
  (every item, self-status and outcome, missing answers included) are one answer: the earliest
  (then first in the file) is kept, the copies dropped. Rows of one customer on one calendar day
  with *different* answers are all set aside: nothing tells which one the customer meant, and
  keeping either would make the result depend on the file's row order. That customer's answers
  on other days are kept.
* **Duplicate complaints.** Complaints of one customer opened on the same calendar day are one
  complaint episode: exact copies are dropped; differing rows are merged into one, resolved when
  its last part is resolved (still open if any part is) and with a goodwill gesture if any part
  had one.
* **Snapshot day.** Everything dated on the snapshot day is inside the window, whatever its time
  of day (:func:`cxlab.study.within_snapshot`): a defection at 10:00 on the snapshot day is an
  event.

Every ordering has a complete tie-breaker (customer key, date, source row), so the same files
give identical tables on every build and thread count.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd
from ibis import _

from cxlab.data.sources import drop_kept, keep_table
from cxlab.data.tables import EngineData, collect
from cxlab.errors import CxlabError
from cxlab.study import snapshot_cutoff

__all__ = ["Panel", "build_panel", "survey_answers", "DAYS_PER_MONTH", "CLOCK_DESCRIPTION"]

DAYS_PER_MONTH = 30.4375

CLOCK_DESCRIPTION = (
    "Clock: tenure in months since the customer's start. Each respondent enters the risk set at "
    "their first survey answer (delayed entry), so the time before the survey is not credited to "
    "the perception; customers still active at the snapshot are censored there."
)

_COMPLAINT_STATES = ("complaint_open", "complaint_resolved_no_goodwill", "complaint_resolved_goodwill")


@dataclass
class Panel:
    """Analysis tables built from a study (see module docstring)."""

    respondents: pd.DataFrame
    intervals: pd.DataFrame
    exclusions: pd.DataFrame
    constructs: list[str]
    covariates: list[str]
    outcomes: list[str]
    snapshot_date: dt.date
    scale: tuple[float, float]
    recognition: str | None
    clock: str = CLOCK_DESCRIPTION
    notes: list[str] = field(default_factory=list)

    @property
    def n_respondents(self) -> int:
        return int(len(self.respondents))

    @property
    def n_events(self) -> int:
        return int(self.respondents["event"].sum())

    def model_table(self, columns, label: str = "model", table: str = "respondents") -> pd.DataFrame:
        """Rows of ``respondents`` (or ``intervals``) with every one of ``columns`` present.

        Rows set aside are counted in :attr:`exclusions` (one step per column with missing
        values), so a model never drops rows silently.
        """
        df = getattr(self, table)
        keep = pd.Series(True, index=df.index)
        for col in dict.fromkeys(columns):
            if col not in df.columns:
                raise CxlabError(f"{label}: column {col!r} is not in the {table} table; columns are "
                                 f"{list(df.columns)}.")
            nxt = keep & df[col].notna()
            dropped = int(keep.sum() - nxt.sum())
            if dropped:
                step = f"{label}: {col} available"
                if not ((self.exclusions["table"] == table) & (self.exclusions["step"] == step)).any():
                    self.exclusions = pd.concat([self.exclusions, pd.DataFrame([{
                        "table": table, "step": step, "reason": f"{col} missing",
                        "rows_in": int(keep.sum()), "rows_out": int(nxt.sum()), "excluded": dropped}])],
                        ignore_index=True)
            keep = nxt
        return df[keep].reset_index(drop=True)

    def _repr_html_(self) -> str:  # pragma: no cover - display only
        from html import escape

        return (f"<p><b>Panel</b>: {self.n_respondents:,} respondents, {self.n_events:,} defections "
                f"by {escape(str(self.snapshot_date))}.</p>" + self.exclusions.to_html(index=False))


class _Flow:
    """Collects the exclusion flow as the panel is built."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, table: str, step: str, reason: str, rows_in: int, rows_out: int):
        self.rows.append({"table": table, "step": step, "reason": reason, "rows_in": int(rows_in),
                          "rows_out": int(rows_out), "excluded": int(rows_in) - int(rows_out)})

    _ORDER = ("customers", "survey answers", "complaints", "respondents")

    def frame(self) -> pd.DataFrame:
        rows = sorted(self.rows, key=lambda r: self._ORDER.index(r["table"]) if r["table"] in self._ORDER
                      else len(self._ORDER))    # stable: steps keep their order within a table
        return pd.DataFrame(rows, columns=["table", "step", "reason", "rows_in", "rows_out", "excluded"])


def _connect(threads: int | None = None):
    con = ibis.duckdb.connect()
    if threads is not None:
        con.raw_sql(f"SET threads TO {int(threads)}")
    return con


class _Engine:
    """The backend the panel's expressions run on: where an :class:`EngineData`'s tables are, or
    the embedded DuckDB (default) / any ibis connection given to :func:`build_panel` (``con=``)
    onto which a :class:`~cxlab.data.validate.StudyData` is uploaded. Every intermediate table is
    a temporary table with a name unique to this build (a DuckDB source: a table in its scratch
    database, see :data:`cxlab.data.sources.SCRATCH`; the embedded DuckDB: Arrow tables)."""

    def __init__(self, data, con=None, threads: int | None = None):
        if isinstance(data, EngineData):
            if con is not None and con is not data.con:
                raise CxlabError("build_panel: con= names another backend than the EngineData's tables; "
                                 "leave con= out (the panel runs where the tables are).")
            self.own, self.con = False, data.con
        else:
            self.own = con is None
            self.con = _connect(threads) if con is None else con
        self.spark = self.con.name == "pyspark"
        if self.spark:
            # frames go to Spark through Arrow, so that a missing number is NULL (pandas' NaN would
            # stay NaN: a number to Spark, which COALESCE keeps; the scores would all be NaN)
            self.con._session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        self.prefix = "" if self.own else f"cxlab_{uuid.uuid4().hex[:12]}_"
        self.made: list[str] = []
        self.uploaded = None if isinstance(data, EngineData) else EngineData.upload(self.con, data)
        self.data = data if self.uploaded is None else self.uploaded

    def materialize(self, expr, name: str):
        """Run ``expr`` now and expose its result as a table: later expressions stay shallow, so
        compiling them is cheap, and nothing is computed twice."""
        if self.own:
            self.con.con.register(name, self.con.to_pyarrow(expr))
            return self.con.table(name)
        full = self.prefix + name
        self.made.append(full)
        if self.spark:     # no temporary tables on Spark: cached temporary views
            self.con.create_view(full, expr, overwrite=True)
            self.con.raw_sql(f"CACHE TABLE `{full}`")
            return self.con.table(full)
        return keep_table(self.con, full, expr)     # (a DuckDB source: in its scratch database)

    def release(self, *names: str):
        """Free intermediate tables no later step reads (the engine's memory stays bounded by
        the tables in use, not by every step so far). Not on Spark: a view built on a dropped
        view fails (its plan names the view), and the cached views live on the executors."""
        if self.spark:
            return
        for name in names:
            if self.own:
                self.con.con.unregister(name)
                continue
            full = self.prefix + name
            if full in self.made:
                self.made.remove(full)
                self._drop(full)

    def _drop(self, name: str):
        try:
            if self.spark:     # (dropping a cached view uncaches it)
                self.con._session.catalog.dropTempView(name)
                return
            drop_kept(self.con, name)
        except Exception:  # noqa: BLE001 - temporary tables go with the session anyway
            pass

    def close(self):
        if self.own:
            self.con.disconnect()
            return
        if self.uploaded is not None:
            self.uploaded.close()
        for name in self.made:     # (ibis 12's drop_table emits no name with this sqlglot)
            self._drop(name)


def _materialize(con, expr, name: str):
    return con.materialize(expr, name)


# booleans become integers through int32: PostgreSQL casts boolean to integer only (not smallint)


def _count(expr) -> int:
    return int(expr.count().execute())


def _months(later, earlier):
    """Tenure difference in months between two date/timestamp columns."""
    days = later.cast("date").delta(earlier.cast("date"), unit="day")
    return days.cast("float64") / DAYS_PER_MONTH


def _construct_score(t, items: list[str], min_share: float):
    """Mean of the answered items when at least ``min_share`` of them are answered, else null."""
    answered = sum((t[i].notnull().cast("int32") for i in items), ibis.literal(0))
    total = sum((t[i].fill_null(0) for i in items), ibis.literal(0.0))
    need = int(np.ceil(min_share * len(items) - 1e-9))
    return ibis.ifelse(answered >= max(need, 1), total / answered.cast("float64"), ibis.null("float64"))


def _collect(expr) -> pd.DataFrame:
    """An expression's rows as pandas through Arrow (a nullable number is a float with NaN, never
    a column of Python objects)."""
    # column by column, each Arrow column freed once converted: the peak is the frame plus one
    # column, not two copies of the frame (pandas' own columns: writable, one block each)
    table, out = expr.to_pyarrow(), {}
    while table.num_columns:
        name, col = table.column_names[0], table.column(0)
        table = table.remove_column(0)
        s = col.to_pandas()
        del col
        values = s.to_numpy()
        out[name] = s.copy() if isinstance(values, np.ndarray) and not values.flags.writeable else s
    return pd.DataFrame(out, copy=False)


def _kept_answers(surveys, answer_cols: list[str], cutoff, flow: "_Flow"):
    """Drop same-day copies of an answer; set aside same-day answers that disagree (see module
    doc); count both steps and the snapshot cut in ``flow``. Returns the kept answers on or before
    the snapshot day (an expression)."""
    t = surveys.select("customer_id", "date", *answer_cols, "source_row").mutate(day=_.date.cast("date"))
    # the earliest (then first in the file) of identical answers is the one kept
    t = t.mutate(copy_no=ibis.row_number().over(ibis.window(group_by=["customer_id", "day", *answer_cols],
                                                             order_by=["date", "source_row"])))
    t = t.mutate(n_distinct=(_.copy_no == 0).cast("int32").sum().over(ibis.window(group_by=["customer_id", "day"])))
    kept = (t.copy_no == 0) & (t.n_distinct == 1)
    n = t.aggregate(n0=t.count(), n1=(t.copy_no == 0).cast("int32").cast("int64").sum(),
                    n2=kept.cast("int32").cast("int64").sum(),
                    n3=(kept & (t.date < cutoff)).cast("int32").cast("int64").sum()).execute().iloc[0]
    n0, n1, n2, n3 = (int(n[k] or 0) for k in ("n0", "n1", "n2", "n3"))
    flow.add("survey answers", "one answer per customer, day and answers",
             "exact duplicate: the same answers by the same customer on the same day", n0, n1)
    flow.add("survey answers", "no conflicting answers on one day",
             "different answers by the same customer on the same day (all set aside)", n1, n2)
    flow.add("survey answers", "answers on or before the snapshot", "answered after the snapshot date", n2, n3)
    return t.filter(kept & (t.date < cutoff)).drop("day", "copy_no", "n_distinct")


def _kept_complaints(complaints, cutoff, flow: "_Flow"):
    """One complaint per customer and opening day (see module doc), opened on or before the
    snapshot day; the steps counted in ``flow``. Returns an expression (None: no complaints)."""
    n0 = _count(complaints)
    if n0 == 0:
        return None
    t = complaints.select("customer_id", "opened", "closed", "compensated", "source_row").mutate(
        day=_.opened.cast("date"))
    t = t.mutate(copy_no=ibis.row_number().over(ibis.window(
        group_by=["customer_id", "day", "closed", "compensated"], order_by="source_row")))
    t = t.filter(_.copy_no == 0)
    # parts of one episode: resolved when the last part is (open if any part is), goodwill if any
    # part had it; a lone complaint is its own episode (the same aggregates give it back)
    merged = t.group_by(["customer_id", "day"]).aggregate(
        opened=_.opened.min(),
        closed=ibis.ifelse(_.closed.isnull().any(), ibis.null("timestamp"), _.closed.max().cast("timestamp")),
        compensated=_.compensated.max(), source_row=_.source_row.min(), parts=_.count())
    n = merged.aggregate(n1=merged.parts.sum(), n2=merged.count(),
                         n3=(merged.opened < cutoff).cast("int32").cast("int64").sum()).execute().iloc[0]
    n1, n2, n3 = (int(n[k] or 0) for k in ("n1", "n2", "n3"))
    flow.add("complaints", "one row per complaint", "exact duplicate: same customer, opening day, "
             "resolution and goodwill", n0, n1)
    flow.add("complaints", "one complaint per customer and opening day",
             "opened the same day as another complaint of the customer (merged: resolved when the "
             "last part is, goodwill if any part had it)", n1, n2)
    flow.add("complaints", "complaints opened on or before the snapshot",
             "opened after the snapshot date", n2, n3)
    return merged.filter(_.opened < cutoff).drop("day", "parts")


def _answer_columns(spec) -> list[str]:
    return list(dict.fromkeys([*spec.items, *([spec.self_status] if spec.self_status else []),
                               *spec.outcome_columns.values()]))


def survey_answers(study, data) -> pd.DataFrame:
    """The survey answers the panel analyses: duplicates decided (see the module docstring) and
    cut at the snapshot day, in file order, with every column of ``data.surveys``.

    Use it wherever answers are analysed outside the panel (reliability, item statistics), so
    that they are the same rows as the panel's. ``data``: a StudyData (the rules run on an
    embedded DuckDB over its frame) or an :class:`EngineData` (only the kept rows come back).
    """
    cols = _answer_columns(study.surveys)
    cutoff = snapshot_cutoff(study.snapshot_date)
    if isinstance(data, EngineData):
        kept = _kept_answers(data.surveys, cols, cutoff, _Flow()).select("source_row")
        out = data.surveys.semi_join(kept, "source_row").order_by("source_row")
        return collect("surveys", out)
    surveys = _with_source_row(data.surveys)
    con = _connect()
    try:
        con.con.register("surveys", surveys[["customer_id", "date", *cols, "source_row"]])
        keep = _collect(_kept_answers(con.table("surveys"), cols, cutoff, _Flow()).select("source_row"))
    finally:
        con.disconnect()
    out = surveys[surveys["source_row"].isin(keep["source_row"])]
    return out.reset_index(drop=True) if "source_row" in data.surveys.columns else \
        out.drop(columns="source_row").reset_index(drop=True)


def build_panel(study, data, *, follow_up: str = "snapshot", min_item_share: float = 0.5,
                good_customer_min: float | None = None, recognised_min: float | None = None,
                threads: int | None = None, con=None) -> Panel:
    """Build the analysis tables of a study.

    Parameters
    ----------
    study : cxlab.study.Study
    data : cxlab.data.validate.StudyData or cxlab.data.tables.EngineData
        Typed, validated tables: pandas frames (``cxlab.data.validate.load_study_data(study)``),
        uploaded to the engine, or the same tables already on a backend (``EngineData``): the
        panel is then built there, and the raw tables never come into this process.
    follow_up : {"snapshot", "next_survey"}
        ``"snapshot"``: follow each respondent from the first survey to defection or the snapshot.
        ``"next_survey"``: censor at the respondent's next survey answer (the first-survey
        perception then describes the whole follow-up; used to check estimates against a
        data-generating model in which later answers update the hazard).
    min_item_share : float
        A construct score is the mean of its answered items when at least this share is answered.
    good_customer_min : float, optional
        Lowest self-status answer counted as "I am a good customer" (default: the study's
        ``study.dgc_definition``, i.e. ``segments.disappointed.good_customer_min`` or the
        top-two-box of the self-status scale).
    recognised_min : float, optional
        Recognition score at or above which a customer counts as recognised (default: the study's
        ``study.dgc_definition``); below it, a good customer is a *disappointed good customer*.
    threads : int, optional
        DuckDB threads (default: DuckDB's own choice). The tables do not depend on it.
    con : ibis backend, optional
        With a StudyData: build on this backend instead of an embedded DuckDB (the frames of ``data`` are uploaded
        as temporary tables; the same expressions run there, and only the respondent table, the
        counting-process rows and the flow's counts come back). Tested on DuckDB, PostgreSQL and
        PySpark ``local[2]`` (a SparkSession: ``ibis.pyspark.connect(session)``).
    """
    if follow_up not in ("snapshot", "next_survey"):
        raise CxlabError(f"follow_up must be 'snapshot' or 'next_survey', got {follow_up!r}.")
    spec = study.surveys
    lo, hi = spec.scale
    definition = study.dgc_definition
    good_min = definition.good_customer_min if good_customer_min is None else good_customer_min
    rec_min = definition.recognised_min if recognised_min is None else recognised_min
    snapshot = pd.Timestamp(study.snapshot_date)
    cutoff = snapshot_cutoff(study.snapshot_date)   # "on or before the snapshot day" is "< cutoff"
    constructs = list(spec.constructs)
    covariates = list(study.customers.covariates)
    outcomes = list(spec.outcomes)
    recognition = study.recognition_construct
    flow = _Flow()

    con = _Engine(data, con, threads)
    tables = con.data
    answer_cols = _answer_columns(spec)
    kept_answers = _kept_answers(tables.surveys, answer_cols, cutoff, flow)
    n_answers_cut = flow.rows[-1]["rows_out"]
    comp = None
    if tables.complaints is not None:
        comp = _kept_complaints(tables.complaints, cutoff, flow)

    # ---- customers: cut at the snapshot --------------------------------------------------
    cust = tables.customers
    n = cust.aggregate(n_customers=cust.count(),
                       n_known=(cust.start < cutoff).cast("int32").cast("int64").sum()).execute().iloc[0]
    flow.add("customers", "customers known at the snapshot", "started after the snapshot date",
             int(n["n_customers"]), int(n["n_known"] or 0))
    defected = _.end.notnull() & (_.end < cutoff)
    # the key follows the customer file's order (ties broken the same on every build)
    customers = _materialize(con, cust.filter(_.start < cutoff).select(
        "customer_id", "start", "end", "value", *covariates,
        customer_key=(_.source_row - 1).cast("int64"),
        exit_date=ibis.ifelse(defected, _.end.cast("timestamp"), ibis.literal(snapshot)),
        event=defected.cast("int32").cast("int8"),
    ), "customers_known")

    # ---- answers: cut at the snapshot, attach tenure, score constructs ----------------------
    answers = kept_answers.join(customers.select("customer_id", "customer_key", "start", "exit_date", "event"),
                                "customer_id")
    scored = {c: _construct_score(answers, items, min_item_share) for c, items in spec.constructs.items()}
    answers = answers.mutate(tenure=_months(_.date, _.start), **scored)
    if spec.self_status:
        answers = answers.mutate(self_status=answers[spec.self_status].cast("float64"))
    else:
        answers = answers.mutate(self_status=ibis.null("float64"))
    if recognition is not None:
        answers = answers.mutate(
            dgc=ibis.ifelse(_.self_status.isnull() | _[recognition].isnull(), ibis.null("int8"),
                            ((_.self_status >= good_min) & (_[recognition] < rec_min)).cast("int32").cast("int8")))
    else:
        answers = answers.mutate(dgc=ibis.null("int8"))
    w = ibis.window(group_by="customer_key", order_by=["date", "source_row"])
    # only what the respondents and the counting process read (not the items: scored already)
    keep = list(dict.fromkeys(["customer_key", "start", "exit_date", "event", "tenure", *constructs,
                               "self_status", "dgc", *spec.outcome_columns.values()]))
    answers = _materialize(con, answers.select(
        *keep, answer_no=ibis.row_number().over(w), next_tenure=_.tenure.lead().over(w),
        n_answers=_.customer_key.count().over(ibis.window(group_by="customer_key"))), "answers_scored")
    n_answers_linked = _count(answers)
    flow.add("survey answers", "answers from customers known at the snapshot",
             "customer started after the snapshot", n_answers_cut, n_answers_linked)

    # ---- respondents: the first answer anchors the row -----------------------------------
    first = answers.filter(_.answer_no == 0)
    n_resp = _count(first)
    flow.add("respondents", "customers with an answer on or before the snapshot",
             "later answers of the same respondent (they update the time-varying table)", n_answers_linked, n_resp)
    first = first.mutate(entry=_.tenure, duration=_months(_.exit_date, _.start))
    if follow_up == "next_survey":
        cut = _.next_tenure.notnull() & (_.next_tenure < _.duration)
        first = first.mutate(event=ibis.ifelse(cut, ibis.literal(0, "int8"), _.event),
                             duration=ibis.ifelse(cut, _.next_tenure, _.duration))
    first_pos = _materialize(con, first.filter(_.duration > _.entry), "first_answers")
    # every construct in turn: how many respondents keep a score for all constructs so far
    have_all, counts = ibis.literal(True), {"n_pos": first_pos.count()}
    for i, c in enumerate(constructs):
        have_all = have_all & first_pos[c].notnull()
        counts[f"n_{i}"] = have_all.cast("int32").cast("int64").sum()
    counts = first_pos.aggregate(**counts).execute().iloc[0]
    n_pos = int(counts["n_pos"])
    flow.add("respondents", "follow-up after the survey",
             "defected on the survey date (no time at risk after it)", n_resp, n_pos)
    for i, c in enumerate(constructs):
        n_next = int(counts[f"n_{i}"] or 0)
        flow.add("respondents", f"{c} score available",
                 f"fewer than {min_item_share:.0%} of the {c} items answered", n_pos, n_next)
        n_pos = n_next
    complete = _materialize(con, first_pos.filter(have_all), "respondents")
    con.release("first_answers")

    resp_cols = ["customer_key", "entry", "duration", "event", *constructs, "self_status", "dgc",
                 "n_answers"]
    resp = complete.join(customers.select("customer_key", "value", *covariates), "customer_key")
    resp = resp.select(*resp_cols, *[resp[spec.outcome_columns[o]].cast("float64").name(o) for o in outcomes],
                       "value", *covariates)
    respondents = _collect(resp.order_by("customer_key"))
    respondents["event"] = respondents["event"].astype("int64")
    respondents["tenure_at_survey"] = respondents["entry"]
    # from whole days, so that equal day counts give equal times (a difference of two month values
    # would leave round-off "near-ties" that a Kaplan-Meier curve treats as distinct times)
    days = (respondents["duration"] * DAYS_PER_MONTH).round() - (respondents["entry"] * DAYS_PER_MONTH).round()
    respondents["time_since_survey"] = days / DAYS_PER_MONTH
    if respondents["value"].notna().any():   # a control: low / middle / high margin (tertiles)
        respondents["value_band"] = perception_bands(respondents["value"], (1 / 3, 2 / 3)).astype("string")
    else:
        respondents["value_band"] = pd.Series(pd.NA, index=respondents.index, dtype="string")
    if respondents["dgc"].notna().all():
        respondents["dgc"] = respondents["dgc"].astype("int64")

    respondents.attrs["cxlab.survival"] = {"duration": "duration", "event": "event", "entry": "entry", "clock": CLOCK_DESCRIPTION, "snapshot_date": str(study.snapshot_date)}  # the clock the table carries: cxlab.models.survival.clock
    intervals = _counting_process(con, answers, customers, complete, comp, constructs, covariates,
                                  cutoff)
    con.close()

    return Panel(respondents=respondents, intervals=intervals, exclusions=flow.frame(),
                 constructs=constructs, covariates=covariates, outcomes=outcomes,
                 snapshot_date=study.snapshot_date, scale=(lo, hi), recognition=recognition)


def _with_source_row(df: pd.DataFrame) -> pd.DataFrame:
    if "source_row" in df.columns:
        return df
    return df.assign(source_row=np.arange(1, len(df) + 1))


def _counting_process(con, answers, customers, complete, comp, constructs, covariates, cutoff):
    """Counting-process rows: split at later answers and complaint status changes."""
    keys = complete.select("customer_key", "start", "entry", "duration", "event")
    # change points from answers (the anchor answer opens the first interval)
    ans = answers.join(keys.select("customer_key", "entry", "duration"), "customer_key")
    ans = ans.filter((_.tenure >= _.entry) & (_.tenure < _.duration))
    # one point per customer and tenure (two answers on one day: the later row wins), numbered
    ans = ans.mutate(same_day=ibis.row_number().over(
        ibis.window(group_by=["customer_key", "tenure"], order_by=[ibis.desc("answer_no")])))
    ans = ans.filter(_.same_day == 0)
    ans_pts = _materialize(con, ans.select(
        "customer_key", time=_.tenure, k=ibis.row_number().over(ibis.window(group_by="customer_key",
                                                                             order_by="tenure")),
        **{c: ans[c] for c in constructs}, dgc=_.dgc.cast("float64")), "answer_points")
    con.release("answers_scored")
    # complaint change points
    have_complaints = comp is not None
    points = [ans_pts.select("customer_key", "time")]
    if have_complaints:
        comp = comp.join(customers.select("customer_id", "customer_key"), "customer_id")
        comp = comp.join(keys, "customer_key").filter(_.opened < cutoff)
        # a resolution after the snapshot is not yet known: the complaint is open at the snapshot
        comp = comp.mutate(closed_seen=ibis.ifelse(_.closed.notnull() & (_.closed < cutoff),
                                                   _.closed, ibis.null("timestamp")))
        comp = comp.mutate(t_open=_months(_.opened, _.start),
                           t_close=ibis.ifelse(_.closed_seen.notnull(), _months(_.closed_seen, _.start),
                                               ibis.null("float64")),
                           goodwill=_.compensated.fill_null(0).cast("float64"))
        comp = _materialize(con, comp.select("customer_key", "entry", "duration", "t_open", "t_close", "goodwill",
                                             "source_row"), "complaint_times")
        inside = lambda t: (t > comp.entry) & (t < comp.duration)  # noqa: E731
        points.append(comp.filter(inside(comp.t_open)).select("customer_key", time=_.t_open))
        points.append(comp.filter(comp.t_close.notnull() & inside(comp.t_close))
                      .select("customer_key", time=_.t_close))
    pts = ibis.union(*points, distinct=True)
    w = ibis.window(group_by="customer_key", order_by="time")
    iv = pts.mutate(stop_next=_.time.lead().over(w)).join(keys.select("customer_key", "duration", "event"),
                                                           "customer_key")
    iv = iv.mutate(start=_.time, stop=_.stop_next.fill_null(_.duration))
    iv = iv.mutate(event=ibis.ifelse(_.stop_next.isnull(), _.event, ibis.literal(0, "int8")))
    iv = _materialize(con, iv.select("customer_key", "start", "stop", "event"), "interval_bounds")

    # perceptions: the latest answer at or before the interval start (as-of join)
    # perceptions: the latest answer at or before the interval start. Number the intervals by how
    # many answers started so far, then an equality join (an as-of join is much slower here).
    marks = ans_pts.select("customer_key", start=_.time, is_answer=ibis.literal(1))
    iv = iv.left_join(marks, ["customer_key", "start"]).select(
        "customer_key", "start", "stop", "event", is_answer=_.is_answer.fill_null(0))
    iv = iv.mutate(k=_.is_answer.sum().over(ibis.window(group_by="customer_key", order_by="start",
                                                        preceding=None, following=0)) - 1)
    iv = iv.join(ans_pts.drop("time"), ["customer_key", "k"])
    iv = _materialize(con, iv.select("customer_key", "start", "stop", "event", *constructs, "dgc"),
                      "interval_perceptions")
    con.release("answer_points", "interval_bounds", "respondents")

    if have_complaints:
        # status at the interval start: open if any complaint is open; else the latest resolution
        j = iv.select("customer_key", "start").join(
            comp.select("customer_key", "t_open", "t_close", "goodwill", "source_row"),
            [iv.customer_key == comp.customer_key, comp.t_open <= iv.start])
        j = j.mutate(is_open=(_.t_close.isnull() | (_.t_close > _.start)).cast("int32"),
                     resolved_at=ibis.ifelse(_.t_close.notnull() & (_.t_close <= _.start), _.t_close,
                                             ibis.null("float64")))
        # the latest resolution decides goodwill; resolutions on the same day: goodwill if any had
        # it, then the file's order (a complete tie-breaker: the same result on every build)
        w2 = ibis.window(group_by=["customer_key", "start"],
                         order_by=[ibis.desc("resolved_at"), ibis.desc("goodwill"), "source_row"])
        j = j.mutate(rank=ibis.row_number().over(w2))
        status = _materialize(con, j.group_by(["customer_key", "start"]).aggregate(
            n_open=_.is_open.sum(),
            last_goodwill=_.goodwill.max(where=(_.rank == 0) & _.resolved_at.notnull()),
            any_resolved=_.resolved_at.notnull().any(),
        ), "complaint_status")
        con.release("complaint_times")
        iv = iv.left_join(status, ["customer_key", "start"]).select(
            "customer_key", "start", "stop", "event", *constructs, "dgc",
            complaint_open=(_.n_open.fill_null(0) > 0).cast("int32").cast("int8"),
            complaint_resolved_no_goodwill=((_.n_open.fill_null(0) == 0) & _.any_resolved.fill_null(False)
                                            & (_.last_goodwill == 0)).fill_null(False).cast("int32").cast("int8"),
            complaint_resolved_goodwill=((_.n_open.fill_null(0) == 0) & _.any_resolved.fill_null(False)
                                         & (_.last_goodwill > 0)).fill_null(False).cast("int32").cast("int8"),
        )
    else:
        iv = iv.mutate(**{s: ibis.literal(0, "int8") for s in _COMPLAINT_STATES})
    iv = iv.join(customers.select("customer_key", *covariates), "customer_key")
    out = _collect(iv.order_by(["customer_key", "start"]))
    for col in ("event", *_COMPLAINT_STATES):
        out[col] = out[col].astype("int64")
    return out     # (_collect numbers the rows 0..n-1: no reset_index, which would copy the frame)


def perception_bands(scores: pd.Series, quantiles=(1 / 3, 2 / 3), labels=("low", "middle", "high")) -> pd.Series:
    """Low / middle / high band of a construct score, cut at the given quantiles.

    Scores are discrete (means of a few items), so many respondents share the cut value: a cut
    point is the score at that quantile and a band holds scores ``> previous cut`` and ``<= cut``;
    bands that come out empty are dropped (the labels then name only the bands that exist).
    Missing scores stay missing.
    """
    quantiles = sorted(float(q) for q in quantiles)
    if not all(0 < q < 1 for q in quantiles) or len(quantiles) != len(labels) - 1:
        raise ValueError(f"quantiles must be {len(labels) - 1} numbers in (0, 1) for bands {list(labels)}, "
                         f"got {quantiles}.")
    cuts = scores.quantile(quantiles).to_numpy()
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    out = pd.Series(pd.NA, index=scores.index, dtype="object")
    for lo, hi, label in zip(edges[:-1], edges[1:], labels):
        out[(scores > lo) & (scores <= hi)] = label
    present = [lab for lab in labels if (out == lab).any()]
    return pd.Series(pd.Categorical(out, categories=present, ordered=True), index=scores.index,
                     name=f"{scores.name} band" if scores.name else "band")
