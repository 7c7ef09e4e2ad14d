"""Filters: every accepted form, every bad value, and the queryset they make."""

from datetime import UTC, datetime

import pytest
from django.http import QueryDict
from django.test import TestCase, override_settings

from exports.exceptions import InvalidParameters
from exports.filters import ExportFilters, parse_export_request
from exports.tests.factories import make_records


def parse(query: str):
    return parse_export_request(QueryDict(query))


def errors_of(query: str) -> dict:
    with pytest.raises(InvalidParameters) as caught:
        parse(query)
    return caught.value.errors


class FormatTests:
    def test_defaults_to_excel(self):
        assert parse("").export_format == "excel"

    def test_accepts_each_format_case_insensitively(self):
        assert [parse(f"export_format={f}").export_format for f in ("CSV", "pdf", "Excel")] == [
            "csv", "pdf", "excel"]

    def test_empty_format_is_an_error(self):
        assert "export_format" in errors_of("export_format=")

    def test_unknown_format_is_named(self):
        assert "xml" in errors_of("export_format=xml")["export_format"][0]


class ListFilterTests:
    def test_dot_forms_normalise_to_the_same_filters(self):
        forms = ["dot=Oran&dot=Adrar", "dot[]=Adrar&dot[]=Oran", "dot=Oran,Adrar",
                 "dot=Adrar&dot[]=Oran&dot=Adrar", "dot= Adrar , Oran "]
        assert {parse(q).filters.dot for q in forms} == {("Adrar", "Oran")}

    def test_fingerprint_ignores_form_and_order(self):
        a = parse("dot[]=Oran&dot[]=Adrar&limit=10").filters.fingerprint("csv")
        b = parse("limit=10&dot=Adrar,Oran").filters.fingerprint("csv")
        assert a == b

    def test_fingerprint_differs_by_format_and_limit(self):
        f = parse("dot=Adrar").filters
        g = parse("dot=Adrar&limit=5").filters
        assert len({f.fingerprint("csv"), f.fingerprint("pdf"), g.fingerprint("csv")}) == 3

    def test_free_text_values_are_not_split_on_commas(self):
        assert parse("offer_name=Idoom Fibre, 100 Mbps").filters.offer_name == (
            "Idoom Fibre, 100 Mbps",)

    def test_value_longer_than_200_characters_is_an_error(self):
        assert "dot" in errors_of("dot=" + "x" * 201)

    def test_empty_values_are_dropped(self):
        assert parse("dot=&dot[]=,Oran,").filters.dot == ("Oran",)

    def test_round_trip_through_stored_dict(self):
        filters = parse("dot=Oran&exclude_dot=Alger&year=2024&month=2&limit=7").filters
        assert ExportFilters.from_dict(filters.as_dict()) == filters


class NumberTests:
    @pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "5000001"])
    def test_bad_limit_is_named(self, value):
        assert "limit" in errors_of(f"limit={value}")

    def test_limit_above_export_max_rows_is_refused(self):
        with override_settings(EXPORT_MAX_ROWS=100):
            assert "limit" in errors_of("limit=101")
            assert parse("limit=100").filters.limit == 100

    def test_month_needs_year(self):
        assert "year" in errors_of("month=3")["month"][0]

    def test_month_13_is_refused(self):
        assert "month" in errors_of("year=2024&month=13")

    def test_all_errors_reported_at_once(self):
        assert set(errors_of("export_format=doc&limit=x&month=0")) == {
            "export_format", "limit", "month"}

    def test_json_body_lists_are_accepted(self):
        parsed = parse_export_request({"dot": ["Oran", "Adrar"], "limit": 3})
        assert parsed.filters.dot == ("Adrar", "Oran") and parsed.filters.limit == 3


class QuerysetTests(TestCase):
    def test_dot_and_exclude_dot_select_the_right_rows(self):
        make_records(3, dot="Adrar")
        make_records(2, start=3, dot="Oran")
        make_records(4, start=5, dot="Alger")
        assert parse("dot=Adrar,Oran").filters.queryset().count() == 5
        assert parse("exclude_dot[]=Alger&exclude_dot[]=Oran").filters.queryset().count() == 3

    def test_codes_match_l2_and_l3(self):
        make_records(1, customer_l2_code="007", customer_l3_code="0042")
        make_records(1, start=1, customer_l2_code="008", customer_l3_code="0042")
        assert parse("customer_l2=007").filters.queryset().count() == 1
        assert parse("customer_l3=0042").filters.queryset().count() == 2

    def test_year_and_month_are_read_in_local_time(self):
        # 2023-12-31 23:30 UTC is 2024-01-01 00:30 in Algiers (UTC+1).
        make_records(1, creation_date=datetime(2023, 12, 31, 23, 30, tzinfo=UTC))
        make_records(1, start=1, creation_date=datetime(2023, 12, 31, 22, 30, tzinfo=UTC))
        assert parse("year=2024").filters.queryset().count() == 1
        assert parse("year=2024&month=1").filters.queryset().count() == 1
        assert parse("year=2023&month=12").filters.queryset().count() == 1
