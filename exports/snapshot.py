"""A consistent, read-only snapshot of the records for one export, on a connection of its own.

The export reads inside one transaction (REPEATABLE READ on PostgreSQL, one deferred read
transaction on SQLite in WAL mode), so rows changing mid-export neither vanish nor repeat. It
uses its own DB-API connection because the job's Django connection must stay free to commit
progress: on SQLite a write inside the read transaction would hold the write lock for the
whole export.
"""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from . import conf, dates
from .models import DATE_FIELD, EXPORT_FIELDS, CorporateParkRecord


class Snapshot:
    def __init__(self, raw, vendor: str):
        self._raw = raw
        self._vendor = vendor
        self._names = itertools.count(1)  # PostgreSQL cursor names, unique in the transaction

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

    def batches(self, queryset: QuerySet, size: int, limit: int | None = None,
                date_form: str = dates.TEXT) -> Iterator[list[tuple]]:
        """Export rows, `size` at a time, in pk order: tuples in EXPORT_FIELDS order, ready
        for a writer. The creation date is local time of TIME_ZONE in `date_form`, converted
        by the SELECT itself (dates.LocalDate), so no Python code runs per row.

        One statement streams the whole export: the snapshot already holds its read
        transaction, so there is nothing to gain from paging. SQLite steps it `size` rows at a
        time; PostgreSQL reads it through a server-side cursor (DECLARE / FETCH), so the
        client never holds more than one batch.
        """
        local = dates.LocalDate(DATE_FIELD, date_form, conf.time_zone(), self._segments())
        page = (queryset.order_by("pk").annotate(export_date=local)
                .values_list(*(f if f != DATE_FIELD else "export_date" for f in EXPORT_FIELDS)))
        page = page if limit is None else page[:limit]
        if self._vendor != "postgresql":
            cursor = self._execute(page)
            try:
                while rows := cursor.fetchmany(size):
                    yield rows
            finally:
                cursor.close()
            return
        sql, params = cursor_sql(page)
        name = f"export_rows_{next(self._names)}"
        cursor = self._cursor()
        cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
        try:
            while rows := cursor.execute(f"FETCH FORWARD {size:d} FROM {name}").fetchall():
                yield rows
            cursor.execute(f"CLOSE {name}")
        finally:
            cursor.close()

    def _segments(self) -> list | None:
        """SQLite only: the zone's offsets over the span of every stored date (read from the
        date index: two lookups), which covers the rows of any filter."""
        if self._vendor != "sqlite":
            return None
        model = CorporateParkRecord.objects
        ends = []
        for order in (DATE_FIELD, f"-{DATE_FIELD}"):
            cursor = self._execute(model.order_by(order).values_list(DATE_FIELD)[:1])
            found = cursor.fetchone()
            cursor.close()
            ends.append(found and found[0])
        if not all(ends):
            return None
        first, last = (datetime.fromisoformat(end[:19]) for end in ends)
        return dates.offset_segments(conf.time_zone(), first, last)


def cursor_sql(queryset: QuerySet) -> tuple[str, tuple]:
    sql, params = queryset.query.get_compiler(using="default").as_sql()
    return sql, tuple(params)


@contextmanager
def snapshot() -> Iterator[Snapshot]:
    """Open a read-only snapshot on a fresh connection; closed (and rolled back) on exit."""
    connection.ensure_connection()
    params = connection.get_connection_params()
    if connection.vendor == "sqlite":
        params["detect_types"] = 0  # values as stored: the dates come converted by the SQL
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
