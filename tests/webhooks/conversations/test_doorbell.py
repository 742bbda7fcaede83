"""The doorbells that wake SQLite's workers: every one of the database's is rung after a
commit that makes a chat ready, a worker that died leaves none behind, and a directory that is
not this user's alone is left as it is."""

import shutil
import socket
from collections.abc import Iterator
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


def test_only_a_socket_that_refuses_a_ring_is_taken_away():
    with doorbell.doorbell() as bell:
        assert bell is not None
        stranger = doorbell.directory() / "not-a-doorbell"
        stranger.write_text("kept")

        doorbell.ring()

        assert stranger.read_text() == "kept"
        stranger.unlink()


@pytest.fixture
def squatted(tmp_path: Path) -> Iterator[Path]:
    """The doorbells' directory replaced by a link to another one, which holds a file."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_text("kept")
    place = doorbell.directory()
    shutil.rmtree(place, ignore_errors=True)
    place.symlink_to(target)
    try:
        yield target
    finally:
        place.unlink()


def test_a_link_in_place_of_the_directory_is_neither_trusted_nor_tidied(squatted):
    doorbell.ring()

    assert (squatted / "precious").read_text() == "kept"
    with doorbell.doorbell() as bell:
        assert bell is None


def test_a_directory_others_may_write_to_is_neither_trusted_nor_tidied():
    place = doorbell.directory()
    place.mkdir(mode=0o700, exist_ok=True)
    place.chmod(0o777)
    try:
        (place / "precious").write_text("kept")

        doorbell.ring()

        assert (place / "precious").read_text() == "kept"
        with doorbell.doorbell() as bell:
            assert bell is None
    finally:
        (place / "precious").unlink(missing_ok=True)
        place.chmod(0o700)
