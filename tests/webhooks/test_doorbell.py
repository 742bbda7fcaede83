import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, post_json
from webhooks import doorbell
from webhooks.tasks import process_conversation, queue_conversation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rings() -> Iterator[threading.Semaphore]:
    """Released once per ring, by a doorbell listening in a thread."""
    rung = threading.Semaphore(0)
    stopping = threading.Event()
    listener = threading.Thread(target=doorbell.listen, args=(rung.release, stopping))
    listener.start()
    try:
        yield rung
    finally:
        stopping.set()
        listener.join(timeout=5)


def _settle(rings: threading.Semaphore) -> None:
    """Let the listener start, and forget any ring from before."""
    while rings.acquire(timeout=0.3):
        pass


def test_it_rings_when_a_message_is_queued(rings):
    InstanceConfigFactory(name="acme")
    _settle(rings)

    post_json("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert rings.acquire(timeout=2)


def test_a_commit_that_queues_nothing_does_not_ring(rings):
    _settle(rings)

    InstanceConfigFactory(name="acme")
    post_json("/webhook/evolution/acme", evolution_payload("event_connection_update"))

    assert not rings.acquire(timeout=0.5)


def test_a_task_queued_by_django_tasks_db_itself_rings(rings: threading.Semaphore) -> None:
    _settle(rings)

    process_conversation.enqueue(1)

    assert rings.acquire(timeout=2)


def test_a_rolled_back_task_does_not_ring(rings: threading.Semaphore) -> None:
    _settle(rings)

    with pytest.raises(RuntimeError):
        _queue_then_fail()

    assert not rings.acquire(timeout=0.5)


def _queue_then_fail() -> None:
    with transaction.atomic():
        queue_conversation(1)
        raise RuntimeError("the webhook failed after queuing")


def test_a_task_deferred_to_later_does_not_ring_on_postgres(
    rings: threading.Semaphore,
) -> None:
    # SQLite's watcher rings for any ready task, deferred or not: its loops then find nothing.
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's trigger tells deferred tasks apart")
    _settle(rings)

    queue_conversation(1, run_after=timezone.now() + timedelta(minutes=5))
    assert not rings.acquire(timeout=0.5)

    queue_conversation(1)
    assert rings.acquire(timeout=2)
