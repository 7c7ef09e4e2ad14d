"""Small builders shared by the tests: users with tokens, and records with chosen values."""

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from exports.models import CorporateParkRecord

BASE_DATE = datetime(2024, 3, 10, 8, 30, tzinfo=UTC)


def make_user(username: str = "analyst", *, staff: bool = False):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username,
                                                is_staff=staff)
    Token.objects.create(user=user)
    return user


def token_for(user) -> str:
    return Token.objects.get(user=user).key


def record_values(i: int, **overrides) -> dict:
    values = {
        "dot": "Adrar", "actel_code": f"{i % 1000:05d}", "customer_l1_code": "001",
        "customer_l1_desc": "Grands Comptes", "customer_l2_code": f"{i % 7:03d}",
        "customer_l2_desc": "Administration", "customer_l3_code": f"{i % 11:04d}",
        "customer_l3_desc": "Ministère", "telecom_type": "Fixe", "offer_type": "Voix",
        "offer_name": "Idoom Fibre, 100 Mbps", "subscriber_status": "Actif",
        "creation_date": BASE_DATE + timedelta(hours=i), "state": "Active",
        "customer_full_name": f"Entreprise n°{i}",
    }
    values.update(overrides)
    return values


def make_records(count: int, start: int = 0, **overrides) -> list[CorporateParkRecord]:
    return CorporateParkRecord.objects.bulk_create(
        [CorporateParkRecord(**record_values(i, **overrides)) for i in range(start, start + count)],
        batch_size=1000)
