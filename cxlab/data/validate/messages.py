"""The fix text of every rule, in one place: the file path (pandas) and the engine path
(:mod:`.engine`) build their problem rows from these functions, so a rule reads the same
whichever way its rows were counted."""

from __future__ import annotations

import datetime as dt

from .parsing import DATE_FORMAT_HINT, fmt_list

#: the example date of ``date_format`` hints
_EXAMPLE_DAY = dt.datetime(2026, 6, 30)


def empty_id(col: str, key: str, role: str) -> str:
    return f"{col!r} ({key}) is empty in these rows; every {role} row needs a customer id."


def duplicate_ids(col: str, key: str, n_dup: int) -> str:
    return (f"{col!r} ({key}) must be unique (one row per customer); {n_dup:,} id"
            f"{'s' * (n_dup != 1)} appear more than once in these rows: merge or remove "
            f"the duplicates.")


def empty_date(col: str, key: str) -> str:
    return f"{col!r} ({key}) is empty in these rows; every row needs this date."


def unparseable_date(col: str, key: str, role: str, date_format: str | None, required: bool,
                     found: list[str]) -> str:
    """``found``: the candidate formats that parse every offending value (see
    :func:`.parsing.suggest_date_format`; only used without a ``date_format``)."""
    extra = "" if required else (" Leave it empty when there is no date (no placeholder such as "
                                 "9999-12-31 or 0000-00-00, unless it is declared in "
                                 f"{role}.missing_codes).")
    if date_format:
        example = _EXAMPLE_DAY.strftime(date_format)
        what = (f"dates written as {role}.date_format {date_format!r} (e.g. {example}), a time of day "
                f"allowed")
    else:
        what = DATE_FORMAT_HINT
    hint = ""
    if not date_format:
        if len(found) == 1 or (found and found[0] not in ("%d/%m/%Y", "%m/%d/%Y", "%d/%m/%y", "%m/%d/%y")):
            hint = (f" These dates parse with date_format: {found[0]!r} (e.g. "
                    f"{_EXAMPLE_DAY.strftime(found[0])}): add it to {role}: in the spec.")
        elif found:
            hint = (f" These dates parse both as {found[0]!r} and as {found[1]!r} (no day above 12 among "
                    f"them): add date_format: '%d/%m/%Y' (day first) or '%m/%d/%Y' (month first) to "
                    f"{role}: in the spec, whichever the extract uses.")
    return f"{col!r} ({key}) must hold {what}; these rows do not.{extra}{hint}"


def not_numeric(col: str, key: str, role: str, what: str, decimal: str) -> str:
    mark = ("a decimal comma (decimal: ',')" if decimal == "," else
            f"a decimal point (or set {role}.decimal: ',' for decimal commas)")
    return (f"{col!r} ({key}) must hold {what}, written with {mark} and no unit, "
            f"currency sign or thousands separator, or be empty; these rows do not.")


def outside_scale(col: str, key: str, scale_key: str, lo: float, hi: float, code_txt: str) -> str:
    return (f"{col!r} ({key}) must lie in {scale_key} {fmt_list((lo, hi))} or be a "
            f"declared missing code ({code_txt}); these rows do not. Add the code to "
            f"surveys.missing_codes or correct the scale.")


def not_boolean(col: str) -> str:
    return (f"{col!r} (complaints.compensated) must be 0/1, true/false "
            f"or yes/no, or empty when unknown; these rows are not.")


#: the end of every not_identifier fix
_IDENTIFIER_TAIL = ("Identifiers must stay out of models and reports: remove {col!r} from {key}, or replace it "
                    "by a category shared by many customers (e.g. a region instead of a postcode).")


def _identifier_tail(col: str, key: str) -> str:
    return _IDENTIFIER_TAIL.format(col=col, key=key)


def label_is_id_column(col: str, key: str) -> str:
    return f"{col!r} ({key}) is the customer id column. {_identifier_tail(col, key)}"


def label_like_identifier(col: str, key: str, n_distinct: int, n_filled: int) -> str:
    return (f"{col!r} ({key}) has {n_distinct:,} distinct values for {n_filled:,} filled rows "
            f"(these rows hold a value no other customer has): it looks like an identifier, "
            f"not a category. {_identifier_tail(col, key)}")


def label_holds_ids(col: str, key: str, id_col: str) -> str:
    return f"{col!r} ({key}) holds customer ids of {id_col!r} in these rows. {_identifier_tail(col, key)}"


def label_slugs_clash(col: str, key: str, n_clash: int, n_groups: int) -> str:
    return (f"{col!r} ({key}) has {n_clash} categories that differ only by accents, "
            f"spaces or punctuation ({n_groups} group{'s' * (n_groups != 1)}), in these rows: "
            f"write each category one way in the extract.")


def dates_out_of_order(first: tuple[str, str], second: tuple[str, str]) -> str:
    (k1, c1), (k2, c2) = first, second
    return (f"{c2!r} ({k2}) is before {c1!r} ({k1}) in these rows; check for swapped columns or "
            f"mistyped dates.")


def name_clash(key: str, col: str) -> str:
    return (f"{key} names column {col!r}, which is the id or date column or a name "
            f"cxlab's survey table uses for its own column; name the item's own "
            f"column (rename it in the file and in the spec if needed).")


def unknown_ids(col: str, key: str, customers_label: str, role: str) -> str:
    return (f"{col!r} ({key}) holds customer ids that are not in {customers_label} in these rows; "
            f"use a customer extract that includes every {role[:-1]}'s customer, or drop these rows.")


def outside_relationship(date_col: str, date_key: str, start: str, end: str, customers_label: str,
                         role: str) -> str:
    what = "answered" if role == "surveys" else "opened"
    return (f"{date_col!r} ({date_key}) is before the customer's {start!r} or after their "
            f"{end!r} ({customers_label}) in these rows: a {role[:-1]} must be {what} during the "
            f"relationship. Check the dates or the customer id.")


def empty_table(label: str, role: str) -> str:
    return f"{label} has no rows; check source.tables.{role}."
