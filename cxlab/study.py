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
"""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cxlab.errors import StudyError

__all__ = [
    "Study",
    "CustomersSpec",
    "SurveysSpec",
    "ComplaintsSpec",
    "SegmentsSpec",
    "DisappointedSpec",
    "load_study",
    "read_table",
]


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
    path: str = Field(description="CSV or Parquet file, relative to the spec's folder")
    id: str = Field(description="customer identifier column")


class CustomersSpec(_FileSpec):
    """The customer base: one row per customer."""

    start: str = Field(description="column with the date the relationship started")
    end: str = Field(description="column with the date the customer defected (empty if active)")
    value: str | None = Field(None, description="column with the customer's margin (money)")
    covariates: list[str] = Field(default_factory=list, description="categorical controls")


class SurveysSpec(_FileSpec):
    """Relationship-survey answers: one row per answer (several waves per customer allowed)."""

    date: str = Field(description="column with the answer date")
    scale: tuple[float, float] = Field((1, 5), description="[lowest, highest] item answer")
    missing_codes: list[float] = Field(default_factory=list, description="e.g. 99 = don't know")
    constructs: dict[str, list[str]] = Field(description="construct name -> item columns")
    self_status: str | None = Field(None, description='item "I consider myself a good customer"')
    outcomes: dict[str, str] = Field(default_factory=dict, description="outcome name -> column")
    outcome_scales: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="outcome name -> [lowest, highest]; default: scale"
    )

    @field_validator("scale")
    @classmethod
    def _scale_increasing(cls, v):
        if not v[0] < v[1]:
            raise ValueError(f"scale must be [lowest, highest] with lowest < highest, got {list(v)}")
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
        return self

    def outcome_scale(self, outcome: str) -> tuple[float, float]:
        return self.outcome_scales.get(outcome, self.scale)

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
    base_dir: Path = Field(Path("."), exclude=True, description="folder of the spec file")
    spec_path: Path | None = Field(None, exclude=True)

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
        return self

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
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def files(self) -> dict[str, Path]:
        """Role -> resolved path of every data file in the study."""
        out = {"customers": self.resolve(self.customers.path), "surveys": self.resolve(self.surveys.path)}
        if self.complaints is not None:
            out["complaints"] = self.resolve(self.complaints.path)
        return out


# --------------------------------------------------------------------------------------------
# loading


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return [k for k in model.model_fields if k not in ("base_dir", "spec_path")]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (a pydantic error location)."""
    model: Any = Study
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        # unwrap Optional[X]
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


def load_study(path: str | Path) -> Study:
    """Read a study spec from YAML and check it.

    Raises :class:`cxlab.errors.StudyError` with every problem listed (unknown keys come with
    the closest valid key).
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
    return parse_study(raw, base_dir=path.parent.resolve(), source=str(path), spec_path=path.resolve())


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


def read_table(path: Path, role: str = "data") -> "pd.DataFrame":  # noqa: F821
    """Read a CSV or Parquet file as given (no type coercion beyond the reader's).

    CSV columns are read as strings so that validation sees what the file really holds.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise StudyError(f"The {role} file {str(path)!r} named in the study spec does not exist.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    raise StudyError(f"The {role} file {str(path)!r} is neither CSV (.csv) nor Parquet (.parquet).")
