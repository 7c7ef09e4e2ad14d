"""Creation dates as the files show them: local time of TIME_ZONE, converted inside the SQL.

The database holds UTC. Each writer declares the form it wants (Writer.date_form):

  TEXT    "YYYY-MM-DD HH:MM:SS", seconds truncated, "" for no date (CSV, PDF)
  SERIAL  an Excel serial number: days since 1899-12-30, the time of day as the fraction,
          microseconds kept (XLSX)

LocalDate is the SQL expression that gives the date in that form, so rows leave the database
ready for their writer and no Python code runs per row. PostgreSQL converts with AT TIME ZONE,
exactly. SQLite knows no time zones: a zone's offset from UTC is constant between transitions,
so offset_segments() lists the offsets over the data's span (one segment for a zone without
DST, such as Africa/Algiers) and the expression picks the row's segment by comparing its UTC
text with the transition instants (a balanced tree of comparisons). as_form() is the same
conversion in Python, from a naive local datetime: the reference the tests hold the SQL to.
"""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.db.models import CharField, F, FloatField, Func

TEXT = "text"
SERIAL = "serial"
FORMS = (TEXT, SERIAL)

EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 0 for every date after 1900-02-28
_EPOCH_TO_UNIX = 25569 * 86400  # seconds from EXCEL_EPOCH to 1970-01-01
_ONE_DAY = timedelta(days=1)


def as_form(value: datetime | None, form: str) -> str | float | None:
    """A naive local datetime in `form` (no date: "" as TEXT, None as SERIAL)."""
    if value is None:
        return "" if form == TEXT else None
    if form == TEXT:
        return value.isoformat(" ", "seconds")
    if form == SERIAL:
        return (value - EXCEL_EPOCH) / _ONE_DAY
    raise ValueError(f"Unknown date form {form!r}; expected one of {', '.join(FORMS)}.")


def rows_as_form(rows: list[tuple], column: int, form: str) -> list[tuple]:
    """Rows whose `column` holds naive local datetimes, with that column in `form`."""
    return [row[:column] + (as_form(row[column], form),) + row[column + 1:] for row in rows]


def offset_segments(tz: ZoneInfo, first: datetime, last: datetime) -> tuple[tuple[datetime | None, int], ...]:
    """The zone's UTC offsets (seconds) from `first` to `last` (naive UTC), as (start, offset)
    pairs in time order: each offset holds from its start (naive UTC; None for the first)
    until the next start. Offsets are sampled once a day and every change is located to the
    second, so only a zone changing twice within one day could be missed. Memoised per
    (zone, first day, last day): years of data cost a few milliseconds once a day.

    The span is clamped to SEGMENTS_SPAN: a placeholder date such as 9999-12-31 must not cost
    a loop over eight thousand years (nor overflow). Dates outside it take the offset at the
    nearer end (the zone's local mean time before 1800, its rule of 2200 after).
    """
    low, high = SEGMENTS_SPAN
    first, last = min(max(first, low), high), max(min(last, high), low)
    midnight = {"hour": 0, "minute": 0, "second": 0, "microsecond": 0}
    return _offset_segments(tz, first.replace(**midnight), last.replace(**midnight))


SEGMENTS_SPAN = (datetime(1800, 1, 1), datetime(2200, 1, 1))


@lru_cache(maxsize=32)
def _offset_segments(tz: ZoneInfo, first_day: datetime, last_day: datetime) -> tuple:
    def offset(moment: datetime) -> int:
        return int(moment.replace(tzinfo=UTC).astimezone(tz).utcoffset().total_seconds())

    day = first_day
    segments: list[tuple[datetime | None, int]] = [(None, offset(day))]
    while day <= last_day:
        following = day + _ONE_DAY
        if offset(following) != segments[-1][1]:
            low, high = day, following  # offset(low) is the old one, offset(high) the new
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                low, high = (middle, high) if offset(middle) == segments[-1][1] else (low, middle)
            segments.append((high, offset(high)))
        day = following
    return tuple(segments)


class LocalDate(Func):
    """The UTC datetime column `field` as local time of `tz`, in `form`.

    `segments` (from offset_segments over the data's span) is needed on SQLite only.
    """

    arity = 1

    def __init__(self, field: str, form: str, tz: ZoneInfo, segments=None):
        if form not in FORMS:
            raise ValueError(f"Unknown date form {form!r}; expected one of {', '.join(FORMS)}.")
        output = CharField() if form == TEXT else FloatField()
        super().__init__(F(field), output_field=output)
        self.form, self.tz, self.segments = form, tz, segments or [(None, 0)]

    def as_sqlite(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        utc = f"substr({column}, 1, 19)"  # "YYYY-MM-DD HH:MM:SS": the fraction is kept apart
        if self.form == TEXT:
            shift = _pick(column, self.segments, lambda seconds: f"'{seconds:+d} seconds'")
            return f"COALESCE(datetime({utc}, {shift}), '')", params
        shift = _pick(column, self.segments, lambda seconds: f"{seconds + _EPOCH_TO_UNIX:d}")
        return (f"((CAST(strftime('%%s', {utc}) AS INTEGER) + {shift}) / 86400.0"
                f" + CAST(substr({column}, 20) AS REAL) / 86400.0)"), params

    def as_postgresql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        local = f"({column} AT TIME ZONE %s)"
        if self.form == TEXT:
            return f"COALESCE(to_char({local}, 'YYYY-MM-DD HH24:MI:SS'), '')", (*params, self.tz.key)
        epoch = f"EXTRACT(EPOCH FROM {local})"
        # Whole seconds and the fraction apart, as on SQLite: the serial keeps microseconds.
        return (f"(CAST(FLOOR({epoch}) + {_EPOCH_TO_UNIX:d} AS double precision) / 86400.0"
                f" + CAST({epoch} - FLOOR({epoch}) AS double precision) / 86400.0)"), \
            (*params, self.tz.key) * 3  # `local` appears three times

    def as_sql(self, compiler, connection, **extra):
        raise NotImplementedError(
            f"Local dates are converted in SQL on SQLite and PostgreSQL, not on {connection.vendor}.")


def _pick(column: str, segments: list, literal) -> str:
    """SQL choosing the literal of the row's segment: a balanced tree of CASE comparisons on
    the UTC text (ISO text sorts as time does)."""
    if len(segments) == 1:
        return literal(segments[0][1])
    middle = len(segments) // 2
    start = segments[middle][0].isoformat(" ")
    return (f"CASE WHEN {column} < '{start}' THEN {_pick(column, segments[:middle], literal)} "
            f"ELSE {_pick(column, segments[middle:], literal)} END")
