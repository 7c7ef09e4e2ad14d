"""snapshot.py: keyset batches and the memoised UTC -> local date conversion."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.test import SimpleTestCase, TransactionTestCase, override_settings

from exports.filters import ExportFilters
from exports.models import CorporateParkRecord
from exports.snapshot import _date_converter, snapshot, to_export_rows
from exports.tests.factories import make_records


class DateConverterTests(SimpleTestCase):
    def check_zone(self, name: str, start: datetime, hours: int):
        tz = ZoneInfo(name)
        local = _date_converter(tz)
        for step in range(hours * 4):
            utc = start + timedelta(minutes=15 * step, seconds=7)
            expected = utc.astimezone(tz).replace(tzinfo=None)
            text = utc.replace(tzinfo=None).isoformat(" ")
            self.assertEqual(local(text), expected, text)
            self.assertEqual(local(utc), expected, utc)

    def test_matches_exact_conversion_across_dst_changes(self):
        # Paris changes offset on these days: the memo must not apply one offset all day.
        self.check_zone("Europe/Paris", datetime(2024, 3, 30, tzinfo=UTC), 72)
        self.check_zone("Europe/Paris", datetime(2024, 10, 26, tzinfo=UTC), 72)

    def test_algiers_and_utc(self):
        self.check_zone("Africa/Algiers", datetime(2023, 12, 31, 20, tzinfo=UTC), 8)
        self.check_zone("UTC", datetime(2023, 12, 31, 20, tzinfo=UTC), 8)

    def test_fractional_seconds_and_empty(self):
        local = _date_converter(ZoneInfo("Africa/Algiers"))
        self.assertEqual(local("2024-01-01 10:00:00.250000"), datetime(2024, 1, 1, 11, 0, 0, 250000))
        self.assertIsNone(local(None))
        self.assertIsNone(local(""))


class BatchTests(TransactionTestCase):
    def test_batches_cover_every_row_once_in_pk_order_with_limit(self):
        make_records(23)
        pks = list(CorporateParkRecord.objects.order_by("pk").values_list("pk", flat=True))
        queryset = ExportFilters().queryset()
        with snapshot() as snap:
            whole = list(snap.batches(queryset, 5))
            limited = list(snap.batches(queryset, 5, limit=12))
            self.assertEqual(snap.count(queryset), 23)
            self.assertEqual(snap.count(queryset, 12), 12)
        self.assertEqual([len(b) for b in whole], [5, 5, 5, 5, 3])
        self.assertEqual([r[-1] for b in whole for r in b], pks)
        self.assertEqual([len(b) for b in limited], [5, 5, 2])

    @override_settings(TIME_ZONE="Africa/Algiers")
    def test_export_rows_drop_the_pk_and_localise_the_date(self):
        record = make_records(1, creation_date=datetime(2024, 6, 1, 23, 30, tzinfo=UTC))[0]
        with snapshot() as snap:
            rows = to_export_rows(next(snap.batches(ExportFilters().queryset(), 10)))
        self.assertEqual(len(rows[0]), 15)
        self.assertEqual(rows[0][0], record.dot)
        self.assertEqual(rows[0][12], datetime(2024, 6, 2, 0, 30))
