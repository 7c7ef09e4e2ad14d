"""Request parameters -> a validated, normalised ExportRequest -> a queryset of records.

Every list filter is accepted in each form the frontend and scripts send (`dot=A&dot=B`,
`dot[]=A`, and for codes `dot=A,B`), then normalised (sorted, unique) so that two requests for
the same export have the same fingerprint whatever the form or order of their values.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db.models import QuerySet

from . import conf
from .exceptions import InvalidParameters, shown
from .models import CorporateParkRecord, ExportTask

MAX_VALUE_LENGTH = 200
FORMATS = tuple(ExportTask.Format.values)
DEFAULT_FORMAT = ExportTask.Format.EXCEL

# filter name -> (model lookup, whether "A,B" is split): codes and DOT names hold no commas,
# free-text values (offer names, statuses) may, so they are never split.
LIST_FILTERS: dict[str, tuple[str, bool]] = {
    "dot": ("dot", True),
    "exclude_dot": ("dot", True),
    "actel_code": ("actel_code", True),
    "customer_l2": ("customer_l2_code", True),
    "customer_l3": ("customer_l3_code", True),
    "telecom_type": ("telecom_type", False),
    "offer_name": ("offer_name", False),
    "subscriber_status": ("subscriber_status", False),
    "state": ("state", False),
}
FILTER_LABELS = {"dot": "DOT", "exclude_dot": "excluding DOT", "customer_l2": "customer L2",
                 "customer_l3": "customer L3"}


@dataclass(frozen=True)
class ExportFilters:
    """Validated filters of one export; every list is sorted and unique."""

    dot: tuple[str, ...] = ()
    exclude_dot: tuple[str, ...] = ()
    actel_code: tuple[str, ...] = ()
    customer_l2: tuple[str, ...] = ()
    customer_l3: tuple[str, ...] = ()
    telecom_type: tuple[str, ...] = ()
    offer_name: tuple[str, ...] = ()
    subscriber_status: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    year: int | None = None
    month: int | None = None
    limit: int | None = None

    def as_dict(self) -> dict:
        """The stored, JSON form: only the filters that are set."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v}

    @classmethod
    def from_dict(cls, data: dict) -> "ExportFilters":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def fingerprint(self, export_format: str) -> str:
        payload = json.dumps([export_format, self.as_dict()], sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def label(self) -> str:
        """A short human description, printed in the PDF title."""
        parts = [f"{FILTER_LABELS.get(k, k.replace('_', ' '))}: "
                 f"{', '.join(map(str, v)) if isinstance(v, list) else v}"
                 for k, v in self.as_dict().items()]
        return "; ".join(parts) or "all records"

    def queryset(self) -> QuerySet:
        """Matching records, unordered and unlimited: the runner orders and pages them."""
        qs = CorporateParkRecord.objects.all()
        for name, (lookup, _) in LIST_FILTERS.items():
            values = getattr(self, name)
            if values and name == "exclude_dot":
                qs = qs.exclude(**{f"{lookup}__in": values})
            elif values:
                qs = qs.filter(**{f"{lookup}__in": values})
        if self.year is not None:
            start, end = _date_range(self.year, self.month)
            qs = qs.filter(creation_date__gte=start, creation_date__lt=end)
        return qs


@dataclass(frozen=True)
class ExportRequest:
    export_format: str
    filters: ExportFilters = field(default_factory=ExportFilters)


def parse_export_request(params) -> ExportRequest:
    """Validate start parameters (a QueryDict, or a dict from a JSON body).

    Raises InvalidParameters naming every wrong parameter at once.
    """
    errors: dict[str, list[str]] = {}
    export_format = _parse_format(params, errors)
    values: dict[str, object] = {}
    for name, (_, split) in LIST_FILTERS.items():
        values[name] = _parse_list(params, name, split, errors)
    values["year"] = _parse_int(params, "year", 1900, 2100, errors)
    values["month"] = _parse_int(params, "month", 1, 12, errors)
    values["limit"] = _parse_int(params, "limit", 1, conf.max_rows(), errors)
    if values["month"] is not None and values["year"] is None and "year" not in errors:
        errors.setdefault("month", []).append("month needs year: add year=YYYY.")
    if errors:
        raise InvalidParameters(errors)
    return ExportRequest(export_format=export_format, filters=ExportFilters(**values))


def _getlist(params, name: str) -> list:
    if hasattr(params, "getlist"):
        return params.getlist(name) + params.getlist(f"{name}[]")
    found = []
    for key in (name, f"{name}[]"):
        value = params.get(key)
        if value is not None:
            found.extend(value if isinstance(value, list) else [value])
    return found


def _last(params, name: str):
    values = _getlist(params, name)
    return values[-1] if values else None


def _parse_format(params, errors) -> str:
    raw = _last(params, "export_format")
    if raw is None:
        return DEFAULT_FORMAT
    value = str(raw).strip().lower()
    if value in FORMATS:
        return value
    got = shown(raw) if str(raw).strip() else "an empty value"
    errors["export_format"] = [f"export_format must be one of {', '.join(FORMATS)}; got {got}."]
    return DEFAULT_FORMAT


def _parse_list(params, name: str, split: bool, errors) -> tuple[str, ...]:
    found: set[str] = set()
    for raw in _getlist(params, name):
        pieces = str(raw).split(",") if split else [str(raw)]
        for piece in pieces:
            value = piece.strip()
            if len(value) > MAX_VALUE_LENGTH:
                errors.setdefault(name, []).append(
                    f"Each {name} value must be at most {MAX_VALUE_LENGTH} characters.")
            elif not _storable(value):
                errors.setdefault(name, []).append(
                    f"{name} holds a control character or invalid text: {shown(value)}.")
            elif value:
                found.add(value)
    return tuple(sorted(found))


def _parse_int(params, name: str, low: int, high: int, errors) -> int | None:
    raw = _last(params, name)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        errors[name] = [f"{name} must be a whole number; got {shown(raw)}."]
        return None
    if not low <= value <= high:
        errors[name] = [f"{name} must be between {low} and {high}; got {value}."]
        return None
    return value


def _storable(value: str) -> bool:
    """Text every database and file format can hold: valid UTF-8, no control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from JSON's \ud800
        return False
    return not any(ch < " " or ch == "\x7f" for ch in value)


def _date_range(year: int, month: int | None) -> tuple[datetime, datetime]:
    """[start, end) of a year or month in TIME_ZONE, as aware datetimes (index-friendly)."""
    tz = conf.time_zone()
    if month is None:
        return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return datetime(year, month, 1, tzinfo=tz), end
