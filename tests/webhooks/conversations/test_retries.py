"""When a failed message is tried again."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import MessageFactory
from webhooks.conversations.retries import next_attempt_at, retry_delay


@pytest.fixture
def real_backoff(settings):
    settings.RETRY_BASE_DELAY = 2.0
    settings.RETRY_MAX_DELAY = 120.0


@pytest.mark.usefixtures("real_backoff")
def test_the_retry_delay_doubles_with_each_attempt_until_its_cap(monkeypatch):
    monkeypatch.setattr("random.uniform", lambda low, high: high)

    ceilings = [retry_delay(attempt) for attempt in range(1, 10)]

    assert ceilings == [2, 4, 8, 16, 32, 64, 120, 120, 120]


@pytest.mark.usefixtures("real_backoff")
def test_the_retry_delay_is_jittered_between_half_its_ceiling_and_its_ceiling():
    for attempt, ceiling in [(1, 2), (3, 8), (6, 64), (9, 120), (30, 120)]:
        delays = [retry_delay(attempt) for _ in range(200)]

        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), attempt
        assert len(set(delays)) > 1  # jittered, so retries do not arrive together
        assert max(delays) - min(delays) > ceiling / 10


def test_the_retry_delay_follows_the_settings(settings):
    settings.RETRY_BASE_DELAY = 0.5
    settings.RETRY_MAX_DELAY = 3.0

    assert 0.25 <= retry_delay(1) <= 0.5
    assert 1.0 <= retry_delay(3) <= 2.0
    assert 1.5 <= retry_delay(10) <= 3.0


@pytest.mark.django_db
@pytest.mark.usefixtures("real_backoff")
def test_retries_go_on_for_the_window_after_arrival_however_many_attempts(settings):
    settings.RETRY_WINDOW_SECONDS = 1800
    now = timezone.now()
    message = MessageFactory.create(attempts=40)
    message.received_at = now - timedelta(minutes=20)

    assert next_attempt_at(message, now) is not None
    message.received_at = now - timedelta(minutes=29, seconds=59)
    assert next_attempt_at(message, now) is None


@pytest.mark.django_db
def test_a_persons_retry_opens_a_new_window(settings):
    settings.RETRY_WINDOW_SECONDS = 60
    now = timezone.now()
    message = MessageFactory.create(attempts=3)
    message.received_at = now - timedelta(hours=2)
    assert next_attempt_at(message, now) is None

    message.retried_at = now
    assert next_attempt_at(message, now) is not None
