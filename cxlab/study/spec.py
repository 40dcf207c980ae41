"""The study spec: a YAML file that maps a company's extracts onto cxlab's vocabulary.

A spec names the data files (CSV or Parquet), which column plays which role, which survey
items measure which construct, and the ``snapshot_date`` at which everything is cut::

    name: Retail bank relationship barometer
    snapshot_date: 2026-06-30
    customers:  {path: customers.csv, id: cust, start: opened, end: closed, value: margin_12m,
                 covariates: [segment, channel]}
    surveys:    {path: barometer.csv, id: cust, date: answered, scale: [1, 5], missing_codes: [99],
                 constructs: {recognition: [q7, q8, q9], empathy: [q10, q11, q12]},
                 self_status: q3, outcomes: {recommend: q1, satisfaction: q2},
                 outcome_scales: {recommend: [0, 10]}}
    complaints: {path: complaints.csv, id: cust, opened: opened, closed: closed,
                 compensated: goodwill}
    segments:   {disappointed: {recognition: recognition}}

Construct names are the user's (``reconnaissance``, ``empathie`` ...). Relative paths resolve
against the spec's folder. An unknown key is an error that names the key and the closest
valid one.

Keys beyond the example above (all optional)
--------------------------------------------

Every file spec (``customers``, ``surveys``, ``complaints``) takes the dialect of its extract:

``delimiter``      field separator of a CSV (default ``","``; ``";"``, a tab, ``"|"`` ...)
``decimal``        decimal mark of numbers: ``"."`` (default) or ``","``. With ``","`` a number
                   holding a ``"."`` is refused (it may be a thousands separator).
``encoding``       text encoding of a CSV (default ``utf-8``; e.g. ``latin-1``, ``cp1252``)
``date_format``    strftime format of the dates (e.g. ``"%d/%m/%Y"``); a time of day after it
                   (``HH:MM`` or ``HH:MM:SS``) is allowed. Default: ISO dates or date-times.
``missing_codes``  cell values that mean "no answer / unknown", numbers or strings
                   (``[98, 99, "NSP"]``). In the survey file they apply to items, the
                   self-status item and outcomes; in the other files to every column except the
                   id. A cell equal to a code is treated as empty (and counted).

``decimal``, ``date_format`` and ``missing_codes`` also apply to text columns of a Parquet file.

Dates are compared with ``snapshot_date`` by calendar day (:func:`within_snapshot`): anything
dated on the snapshot day is inside the window, whatever its time of day. How duplicate survey
answers and complaints are decided is documented in :mod:`cxlab.data.panel`.

``surveys.outcomes`` maps an outcome name to its column, short (``recommend: q1``) or long::

    outcomes: {recommandation: {column: nps, role: recommend, scale: [0, 10]},
               fidélité: {column: q4, role: intention_to_stay}}

Roles are ``recommend``, ``satisfaction``, ``intention_to_stay`` and ``other``; a short-form
key equal to a role name takes that role, any other short-form key is ``other``. Each role
other than ``other`` is held by at most one outcome. An outcome's scale is its long-form
``scale``, else ``outcome_scales[name]``, else ``surveys.scale``.

``surveys.self_status_scale`` ``[lo, hi]`` of the "I am a good customer" item (default: ``scale``).

``segments.disappointed`` defines the disappointed good customers (DGC), once per study::

    segments: {disappointed: {recognition: reconnaissance, good_customer_min: 4, recognised_min: 3}}

A DGC answered at least ``good_customer_min`` on the self-status item and scored strictly below
``recognised_min`` on the recognition construct. Defaults: ``good_customer_min`` is the
top-two-box of the self-status scale (``hi - 1``: 4 on 1-5, 9 on 0-10; the top box ``hi`` on a
scale of two or three points; the top fifth, ``hi - (hi - lo) / 5``, on a scale whose ends are
not whole numbers); ``recognised_min`` is the midpoint of ``surveys.scale``.
:attr:`Study.dgc_definition` holds the definition and a sentence stating it.

``customers.value_currency`` (ISO code such as ``EUR`` or a symbol such as ``€``) and
``customers.value_period`` (free text, e.g. ``"12 months"``) say what ``value`` is.

Paths
-----

:func:`load_study` refuses a data path that resolves (symlinks followed) outside the spec's
folder, unless it is inside one of the ``data_roots`` given by the caller (a run config) or
listed in the environment variable ``CXLAB_DATA_ROOTS``.

Names
-----

Construct, covariate, outcome and category names may hold any character. :func:`slug` turns a
name into the ASCII form used in metric names (``proximité`` -> ``proximite``); two names of a
study whose slugs coincide are refused (rename one).
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import hashlib
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator)

from cxlab.errors import StudyError

__all__ = [
    "Study",
    "CustomersSpec",
    "SurveysSpec",
    "ComplaintsSpec",
    "SegmentsSpec",
    "DisappointedSpec",
    "OutcomeSpec",
    "DGCDefinition",
    "OUTCOME_ROLES",
    "load_study",
    "parse_study",
    "read_table",
    "slug",
    "within_snapshot",
]

#: environment variable listing extra allowed data folders (os.pathsep-separated)
DATA_ROOTS_ENV = "CXLAB_DATA_ROOTS"

#: roles an outcome can play (``other``: analysed under its own name only)
OUTCOME_ROLES = ("recommend", "satisfaction", "intention_to_stay", "other")


#: column names of cxlab's analysis tables: constructs, covariates and outcomes may not use them
RESERVED_NAMES = frozenset({
    "customer_id", "customer_key", "start", "end", "date", "entry", "duration", "event", "tenure",
    "tenure_at_survey", "time_since_survey", "self_status", "dgc", "n_answers", "value", "stop",
    "time", "exit_date", "answer_no", "next_tenure", "complaint_open",
    "complaint_resolved_no_goodwill", "complaint_resolved_goodwill", "source_row", "value_band",
})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FileSpec(_Spec):
    path: str | None = Field(None, description="CSV or Parquet file, relative to the spec's folder "
                                               "(required unless the study names a source:)")
    id: str = Field(description="customer identifier column")
    delimiter: str = Field(",", description="CSV field separator")
    decimal: Literal[".", ","] = Field(".", description="decimal mark of numbers")
    encoding: str = Field("utf-8", description="text encoding of a CSV file")
    date_format: str | None = Field(None, description='strftime format, e.g. "%d/%m/%Y"; default ISO')
    missing_codes: list[float | str] = Field(
        default_factory=list, description='cell values meaning "unknown", e.g. [99, "NSP"]')

    @field_validator("delimiter")
    @classmethod
    def _one_char_delimiter(cls, v):
        if len(v) != 1 or v in ('"', "\n", "\r"):
            raise ValueError(f"delimiter must be one character such as ',' ';' '|' or '\\t', got {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v):
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}; use e.g. utf-8, latin-1 or cp1252") from None
        return v

    @field_validator("date_format")
    @classmethod
    def _usable_date_format(cls, v):
        if v is None:
            return v
        probe = dt.datetime(2026, 6, 30)
        try:
            back = dt.datetime.strptime(probe.strftime(v), v)
        except (ValueError, TypeError):
            back = None
        if "%" not in v or back is None or back.date() != probe.date():
            raise ValueError(f"date_format {v!r} does not describe a whole date; write it with strftime "
                             f"codes, e.g. '%d/%m/%Y' for 30/06/2026 or '%Y-%m-%d' for 2026-06-30")
        return v

    @field_validator("missing_codes")
    @classmethod
    def _codes_clean(cls, v):
        out = []
        for code in v:
            if isinstance(code, str):
                code = code.strip()
                if not code:
                    raise ValueError("missing_codes holds an empty string; empty cells are missing anyway")
            elif not math.isfinite(code):
                raise ValueError(f"missing_codes must be finite numbers or strings, got {code!r}")
            out.append(code)
        return out

    @property
    def numeric_codes(self) -> list[float]:
        """The numeric missing codes (as floats)."""
        return [float(c) for c in self.missing_codes if not isinstance(c, str)]

    @property
    def text_codes(self) -> list[str]:
        """The string missing codes (stripped)."""
        return [c for c in self.missing_codes if isinstance(c, str)]


class CustomersSpec(_FileSpec):
    """The customer base: one row per customer."""

    start: str = Field(description="column with the date the relationship started")
    end: str = Field(description="column with the date the customer defected (empty if active)")
    value: str | None = Field(None, description="column with the customer's margin (money)")
    value_currency: str | None = Field(None, description="currency of value: ISO code (EUR) or symbol (€)")
    value_period: str | None = Field(None, description='period value covers, e.g. "12 months"')
    covariates: list[str] = Field(default_factory=list, description="categorical controls")

    @field_validator("value_currency")
    @classmethod
    def _currency(cls, v):
        if v is None:
            return v
        v = v.strip()
        if re.fullmatch(r"[A-Z]{3}", v) or (0 < len(v) <= 3 and not any(ch.isalnum() for ch in v)):
            return v
        raise ValueError(f"value_currency must be an ISO 4217 code such as EUR, USD, GBP or a currency "
                         f"symbol such as €, $, £; got {v!r}")

    @field_validator("value_period")
    @classmethod
    def _period(cls, v):
        if v is not None and not v.strip():
            raise ValueError("value_period is empty; write e.g. '12 months' or leave the key out")
        return None if v is None else v.strip()


def _check_scale(v, key="scale"):
    if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
        raise ValueError(f"{key} must be [lowest, highest] with lowest < highest, got {list(v)}")
    return v


class OutcomeSpec(_Spec):
    """One outcome in long form: ``{column: nps, role: recommend, scale: [0, 10]}``."""

    column: str = Field(description="column holding the outcome")
    role: Literal["recommend", "satisfaction", "intention_to_stay", "other"] | None = Field(
        None, description="what the outcome measures; default: the outcome's name if it is a role, else other")
    scale: tuple[float, float] | None = Field(None, description="[lowest, highest]; default: outcome_scales or scale")

    @field_validator("scale")
    @classmethod
    def _scale_increasing(cls, v):
        return _check_scale(v)


class SurveysSpec(_FileSpec):
    """Relationship-survey answers: one row per answer (several waves per customer allowed)."""

    date: str = Field(description="column with the answer date")
    scale: tuple[float, float] = Field((1, 5), description="[lowest, highest] item answer")
    constructs: dict[str, list[str]] = Field(description="construct name -> item columns")
    self_status: str | None = Field(None, description='item "I consider myself a good customer"')
    self_status_scale: tuple[float, float] | None = Field(
        None, description="[lowest, highest] of the self_status item; default: scale")
    outcomes: dict[str, OutcomeSpec] = Field(
        default_factory=dict, description="outcome name -> column, or {column, role, scale}")
    outcome_scales: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="outcome name -> [lowest, highest]; default: scale"
    )

    @field_validator("outcomes", mode="before")
    @classmethod
    def _short_outcomes(cls, v):
        if isinstance(v, dict):
            return {k: ({"column": c} if isinstance(c, str) else c) for k, c in v.items()}
        return v

    @field_validator("outcomes")
    @classmethod
    def _outcome_roles(cls, v):
        out, holders = {}, {}
        for name, o in v.items():
            role = o.role or (name if name in OUTCOME_ROLES else "other")
            out[name] = o.model_copy(update={"role": role})
            if role != "other":
                holders.setdefault(role, []).append(name)
        twice = {r: ns for r, ns in holders.items() if len(ns) > 1}
        if twice:
            role, names = next(iter(twice.items()))
            raise ValueError(f"outcomes {names} all have role {role!r}; one outcome per role (give the "
                             f"others role: other)")
        return out

    @field_validator("scale")
    @classmethod
    def _scale_increasing(cls, v):
        return _check_scale(v)

    @field_validator("self_status_scale")
    @classmethod
    def _self_scale_increasing(cls, v):
        return _check_scale(v, "self_status_scale")

    @field_validator("outcome_scales")
    @classmethod
    def _outcome_scales_increasing(cls, v):
        for name, sc in v.items():
            _check_scale(sc, f"outcome_scales.{name}")
        return v

    @field_validator("constructs")
    @classmethod
    def _constructs_have_items(cls, v):
        if not v:
            raise ValueError("at least one construct is needed, e.g. {recognition: [q7, q8]}")
        for name, items in v.items():
            if not items:
                raise ValueError(f"construct {name!r} lists no item column")
        return v

    @model_validator(mode="after")
    def _outcome_scales_known(self):
        unknown = set(self.outcome_scales) - set(self.outcomes)
        if unknown:
            raise ValueError(
                f"outcome_scales names {sorted(unknown)}, which are not in outcomes "
                f"{sorted(self.outcomes)}"
            )
        both = sorted(n for n in self.outcome_scales if self.outcomes[n].scale is not None)
        if both:
            raise ValueError(f"the scale of outcome {both[0]!r} is given twice (outcomes.{both[0]}.scale "
                             f"and outcome_scales.{both[0]}); keep one")
        return self

    def outcome_scale(self, outcome: str) -> tuple[float, float]:
        """[lowest, highest] of an outcome: its own scale, else outcome_scales, else scale."""
        o = self.outcomes.get(outcome)
        if o is not None and o.scale is not None:
            return o.scale
        return self.outcome_scales.get(outcome, self.scale)

    @property
    def outcome_columns(self) -> dict[str, str]:
        """Outcome name -> its column, in spec order."""
        return {name: o.column for name, o in self.outcomes.items()}

    @property
    def outcome_roles(self) -> dict[str, str]:
        """Outcome name -> its role (``recommend``, ``satisfaction``, ``intention_to_stay``, ``other``)."""
        return {name: o.role for name, o in self.outcomes.items()}

    @property
    def status_scale(self) -> tuple[float, float]:
        """[lowest, highest] of the self-status item (``self_status_scale``, default ``scale``)."""
        return self.self_status_scale if self.self_status_scale is not None else self.scale

    @property
    def items(self) -> list[str]:
        """Every construct item column, in spec order."""
        return [item for items in self.constructs.values() for item in items]


class ComplaintsSpec(_FileSpec):
    """Complaints: one row per complaint."""

    opened: str = Field(description="column with the date the complaint was opened")
    closed: str | None = Field(None, description="column with the resolution date (empty: open)")
    compensated: str | None = Field(None, description="column: goodwill gesture given (0/1)")


class DisappointedSpec(_Spec):
    recognition: str = Field("recognition", description="construct that plays 'recognition'")
    good_customer_min: float | None = Field(
        None, description="lowest self-status answer of a 'good customer'; default: top-two-box")
    recognised_min: float | None = Field(
        None, description="recognition score at or above which a customer feels recognised; "
                          "default: midpoint of surveys.scale")


SOURCE_BACKENDS = ("duckdb", "postgres", "pyspark")


def _source_roles(v: dict, key: str) -> dict:
    """``v`` (a ``source.<key>`` mapping) names only the study's roles."""
    bad = sorted(set(v) - {"customers", "surveys", "complaints"})
    if bad:
        raise ValueError(f"source.{key} names the roles {bad}; the roles are customers, surveys, complaints")
    return v


class SourceSpec(_Spec):
    """Where the tables live when they are not files: an ibis backend and one table per role.

    ``source: {backend: postgres, url_env: CXLAB_WAREHOUSE_URL, tables: {customers: crm.customers,
    surveys: crm.barometer, complaints: crm.complaints}}``. The connection string is read from
    the environment variable named by ``url_env`` (never written in the spec, never shown in any
    output: ``cxlab run`` scrubs it like a secret parameter). ``backend: duckdb`` takes ``path``
    (a .duckdb file, relative to the spec's folder) or ``url_env``. ``url_param`` names a secret
    run parameter that may supply the URL under ``cxlab run`` instead of the variable.

    ``backend: pyspark``: tables of the Spark session's catalog (``tables``) and/or Parquet files
    or folders (``parquet: {role: path}``, relative to the spec's folder, or a URL such as
    ``s3a://bucket/customers/``). The session's master is ``$CXLAB_SPARK_MASTER``, else
    ``master``, else ``local[*]``; its options ``spark_conf`` (then ``$CXLAB_SPARK_CONF``, a JSON
    object, on top): see :func:`cxlab.data.sources.spark_session`.
    """

    backend: Literal["duckdb", "postgres", "pyspark"] = Field(description="ibis backend holding the tables")
    url_env: str | None = Field(None, description="environment variable holding the connection URL")
    url_param: str | None = Field(None, description="secret run parameter that may supply the URL "
                                                    "under cxlab run")
    path: str | None = Field(None, description="duckdb: the .duckdb file, relative to the spec's folder")
    tables: dict[str, str] = Field(default_factory=dict,
                                   description="role (customers, surveys, complaints) -> table name "
                                               "(schema.table allowed)")
    parquet: dict[str, str] = Field(default_factory=dict, description="pyspark: role -> Parquet file or "
                                                                      "folder (or URL)")
    master: str | None = Field(None, description="pyspark: the Spark master (default local[*]; "
                                                 "$CXLAB_SPARK_MASTER wins)")
    spark_conf: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="pyspark: Spark options (spark.executor.memory: 8g, ...)")

    @property
    def roles(self) -> list[str]:
        """Roles with a table or a Parquet path."""
        return list(dict.fromkeys([*self.tables, *self.parquet]))

    def name_of(self, role: str) -> str:
        """The table (or Parquet path) of ``role``, as problems name it."""
        return self.tables[role] if role in self.tables else self.parquet[role]

    @field_validator("tables")
    @classmethod
    def _known_roles(cls, v):
        _source_roles(v, "tables")
        for role, name in v.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", str(name)):
                raise ValueError(f"source.tables.{role} is {name!r}: give a table name, optionally "
                                 f"schema.table (letters, digits, _)")
        return v

    @field_validator("parquet")
    @classmethod
    def _parquet_roles(cls, v):
        return _source_roles(v, "parquet")

    @model_validator(mode="after")
    def _where(self):
        if self.backend == "postgres" and not (self.url_env or self.url_param):
            raise ValueError("a postgres source needs url_env: the environment variable holding the "
                             "connection URL (postgresql://user:password@host:port/database)")
        if self.parquet and self.backend != "pyspark":
            raise ValueError("source.parquet is for backend: pyspark; a study on DuckDB reads Parquet "
                             "files as files (customers.path: customers.parquet)")
        both = sorted(set(self.tables) & set(self.parquet))
        if both:
            raise ValueError(f"source.tables and source.parquet both name {', '.join(both)}; give one")
        if self.backend != "pyspark" and (self.master or self.spark_conf):
            raise ValueError("source.master and source.spark_conf are for backend: pyspark")
        if self.url_param is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.url_param):
            raise ValueError(f"source.url_param is {self.url_param!r}: give the NAME of a run parameter "
                             f"(e.g. warehouse_url), never the URL itself")
        if self.backend == "duckdb" and not (self.path or self.url_env or self.url_param):
            raise ValueError("a duckdb source needs path: the .duckdb file (or url_env)")
        if self.url_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.url_env):
            raise ValueError(f"source.url_env is {self.url_env!r}: give the NAME of an environment "
                             f"variable (e.g. CXLAB_WAREHOUSE_URL), never the URL itself")
        return self


class SegmentsSpec(_Spec):
    disappointed: DisappointedSpec = Field(default_factory=DisappointedSpec)


class Study(_Spec):
    """A parsed, checked study spec. Build it with :func:`load_study`."""

    name: str
    snapshot_date: dt.date = Field(description="data cut: nothing after it is seen")
    customers: CustomersSpec
    surveys: SurveysSpec
    complaints: ComplaintsSpec | None = None
    segments: SegmentsSpec = Field(default_factory=SegmentsSpec)
    source: SourceSpec | None = Field(None, description="tables in a database instead of files")
    base_dir: Path = Field(Path("."), exclude=True, description="folder of the spec file")
    spec_path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _files_or_source(self):
        roles = ["customers", "surveys", *(["complaints"] if self.complaints is not None else [])]
        if self.source is None:
            missing = [f"{r}.path" for r in roles if getattr(self, r).path is None]
            if missing:
                raise ValueError(f"{', '.join(missing)} missing: name the CSV or Parquet file, or give "
                                 f"a source: section naming the database tables")
            return self
        both = [r for r in roles if getattr(self, r).path is not None]
        if both:
            raise ValueError(f"{', '.join(f'{r}.path' for r in both)} and source: both given; a study "
                             f"reads its tables either from files or from the source, not both")
        missing = [r for r in roles if r not in self.source.roles]
        if missing:
            raise ValueError(f"source.tables has no {', '.join(missing)}: name the table of each role "
                             f"the spec describes")
        extra = [r for r in self.source.roles if r not in roles]
        if extra:
            raise ValueError(f"source.tables names {', '.join(extra)}, which the spec does not describe; "
                             f"add its section ({extra[0]}: {{id: ..., ...}}) or drop the table")
        return self

    @model_validator(mode="after")
    def _recognition_is_a_construct(self):
        rec = self.segments.disappointed.recognition
        if rec not in self.surveys.constructs:
            # Only an error if the user named it; the default may simply be absent.
            if "recognition" in self.segments.disappointed.model_fields_set:
                raise ValueError(
                    f"segments.disappointed.recognition names {rec!r}, which is not a construct; "
                    f"constructs are {sorted(self.surveys.constructs)}"
                )
        return self

    @model_validator(mode="after")
    def _names_do_not_clash(self):
        names = [*self.surveys.constructs, *self.customers.covariates, *self.surveys.outcomes]
        clash = sorted(set(names) & RESERVED_NAMES)
        if clash:
            raise ValueError(
                f"the names {clash} are used by cxlab's analysis tables; rename these constructs/"
                f"covariates/outcomes in the spec (e.g. {clash[0]!r} -> {clash[0] + '_score'!r})")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"the names {dup} are used twice among constructs, covariates and outcomes")
        by_slug: dict[str, list[str]] = {}
        for n in names:
            by_slug.setdefault(slug(n), []).append(n)
        same = [ns for ns in by_slug.values() if len(ns) > 1]
        if same:
            raise ValueError(f"the names {same[0]} differ only by accents, case of symbols or punctuation "
                             f"(both become {slug(same[0][0])!r} in metric names); rename one of them")
        return self

    @model_validator(mode="after")
    def _dgc_thresholds_in_scale(self):
        d = self.segments.disappointed
        lo, hi = self.surveys.status_scale
        if d.good_customer_min is not None and not lo < d.good_customer_min <= hi:
            raise ValueError(
                f"segments.disappointed.good_customer_min is {_num(d.good_customer_min)}, outside the "
                f"self-status scale {_scale_text((lo, hi))} (lowest excluded); set it within the scale or "
                f"set surveys.self_status_scale")
        lo, hi = self.surveys.scale
        if d.recognised_min is not None and not lo < d.recognised_min <= hi:
            raise ValueError(
                f"segments.disappointed.recognised_min is {_num(d.recognised_min)}, outside the item "
                f"scale {_scale_text((lo, hi))} (lowest excluded: nobody would score below it)")
        return self

    @property
    def dgc_definition(self) -> "DGCDefinition":
        """The study's one definition of the disappointed good customers (see module docstring)."""
        ss, d = self.surveys, self.segments.disappointed
        status_scale = ss.status_scale
        good_min = d.good_customer_min if d.good_customer_min is not None else top_two_box(status_scale)
        rec_min = d.recognised_min if d.recognised_min is not None else (ss.scale[0] + ss.scale[1]) / 2
        return DGCDefinition(recognition=self.recognition_construct, self_status=ss.self_status,
                             good_customer_min=float(good_min), recognised_min=float(rec_min),
                             self_status_scale=tuple(status_scale), scale=tuple(ss.scale))

    def outcome_for_role(self, role: str) -> str | None:
        """Name of the outcome playing ``role`` (None when no outcome does; ``other``: the first)."""
        if role not in OUTCOME_ROLES:
            raise ValueError(f"role must be one of {', '.join(OUTCOME_ROLES)}; got {role!r}.")
        return next((n for n, r in self.surveys.outcome_roles.items() if r == role), None)

    @property
    def outcome_roles(self) -> dict[str, str]:
        """Outcome name -> role."""
        return self.surveys.outcome_roles

    @property
    def constructs(self) -> list[str]:
        return list(self.surveys.constructs)

    @property
    def recognition_construct(self) -> str | None:
        """The construct that plays 'recognition' for the disappointed good customers."""
        rec = self.segments.disappointed.recognition
        return rec if rec in self.surveys.constructs else None

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p.resolve() if p.is_absolute() else (self.base_dir / p).resolve()

    def check_paths(self, data_roots=()) -> None:
        """Refuse data paths outside the spec's folder and ``data_roots`` (StudyError, exit 2)."""
        roots = [self.base_dir.resolve(), *(Path(r).resolve() for r in data_roots)]
        bad = []
        paths = dict(self.files)
        if self.source is not None and self.source.path:
            paths["source"] = self.resolve(self.source.path)
        for role, path in paths.items():
            if not any(path == r or r in path.parents for r in roots):
                bad.append(f"{role}.path {getattr(self, role).path!r}")
        if bad:
            where = "the spec's folder" + (" or the run's data roots" if data_roots else "")
            raise StudyError(
                f"{self.spec_path or 'study spec'}: {', '.join(bad)} point{'s' * (len(bad) == 1)} outside "
                f"{where}; data files must be inside {where}. Move or link the extracts there (a link "
                f"must not lead outside either), or name their folder as a data root in the run config.")

    def label(self, role: str) -> str:
        """How problems name the table of ``role``: its file as written, or ``backend:table``."""
        if self.source is not None:
            return f"{self.source.backend}:{self.source.name_of(role)}"
        return getattr(self, role).path

    @property
    def files(self) -> dict[str, Path]:
        """Role -> resolved path of every data file in the study (none for a ``source:``)."""
        if self.source is not None:
            return {}
        out = {"customers": self.resolve(self.customers.path), "surveys": self.resolve(self.surveys.path)}
        if self.complaints is not None:
            out["complaints"] = self.resolve(self.complaints.path)
        return out


def _num(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _scale_text(sc) -> str:
    return f"{_num(sc[0])}\u2013{_num(sc[1])}"


def top_two_box(scale) -> float:
    """Lowest answer of the top-two-box of an answer scale ``[lo, hi]``.

    Whole-number scales of four points or more: ``hi - 1`` (4 on 1-5, 9 on 0-10); of two or
    three points: the top box ``hi``; scales whose ends are not whole numbers: the top fifth
    of the range, ``hi - (hi - lo) / 5``.
    """
    lo, hi = float(scale[0]), float(scale[1])
    if lo.is_integer() and hi.is_integer():
        return hi - 1 if hi - lo >= 3 else hi
    return hi - (hi - lo) / 5


@dataclass(frozen=True)
class DGCDefinition:
    """Who counts as a *disappointed good customer* in this study.

    A respondent is a DGC when their self-status answer is at least ``good_customer_min`` and
    their ``recognition`` score is strictly below ``recognised_min``. ``available`` is False
    when the spec has no self-status item or no recognition construct; ``missing`` then lists
    the spec keys that would enable the segment.
    """

    recognition: str | None
    self_status: str | None
    good_customer_min: float
    recognised_min: float
    self_status_scale: tuple[float, float]
    scale: tuple[float, float]

    @property
    def available(self) -> bool:
        return self.recognition is not None and self.self_status is not None

    @property
    def missing(self) -> tuple[str, ...]:
        out = []
        if self.self_status is None:
            out.append("surveys.self_status")
        if self.recognition is None:
            out.append("segments.disappointed.recognition")
        return tuple(out)

    def _good_text(self) -> str:
        lo, hi = self.self_status_scale
        g = self.good_customer_min
        if float(g).is_integer() and float(hi).is_integer() and float(lo).is_integer() and hi - g <= 2:
            vals = [_num(v) for v in range(int(g), int(hi) + 1)]
            said = vals[0] if len(vals) == 1 else ", ".join(vals[:-1]) + " or " + vals[-1]
        else:
            said = f"{_num(g)} or more"
        return f"answered {said} on the {_scale_text(self.self_status_scale)} 'good customer' item"

    @property
    def sentence(self) -> str:
        """One plain sentence stating the definition (or why the segment is not available)."""
        if not self.available:
            why = []
            if self.self_status is None:
                why.append("names no 'I am a good customer' item (surveys.self_status)")
            if self.recognition is None:
                why.append("has no recognition construct (name one under segments.disappointed."
                           "recognition, or call a construct 'recognition')")
            return "Disappointed good customers are not identified: the study spec " + " and ".join(why) + "."
        return (f"Disappointed good customers: {self._good_text()} and scored below "
                f"{self.recognised_min:.1f} on {self.recognition}.")

    def flag(self, self_status, recognition):
        """1 for a DGC, 0 otherwise, NaN where either answer is missing (numpy arrays)."""
        import numpy as np

        s = np.asarray(self_status, dtype="float64")
        r = np.asarray(recognition, dtype="float64")
        out = ((s >= self.good_customer_min) & (r < self.recognised_min)).astype("float64")
        out[np.isnan(s) | np.isnan(r)] = np.nan
        return out


_SLUG_OK = re.compile(r"[A-Za-z0-9_\-]+")


def slug(name: str) -> str:
    """A stable ASCII form of a name for metric names (``[A-Za-z0-9_-]+``).

    Accents are dropped (``proximité`` -> ``proximite``, ``Île`` -> ``Ile``), every run of other
    characters (spaces, punctuation, brackets) becomes one ``_`` (``channel[online]`` ->
    ``channel_online``, ``prix / qualité`` -> ``prix_qualite``), leading and trailing ``_`` go.
    When a letter has no ASCII form (other scripts: ``доверие``), or nothing is left, the slug
    ends with ``u`` and 8 hex digits of the name's SHA-1, so distinct names stay distinct and
    the slug is the same on every run. A name that is already a slug is unchanged.
    """
    name = str(name)
    if _SLUG_OK.fullmatch(name):
        return name
    decomposed = unicodedata.normalize("NFKD", name)
    kept, lost = [], False
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if ch.isascii():
            kept.append(ch if (ch.isalnum() or ch in "_-") else "_")
        else:
            lost = lost or ch.isalnum()
            kept.append("_")
    out = re.sub(r"_+", "_", "".join(kept)).strip("_")
    if lost or not out:
        digest = "u" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        out = f"{out}_{digest}" if out else digest
    return out


def within_snapshot(dates, snapshot_date):
    """True where a date lies on or before the snapshot **day** (any time of that day counts).

    ``dates``: a pandas Series / numpy datetime64 array / scalar; NaT gives False. This is the one
    comparison cxlab makes between a date and ``snapshot_date``; for ibis expressions use
    :func:`snapshot_cutoff` (the first instant after the snapshot day) with ``<``.
    """
    import numpy as np
    import pandas as pd

    cut = snapshot_cutoff(snapshot_date)
    if isinstance(dates, pd.Series):
        return (dates < cut) & dates.notna()
    a = np.asarray(dates, dtype="datetime64[ns]")
    return (a < np.datetime64(cut)) & ~np.isnat(a)


def snapshot_cutoff(snapshot_date):
    """The first instant after the snapshot day: ``date < snapshot_cutoff(d)`` means "within"."""
    import pandas as pd

    return pd.Timestamp(snapshot_date).normalize() + pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------------
# loading


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return [k for k in model.model_fields if k not in ("base_dir", "spec_path")]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (a pydantic error location)."""
    model: Any = Study
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        if getattr(ann, "__origin__", None) is dict and parts:
            parts.pop(0)                      # dict[str, Model]: the next part is the user's key
        # unwrap Optional[X] / dict[str, X]
        args = getattr(ann, "__args__", None)
        if args:
            ann = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        model = ann
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _format_error(err: dict, source: str) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        owner = _model_at(loc)
        valid = _valid_keys(owner) if owner else []
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"{source}: unknown key {where!r}.{hint} Valid keys here: {', '.join(valid)}."
    if err["type"] == "missing":
        return f"{source}: required key {where!r} is missing."
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {where}: {msg}{shown}."


def load_study(path: str | Path, data_roots=()) -> Study:
    """Read a study spec from YAML and check it.

    Raises :class:`cxlab.errors.StudyError` with every problem listed (unknown keys come with
    the closest valid key), and when a data path resolves outside the spec's folder and every
    one of ``data_roots`` (folders a run config allows) and of the folders listed in the
    environment variable ``CXLAB_DATA_ROOTS`` (``os.pathsep``-separated: how a run passes its
    data roots on to the notebooks' kernels).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"Study spec {str(path)!r} does not exist. Give the path of a YAML file "
                         f"(e.g. data/demo/study.yaml; `cxlab demo` writes one).")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: a study spec is a YAML mapping (name:, snapshot_date:, "
                         f"customers:, surveys:, ...), got {type(raw).__name__}.")
    study = parse_study(raw, base_dir=path.parent.resolve(), source=str(path), spec_path=path.resolve())
    env_roots = [r for r in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if r.strip()]
    study.check_paths([*(data_roots or ()), *env_roots])
    return study


def parse_study(raw: dict, base_dir: Path = Path("."), source: str = "study spec",
                spec_path: Path | None = None) -> Study:
    """Build a :class:`Study` from an already-parsed mapping."""
    for reserved in ("base_dir", "spec_path"):
        if reserved in raw:
            raise StudyError(f"{source}: unknown key {reserved!r}.")
    try:
        return Study(**raw, base_dir=base_dir, spec_path=spec_path)
    except ValidationError as exc:
        lines = [_format_error(e, source) for e in exc.errors()]
        raise StudyError("\n".join(lines)) from None


class TableReadError(StudyError):
    """A data file could not be read as a table. ``rule`` names the problem for the validation
    report (``file_readable``, ``row_fields``, ``header_unique``);
    ``rows`` are 0-based data rows concerned, when known. Messages never quote file contents."""

    def __init__(self, message: str, rule: str = "file_readable", rows=None, n_rows: int | None = None):
        super().__init__(message)
        self.rule, self.rows, self.n_rows = rule, list(rows or []), n_rows


def _encoding_hint(data: bytes) -> str:
    for enc in ("cp1252", "latin-1"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    return "latin-1"  # pragma: no cover - latin-1 decodes any bytes


def read_table(path: Path, role: str = "data", spec: "_FileSpec | None" = None):
    """Read a CSV or Parquet file as given (no type coercion beyond the reader's).

    CSV columns are read as strings (empty cells -> missing) so that validation sees what the file
    really holds, in the dialect of ``spec`` (``delimiter``, ``encoding``; default: comma, UTF-8).
    Raises :class:`TableReadError` for a file that is empty, binary, not in its encoding, has a
    header naming a column twice, or rows with more or fewer fields than the header (a truncated
    last line); no rows are returned then. Messages never quote the file's contents.
    """
    import csv
    import gzip
    import io

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    label = path.name
    if not path.is_file():
        raise StudyError(f"The {role} file {str(path)!r} named in the study spec does not exist.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - reported as a problem, never its text
            raise TableReadError(f"{label} could not be read as a Parquet file ({type(exc).__name__}); "
                                 f"export it again, or as CSV (.csv).") from None
    if suffix not in (".csv", ".txt", ".gz"):
        raise StudyError(f"The {role} file {str(path)!r} is neither CSV (.csv) nor Parquet (.parquet).")
    data = path.read_bytes()
    if suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise TableReadError(f"{label} is not a readable gzip file; compress it again or give "
                                 f"the plain CSV.") from None
    encoding = spec.encoding if spec is not None else "utf-8"
    delimiter = spec.delimiter if spec is not None else ","
    key = f"{role}.encoding" if role in ("customers", "surveys", "complaints") else "encoding"
    if data[:4] == b"PAR1":
        raise TableReadError(f"{label} is a Parquet file with a CSV name; rename it to .parquet.")
    codec = codecs.lookup(encoding).name
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and not codec.startswith(("utf-16", "utf-32")):
        raise TableReadError(f"{label} is UTF-16 text (as Excel's \"Unicode text\" saves it); say so with "
                             f"{key}: utf-16 in the spec, or save it as CSV UTF-8.")
    head = data[:65536]
    controls = sum(head.count(bytes([b])) for b in (*range(0, 9), *range(14, 27), *range(28, 32)))
    if (b"\x00" in head or controls > 0.01 * len(head)) and not codec.startswith(("utf-16", "utf-32")):
        raise TableReadError(f"{label} is not a text (CSV) file: it holds binary data. Give a CSV "
                             f"export or a Parquet file (.parquet).")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = _encoding_hint(data) if codec == "utf-8" else "utf-8"
        raise TableReadError(
            f"{label} is not {encoding} text (the first byte that is not {encoding} is on line {line}); "
            f"if it was saved in another encoding, say which with {key}: {hint} in the spec (e.g. "
            f"cp1252 or latin-1 for an Excel export), or save it as CSV UTF-8.", rule="file_readable") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise TableReadError(f"{label} is empty: it has no header line and no data. Export the data "
                             f"again.", rule="file_readable")
    if codec != "utf-8" or data.startswith(codecs.BOM_UTF8):
        data = text.encode("utf-8")
    # the header's width (Python's csv module), then every field read as a string under
    # autogenerated names: the header is the first row, so its names are exactly as arrow reads them
    try:
        width = len(next(csv.reader(io.StringIO(text[:1 << 20]), delimiter=delimiter)))
    except (csv.Error, StopIteration):
        width = 0
    if width == 0:
        raise TableReadError(f"{label} has no header line; export the data again.", rule="file_readable")
    bad: list[tuple[int | None, int, int]] = []

    def note(row):
        bad.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    auto = [f"f{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 24, column_names=auto),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                              invalid_row_handler=note),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in auto}, strings_can_be_null=True,
                null_values=[""], quoted_strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowException):
        raise TableReadError(f"{label} could not be read as a CSV table with {delimiter!r} as "
                             f"separator; check {role}.delimiter and that the file is a CSV "
                             f"export.") from None
    if table.num_rows == 0:
        raise TableReadError(f"{label} has no header line; export the data again.", rule="file_readable")
    names = ["" if v is None else v for v in table.slice(0, 1).to_pylist()[0].values()]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TableReadError(f"{label}: the header names the column{'s' * (len(dup) > 1)} "
                             f"{', '.join(repr(d) for d in dup)} more than once; give each column its "
                             f"own name.", rule="header_unique")
    if bad:
        rows = [n - 2 for n, _, _ in bad if n is not None]
        expected = bad[0][1]
        if any(actual < exp for _, exp, actual in bad):
            what = (f"fewer fields than the header ({expected}): the file looks truncated (the export "
                    f"stopped mid-line) or a value holds an unquoted line break")
        else:
            what = (f"more fields than the header ({expected}): a value holds the separator "
                    f"{delimiter!r} without quotes, or the separator is not {delimiter!r} "
                    f"({role}.delimiter)")
        raise TableReadError(f"{label}: these rows have {what}. Export the file again, complete.",
                             rule="row_fields", rows=rows, n_rows=len(bad))
    return table.slice(1).rename_columns(names).to_pandas()
