"""A consistent, read-only snapshot of the records for one export, on a connection of its own.

The export reads inside one transaction (REPEATABLE READ on PostgreSQL, one deferred read
transaction on SQLite in WAL mode), so rows changing mid-export neither vanish nor repeat. It
uses its own DB-API connection because the job's Django connection must stay free to commit
progress: on SQLite a write inside the read transaction would hold the write lock for the
whole export.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet

from . import conf
from .models import DATE_COLUMN, EXPORT_FIELDS


KEYSET_START = -(2**62)  # below every pk; also marks the keyset parameter in the compiled SQL


class Snapshot:
    def __init__(self, raw, vendor: str):
        self._raw = raw
        self._vendor = vendor

    def _cursor(self):
        if self._vendor == "sqlite":
            from django.db.backends.sqlite3.base import SQLiteCursorWrapper

            return self._raw.cursor(factory=SQLiteCursorWrapper)  # turns %s into ?
        return self._raw.cursor()

    def _execute(self, queryset: QuerySet):
        sql, params = cursor_sql(queryset)
        cursor = self._cursor()
        cursor.execute(sql, params)
        return cursor

    def count(self, queryset: QuerySet, limit: int | None = None) -> int:
        sql, params = cursor_sql(queryset.values("pk").order_by())
        cursor = self._cursor()
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS matching", params)
        total = cursor.fetchone()[0]
        cursor.close()
        return min(total, limit) if limit is not None else total

    def batches(self, queryset: QuerySet, size: int, limit: int | None = None) -> Iterator[list]:
        """Rows as tuples in EXPORT_FIELDS order plus the pk, in pk order, `size` at a time.

        Keyset pagination (pk > last seen), never OFFSET: each batch is one indexed range
        read. The SQL is compiled once; only the keyset parameter changes between batches.
        Dates keep the database's own form; to_export_rows() converts them.
        """
        page = queryset.order_by("pk").values_list(*EXPORT_FIELDS, "pk")
        sql, params = cursor_sql(page.filter(pk__gt=KEYSET_START)[:size])
        params, slot = list(params), list(params).index(KEYSET_START)
        remaining = limit
        cursor = self._cursor()
        while remaining is None or remaining > 0:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            if remaining is not None:
                rows = rows[:remaining]
                remaining -= len(rows)
            if rows:
                yield rows
            if len(rows) < size:
                break
            params[slot] = rows[-1][-1]
        cursor.close()


def cursor_sql(queryset: QuerySet) -> tuple[str, tuple]:
    sql, params = queryset.query.get_compiler(using="default").as_sql()
    return sql, tuple(params)


@contextmanager
def snapshot() -> Iterator[Snapshot]:
    """Open a read-only snapshot on a fresh connection; closed (and rolled back) on exit."""
    connection.ensure_connection()
    params = connection.get_connection_params()
    if connection.vendor == "sqlite":
        params["detect_types"] = 0  # dates stay text: to_export_rows parses them faster
    raw = connection.get_new_connection(params)
    vendor = connection.vendor
    try:
        _begin(raw, vendor)
        yield Snapshot(raw, vendor)
    finally:
        try:
            raw.rollback()
        finally:
            raw.close()


def _begin(raw, vendor: str) -> None:
    if vendor == "sqlite":
        raw.isolation_level = None  # we issue BEGIN ourselves: a deferred, read-only transaction
        raw.execute("BEGIN DEFERRED")
    elif vendor == "postgresql":
        from psycopg import IsolationLevel

        raw.autocommit = False
        raw.isolation_level = IsolationLevel.REPEATABLE_READ
        raw.read_only = True
    else:
        raw.autocommit = False


def to_export_rows(rows: list[tuple]) -> list[tuple]:
    """Raw snapshot rows -> export rows: the pk dropped, the date local and naive.

    Text columns are NOT NULL, so only the date needs work; slicing keeps the rest in C.
    """
    local = _date_converter(conf.time_zone())
    d = DATE_COLUMN
    return [row[:d] + (local(row[d]),) + row[d + 1:-1] for row in rows]


_day_offsets: dict[tuple[str, str], timedelta | None] = {}  # (zone, UTC day) -> offset


def _date_converter(tz):
    """A function: database date (ISO text in UTC, or a datetime) -> naive local datetime.

    SQLite hands back UTC text. A zone's offset is the same all day on almost every day, so
    it is computed once per (zone, UTC day) and memoised (a few thousand entries for decades
    of data): a parse, a lookup and an addition per row instead of two time-zone conversions.
    Days on which the offset changes (None in the memo) are converted exactly, row by row.
    """
    fromisoformat, key = datetime.fromisoformat, str(tz)

    def exact(value: datetime) -> datetime:
        return value.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)

    def day_offset(day: str) -> timedelta | None:
        start = fromisoformat(day).replace(tzinfo=UTC)
        first, last = (tz.utcoffset(t.astimezone(tz)) for t in (start, start + timedelta(days=1)))
        _day_offsets[key, day] = offset = first if first == last else None
        return offset

    def local(value) -> datetime | None:
        if not value:
            return None
        if not isinstance(value, str):  # PostgreSQL hands back aware datetimes
            return exact(value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value)
        day = value[:10]
        offset = _day_offsets.get((key, day), False)
        if offset is False:
            offset = day_offset(day)
        parsed = fromisoformat(value)
        return exact(parsed) if offset is None else parsed + offset

    return local
