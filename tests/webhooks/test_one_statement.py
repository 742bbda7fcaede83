"""A message in one statement (PostgreSQL), against the transaction it replaces."""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.tasks import TaskResultStatus
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from instances.selectors import find_tenant
from tests.factories import ConversationFactory, InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, with_message_id
from webhooks import one_statement, services
from webhooks.leases import locked_lease
from webhooks.models import Conversation, Message
from webhooks.parsing import parse_incoming_message
from webhooks.tasks import process_conversation

pytestmark = pytest.mark.django_db

# Set per row when stored, or by the database.
OWN_VALUES = {"id", "whatsapp_id", "raw_payload", "received_at", "updated_at"}


@pytest.fixture(autouse=True)
def _postgres_only() -> Iterator[None]:
    if connection.vendor != "postgresql":
        pytest.skip("the one statement is PostgreSQL's")
    cache.clear()  # no conversation id remembered from another test
    yield
    cache.clear()


def first_message(message_id: str, chat: str = "5511912345678@s.whatsapp.net") -> Message:
    tenant = find_tenant("acme")
    payload = with_message_id(evolution_payload("text_pn"), message_id)
    payload["data"]["key"]["remoteJid"] = chat
    incoming = parse_incoming_message(payload)
    return services._message(tenant, incoming, payload, reason="")


def store(message: Message) -> int:
    conversation = Conversation(instance_id=message.instance_id, chat_jid=message.chat_jid)
    return one_statement.store_new_chat_message(conversation, message)


def store_known(message: Message, conversation: Conversation) -> None:
    one_statement.store_known_chat_message(conversation.pk, message, timezone.now())


def test_it_stores_what_the_transaction_stores() -> None:
    InstanceConfigFactory(name="acme")
    kept = first_message("IN-A-TRANSACTION")
    with transaction.atomic():
        services._store(kept, None)
    by_transaction = Message.objects.get()
    queued_by_transaction = DBTaskResult.objects.get()

    conversation_id = store(first_message("IN-ONE-STATEMENT"))

    stored = Message.objects.get(whatsapp_id="IN-ONE-STATEMENT")
    assert stored.conversation_id == conversation_id == by_transaction.conversation_id
    assert Conversation.objects.count() == 1
    assert _columns(stored) == _columns(by_transaction)
    assert stored.received_at is not None
    task = DBTaskResult.objects.exclude(id=queued_by_transaction.id).get()
    assert _columns(task, {"id", "enqueued_at"}) == _columns(
        queued_by_transaction, {"id", "enqueued_at"}
    )
    assert task.status == TaskResultStatus.READY
    assert process_conversation.get_result(str(task.id)).args == [conversation_id]


def _columns(row: object, own: set[str] = OWN_VALUES) -> dict[str, object]:
    return {k: v for k, v in vars(row).items() if k not in own and not k.startswith("_")}


def test_a_chat_the_database_knows_keeps_its_conversation() -> None:
    tenant = InstanceConfigFactory(name="acme")
    known = ConversationFactory(instance=tenant, chat_jid="5511912345678@s.whatsapp.net")

    assert store(first_message("M1")) == known.pk
    assert Conversation.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # autocommit, as a webhook stores it
def test_a_duplicate_stores_nothing() -> None:
    InstanceConfigFactory(name="acme")
    store(first_message("SAME", chat="5511900000001@s.whatsapp.net"))

    with pytest.raises(IntegrityError):
        store(first_message("SAME", chat="5511900000002@s.whatsapp.net"))

    assert Conversation.objects.count() == Message.objects.count() == 1
    assert DBTaskResult.objects.count() == 1


def test_a_duplicate_leaves_the_callers_transaction_usable() -> None:
    InstanceConfigFactory(name="acme")
    store(first_message("SAME"))

    with transaction.atomic():
        with pytest.raises(IntegrityError):
            store(first_message("SAME"))
        assert Message.objects.count() == 1  # would raise in a broken transaction


def test_a_known_chat_stores_what_the_transaction_stores() -> None:
    tenant = InstanceConfigFactory(name="acme")
    conversation = ConversationFactory(instance=tenant, chat_jid="5511912345678@s.whatsapp.net")
    kept = first_message("IN-A-TRANSACTION")
    with transaction.atomic():
        services._store(kept, conversation.pk)
    by_transaction = Message.objects.get()
    queued_by_transaction = DBTaskResult.objects.get()

    store_known(first_message("IN-ONE-STATEMENT"), conversation)

    stored = Message.objects.get(whatsapp_id="IN-ONE-STATEMENT")
    assert stored.conversation_id == conversation.pk
    assert _columns(stored) == _columns(by_transaction)
    task = DBTaskResult.objects.exclude(id=queued_by_transaction.id).get()
    assert _columns(task, {"id", "enqueued_at"}) == _columns(
        queued_by_transaction, {"id", "enqueued_at"}
    )


@pytest.mark.parametrize(
    ("owner", "until", "queued"),
    [
        ("", None, True),
        ("worker-1", timedelta(minutes=1), False),  # its holder answers it
        ("worker-1", timedelta(minutes=-1), True),  # its holder died
    ],
)
def test_a_known_chat_gets_a_task_unless_a_worker_holds_it(
    owner: str, until: timedelta | None, queued: bool
) -> None:
    tenant = InstanceConfigFactory(name="acme")
    conversation = ConversationFactory(
        instance=tenant,
        chat_jid="5511912345678@s.whatsapp.net",
        lease_owner=owner,
        leased_until=timezone.now() + until if until else None,
    )

    store_known(first_message("M1"), conversation)

    assert Message.objects.get().conversation_id == conversation.pk
    assert DBTaskResult.objects.exists() == queued


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_in_a_known_chat_stores_nothing() -> None:
    tenant = InstanceConfigFactory(name="acme")
    conversation = ConversationFactory(instance=tenant, chat_jid="5511912345678@s.whatsapp.net")
    store_known(first_message("SAME"), conversation)

    with pytest.raises(IntegrityError):
        store_known(first_message("SAME"), conversation)

    assert Message.objects.count() == DBTaskResult.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_one_statement_for_a_new_chat_and_for_a_known_one() -> None:
    InstanceConfigFactory(name="acme")
    tenant = find_tenant("acme")
    payload = evolution_payload("text_pn")

    with CaptureQueriesContext(connection) as new:
        services.handle_webhook(tenant, with_message_id(payload, "FIRST"))
    with CaptureQueriesContext(connection) as known:
        services.handle_webhook(tenant, with_message_id(payload, "SECOND"))

    [first], [second] = new.captured_queries, known.captured_queries
    assert first["sql"].startswith("WITH ")
    assert "ON CONFLICT" in first["sql"]
    assert second["sql"].startswith("WITH ")
    assert "FOR NO KEY UPDATE" in second["sql"]
    assert Message.objects.filter(conversation=Conversation.objects.get()).count() == 2
    assert DBTaskResult.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_message_stored_while_its_worker_lets_go_gets_a_task() -> None:
    """The worker holds the row lock while it finds nothing pending and lets go: the message
    waits for that lock, then reads the lease as let go, and queues a task."""
    tenant = InstanceConfigFactory(name="acme")
    conversation = ConversationFactory(
        instance=tenant,
        chat_jid="5511912345678@s.whatsapp.net",
        lease_owner="worker-1",
        leased_until=timezone.now() + timedelta(minutes=1),
    )
    locked, storing = threading.Event(), threading.Event()

    def worker_letting_go() -> None:
        try:
            with transaction.atomic():
                locked_lease(conversation.pk)
                locked.set()
                storing.wait(timeout=5)
                time.sleep(0.3)  # the message's statement is waiting on the lock meanwhile
                Conversation.objects.filter(pk=conversation.pk).update(
                    lease_owner="", leased_until=None
                )
        finally:
            connection.close()

    worker = threading.Thread(target=worker_letting_go)
    worker.start()
    assert locked.wait(timeout=5)
    storing.set()
    started = time.monotonic()
    store_known(first_message("M1"), conversation)
    waited = time.monotonic() - started
    worker.join(timeout=5)

    assert waited >= 0.2
    assert DBTaskResult.objects.count() == 1
