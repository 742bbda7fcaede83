"""Reading conversations: their state in the list, and their thread as a person reads it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.factories import ConversationFactory, InstanceConfigFactory, MessageFactory
from webhooks.models import Conversation, Message
from webhooks.selectors import (
    ConversationState,
    conversation_thread,
    conversations,
    phone_search_digits,
)

pytestmark = pytest.mark.django_db

CHAT = "5511912345678@s.whatsapp.net"
Status = Message.Status


def said(conversation_id: int, **options) -> list[tuple[str, str]]:
    thread = conversation_thread(conversation_id, **options)
    return [(entry.side, entry.text) for entry in thread.entries]


def test_a_thread_reads_oldest_first_each_message_followed_by_what_became_of_it():
    tenant = InstanceConfigFactory.create()
    at = datetime(2026, 12, 1, 18, 33, 10, tzinfo=UTC)
    chat = {"instance": tenant, "chat_jid": CHAT}
    first = MessageFactory.create(
        **chat, text="Oi", status=Status.ANSWERED, reply_text="Olá! Em que posso ajudar?"
    )
    MessageFactory.create(**chat, text="", kind="sticker", status=Status.IGNORED,
                          ignore_reason="unsupported message type: sticker")  # fmt: skip
    MessageFactory.create(**chat, text="Valeu", status=Status.ANSWERED, reply_text="")
    MessageFactory.create(**chat, text="E o preço?", status=Status.FAILED,
                          last_error="the agent answered 401")  # fmt: skip
    MessageFactory.create(**chat, text="Oi?", status=Status.FAILED, reply_text="R$ 10",
                          last_error="sending the reply failed: 400")  # fmt: skip
    MessageFactory.create(**chat, text="Alô", status=Status.RETRYING, next_attempt_at=at,
                          last_error="the agent answered 503")  # fmt: skip
    MessageFactory.create(**chat, text="Tem alguém?")

    assert said(first.conversation_id) == [
        ("customer", "Oi"),
        ("agent", "Olá! Em que posso ajudar?"),
        ("customer", "[sticker]"),
        ("note", "Ignored: unsupported message type: sticker."),
        ("customer", "Valeu"),
        ("note", "The agent had nothing to send."),
        ("customer", "E o preço?"),
        ("note", "Failed: the agent answered 401"),
        ("customer", "Oi?"),
        ("note", "The reply was never sent: sending the reply failed: 400"),
        ("customer", "Alô"),
        ("note", "Next try at 2026-12-01 18:33:10. the agent answered 503"),
        ("customer", "Tem alguém?"),
        ("note", "Waiting for a worker."),
    ]


def test_a_reply_evolution_echoed_back_is_shown_once_as_the_agents():
    tenant = InstanceConfigFactory.create()
    asked = MessageFactory.create(
        instance=tenant, chat_jid=CHAT, text="Oi", status=Status.ANSWERED, reply_text="Olá!",
        reply_whatsapp_id="BAE5F00D",
    )  # fmt: skip
    MessageFactory.create(
        instance=tenant, chat_jid=CHAT, whatsapp_id="BAE5F00D", text="Olá!",
        status=Status.IGNORED, ignore_reason="sent by this WhatsApp account",
    )  # fmt: skip

    assert said(asked.conversation_id) == [("customer", "Oi"), ("agent", "Olá!")]


def test_a_long_thread_shows_its_latest_messages_and_says_there_are_earlier_ones():
    tenant = InstanceConfigFactory.create()
    for n in range(5):
        message = MessageFactory.create(instance=tenant, chat_jid=CHAT, text=f"#{n}")
    conversation_id = message.conversation_id

    thread = conversation_thread(conversation_id, limit=2)

    assert [e.text for e in thread.entries if e.side == "customer"] == ["#3", "#4"]
    assert thread.earlier_messages is True
    assert conversation_thread(conversation_id, limit=5).earlier_messages is False


def test_media_is_named_in_the_thread_with_its_caption():
    message = MessageFactory.create(
        kind="document", media_file_name="contrato.pdf", text="Segue o contrato"
    )

    [customer, _] = conversation_thread(message.conversation_id).entries

    assert customer.text == "[document: contrato.pdf] Segue o contrato"


def test_each_conversation_has_its_state():
    now = timezone.now()
    answering = ConversationFactory.create(
        ready_at=now, lease_owner="worker-1", leased_until=now + timedelta(minutes=1)
    )
    ready = ConversationFactory.create(ready_at=now - timedelta(seconds=1))
    expired = ConversationFactory.create(
        ready_at=now, lease_owner="worker-2", leased_until=now - timedelta(seconds=1)
    )
    waiting = ConversationFactory.create(ready_at=now + timedelta(minutes=5))
    idle = ConversationFactory.create()

    states = {conversation.pk: conversation.state for conversation in conversations(now)}

    assert states == {
        answering.pk: ConversationState.ANSWERING,
        ready.pk: ConversationState.READY,
        expired.pk: ConversationState.READY,  # its worker died: another may take it
        waiting.pk: ConversationState.WAITING,
        idle.pk: ConversationState.IDLE,
    }


def test_a_conversation_is_listed_with_its_contact_name_and_its_last_text():
    tenant = InstanceConfigFactory.create()
    MessageFactory.create(instance=tenant, chat_jid=CHAT, push_name="Maria", text="Oi")
    MessageFactory.create(instance=tenant, chat_jid=CHAT, push_name="", text="Tem entrega?")
    Conversation.objects.update(contact_name="Maria C.")  # kept by intake

    [listed] = conversations(timezone.now())

    assert (listed.contact_name, listed.last_text) == ("Maria C.", "Tem entrega?")


def test_the_most_recently_active_conversations_come_first():
    now = timezone.now()
    old = ConversationFactory.create(last_message_at=now - timedelta(days=1))
    never = ConversationFactory.create()
    new = ConversationFactory.create(last_message_at=now)

    assert list(conversations(now).values_list("pk", flat=True)) == [new.pk, old.pk, never.pk]


@pytest.mark.parametrize(
    ("term", "digits"),
    [
        ("+55 (11) 91234-5678", "5511912345678"),
        ("91234", "91234"),
        ("Maria", ""),
        ("plano 2", ""),
        ("+", ""),
    ],
)
def test_a_search_term_written_as_a_phone_number_searches_its_digits(term, digits):
    assert phone_search_digits(term) == digits
