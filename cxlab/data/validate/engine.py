"""The engine path: a ``source:`` table checked by ibis queries where it lives.

Every rule becomes a boolean expression over the table (numbered rows, see
:func:`numbered`); the rules on the table's own columns are counted together in one
aggregate query, the rules that need another table (ids known to the customers, duplicate ids,
single-use labels) in one query each, and a failing rule fetches its first five row numbers.
Only those small results, and the distinct values of a label column that is not identifier-like
(for the metric-name clash), come back to Python.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field

import ibis
import pandas as pd

from . import engine_parse as ep
from . import messages as msg
from .flow import Checks
from .frame import ID_LIKE_MIN_DISTINCT, ID_LIKE_SHARE, slug_clashes
from .parsing import PLAIN, Dialect, suggest_date_format
from ..sources import drop_kept, keep_table
from .report import N_EXAMPLES, Problems

ROW = "_cx_row"


class NotOnEngine(Exception):
    """A rule this engine cannot run as a query (the study is then checked in pandas)."""


def numbered(con, t, name: str | None, made: list):
    """``t`` with ``_cx_row``: the row's rank in the engine's storage order (DuckDB ``rowid``,
    PostgreSQL ``ctid``, Spark's scan order); see :mod:`cxlab.data.validate`. DuckDB and
    PostgreSQL: a temporary view (named in ``made``)."""
    import sqlglot.expressions as sge

    if con.name == "pyspark":
        return _spark_numbered(con, t.get_name(), made)
    schema, _, tab = name.rpartition(".")
    ref = sge.Table(this=sge.to_identifier(tab, quoted=True),
                    db=sge.to_identifier(schema, quoted=True) if schema else None).sql(dialect=con.name)
    key = "rowid" if con.name == "duckdb" else "ctid"
    number = f"row_number() OVER (ORDER BY {key})"
    if con.name == "duckdb" and _dense_rowids(con, ref):
        number = "rowid + 1"     # the same numbers without a window over the whole table
    view = f"cxlab_n{uuid.uuid4().hex[:10]}"
    _sql(con, f'CREATE TEMPORARY VIEW "{view}" AS SELECT {number} AS {ROW}, * FROM {ref}')
    made.append(view)
    return con.table(view)


def _spark_numbered(con, name: str, made: list):
    """Spark: each row's rank in scan order without a window over the whole table (which Spark
    runs on one partition). ``monotonically_increasing_id`` is the partition's index times 2**33
    plus the row's place in its partition (0, 1, ...), so the rank is the rows of the partitions
    before, plus that place, plus one; the partitions' sizes are one small aggregate."""
    from pyspark.sql import functions as F

    session = con._session
    source = session.table(f"`{name}`")
    keyed = source.withColumn("_cx_key", F.monotonically_increasing_id())
    keyed = keyed.withColumn("_cx_part", F.shiftright("_cx_key", 33)).cache()
    view = f"cxlab_n{uuid.uuid4().hex[:10]}"
    keyed.createOrReplaceTempView(view + "_keys")      # (dropping the view uncaches the keys)
    made.append(view + "_keys")
    sizes = sorted((r["_cx_part"], r["count"]) for r in keyed.groupBy("_cx_part").count().collect())
    before, start = 0, []
    for part, size in sizes:
        start.append((part, before))
        before += size
    starts = session.createDataFrame(start or [(0, 0)], "_cx_part long, _cx_start long")
    place = F.col("_cx_key") - F.shiftleft(F.col("_cx_part"), 33)
    out = (keyed.join(F.broadcast(starts), "_cx_part")
           .withColumn(ROW, F.col("_cx_start") + place + 1)
           .select(ROW, *[F.col(f"`{c}`") for c in source.columns]))
    out.createOrReplaceTempView(view)
    made.append(view)
    return con.table(view)


def _dense_rowids(con, ref: str) -> bool:
    """Whether a DuckDB table's rowids are 0, 1, ..., n - 1 (no deleted rows in between), so that
    ``rowid + 1`` is its rank in rowid order. (A view has no rowid: False.)"""
    try:
        n, low, high = con.con.execute(f"SELECT count(*), min(rowid), max(rowid) FROM {ref}").fetchone()
    except Exception:  # noqa: BLE001 - a view, or a table function
        return False
    return n == 0 or (low == 0 and high == n - 1)


def _sql(con, statement: str) -> None:
    """Run a statement (PostgreSQL: its cursor closed; DuckDB's raw_sql returns the connection
    itself, which must stay open)."""
    cur = con.raw_sql(statement)
    if con.name == "postgres":
        cur.close()


def drop(con, names: list[str]) -> None:
    """Drop the temporary views and kept tables validation made (a name that is gone is skipped).

    Both drops are tried for every name: a kept table in the scratch database is not in the
    search path, so ``DROP VIEW IF EXISTS`` of its name succeeds without dropping anything."""
    for name in names:
        if con.name == "pyspark":
            with contextlib.suppress(Exception):     # (dropping a cached view uncaches it)
                con._session.catalog.dropTempView(name)
            continue
        for statement in (lambda: _sql(con, f'DROP VIEW IF EXISTS "{name}"'), lambda: drop_kept(con, name)):
            with contextlib.suppress(Exception):     # the other kind, or gone with the session
                statement()


def materialize(con, name: str, expr):
    """``expr`` as a table ``name`` on ``con``: in a DuckDB source's scratch database (evictable
    from memory), else a temporary table (Spark: a cached temporary view)."""
    if con.name == "pyspark":
        frame = con._session.sql(con.compile(expr)).cache()
        frame.createOrReplaceTempView(name)
        return con.table(name)
    return keep_table(con, name, expr)


def _count(bad):
    """The number of rows where ``bad`` holds (a literal: none or all; a literal False is 0)."""
    import ibis.expr.types as ir

    if isinstance(bad, ir.Scalar):
        bad = ibis.ifelse(bad, ibis._[ROW] >= 0, ibis._[ROW] < 0)
    return ibis.ifelse(bad, 1, 0).sum()


def first_rows(on, bad) -> list[int]:
    """0-based numbers of the first offending rows (row numbers minus one)."""
    got = on.filter(bad).select(ROW).order_by(ROW).limit(N_EXAMPLES).to_pandas()
    return [int(r) - 1 for r in got[ROW]]


@dataclass
class _Check:
    column: str
    rule: str
    fix: object            # the text, or a function giving it (when it needs another query)
    bad: object            # boolean expression over ``on`` (never NULL)
    on: object = None      # None: the numbered table itself (counted in the one aggregate)


@dataclass
class EngineTable(Checks):
    role: str
    label: str
    con: object = None
    base: object = None                          # numbered table (None: could not be read)
    n: int = 0
    width: int = 0                               # the table's columns (as read)
    ok_cols: set = field(default_factory=set)
    dialect: Dialect = PLAIN
    dialect_delimiter: str = ""                  # (tables have no delimiter)
    ids: object = None                           # cleaned id expression
    dates: dict = field(default_factory=dict)    # column -> engine_parse.Parsed
    numbers: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)   # column -> cleaned label expression
    counts: dict = field(default_factory=dict)   # summary: column -> (missing codes, empty)
    checks: list = field(default_factory=list)
    distinct_ids: object = None                  # customers: the distinct filled ids (a function of the table)
    _frozen: object = None
    _n: int = 0
    _names: dict = field(default_factory=dict)   # id of a staged reference -> its column
    _kept: set = field(default_factory=set)
    made: list = field(default_factory=list)     # temporary tables made (dropped by EngineData.close)

    @property
    def columns(self) -> list | None:
        return None if self.base is None else [c for c in self.base.columns
                                                if c != ROW and not c.startswith("_cx")]

    def dtype(self, name):
        return self.base.schema()[name]

    def stage(self, **exprs) -> dict:
        """Add ``exprs`` to the table as named columns and return deferred references to them.

        Each stage carries a throw-away ``random()`` column: ibis never merges a projection with
        an impure one, so a staged value stays one column instead of being inlined into every
        later use (the engines drop the unused column)."""
        self._n += 1
        names = {k: f"_cx{self._n}_{k}" for k in exprs}
        self.base = self.base.mutate(**{names[k]: v for k, v in exprs.items()}, _cx_barrier=ibis.random())
        refs = {k: ibis._[names[k]] for k in exprs}
        self._names.update({id(refs[k]): names[k] for k in exprs})
        return refs

    def keep(self, *refs) -> None:
        """Staged columns the later rules or the typed tables use (the others are intermediate
        steps of a parse, dropped when the table is materialised)."""
        self._kept.update(self._names[id(r)] for r in refs if id(r) in self._names)

    def frozen(self):
        """The table with every staged column, materialised on the engine (a temporary table;
        Spark: a cached temporary view, named in ``made``) so that the queries that follow are
        small."""
        if self._frozen is not self.base:
            cols = [c for c in self.base.columns if c == ROW or c in self.ok_cols or c in self._kept]
            self.base = self.base.select(*cols)
            name = f"cxlab_v{uuid.uuid4().hex[:10]}_{self.role}"
            self.made.append(name)
            self.base = materialize(self.con, name, self.base)
            self._frozen = self.base
        return self.base

    def add(self, column: str, rule: str, fix, bad, on=None) -> None:
        """``on``: None (``bad`` is over this table) or a function of the frozen table giving the
        joined table ``bad`` is over."""
        self.checks.append(_Check(column, rule, fix, ep.false_if_null(bad), on))

    def run(self, problems: Problems) -> None:
        """Count every check (one aggregate for the table's own, with the summary's counts), then
        report the failing ones with their first row numbers."""
        base = self.frozen()
        own = {f"c{i}": _count(c.bad) for i, c in enumerate(self.checks) if c.on is None}
        for i, p in enumerate(self.numbers.values()):
            own[f"coded{i}"], own[f"empty{i}"] = _count(p.coded), _count(p.empty & ~p.coded)
        got = base.aggregate(**own).to_pandas().iloc[0] if own else {}
        self.counts = {col: (int(got[f"coded{i}"] or 0), int(got[f"empty{i}"] or 0))
                       for i, col in enumerate(self.numbers)}
        for i, c in enumerate(self.checks):
            if c.on is None:
                n_bad, on, bad = int(got[f"c{i}"] or 0), base, c.bad
            else:
                on = c.on(base).mutate(_cx_bad=c.bad)
                bad = on["_cx_bad"]
                n_bad = int(on.aggregate(n=_count(bad)).to_pandas().iloc[0]["n"] or 0)
            if n_bad == 0:
                continue
            fix = c.fix() if callable(c.fix) else c.fix
            problems.add(self.label, c.column, c.rule, fix, first_rows(on, bad), n_rows=n_bad)
        self.checks = []

    # -- the column rules (the same as frame.FrameTable's, as expressions) ----------------------

    def check_ids(self, key: str, col: str, unique: bool) -> None:
        if col not in self.ok_cols:
            return
        ids = self.ids = ep.ids(col, self.dtype(col), self.stage)
        self.keep(ids)
        self.add(col, "not_empty", msg.empty_id(col, key, self.role), ids.isnull())
        if not unique:
            return
        def filled(b):
            return b.select(_cx_id=ids).filter(ibis._["_cx_id"].notnull())

        def dups(b):
            return filled(b).group_by("_cx_id").aggregate(_cx_n=ibis._.count()) \
                .filter(ibis._["_cx_n"] > 1).select(_cx_dup="_cx_id")

        def on(b):
            d = dups(b)
            t = b.mutate(_cx_id=ids)
            return t.left_join(d, t["_cx_id"] == d["_cx_dup"])

        self.distinct_ids = lambda b: filled(b).distinct()
        self.add(col, "unique", lambda: msg.duplicate_ids(col, key, int(dups(self.base).count().execute())),
                 ibis._["_cx_dup"].notnull(), on=on)

    def check_date(self, key: str, col: str, required: bool) -> None:
        if col not in self.ok_cols or col in self.dates:
            return
        dialect = self.dialect.without_codes() if self.role == "surveys" else self.dialect
        p = ep.dates(col, self.dtype(col), dialect, self.stage, self.con)
        if p is None:
            raise NotOnEngine(f"{self.label}: {col!r} is text in {self.role}.date_format "
                              f"{dialect.date_format!r}, which {self.con.name} cannot parse without failing")
        self.dates[col] = p
        self.keep(p.value, p.empty, p.coded)
        if required:
            self.add(col, "not_empty", msg.empty_date(col, key), p.empty)
        bad = ~p.empty & p.value.isnull()
        dtype = self.dtype(col)

        def fix():
            found = []
            if not dialect.date_format:
                sample = self.frozen().filter(bad).select(v=ep.text(col, dtype)).distinct().limit(500)
                found = suggest_date_format(sample.to_pandas()["v"])
            return msg.unparseable_date(col, key, self.role, dialect.date_format, required, found)

        self.add(col, "date_parseable", fix, bad)

    def check_number(self, key: str, col: str, what: str) -> bool:
        if col not in self.ok_cols:
            return False
        if col not in self.numbers:
            p = self.numbers[col] = ep.numbers(col, self.dtype(col), self.dialect, self.stage)
            self.keep(p.value, p.empty, p.coded)
            self.add(col, "numeric", msg.not_numeric(col, key, self.role, what, self.dialect.decimal),
                     ~(ep.finite(p.value) | p.empty))
        return True

    def check_scale(self, key: str, col: str, lo: float, hi: float, fix: str) -> None:
        v = self.numbers[col].value
        codes = [float(x) for x in self.dialect.numeric_codes]
        coded = ep.false_if_null(v.isin(codes)) if codes else ibis.literal(False)
        self.add(col, "in_scale", fix, ep.finite(v) & ~coded & ~ep.false_if_null((v >= lo) & (v <= hi)))

    def check_flag(self, key: str, col: str) -> None:
        if col not in self.ok_cols:
            return
        p = self.numbers[col] = ep.flags(col, self.dtype(col), self.dialect, self.stage)
        self.keep(p.value, p.empty, p.coded)
        self.add(col, "boolean", msg.not_boolean(col), p.value.isnull() & ~p.empty)

    def check_order(self, first: tuple[str, str], second: tuple[str, str], rule: str) -> None:
        c1, c2 = first[1], second[1]
        if c1 not in self.dates or c2 not in self.dates:
            return
        a, b = self.dates[c1].value.cast("date"), self.dates[c2].value.cast("date")
        self.add(c2, rule, msg.dates_out_of_order(first, second), a.notnull() & b.notnull() & (b < a))

    def check_label(self, key: str, col: str, id_col: str) -> None:
        if col not in self.ok_cols:
            return
        text = self.labels[col] = ep.labels(col, self.dtype(col), self.dialect, self.stage)
        self.keep(text)
        if col == id_col:
            self.add(col, "not_identifier", msg.label_is_id_column(col, key), text.notnull())
            return
        base = self.frozen()
        stats = base.aggregate(filled=_count(text.notnull()), distinct=text.nunique()).to_pandas().iloc[0]
        n_filled, n_distinct = int(stats["filled"] or 0), int(stats["distinct"] or 0)
        if n_distinct >= ID_LIKE_MIN_DISTINCT and n_distinct > ID_LIKE_SHARE * n_filled:
            def once(b):
                single = b.select(_cx_l=text).filter(ibis._["_cx_l"].notnull()).group_by("_cx_l") \
                    .aggregate(_cx_n=ibis._.count()).filter(ibis._["_cx_n"] == 1).select(_cx_once="_cx_l")
                t = b.mutate(_cx_l=text)
                return t.left_join(single, t["_cx_l"] == single["_cx_once"])

            self.add(col, "not_identifier", msg.label_like_identifier(col, key, n_distinct, n_filled),
                     ibis._["_cx_once"].notnull(), on=once)
            return
        if self.distinct_ids is not None and n_distinct:
            def known(b):
                ids = self.distinct_ids(b).select(_cx_known="_cx_id")
                t = b.mutate(_cx_l=text)
                return t.left_join(ids, t["_cx_l"] == ids["_cx_known"])

            bad = ibis._["_cx_known"].notnull() & _looks_like_id(ibis._["_cx_l"])
            if int(known(base).aggregate(n=_count(bad)).to_pandas().iloc[0]["n"] or 0):
                self.add(col, "not_identifier", msg.label_holds_ids(col, key, id_col), bad, on=known)
                return
        values = base.select(v=text).filter(ibis._["v"].notnull()).distinct().to_pandas()["v"]
        values = pd.Series(values.astype(object).to_numpy())
        clash, n_groups = slug_clashes(values)
        if clash.any():
            self.add(col, "label_slug_unique",
                     msg.label_slugs_clash(col, key, int(clash.sum()), n_groups),
                     ep.false_if_null(text.isin([str(v) for v in values[clash]])))


def _looks_like_id(t):
    """frame.looks_like_id as an expression: 5+ characters mixing letters and digits, or 7+ digits."""
    n = t.length()
    digit = ep.false_if_null(t.re_search("[0-9]"))
    letter = ep.false_if_null(t.re_search(r"[^\W\d_]"))
    return ep.false_if_null(((n >= 5) & digit & letter) | ((n >= 7) & ep.false_if_null(t.re_search("^[0-9]+$"))))
