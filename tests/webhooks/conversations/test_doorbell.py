"""The doorbells that wake SQLite's workers: every one of the database's is rung after a
commit that makes a chat ready, and a worker that died leaves none behind."""

import socket
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.factories import ConversationFactory, InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, post_webhook
from webhooks.conversations import doorbell, leases

pytestmark = pytest.mark.django_db(transaction=True)
sqlite_only = pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL has NOTIFY")


def rang(bell: socket.socket | None, timeout: float = 5.0) -> bool:
    assert bell is not None, "Unix datagram sockets are available here"
    bell.settimeout(timeout)
    try:
        bell.recv(16)
    except TimeoutError:
        return False
    return True


def test_a_ring_reaches_every_doorbell_of_the_database():
    with doorbell.doorbell() as first, doorbell.doorbell() as second:
        doorbell.ring()

        assert rang(first)
        assert rang(second)


@sqlite_only
def test_a_stored_message_to_answer_rings_once_committed():
    InstanceConfigFactory.create(name="acme")
    with doorbell.doorbell() as bell:
        post_webhook("acme", evolution_payload("text_pn"))

        assert rang(bell)


@sqlite_only
def test_a_chat_made_ready_in_a_transaction_rolled_back_rings_nothing():
    chat = ConversationFactory.create()
    with doorbell.doorbell() as bell:
        with transaction.atomic():
            leases.mark_ready(chat.pk, now=timezone.now())
            transaction.set_rollback(True)  # as when the message could not be stored

        assert not rang(bell, timeout=0.3)


def test_the_doorbell_of_a_worker_that_died_is_taken_away_when_rung():
    with doorbell.doorbell() as bell:
        assert bell is not None
        left = Path(bell.getsockname())
        bell.close()  # killed: its socket file stays
        assert left.exists()

        doorbell.ring()

        assert not left.exists()
