"""Suite-wide fixtures: the export supervisor stops before the test database is dropped."""

import pytest

from exports import pool


@pytest.fixture(scope="session", autouse=True)
def export_supervisor_stops_first(django_db_setup, django_db_blocker):
    """The supervisor thread polls the database; it must let go before teardown drops it."""
    yield
    with django_db_blocker.unblock():
        pool.stop(grace=0)
