"""The wake-up listener rings when a conversation becomes ready, and only then."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, post_webhook
from webhooks.conversations import doorbell
from webhooks.worker import wakeup

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def listening() -> Iterator[threading.Semaphore]:
    """Released once per ring, by a listener in a thread; it starts by forgetting old rings."""
    rung = threading.Semaphore(0)
    stopping = threading.Event()
    listener = threading.Thread(target=wakeup.listen, args=(rung.release, stopping))
    listener.start()
    while rung.acquire(timeout=0.3):
        pass
    try:
        yield rung
    finally:
        stopping.set()
        doorbell.ring()  # a listener waiting on its doorbell sees `stopping` at once
        listener.join(timeout=5)


@pytest.fixture
def rings() -> Iterator[threading.Semaphore]:
    with listening() as rung:
        yield rung


def test_it_rings_when_a_message_to_answer_is_stored(rings):
    InstanceConfigFactory.create(name="acme")

    post_webhook("acme", evolution_payload("text_pn"))

    assert rings.acquire(timeout=5)


def test_a_message_that_is_ignored_does_not_ring(rings):
    InstanceConfigFactory.create(name="acme")

    post_webhook("acme", evolution_payload("sticker"))

    assert not rings.acquire(timeout=0.5)


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL has NOTIFY")
def test_on_sqlite_a_stored_message_rings_without_waiting_for_the_commit_watch(monkeypatch):
    InstanceConfigFactory.create(name="acme")
    # Commits are otherwise looked at only every minute: only the doorbell can ring in time.
    monkeypatch.setattr(wakeup, "SQLITE_WATCH_INTERVAL", 60.0)
    with listening() as rung:
        post_webhook("acme", evolution_payload("text_pn"))

        assert rung.acquire(timeout=5)
