"""Writing a batch of observations: COPY, move without duplicates, rollups, bad-row isolation.

One :class:`BatchWriter` per connection. A batch is:

1. converted to rows (a row that cannot even be converted is skipped and reported);
2. given the daily partitions it needs (created in their own short transaction);
3. first the fast way, in one transaction: binary ``COPY`` straight into
   ``route_observations`` (rows in identity order), then one statement
   (``sql/write_rollups.sql``) adding the batch's rollup totals and histogram bins,
   aggregated here in Python (:mod:`exporters.postgres.rollup`). A COPY has no
   ``ON CONFLICT``: when any row is already stored (a resent batch, a replay, a racing
   writer), or any value is refused, the whole transaction rolls back and
4. the batch goes the careful way, in one transaction: binary ``COPY`` into a temporary
   staging table, then one statement (``sql/write_chunk.sql``) that moves the rows into
   ``route_observations`` with ``ON CONFLICT DO NOTHING`` and adds exactly the rows it
   inserted to the rollups.

Either way rows and their rollups commit together, and a batch sent twice lands once
and counts once. If PostgreSQL rejects a value
(a NUL byte in a string, a NaN latency, an out-of-range number...), the failing chunk is
rolled back to its savepoint and split in halves until the bad rows are alone; those are
skipped and reported, everything else in the batch still lands. Errors that are not about
the rows (connection lost, timeout, missing table) propagate to the caller unchanged.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
import logging
import operator
import struct
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import repeat
from typing import Any, Callable, Sequence

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import Json, Jsonb, set_json_dumps

from exporters.postgres.partitions import days_ahead, ensure_partitions, existing_partitions, utc_day
from exporters.postgres.rollup import ROLLUP_COLUMNS, rollup_params
from exporters.postgres.schema import load_sql
from processor.observation import COLUMNS, RouteObservation

logger = logging.getLogger("otel_llm.postgres")

#: SQLSTATE classes that mean "this row's values were refused": data exception,
#: integrity constraint violation, program limit exceeded (e.g. an oversized key).
ROW_FAULT_SQLSTATE_CLASSES = ("22", "23", "54")
#: Python-side errors raised while encoding a row for COPY.
ROW_FAULT_PY_ERRORS = (TypeError, ValueError, OverflowError, RecursionError, struct.error)

_NUMERIC = 1700
_TIMESTAMPTZ = 1184
_JSONB = 3802


def is_row_fault(exc: BaseException) -> bool:
    """Whether ``exc`` blames the rows written rather than the database or the connection."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        return state[:2] in ROW_FAULT_SQLSTATE_CLASSES
    return isinstance(exc, ROW_FAULT_PY_ERRORS)


#: The C encoder behind ``json.dumps``, made once: ``JSONEncoder.encode`` builds it anew
#: on every call, which costs three times the encoding of a row's attributes. Values JSON
#: cannot express are stored as their text; no circular-reference bookkeeping (a cycle
#: ends in ``RecursionError``, a row fault).
_ENCODE = c_make_encoder(None, str, encode_basestring, None, ":", ",", False, False, True) \
    if c_make_encoder is not None else json.JSONEncoder(
        default=str, separators=(",", ":"), ensure_ascii=False, check_circular=False).iterencode


def _json_dumps(obj: Any) -> str:
    """JSON for jsonb columns; values JSON cannot express are stored as their text."""
    if not obj and type(obj) is dict:
        return "{}"  # most rows' tags
    return "".join(_ENCODE(obj, 0) if c_make_encoder is not None else _ENCODE(obj))


#: Binary jsonb of an empty object (format version 1, then the JSON text).
_EMPTY_JSONB = b"\x01{}"


class _JsonbCopyDumper(Dumper):
    """Binary jsonb for the writer's COPYs: the same bytes as psycopg's
    ``JsonbBinaryDumper`` with :func:`_json_dumps`, in one call instead of three.

    COPY calls the dumper of a jsonb column twice a row (tags, attributes), and psycopg's
    own goes through two ``dump`` methods and a wrapper check before reaching
    ``_json_dumps``: that stack cost more than the encoding of a row's attributes. A plain
    dict, the only value derivation produces, is encoded here directly; anything else
    (a ``Json``/``Jsonb`` wrapper, a list, a scalar) takes the general path.
    Registered by oid only, so it serves COPYs whose types were set, not query parameters.
    """

    format = Format.BINARY
    oid = _JSONB

    def dump(self, obj: Any) -> bytes:
        if type(obj) is dict:
            if not obj:
                return _EMPTY_JSONB  # most rows' tags
            if c_make_encoder is not None:
                return b"\x01" + "".join(_ENCODE(obj, 0)).encode()
        dumps: Callable[[Any], str | bytes] = _json_dumps
        if isinstance(obj, (Json, Jsonb)):
            dumps = obj.dumps or _json_dumps
            obj = obj.obj
        data = dumps(obj)
        return b"\x01" + (data.encode() if isinstance(data, str) else data)


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """An observation that could not be stored, and why."""

    trace_id: str | None
    span_id: str | None
    reason: str


@dataclass(slots=True)
class WriteResult:
    """Outcome of writing one batch."""

    #: Rows newly stored (and added to the rollups).
    inserted: int = 0
    #: Rows already stored before (a resent batch); not counted again.
    duplicates: int = 0
    #: Rows refused (bad values); reported, not stored.
    skipped: list[SkippedRow] | None = None

    @property
    def skipped_count(self) -> int:
        """Number of rows refused."""
        return len(self.skipped or ())


@dataclass(slots=True)
class WritePlan:
    """The Python work of writing one batch, done before the database is involved.

    :meth:`BatchWriter.plan` makes it on another thread (the processor's, while the
    previous batch is being written); :meth:`BatchWriter.write` then only talks to the
    database. A plan is for the writer that made it: another writer (after a reconnect)
    does the work again.
    """

    #: The writer's columns when the plan was made (compared by identity).
    columns: tuple[str, ...]
    rows: list[tuple]
    ids: list[tuple[str | None, str | None]]
    days: set[date]
    skipped: list[SkippedRow]
    #: Rows in lock order and the rollup parameters, for the fast way; None when the
    #: batch must go the careful way.
    direct: tuple[list[tuple], dict[str, str]] | None


def _identity(obs: Any) -> tuple[str | None, str | None]:
    return getattr(obs, "trace_id", None), getattr(obs, "span_id", None)


class BatchWriter:
    """Writes batches of :class:`RouteObservation` through one connection.

    The connection must be prepared with :func:`exporters.postgres.schema.connect` (or
    ``prepare_session``) for ``schema``, be in non-autocommit mode and idle. Not
    thread-safe: one writer per thread.
    """

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self._known_days: set[date] = set()
        self._columns: tuple[str, ...] = ()
        self._oids: list[int] = []
        self._converters: list[Callable[[Any], Any] | None] = []
        self._copy_sql = ""
        self._direct_copy_sql = ""
        self._rollup_idx: tuple[int, ...] | None = None
        self._identity_idx: tuple[int, int] | None = None
        self._write_chunk_sql = load_sql("write_chunk")
        self._write_rollups_sql = load_sql("write_rollups")
        self._prepared = False

    # -- set-up ----------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the staging table and learn the table's columns (once per connection)."""
        if self._prepared:
            return
        set_json_dumps(_json_dumps, context=self.conn)
        self.conn.adapters.register_dumper(None, _JsonbCopyDumper)
        with self.conn.transaction():
            self.conn.execute(load_sql("create_staging"))
            table_cols = self.conn.execute(
                "SELECT attname, atttypid FROM pg_attribute"
                " WHERE attrelid = 'route_observations'::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum"
            ).fetchall()
        types = dict(table_cols)
        missing = [c for c in COLUMNS if c not in types]
        if missing:
            logger.error("otel-llm: route_observations has no column(s) %s; those fields are not stored "
                         "(the schema is older than this code: run `otel-llm db migrate`)", ", ".join(missing))
        self._columns = tuple(c for c in COLUMNS if c in types)
        self._oids = [types[c] for c in self._columns]
        self._converters = [self._converter(types[c]) for c in self._columns]
        column_list = ", ".join(f'"{c}"' for c in self._columns)
        self._copy_sql = f"COPY pg_temp.otel_llm_staging ({column_list}) FROM STDIN (FORMAT BINARY)"
        self._direct_copy_sql = f"COPY route_observations ({column_list}) FROM STDIN (FORMAT BINARY)"
        if all(c in self._columns for c in ROLLUP_COLUMNS):
            self._rollup_idx = tuple(self._columns.index(c) for c in ROLLUP_COLUMNS)
            self._identity_idx = (self._columns.index("trace_id"), self._columns.index("span_id"))
        else:
            self._rollup_idx = None  # an older table: only the careful way knows what to do
        self._known_days.update(existing_partitions(self.conn, self.schema))
        self.conn.commit()
        self._prepared = True

    @staticmethod
    def _converter(oid: int) -> Callable[[Any], Any] | None:
        if oid == _NUMERIC:
            return _to_numeric
        if oid == _TIMESTAMPTZ:
            return _to_aware
        return None

    def ensure_days(self, days: set[date]) -> None:
        """Make sure the partitions for ``days`` exist (no transaction may be open)."""
        missing = days - self._known_days
        if missing:
            ensure_partitions(self.conn, self.schema, missing)
            self._known_days.update(missing)

    def ensure_ahead(self, today: date) -> None:
        """Create today's and the next days' partitions if missing."""
        self.ensure_days(set(days_ahead(today)))

    def forget_partitions(self) -> None:
        """Drop the cache of known partitions (after a prune, or a schema reset)."""
        self._known_days.clear()

    # -- writing ---------------------------------------------------------------------
    def to_rows(self, batch: Sequence[RouteObservation]) -> tuple[
            list[tuple], list[tuple[str | None, str | None]], set[date], list[SkippedRow]]:
        """COPY rows in column order, their identities, their UTC days, and the
        observations that could not even be converted (skipped)."""
        as_they_stand = self._rows_as_they_stand(batch)
        if as_they_stand is not None:
            return as_they_stand
        rows: list[tuple] = []
        ids: list[tuple[str | None, str | None]] = []
        days: set[date] = set()
        skipped: list[SkippedRow] = []
        columns = self._columns
        values_of = operator.attrgetter(*columns) if len(columns) > 1 else (lambda o: (getattr(o, columns[0]),))
        conversions = [(i, conv) for i, conv in enumerate(self._converters) if conv is not None]
        started_idx = columns.index("started_at")
        trace_idx = columns.index("trace_id") if "trace_id" in columns else None
        span_idx = columns.index("span_id") if "span_id" in columns else None
        utc = timezone.utc
        # An observation is a tuple in COLUMNS order: when the table has every column, it
        # is the COPY row as it stands.
        whole = columns == COLUMNS
        for obs in batch:
            try:
                row = obs if whole and type(obs) is RouteObservation else values_of(obs)
                fixed: list[Any] | None = None
                for i, conv in conversions:
                    value = row[i]
                    if value is not None:
                        converted = conv(value)
                        if converted is not value:
                            if fixed is None:
                                fixed = list(row)
                            fixed[i] = converted
                if fixed is not None:
                    row = tuple(fixed)
                started = row[started_idx]
                day = started.date() if started.tzinfo is utc else utc_day(started)
            except Exception as exc:  # noqa: BLE001 - one bad object must not sink the batch
                skipped.append(SkippedRow(*_identity(obs), f"{type(exc).__name__}: {exc}"))
                continue
            rows.append(row)
            ids.append((row[trace_idx] if trace_idx is not None else None,
                        row[span_idx] if span_idx is not None else None))
            days.add(day)
        return rows, ids, days, skipped

    def _rows_as_they_stand(self, batch: Sequence[RouteObservation]) -> tuple[
            list[tuple], list[tuple[str | None, str | None]], set[date], list[SkippedRow]] | None:
        """:meth:`to_rows` for the usual batch, a column at a time: every item a
        :class:`RouteObservation` of a table with every column, every ``started_at`` a UTC
        ``datetime`` and no value a converter would change. Then each observation is its
        COPY row as it stands, and checking the batch column by column (C loops) costs a
        fraction of converting it row by row. None when the batch is not like that: the
        row-by-row conversion then decides, and reports what it skips."""
        columns = self._columns
        if not batch or columns != COLUMNS or len(set(map(type, batch))) != 1 \
                or type(batch[0]) is not RouteObservation:
            return None
        started_idx = columns.index("started_at")
        started = list(map(operator.itemgetter(started_idx), batch))
        if set(map(type, started)) != {datetime} or not all(
                map(operator.is_, map(operator.attrgetter("tzinfo"), started), repeat(timezone.utc))):
            return None  # (so started_at needs no conversion)
        for i, conv in enumerate(self._converters):
            if conv is not None and i != started_idx \
                    and not _leaves_unchanged(conv, list(map(operator.itemgetter(i), batch))):
                return None
        rows = list(batch)
        ids = list(map(operator.itemgetter(columns.index("trace_id"), columns.index("span_id")), rows))
        return rows, ids, set(map(datetime.date, started)), []

    def plan(self, batch: Sequence[RouteObservation]) -> WritePlan | None:
        """The Python work of :meth:`write` for ``batch`` (rows, identities, days, lock
        order, rollup totals), without touching the connection: safe on another thread
        while this writer writes. None before :meth:`prepare` has run."""
        if not self._prepared:
            return None
        columns = self._columns
        rows, ids, days, skipped = self.to_rows(batch)
        return WritePlan(columns, rows, ids, days, skipped, self._direct_plan(rows))

    def write(self, batch: Sequence[RouteObservation], plan: WritePlan | None = None) -> WriteResult:
        """Store ``batch`` exactly once; see the module docstring. Commits on success.

        ``plan`` is :meth:`plan` of the same batch when it was made ahead (ignored when
        another writer made it).

        Raises only for failures not caused by the rows (connection, timeouts, schema);
        the transaction is then rolled back and nothing of the batch is stored.
        """
        self.prepare()
        if plan is None or plan.columns is not self._columns:
            plan = self.plan(batch)
            assert plan is not None
        rows, ids, days, unconvertible = plan.rows, plan.ids, plan.days, plan.skipped
        result = WriteResult(skipped=list(unconvertible))
        if rows:
            self.ensure_days(days)
            if plan.direct is not None and self._write_direct(*plan.direct):
                result.inserted = len(rows)
            for attempt in range(0 if result.inserted else 2):
                result = WriteResult(skipped=list(unconvertible))
                try:
                    with self.conn.transaction():
                        self._write_isolating(rows, ids, result, partition_retry=attempt == 0)
                    break
                except _MissingPartition:
                    # A partition we believed in is gone (pruned or reset elsewhere): look again.
                    self.forget_partitions()
                    self._known_days.update(existing_partitions(self.conn, self.schema))
                    self.conn.commit()
                    self.ensure_days(days)
                except BaseException:
                    self._rollback_quietly()
                    raise
        refused = result.skipped_count - len(unconvertible)
        result.duplicates = len(rows) - result.inserted - refused
        for row in result.skipped or ():
            logger.warning("otel-llm: observation trace_id=%s span_id=%s was not stored: %s",
                           row.trace_id, row.span_id, row.reason)
        return result

    def _direct_plan(self, rows: list[tuple]) -> tuple[list[tuple], dict[str, str]] | None:
        """The rows in lock order and their rollup parameters, for the fast way; None when
        the batch must go the careful way."""
        if not rows or self._rollup_idx is None or self._identity_idx is None:
            return None
        try:
            # One lock order for racing writers: (trace_id, span_id), as two stable sorts on
            # one text key each, which cost two thirds of one sort on tuples.
            t, s = self._identity_idx
            ordered = sorted(sorted(rows, key=operator.itemgetter(s)), key=operator.itemgetter(t))
            return ordered, rollup_params(ordered, self._rollup_idx)
        except Exception:  # noqa: BLE001 - odd values: the careful way reports them row by row
            return None

    def _write_direct(self, ordered: list[tuple], params: dict[str, str]) -> bool:
        """The fast way (see the module docstring); False, with nothing written, when the
        batch must go the careful way."""
        try:
            with self.conn.transaction():
                cur = self.conn.cursor()
                with cur.copy(self._direct_copy_sql) as copy:
                    copy.set_types(self._oids)
                    for row in ordered:
                        copy.write_row(row)
                cur.execute(self._write_rollups_sql, params, prepare=True)
        except Exception as exc:
            if is_row_fault(exc):  # already stored, a refused value, a missing partition
                return False
            self._rollback_quietly()
            raise
        return True

    def _write_isolating(self, rows: list[tuple], ids: list[tuple[str | None, str | None]],
                         result: WriteResult, *, partition_retry: bool) -> None:
        """Write ``rows`` in a savepoint; on a row fault, split and retry each half."""
        try:
            with self.conn.transaction():
                result.inserted += self._write_chunk(rows)
        except Exception as exc:
            if partition_retry and _is_missing_partition(exc):
                raise _MissingPartition() from exc
            if not is_row_fault(exc):
                raise
            if len(rows) == 1:
                assert result.skipped is not None
                result.skipped.append(SkippedRow(ids[0][0], ids[0][1], _describe(exc)))
                return
            mid = len(rows) // 2
            self._write_isolating(rows[:mid], ids[:mid], result, partition_retry=partition_retry)
            self._write_isolating(rows[mid:], ids[mid:], result, partition_retry=partition_retry)

    def _write_chunk(self, rows: list[tuple]) -> int:
        cur = self.conn.cursor()
        with cur.copy(self._copy_sql) as copy:
            copy.set_types(self._oids)
            for row in rows:
                copy.write_row(row)
        inserted, _staged, _rollup_rows = cur.execute(self._write_chunk_sql).fetchone()
        return int(inserted)

    def _rollback_quietly(self) -> None:
        try:
            if not self.conn.closed:
                self.conn.rollback()
        except Exception:  # noqa: BLE001 - the connection is broken; the caller reconnects
            pass


class _MissingPartition(Exception):
    """A row met no partition although the writer had made sure of it."""


def _is_missing_partition(exc: BaseException) -> bool:
    # Partition routing failures are check violations that name no constraint.
    return (isinstance(exc, psycopg.errors.CheckViolation)
            and getattr(exc.diag, "constraint_name", None) is None)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    state = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}{f' [{state}]' if state else ''}: {text}"


def _leaves_unchanged(conv: Callable[[Any], Any], values: list[Any]) -> bool:
    """Whether ``conv`` (a converter of :meth:`BatchWriter._converter`) would return every
    one of ``values`` as it is; False when unsure."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if conv is _to_numeric:
        return kinds <= {Decimal, int}
    if conv is _to_aware:
        if kinds == {datetime}:
            return None not in set(map(operator.attrgetter("tzinfo"), filter(None, values)))
        return not kinds
    return False


def _to_numeric(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _to_aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
