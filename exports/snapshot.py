"""A consistent, read-only snapshot of the records for one export, on a connection of its own.

The export reads inside one transaction (REPEATABLE READ on PostgreSQL, one deferred read
transaction on SQLite in WAL mode), so rows changing mid-export neither vanish nor repeat. It
uses its own DB-API connection because the job's Django connection must stay free to commit
progress: on SQLite a write inside the read transaction would hold the write lock for the
whole export.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.db import connection
from django.db.models import QuerySet

from . import conf
from .models import DATE_COLUMN, EXPORT_FIELDS


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
        """Rows as tuples in EXPORT_FIELDS order, in primary-key order, `size` at a time.

        Keyset pagination (pk > last seen), never OFFSET: each batch is one indexed range read.
        The raw rows still hold the database's date form; convert them with to_export_rows().
        """
        remaining = limit
        last_pk = None
        base = queryset.order_by("pk").values_list(*EXPORT_FIELDS, "pk")
        while remaining is None or remaining > 0:
            take = size if remaining is None else min(size, remaining)
            page = base if last_pk is None else base.filter(pk__gt=last_pk)
            cursor = self._execute(page[:take])
            rows = cursor.fetchall()
            cursor.close()
            if not rows:
                return
            last_pk = rows[-1][-1]
            if remaining is not None:
                remaining -= len(rows)
            yield rows
            if len(rows) < take:
                return


def cursor_sql(queryset: QuerySet) -> tuple[str, tuple]:
    sql, params = queryset.query.get_compiler(using="default").as_sql()
    return sql, tuple(params)


@contextmanager
def snapshot() -> Iterator[Snapshot]:
    """Open a read-only snapshot on a fresh connection; closed (and rolled back) on exit."""
    connection.ensure_connection()
    raw = connection.get_new_connection(connection.get_connection_params())
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
    """Raw snapshot rows -> export rows: pk dropped, text never None, dates local and naive."""
    tz = conf.time_zone()
    out = []
    for row in rows:
        values = [("" if v is None else v) for v in row[:-1]]
        values[DATE_COLUMN] = _local_naive(row[DATE_COLUMN], tz)
        out.append(tuple(values))
    return out


def _local_naive(value, tz) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # SQLite keeps UTC datetimes as naive ISO text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz).replace(tzinfo=None)
