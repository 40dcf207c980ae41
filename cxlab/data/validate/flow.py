"""Which rule runs on which column, in which order: the one list of the data contract's checks,
run by both paths (files in pandas, :mod:`.frame`; tables on an engine, :mod:`.engine`).

A path supplies :class:`Path` (how to read a role's table and check the rules across tables)
whose tables implement :class:`Checks`; the problems come out in the same order either way:
per table the reading problems, the missing columns, the name clashes, then the column rules
in the order they are declared here; the cross-table rules last.
"""

from __future__ import annotations

from .messages import name_clash, outside_scale
from .parsing import fmt_codes, fmt_number
from .report import Problems
from .require import require


class Checks:
    """One role's table as a path sees it (the rules record masks; :meth:`run` reports them)."""

    role: str
    label: str
    columns: list[str] | None     # None: the table could not be read
    dialect_delimiter: str = ","

    def check_ids(self, key: str, col: str, unique: bool) -> None: ...
    def check_date(self, key: str, col: str, required: bool) -> None: ...
    def check_order(self, first: tuple[str, str], second: tuple[str, str], rule: str) -> None: ...
    def check_number(self, key: str, col: str, what: str) -> bool: ...     # False: column missing
    def check_scale(self, key: str, col: str, lo: float, hi: float, fix: str) -> None: ...
    def check_label(self, key: str, col: str, id_col: str) -> None: ...
    def check_flag(self, key: str, col: str) -> None: ...
    def run(self, problems: Problems) -> None: ...


class Path:
    def read(self, study, role: str, problems: Problems) -> Checks: ...
    def cross_checks(self, study, tables: dict, problems: Problems) -> None: ...


def linked_tables(study, tables: dict):
    """The tables whose ids must be customers (for the cross-table rules), with their spec
    section, id key, date key and date column: (role, table, spec, id key, date key, date column)."""
    for role, key_id, date_key in (("surveys", "surveys.id", "surveys.date"),
                                   ("complaints", "complaints.id", "complaints.opened")):
        t = tables.get(role)
        if t is None or t.ids is None:
            continue
        spec = getattr(study, role)
        yield role, t, spec, key_id, date_key, spec.date if role == "surveys" else spec.opened


def survey_scales(study) -> tuple[list[tuple[str, str]], list[tuple[str, str, tuple, str]]]:
    """(items, scaled): every survey item / self-status / outcome as (spec key, column), and each
    with its scale and the key that sets the scale."""
    ss = study.surveys
    items = [(f"surveys.constructs.{name}", col) for name, cols in ss.constructs.items() for col in cols]
    if ss.self_status is not None:
        items.append(("surveys.self_status", ss.self_status))
    outcomes = [(f"surveys.outcomes.{name}", col, name) for name, col in ss.outcome_columns.items()]
    scaled = [(k, c, ss.status_scale, "surveys.self_status_scale" if ss.self_status_scale else
               "surveys.scale") if k == "surveys.self_status" else (k, c, ss.scale, "surveys.scale")
              for k, c in items] + \
             [(k, c, ss.outcome_scale(name), f"surveys.outcomes.{name}.scale"
               if ss.outcomes[name].scale is not None else f"surveys.outcome_scales.{name}" if name in
               ss.outcome_scales else "surveys.scale (the default outcome scale)")
              for k, c, name in outcomes]
    return items + [(k, c) for k, c, _ in outcomes], scaled


def run_rules(study, path: Path, problems: Problems) -> tuple[dict, list[str]]:
    """Check every rule of the contract; returns (tables by role, the survey columns)."""
    tables: dict = {}
    cs, ss, ks = study.customers, study.surveys, study.complaints

    t = tables["customers"] = path.read(study, "customers", problems)
    if t.columns is not None:
        wanted = [("customers.id", cs.id), ("customers.start", cs.start), ("customers.end", cs.end)]
        if cs.value is not None:
            wanted.append(("customers.value", cs.value))
        wanted += [("customers.covariates", c) for c in cs.covariates]
        require(t, wanted, problems)
        t.check_ids("customers.id", cs.id, unique=True)
        t.check_date("customers.start", cs.start, required=True)
        t.check_date("customers.end", cs.end, required=False)
        t.check_order(("customers.start", cs.start), ("customers.end", cs.end), "start_before_end")
        if cs.value is not None:
            t.check_number("customers.value", cs.value, "amounts of money")
        for cov in cs.covariates:
            t.check_label("customers.covariates", cov, cs.id)
        t.run(problems)

    t = tables["surveys"] = path.read(study, "surveys", problems)
    survey_columns: list[str] = []
    if t.columns is not None:
        named, scaled = survey_scales(study)
        require(t, [("surveys.id", ss.id), ("surveys.date", ss.date), *named], problems)
        for key, col in named:
            if col in ("customer_id", "date", "source_row", ss.id, ss.date):
                problems.add(t.label, col, "name_clash", name_clash(key, col))
        t.check_ids("surveys.id", ss.id, unique=False)
        t.check_date("surveys.date", ss.date, required=True)
        code_txt = f"surveys.missing_codes: {fmt_codes(ss.missing_codes)}" if ss.missing_codes else \
            "no surveys.missing_codes declared"
        checked_scale: set = set()
        for key, col, (lo, hi), scale_key in scaled:
            if col not in survey_columns:
                survey_columns.append(col)
            present = t.check_number(key, col, f"numeric answers ({fmt_number(lo)} to {fmt_number(hi)})")
            if not present or (col, lo, hi) in checked_scale:
                continue
            checked_scale.add((col, lo, hi))
            t.check_scale(key, col, lo, hi, outside_scale(col, key, scale_key, lo, hi, code_txt))
        t.run(problems)

    if ks is not None:
        t = tables["complaints"] = path.read(study, "complaints", problems)
        if t.columns is not None:
            wanted = [("complaints.id", ks.id), ("complaints.opened", ks.opened)]
            if ks.closed is not None:
                wanted.append(("complaints.closed", ks.closed))
            if ks.compensated is not None:
                wanted.append(("complaints.compensated", ks.compensated))
            require(t, wanted, problems)
            t.check_ids("complaints.id", ks.id, unique=False)
            t.check_date("complaints.opened", ks.opened, required=True)
            if ks.closed is not None:
                t.check_date("complaints.closed", ks.closed, required=False)
                t.check_order(("complaints.opened", ks.opened), ("complaints.closed", ks.closed),
                              "opened_before_closed")
            if ks.compensated is not None:
                t.check_flag("complaints.compensated", ks.compensated)
            t.run(problems)

    path.cross_checks(study, tables, problems)
    return tables, survey_columns
