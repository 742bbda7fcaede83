"""Wrong API keys and admin passwords lock the client's address out, after a few (django-axes)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.db.models import F
from django.test import Client

from tests.conftest import API_KEY

pytestmark = pytest.mark.django_db

LIMIT = 3
ADMIN_PASSWORD = "the-right-password-4321"


@pytest.fixture(autouse=True)
def _a_low_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def get_instances(key: str, address: str = "127.0.0.1") -> int:
    client = Client(headers={"X-API-Key": key}, REMOTE_ADDR=address)
    return client.get("/api/v1/instances").status_code


def log_in(password: str) -> int:
    credentials = {"username": "admin", "password": password}
    return Client().post("/admin/login/?next=/admin/", credentials).status_code


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("admin", password=ADMIN_PASSWORD)


def test_the_wrong_key_that_reaches_the_limit_locks_the_address_out():
    statuses = [get_instances("wrong") for _ in range(LIMIT)]

    assert statuses == [401] * (LIMIT - 1) + [429]


def test_a_locked_out_address_is_refused_even_the_right_key():
    for _ in range(LIMIT):
        get_instances("wrong")

    response = Client(headers={"X-API-Key": API_KEY}).get("/api/v1/instances")

    assert response.status_code == 429
    assert "Too many" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0


def test_fewer_wrong_keys_than_the_limit_lock_nobody_out():
    for _ in range(LIMIT - 1):
        get_instances("wrong")

    assert get_instances(API_KEY) == 200


def test_other_addresses_are_not_locked_out():
    for _ in range(LIMIT):
        get_instances("wrong")

    assert get_instances(API_KEY, address="10.0.0.7") == 200


def test_a_request_without_a_key_is_not_a_guess():
    for _ in range(LIMIT + 1):
        assert Client().get("/api/v1/instances").status_code == 401

    assert get_instances(API_KEY) == 200


def test_the_lockout_ends_after_the_cool_off(settings):
    for _ in range(LIMIT):
        get_instances("wrong")
    # As if the failures were that long ago.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)

    assert get_instances(API_KEY) == 200


def test_wrong_admin_passwords_lock_the_address_out_of_the_admin(admin_user):
    statuses = [log_in("wrong") for _ in range(LIMIT)]

    assert statuses == [200] * (LIMIT - 1) + [429]  # 200: the form again, with its error
    assert log_in(ADMIN_PASSWORD) == 429


def test_the_right_admin_password_logs_in_below_the_limit(admin_user):
    log_in("wrong")

    assert log_in(ADMIN_PASSWORD) == 302


def test_wrong_passwords_and_wrong_keys_from_one_address_add_up(admin_user):
    log_in("wrong")
    log_in("wrong")
    get_instances("wrong")

    assert get_instances(API_KEY) == 429
    assert log_in(ADMIN_PASSWORD) == 429


def test_the_cool_off_is_counted_from_the_last_failure(settings):
    for _ in range(LIMIT):
        get_instances("wrong")
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    )

    assert get_instances(API_KEY) == 429
