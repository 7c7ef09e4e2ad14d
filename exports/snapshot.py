"""A consistent, read-only snapshot of the records for one export, on a connection of its own.

The export reads inside one transaction (REPEATABLE READ on PostgreSQL, one deferred read
transaction on SQLite in WAL mode), so rows changing mid-export neither vanish nor repeat. It
uses its own DB-API connection because the job's Django connection must stay free to commit
progress: on SQLite a write inside the read transaction would hold the write lock for the
whole export.
"""

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from . import conf, dates
from .models import DATE_FIELD, EXPORT_FIELDS, CorporateParkRecord

KEYSET_START = -(2**62)  # below every pk; also marks the keyset parameter in the compiled SQL


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
                date_form: str = dates.TEXT) -> Iterator[list]:
        """Export rows, `size` at a time, in pk order: sequences in EXPORT_FIELDS order,
        ready for a writer. The creation date is local time of TIME_ZONE in `date_form`,
        converted by the query itself (dates.LocalDate), so no Python code runs per row.

        PostgreSQL streams one SELECT through a server-side cursor (DECLARE / FETCH), so the
        client never holds more than one batch. SQLite reads keyset pages (pk > last seen,
        never OFFSET), each as one JSON document built by SQLite: see _sqlite_pages().
        Each batch is read by one database call that waits without holding the GIL, so the
        runner can read the next batch on the processing pool while it writes this one.
        """
        local = dates.LocalDate(DATE_FIELD, date_form, conf.time_zone(), self._segments())
        page = (queryset.order_by("pk").annotate(export_date=local)
                .values_list(*(f if f != DATE_FIELD else "export_date" for f in EXPORT_FIELDS)))
        # The SQL is compiled here, on the caller's thread: the reads may run on pool threads.
        if self._vendor == "postgresql":
            return self._server_cursor(*cursor_sql(page if limit is None else page[:limit]),
                                       size)
        inner = page.filter(pk__gt=KEYSET_START).values_list(
            *(f if f != DATE_FIELD else "export_date" for f in EXPORT_FIELDS), "pk")[:size]
        return self._sqlite_pages(*cursor_sql(inner), size, limit, date_form)

    def _server_cursor(self, sql: str, params: tuple, size: int) -> Iterator[list[tuple]]:
        name = f"export_rows_{next(self._names)}"
        cursor = self._cursor()
        cursor.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
        try:
            while rows := cursor.execute(f"FETCH FORWARD {size:d} FROM {name}").fetchall():
                yield rows
            cursor.execute(f"CLOSE {name}")
        finally:
            cursor.close()

    def _sqlite_pages(self, sql: str, params: tuple, size: int, limit: int | None,
                      date_form: str) -> Iterator[list[list]]:
        """Keyset pages, each read as one JSON array of row arrays by a single sqlite3_step.

        Python's sqlite3 releases and retakes the GIL around every row it steps, so a
        fetchmany() running beside other Python threads (the export's own encoding, other
        exports) stalls on the GIL at each row: two exports read that way took 2.4 times as
        long as one after the other. Here SQLite does the whole page (the filter, the date
        conversion, the JSON escaping) in one call without the GIL, and json.loads (C) turns
        it into rows. SERIAL dates are printed with 17 digits (JSON's own 15 would round off
        microseconds). `sql` is one page (pk > KEYSET_START, LIMIT size) of export rows and pk.

        The rows enter json_group_array in the page's ORDER BY: SQLite runs a subquery with
        ORDER BY and LIMIT as a co-routine that hands its rows over in that order (a test
        holds it to pk order with a filter read through another index).
        """
        params, slot = list(params), list(params).index(KEYSET_START)
        columns = ", ".join(_json_value(f, date_form) for f in EXPORT_FIELDS)
        sql = (f"SELECT json_group_array(json_array({columns})), COUNT(*), MAX(page.pk) "
               f"FROM ({sql}) AS page")
        remaining = limit
        cursor = self._cursor()
        try:
            while remaining is None or remaining > 0:
                document, count, last = cursor.execute(sql, params).fetchone()
                rows = json.loads(document) if count else []
                if remaining is not None:
                    rows = rows[:remaining]
                    remaining -= len(rows)
                if rows:
                    yield rows
                if count < size:
                    break
                params[slot] = last
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


def _json_value(field: str, date_form: str) -> str:
    """A page column, as json_array() in _sqlite_pages() takes it."""
    if field != DATE_FIELD:
        return f'page."{field}"'  # Django names the subquery's columns after the fields
    if date_form == dates.SERIAL:
        return ("CASE WHEN page.export_date IS NULL THEN NULL "
                "ELSE json(printf('%%!.17g', page.export_date)) END")
    return "page.export_date"


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
