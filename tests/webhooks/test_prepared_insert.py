from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, NotSupportedError, connection, models, transaction
from django.forms.models import model_to_dict
from django.test.utils import isolate_apps

from tests.factories import ConversationFactory, InstanceConfigFactory, MessageFactory
from webhooks.models import Conversation, Message
from webhooks.prepared_insert import PreparedInsert, PreparedUpsert

pytestmark = pytest.mark.django_db

insert_message = PreparedInsert(Message)


def unsaved_message(whatsapp_id: str, conversation_id: int, instance_id: int) -> Message:
    return Message(
        instance_id=instance_id,
        conversation_id=conversation_id,
        whatsapp_id=whatsapp_id,
        chat_jid="5511912345678@s.whatsapp.net",
        phone="5511912345678",
        kind="image",
        text="a caption",
        sent_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        media_size=123456,
        media_base64="aGVsbG8=",
        raw_payload={"event": "messages.upsert", "data": {"key": {"id": whatsapp_id}}},
        reply_evolution_url="https://evolution.example.com",
        reply_evolution_key="evolution-key-secret",
    )


def test_it_stores_a_row_as_save_would() -> None:
    conversation = ConversationFactory()
    ids = {"conversation_id": conversation.pk, "instance_id": conversation.instance_id}
    unsaved_message("SAVED", **ids).save()
    prepared = unsaved_message("PREPARED", **ids)

    insert_message.insert(prepared)

    saved, stored = (Message.objects.get(whatsapp_id=i) for i in ("SAVED", "PREPARED"))
    different = {"id", "whatsapp_id", "raw_payload", "received_at", "updated_at"}
    assert model_to_dict(stored, exclude=different) == model_to_dict(saved, exclude=different)
    assert stored.raw_payload["data"]["key"]["id"] == "PREPARED"
    assert stored.received_at is not None
    assert stored.updated_at == prepared.updated_at


def test_it_encrypts_what_save_would_encrypt() -> None:
    conversation = ConversationFactory()
    insert_message.insert(unsaved_message("M1", conversation.pk, conversation.instance_id))

    with connection.cursor() as cursor:
        cursor.execute("SELECT reply_evolution_key FROM webhooks_message")
        [(stored,)] = cursor.fetchall()
    assert stored not in ("", "evolution-key-secret")
    assert Message.objects.get().reply_evolution_key == "evolution-key-secret"


def test_a_duplicate_raises_integrity_error_as_save_would() -> None:
    existing = MessageFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_message.insert(
            unsaved_message(existing.whatsapp_id, existing.conversation_id, existing.instance_id)
        )
    assert Message.objects.count() == 1


upsert_conversation = PreparedUpsert(
    Conversation, unique_fields=["instance", "chat_jid"], update_fields=["chat_jid"]
)


def test_an_upsert_returns_the_id_of_the_row_it_inserts() -> None:
    instance = InstanceConfigFactory()
    ConversationFactory.create_batch(2)  # so that no other id is the new row's by chance

    conversation_id = upsert_conversation.upsert(Conversation(instance=instance, chat_jid="a@s"))

    assert conversation_id == Conversation.objects.get(instance=instance, chat_jid="a@s").pk
    assert conversation_id != instance.pk


def test_an_upsert_returns_the_existing_row_and_changes_only_its_update_fields() -> None:
    existing = ConversationFactory(lease_owner="worker-1")
    other_chat = ConversationFactory(instance=existing.instance)

    conversation_id = upsert_conversation.upsert(
        Conversation(instance=existing.instance, chat_jid=existing.chat_jid)
    )

    assert conversation_id == existing.pk
    assert Conversation.objects.count() == 2
    assert Conversation.objects.get(pk=existing.pk).lease_owner == "worker-1"
    assert Conversation.objects.get(pk=other_chat.pk).chat_jid == other_chat.chat_jid


@isolate_apps("webhooks")
def test_it_refuses_a_model_whose_values_are_not_all_parameters() -> None:
    class Counter(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=10)
        count = models.IntegerField(db_default=0)

        class Meta:
            app_label = "webhooks"

    with pytest.raises(NotSupportedError, match="Counter"):
        PreparedInsert(Counter).insert(Counter(name="a"))


def test_an_expression_takes_a_fields_place_and_its_value_is_left_out() -> None:
    conversation = ConversationFactory()
    row = unsaved_message("M1", conversation_id=0, instance_id=conversation.instance_id)
    sql = insert_message.sql(expressions={"conversation_id": str(conversation.pk)})

    with connection.cursor() as cursor:
        cursor.execute(sql, insert_message.values(row, leaving_out=["conversation_id"]))

    assert Message.objects.get().conversation_id == conversation.pk


def test_an_expression_for_a_field_it_does_not_insert_is_refused() -> None:
    with pytest.raises(ValueError, match="no field id"):
        insert_message.sql(expressions={"id": "1"})
