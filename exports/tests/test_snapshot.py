"""snapshot.py and dates.py: streamed batches, and local dates converted by the query itself,
held to the Python reference (dates.as_form) across DST changes on the running database."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.test import SimpleTestCase, TransactionTestCase, override_settings

from exports import dates
from exports.filters import ExportFilters
from exports.models import DATE_COLUMN, EXPORT_FIELDS, CorporateParkRecord
from exports.snapshot import snapshot
from exports.tests.factories import make_records


class OffsetSegmentsTests(SimpleTestCase):
    def test_a_zone_without_dst_has_one_segment(self):
        segments = dates.offset_segments(
            ZoneInfo("Africa/Algiers"), datetime(1990, 1, 1), datetime(2030, 12, 31))
        self.assertEqual(segments, ((None, 3600),))
        self.assertEqual(dates.offset_segments(
            ZoneInfo("UTC"), datetime(2000, 1, 1), datetime(2001, 1, 1)), ((None, 0),))

    def test_changes_are_located_to_the_second(self):
        segments = dates.offset_segments(
            ZoneInfo("Europe/Paris"), datetime(2024, 1, 5, 13), datetime(2024, 12, 1))
        self.assertEqual(segments, ((None, 3600), (datetime(2024, 3, 31, 1), 7200),
                                    (datetime(2024, 10, 27, 1), 3600)))

    def test_placeholder_dates_far_away_cost_no_more_than_the_clamped_span(self):
        segments = dates.offset_segments(
            ZoneInfo("America/New_York"), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59))
        starts = [start for start, _ in segments[1:]]
        self.assertEqual(starts, sorted(starts))
        self.assertTrue(datetime(1800, 1, 1) < starts[0] < starts[-1] < datetime(2200, 1, 1))
        self.assertEqual((segments[0][1], segments[-1][1]), (-17762, -18000))  # LMT, EST

    def test_as_form(self):
        when = datetime(2024, 1, 2, 3, 4, 5, 678000)
        self.assertEqual(dates.as_form(when, dates.TEXT), "2024-01-02 03:04:05")
        self.assertEqual(dates.as_form(datetime(1900, 3, 1), dates.SERIAL), 61.0)
        self.assertAlmostEqual(dates.as_form(when, dates.SERIAL),
                               45293 + (3 * 3600 + 4 * 60 + 5.678) / 86400, places=11)
        self.assertEqual(dates.as_form(None, dates.TEXT), "")
        self.assertIsNone(dates.as_form(None, dates.SERIAL))
        with self.assertRaisesRegex(ValueError, "Unknown date form 'iso'"):
            dates.as_form(when, "iso")


class LocalDateQueryTests(TransactionTestCase):
    """The SQL conversion equals the Python reference, row by row, on this database."""

    def check_zone(self, zone: str, start: datetime, hours: int) -> None:
        tz = ZoneInfo(zone)
        # Every 15 minutes and 7.25 s, so the fraction, the offsets on both sides of each
        # change and the hour that repeats are all covered.
        moments = [start + timedelta(minutes=15 * step, seconds=7, microseconds=250_000)
                   for step in range(hours * 4)]
        CorporateParkRecord.objects.all().delete()
        make_records(len(moments))
        for record, moment in zip(CorporateParkRecord.objects.order_by("pk"), moments):
            record.creation_date = moment
            record.save(update_fields=["creation_date"])
        expected = [m.astimezone(tz).replace(tzinfo=None) for m in moments]
        with override_settings(TIME_ZONE=zone), snapshot() as snap:
            queryset = ExportFilters().queryset()
            text = [r[DATE_COLUMN] for b in snap.batches(queryset, 50) for r in b]
            serial = [r[DATE_COLUMN] for b in snap.batches(queryset, 50, date_form=dates.SERIAL)
                      for r in b]
        self.assertEqual(text, [dates.as_form(e, dates.TEXT) for e in expected])
        for got, local in zip(serial, expected):
            # Within a microsecond of the reference (readers round serials to milliseconds).
            self.assertAlmostEqual(got, dates.as_form(local, dates.SERIAL), delta=1 / 86400e6,
                                   msg=str(local))

    def test_paris_across_both_changes(self):
        self.check_zone("Europe/Paris", datetime(2024, 3, 30, tzinfo=UTC), 60)
        self.check_zone("Europe/Paris", datetime(2024, 10, 26, tzinfo=UTC), 60)

    def test_algiers_new_york_and_utc(self):
        self.check_zone("Africa/Algiers", datetime(2023, 12, 31, 20, tzinfo=UTC), 8)
        self.check_zone("America/New_York", datetime(2024, 3, 10, 4, tzinfo=UTC), 6)
        self.check_zone("UTC", datetime(2023, 12, 31, 20, tzinfo=UTC), 8)


class BatchTests(TransactionTestCase):
    def test_batches_cover_every_row_once_in_pk_order_with_limit(self):
        records = make_records(23)
        queryset = ExportFilters().queryset()
        with snapshot() as snap:
            whole = list(snap.batches(queryset, 5))
            limited = list(snap.batches(queryset, 5, limit=12))
            self.assertEqual(snap.count(queryset), 23)
            self.assertEqual(snap.count(queryset, 12), 12)
        self.assertEqual([len(b) for b in whole], [5, 5, 5, 5, 3])
        self.assertEqual([r[-1] for b in whole for r in b],
                         [r.customer_full_name for r in records])
        self.assertEqual([len(b) for b in limited], [5, 5, 2])

    def test_a_filter_read_through_its_index_still_comes_in_pk_order(self):
        # Alternating DOTs: the dot index lists all of one DOT first; rows must not.
        for i in range(30):
            make_records(1, start=i, dot=("Oran", "Adrar", "Alger")[i % 3])
        queryset = ExportFilters(dot=("Adrar", "Oran")).queryset()
        expected = list(queryset.order_by("pk").values_list("customer_full_name", flat=True))
        with snapshot() as snap:
            got = [r[-1] for b in snap.batches(queryset, 7) for r in b]
        self.assertEqual(len(expected), 20)
        self.assertEqual(got, expected)

    @override_settings(TIME_ZONE="Africa/Algiers")
    def test_rows_are_export_rows_with_the_local_date_in_the_asked_form(self):
        record = make_records(1, creation_date=datetime(2024, 6, 1, 23, 30, tzinfo=UTC))[0]
        with snapshot() as snap:
            text = next(snap.batches(ExportFilters().queryset(), 10))
            serial = next(snap.batches(ExportFilters().queryset(), 10, date_form=dates.SERIAL))
        self.assertEqual([list(row) for row in text], [[
            "2024-06-02 00:30:00" if f == "creation_date" else getattr(record, f)
            for f in EXPORT_FIELDS]])
        self.assertEqual(serial[0][DATE_COLUMN], dates.as_form(datetime(2024, 6, 2, 0, 30),
                                                               dates.SERIAL))

    @override_settings(TIME_ZONE="Africa/Algiers")
    def test_placeholder_dates_in_the_table_leave_every_export_working(self):
        far = [datetime(1, 1, 1, 12, tzinfo=UTC), datetime(9999, 12, 31, 12, tzinfo=UTC)]
        make_records(1, dot="Oran", creation_date=datetime(2024, 5, 1, tzinfo=UTC))
        for i, when in enumerate(far, start=1):
            make_records(1, start=i, dot="Adrar", creation_date=when)
        tz = ZoneInfo("Africa/Algiers")
        with snapshot() as snap:
            oran = list(snap.batches(ExportFilters(dot=("Oran",)).queryset(), 10))
            adrar = [r[DATE_COLUMN] for b in snap.batches(
                ExportFilters(dot=("Adrar",)).queryset(), 10) for r in b]
        self.assertEqual(oran[0][0][DATE_COLUMN], "2024-05-01 01:00:00")
        self.assertEqual(adrar, [dates.as_form(w.astimezone(tz).replace(tzinfo=None), dates.TEXT)
                                 for w in far])

    def test_an_empty_table_gives_no_batch(self):
        with snapshot() as snap:
            self.assertEqual(list(snap.batches(ExportFilters().queryset(), 5)), [])
