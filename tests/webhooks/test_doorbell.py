import threading
from collections.abc import Iterator

import pytest

from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, post_json
from webhooks import doorbell

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
