"""seed_corporate_park and create_export_user, called as an operator would, plus the generator
and raw insert behind the seed (exports.seed_data)."""

import io
import random
import re
from datetime import UTC, datetime
from unittest import mock

from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase
from rest_framework.authtoken.models import Token

from exports import seed_data
from exports.models import DATE_COLUMN, EXPORT_FIELDS, CorporateParkRecord

ARABIC = re.compile(r"[\u0600-\u06FF]")
TOKEN_LINE = re.compile(r"[0-9a-f]{40}")


def run(command: str, *args, **options) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


def stored_rows() -> list[tuple]:
    return list(CorporateParkRecord.objects.order_by("id").values_list("id", *EXPORT_FIELDS))


class SeedCommandTests(TestCase):
    def test_inserts_the_requested_number_of_rows(self):
        output = run("seed_corporate_park", rows=321)
        self.assertEqual(CorporateParkRecord.objects.count(), 321)
        self.assertIn("Inserted 321 corporate park rows (seed 42)", output.splitlines()[-1])

    def test_same_seed_gives_identical_rows_after_replace(self):
        run("seed_corporate_park", rows=400, seed=7, replace=True)
        first = stored_rows()
        run("seed_corporate_park", rows=400, seed=7, replace=True)
        # replace restarts the ids too, so whole rows, ids included, must match.
        self.assertEqual(stored_rows(), first)

    def test_different_seed_gives_different_rows(self):
        run("seed_corporate_park", rows=200, seed=1)
        first = stored_rows()
        run("seed_corporate_park", rows=200, seed=2, replace=True)
        second = stored_rows()
        self.assertEqual(len(second), 200)
        self.assertNotEqual([row[1:] for row in second], [row[1:] for row in first])

    def test_replace_deletes_existing_rows_first(self):
        run("seed_corporate_park", rows=50)
        run("seed_corporate_park", rows=20, replace=True)
        self.assertEqual(CorporateParkRecord.objects.count(), 20)
        self.assertEqual(CorporateParkRecord.objects.order_by("id").first().id, 1)

    def test_without_replace_rows_are_added(self):
        run("seed_corporate_park", rows=30)
        run("seed_corporate_park", rows=20)
        self.assertEqual(CorporateParkRecord.objects.count(), 50)

    def test_if_empty_leaves_an_existing_table_alone(self):
        run("seed_corporate_park", rows=10)
        before = stored_rows()
        output = run("seed_corporate_park", rows=500, if_empty=True)
        self.assertEqual(stored_rows(), before)
        self.assertIn("already holds 10 rows", output)

    def test_if_empty_seeds_an_empty_table(self):
        run("seed_corporate_park", rows=25, if_empty=True)
        self.assertEqual(CorporateParkRecord.objects.count(), 25)

    def test_bad_row_counts_are_refused_with_a_sentence(self):
        for bad in (0, -3, "abc", "1.5", ""):
            with self.subTest(rows=bad), self.assertRaisesMessage(CommandError, "--rows must"):
                run("seed_corporate_park", rows=bad)
        self.assertFalse(CorporateParkRecord.objects.exists())

    def test_bad_seed_is_refused(self):
        with self.assertRaisesMessage(CommandError, "--seed must be a whole number"):
            run("seed_corporate_park", rows=5, seed="forty-two")

    def test_if_empty_and_replace_together_are_refused(self):
        with self.assertRaises(CommandError):
            run("seed_corporate_park", "--if-empty", "--replace", rows=5)

    def test_progress_is_reported_every_interval(self):
        with (
            mock.patch.object(seed_data, "PROGRESS_EVERY", 100),
            mock.patch.object(seed_data, "BATCH_ROWS", 40),
        ):
            output = run("seed_corporate_park", rows=250)
        lines = output.splitlines()
        # 40-row batches cross 100 and 200 at 120 and 200; the last line is the summary.
        self.assertEqual([line.split()[0] for line in lines[:-1]], ["120", "200"])
        self.assertIn("rows/s", lines[0])
        self.assertTrue(lines[-1].startswith("Inserted 250 "))


class SeededValuesTests(TestCase):
    """Looks at one modest seed, shared by the tests (TestCase rolls back to it each time)."""

    @classmethod
    def setUpTestData(cls):
        run("seed_corporate_park", rows=5000, seed=42)
        cls.rows = [row[1:] for row in stored_rows()]
        cls.column = {field: [row[i] for row in cls.rows] for i, field in enumerate(EXPORT_FIELDS)}

    def test_every_value_is_filled(self):
        for field, values in self.column.items():
            with self.subTest(field=field):
                self.assertTrue(all(values), f"{field} has an empty value")

    def test_values_fit_their_columns(self):
        # SQLite ignores max_length; PostgreSQL would refuse the whole batch.
        for field, values in self.column.items():
            max_length = CorporateParkRecord._meta.get_field(field).max_length
            if max_length:
                with self.subTest(field=field):
                    self.assertLessEqual(max(len(value) for value in values), max_length)

    def test_codes_are_text_that_keeps_leading_zeros(self):
        for row in self.rows:
            dot, actel, l1, _, l2, _, l3 = row[:7]
            number = seed_data.WILAYA_NAMES.index(dot) + 1
            self.assertRegex(actel, r"^\d{5}$")
            self.assertEqual(actel[:2], f"{number:02d}")
            self.assertRegex(l1, r"^0\d$")
            self.assertTrue(l2.startswith(l1) and l3.startswith(l2), row)
        self.assertIn("01", {actel[:2] for actel in self.column["actel_code"]})

    def test_rows_cover_many_wilayas_weighted_by_size(self):
        dots = self.column["dot"]
        self.assertGreaterEqual(len(set(dots)), 50)
        self.assertLessEqual(set(dots), set(seed_data.WILAYA_NAMES))
        self.assertEqual(max(set(dots), key=dots.count), "Alger")
        self.assertGreater(dots.count("Oran"), 5 * dots.count("Tindouf"))

    def test_names_include_arabic_accents_and_punctuation(self):
        names = self.column["customer_full_name"]
        self.assertTrue(any(ARABIC.search(name) for name in names))
        for mark in (",", "'", '"', "é", "É"):
            with self.subTest(mark=mark):
                self.assertTrue(any(mark in name for name in names))
        self.assertTrue(any("," in offer for offer in self.column["offer_name"]))

    def test_creation_dates_read_back_as_aware_utc_in_range(self):
        dates = self.column["creation_date"]
        self.assertTrue(all(d.utcoffset().total_seconds() == 0 for d in dates))
        self.assertGreaterEqual(min(dates), datetime(2010, 1, 1, tzinfo=UTC))
        self.assertLess(max(dates), datetime(2027, 1, 1, tzinfo=UTC))
        self.assertGreaterEqual(len({d.year for d in dates}), 15)

    def test_creation_dates_are_stored_as_the_orm_stores_them(self):
        # A datetime the ORM would write must find the raw-inserted row by exact match; on
        # SQLite that fails if the insert kept an offset the ORM never writes.
        record = CorporateParkRecord.objects.order_by("id")[123]
        self.assertTrue(
            CorporateParkRecord.objects.filter(
                id=record.id, creation_date=record.creation_date
            ).exists()
        )
        orm = CorporateParkRecord.objects.create(
            **dict(zip(EXPORT_FIELDS, self.rows[123], strict=True))
        )
        self.assertEqual(
            CorporateParkRecord.objects.filter(creation_date=record.creation_date).count(),
            CorporateParkRecord.objects.filter(creation_date=orm.creation_date).count(),
        )

    def test_stored_rows_equal_the_generated_rows(self):
        self.assertEqual(self.rows, list(seed_data.iter_rows(seed=42, count=5000)))


class SeedDataTests(TestCase):
    def test_reference_list_has_the_58_wilayas_once_each(self):
        names = seed_data.WILAYA_NAMES
        self.assertEqual(len(names), 58)
        self.assertEqual(len(set(names)), 58)
        for name in ("Adrar", "Béjaïa", "Alger", "M'Sila", "Aïn Témouchent", "El Meniaa"):
            self.assertIn(name, names)
        self.assertEqual(names.index("Alger") + 1, 16)  # the official wilaya number

    def test_a_smaller_run_is_a_prefix_of_a_larger_one(self):
        small = list(seed_data.iter_rows(seed=5, count=50))
        self.assertEqual(small, list(seed_data.iter_rows(seed=5, count=300))[:50])

    def test_generation_ignores_the_global_random_state(self):
        random.seed(1)
        state = random.getstate()
        first = list(seed_data.iter_rows(seed=3, count=20))
        self.assertEqual(random.getstate(), state)
        random.seed(999)
        self.assertEqual(list(seed_data.iter_rows(seed=3, count=20)), first)

    def test_rows_follow_the_export_column_order(self):
        row = next(seed_data.iter_rows(count=1))
        self.assertEqual(len(row), len(EXPORT_FIELDS))
        self.assertIsInstance(row[DATE_COLUMN], datetime)
        self.assertIn(row[0], seed_data.WILAYA_NAMES)


class CreateExportUserTests(TestCase):
    def test_prints_a_40_hex_token_alone_on_the_last_line(self):
        output = run("create_export_user", "alice")
        last = output.splitlines()[-1]
        self.assertRegex(last, TOKEN_LINE)
        user = get_user_model().objects.get(username="alice")
        self.assertEqual(Token.objects.get(user=user).key, last)
        self.assertIn("Created", output)

    def test_reuse_keeps_the_same_token(self):
        first = run("create_export_user", "bob").splitlines()[-1]
        output = run("create_export_user", "bob")
        self.assertEqual(output.splitlines()[-1], first)
        self.assertIn("Reused", output)
        self.assertEqual(get_user_model().objects.filter(username="bob").count(), 1)

    def test_existing_user_without_token_gets_one(self):
        get_user_model().objects.create_user("carol")
        last = run("create_export_user", "carol").splitlines()[-1]
        self.assertRegex(last, TOKEN_LINE)

    def test_staff_flag_sets_is_staff(self):
        run("create_export_user", "dora", "--staff")
        self.assertTrue(get_user_model().objects.get(username="dora").is_staff)
        run("create_export_user", "eve")
        self.assertFalse(get_user_model().objects.get(username="eve").is_staff)

    def test_staff_may_view_export_tasks_in_the_admin(self):
        run("create_export_user", "hana", "--staff")
        user = get_user_model().objects.get(username="hana")
        self.assertTrue(user.has_perm("exports.view_exporttask"))
        self.assertFalse(user.has_perm("exports.change_exporttask"))

    def test_reuse_without_staff_keeps_staff(self):
        run("create_export_user", "fred", "--staff")
        run("create_export_user", "fred")
        self.assertTrue(get_user_model().objects.get(username="fred").is_staff)

    def test_reuse_with_staff_promotes(self):
        run("create_export_user", "gina")
        run("create_export_user", "gina", "--staff")
        self.assertTrue(get_user_model().objects.get(username="gina").is_staff)

    def test_bad_names_are_refused(self):
        for bad in ("", "   ", "two words", "slash/name", "x" * 151):
            with self.subTest(name=bad), self.assertRaises(CommandError):
                run("create_export_user", bad)
        self.assertFalse(get_user_model().objects.exists())

    def test_new_user_without_password_cannot_log_in_by_password(self):
        run("create_export_user", "henri")
        self.assertFalse(get_user_model().objects.get(username="henri").has_usable_password())

    def test_password_lets_the_user_log_in(self):
        run("create_export_user", "ines", "--password", "correct horse")
        self.assertIsNotNone(authenticate(username="ines", password="correct horse"))

    def test_reuse_with_password_sets_it_and_keeps_the_token(self):
        first = run("create_export_user", "jamel").splitlines()[-1]
        last = run("create_export_user", "jamel", "--password", "s3cret-pass").splitlines()[-1]
        self.assertEqual(last, first)
        self.assertIsNotNone(authenticate(username="jamel", password="s3cret-pass"))

    def test_weak_password_is_refused(self):
        with self.assertRaisesMessage(CommandError, "--password"):
            run("create_export_user", "karim", "--password", "short")
        self.assertFalse(get_user_model().objects.filter(username="karim").exists())
