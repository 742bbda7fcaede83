"""A chat's first message in one statement (PostgreSQL), against the transaction it replaces."""

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.tasks import TaskResultStatus
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from instances.selectors import find_tenant
from tests.factories import ConversationFactory, InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, with_message_id
from webhooks import new_chat, services
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
    return services._message(tenant, None, incoming, payload, reason="")


def store(message: Message) -> int:
    conversation = Conversation(instance_id=message.instance_id, chat_jid=message.chat_jid)
    return new_chat.store_first_message(conversation, message)


def test_it_stores_what_the_transaction_stores() -> None:
    InstanceConfigFactory(name="acme")
    kept = first_message("IN-A-TRANSACTION")
    incoming = parse_incoming_message(kept.raw_payload)
    with transaction.atomic():
        services._store(find_tenant("acme"), None, incoming, kept.raw_payload, reason="")
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


@pytest.mark.django_db(transaction=True)
def test_a_webhook_for_a_new_chat_is_one_statement_and_a_known_one_is_not() -> None:
    InstanceConfigFactory(name="acme")
    tenant = find_tenant("acme")
    payload = evolution_payload("text_pn")

    with CaptureQueriesContext(connection) as new:
        services.handle_webhook(tenant, with_message_id(payload, "FIRST"))
    with CaptureQueriesContext(connection) as known:
        services.handle_webhook(tenant, with_message_id(payload, "SECOND"))

    assert [query["sql"][:5] for query in new.captured_queries] == ["WITH "]
    assert len(known.captured_queries) > 1  # its worker's lease is looked at first
    assert Message.objects.filter(conversation=Conversation.objects.get()).count() == 2
    assert DBTaskResult.objects.count() == 2
