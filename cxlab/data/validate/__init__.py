"""The data contract: check a study's files and report every problem at once.

:func:`validate_study` reads every data file the study spec names (CSV or Parquet), checks every
rule and returns a :class:`ValidationReport` whose ``problems`` table has one row per
rule x column that fails::

    file         column         rule            rows  examples  fix
    clients.csv  date d'entrée  date_parseable     2  3, 17     "date d'entrée" (customers.start) must ...

``rows`` counts the offending rows and ``examples`` gives up to five of them as 1-based data row
numbers (row 1 is the first row under the CSV header). Cell contents, and customer identifiers
in particular, never appear in a report. Problems about a whole file or column (a missing
file, a missing column) have ``rows = 0`` and no examples.

Per-column rules (parseability, ranges, uniqueness, nullability) and the within-file date order
run as one lazy pandera schema per file; the cross-file rules (ids known in the customer base,
dates inside the customer's relationship) are plain pandas and land in the same table. For a
study with a ``source:`` (a DuckDB file, PostgreSQL, PySpark) the same rules run as queries on
the engine (:mod:`cxlab.data.validate.engine`): only counts, example row numbers and, where a
rule needs them, the distinct values of a low-cardinality column come back to Python; the
messages are the same.

Rules (the ``rule`` column):

=====================  ======================================================================
file_exists            the file named in the spec exists
file_readable          it can be read as CSV (in its encoding) or Parquet, and is not empty
has_rows               it holds at least one data row
column_present         every column the spec names is in the file
name_clash             a survey column is named like a column of cxlab's typed tables
not_empty              ids, ``customers.start``, ``surveys.date``, ``complaints.opened`` are filled
unique                 customer ids are unique in the customer file
date_parseable         dates are ISO dates or date-times, or follow ``date_format`` (empty allowed
                       for end / closed)
start_before_end       customers: ``start <= end`` (calendar days)
opened_before_closed   complaints: ``opened <= closed`` (calendar days)
numeric                ``value``, items and outcomes are numbers (empty allowed)
in_scale               items in ``surveys.scale``, outcomes in their scale, or a missing code
boolean                ``compensated`` is 0/1, true/false or yes/no (empty allowed)
id_in_customers        every survey / complaint id is in the customer file
inside_relationship    survey date / complaint opening between the customer's start and end
row_fields             every CSV row has as many fields as the header (a truncated last line is not)
header_unique          no column name appears twice in the header
not_identifier         a covariate is a category, not a customer identifier: it is not the id
                       column, has fewer than 20 distinct values or at most one per two filled
                       rows, and holds no customer id (5+ characters mixing letters and digits,
                       or 7+ digits)
label_slug_unique      a covariate's categories stay distinct as metric names (cxlab.study.slug)
=====================  ======================================================================

Files are read in the dialect their spec gives (``delimiter``, ``decimal``, ``encoding``,
``date_format``, ``missing_codes``: see :mod:`cxlab.study`). An empty, binary or undecodable
file is a ``file_readable`` problem (an undecodable one names the ``encoding`` key to set);
dates that are not ISO and parse with a common day-first or month-first format name the
``date_format`` to add. A file's header is quoted in a problem only when the file holds at least
one of the columns its spec names (it is then recognisably the study's extract).

Dates after ``snapshot_date`` are not errors: the panel cuts them. Date order and the
relationship are compared on calendar days (a survey answered at 14:00 on the day the customer
left is inside the relationship). Time-zone offsets are dropped, keeping the wall-clock time.

:func:`load_study_data` validates and returns the typed tables (:class:`StudyData`) or raises
:class:`cxlab.errors.DataContractError`; :func:`load_engine_data` does the same for a ``source:``
study and returns them as ibis expressions on its backend
(:class:`cxlab.data.tables.EngineData`: the panel is then built where the data live).

Example row numbers of an engine table. A table in a database has no file order, so a row's
number is its rank (1-based) in the engine's storage order at validation time: DuckDB's
``rowid``, PostgreSQL's ``ctid`` (the physical order; the load order of a table whose rows
have not been updated since it was loaded), Spark's scan order of the files
(``monotonically_increasing_id``). A table loaded from a file in one go (DuckDB's
``read_csv``, ``COPY``, a Parquet file) therefore numbers its rows as the file does, and the
examples are the file's row numbers. The number is never derived from the customer id, and
``source_row`` of the typed tables is this same number.

Package layout: :mod:`.flow` (which rule runs on which column), :mod:`.messages` (every fix
text), :mod:`.parsing` (the dialect; pandas parsers), :mod:`.require` (column_present),
:mod:`.frame`, :mod:`.schema`, :mod:`.frame_study` (the file path), :mod:`.engine_parse`,
:mod:`.engine`, :mod:`.engine_study` (the engine path), :mod:`.report` (the results).
"""

from __future__ import annotations

from .flow import run_rules
from .frame_study import FramePath, frame_data, frame_summary
from .report import PROBLEM_COLUMNS, SUMMARY_COLUMNS, Problems, StudyData, ValidationReport

__all__ = ["validate_study", "validate_engine", "validate_frames", "load_study_data", "load_engine_data", "ValidationReport",
           "StudyData", "PROBLEM_COLUMNS", "SUMMARY_COLUMNS"]


_ENGINE_READY = True


def validate_study(study, collect: bool = True) -> ValidationReport:
    """Read every data file of ``study`` and check the data contract.

    Never stops at the first problem: a missing file or column is one problem row and the other
    files and columns are still checked. Returns a :class:`ValidationReport`; its ``data``
    holds the typed tables when ``ok``. A ``source:`` study is checked on its engine
    (:func:`validate_engine`) and its typed tables collected into ``data`` (use
    :func:`validate_engine` or :func:`load_engine_data` to keep them on the engine;
    ``collect=False``: the report only, ``data`` None, as ``cxlab validate`` prints it).
    """
    if study.source is not None and _ENGINE_READY:
        from cxlab.data.sources import connect, disconnect

        con = connect(study)
        try:
            report = validate_engine(study, con)
            if report.engine is not None:
                if collect:
                    report.data = report.engine.to_study_data()
                report.engine.close()
                report.engine = None
            return report
        finally:
            disconnect(con)
    return validate_frames(study)


def validate_frames(study) -> ValidationReport:
    """The contract checked in pandas: every table read whole into memory (files; a ``source:``
    study's tables are collected first)."""
    problems = Problems()
    tables, survey_columns = run_rules(study, FramePath(), problems)
    problems_df = problems.frame()
    summary = frame_summary(study, tables, survey_columns)
    files = {t.label: t.n for t in tables.values() if t.raw is not None}
    data = frame_data(study, tables, survey_columns) if problems_df.empty else None
    return ValidationReport(problems=problems_df, summary=summary, data=data, files=files)


def validate_engine(study, con) -> ValidationReport:
    """The contract checked by queries on ``con`` (the study's ``source:`` backend, from
    :func:`cxlab.data.sources.connect`); ``report.engine`` holds the typed tables as ibis
    expressions on ``con`` (:class:`cxlab.data.tables.EngineData`) when every check passed."""
    from .engine_study import validate_on_engine

    return validate_on_engine(study, con)


def load_study_data(study) -> StudyData:
    """Validate ``study`` and return its typed tables.

    Raises :class:`cxlab.errors.DataContractError` (message: the problem table; ``.problems``:
    the DataFrame) when any rule fails.
    """
    report = validate_study(study)
    report.raise_if_failed()
    return report.data


def load_engine_data(study, con):
    """Validate a ``source:`` study on ``con`` and return its typed tables on that backend
    (:class:`cxlab.data.tables.EngineData`); raises :class:`cxlab.errors.DataContractError` as
    :func:`load_study_data` does. Nothing but counts and example row numbers is collected."""
    report = validate_engine(study, con)
    report.raise_if_failed()
    return report.engine
