"""A person pausing and resuming the bot in a chat, through the services the admin, the API
and the CLI call, with the real webhook → worker → fakes path around them."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import ConversationFactory
from tests.webhooks.chat_payloads import from_contact, from_the_phone, sticker_from
from tests.webhooks.conftest import answer_all, post_webhook
from webhooks.conversations import pausing
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def chat() -> Conversation:
    return Conversation.objects.get()


def test_a_chat_paused_for_some_minutes_is_paused_until_then(tenant_at):
    conversation = ConversationFactory.create(instance=tenant_at(name="acme"))
    before = timezone.now()

    pausing.pause_conversation(conversation, 15)

    conversation.refresh_from_db()
    assert conversation.paused_until is not None
    assert before + timedelta(minutes=15) <= conversation.paused_until
    assert conversation.paused_until <= timezone.now() + timedelta(minutes=15)
    assert conversation.paused_until_resumed is False
    assert pausing.is_paused(conversation.pk, now=timezone.now())
    assert not pausing.is_paused(conversation.pk, now=conversation.paused_until)


def test_a_chat_paused_until_resumed_stays_paused_until_resumed(tenant_at):
    conversation = ConversationFactory.create(instance=tenant_at(name="acme"))

    pausing.pause_conversation(conversation, None)

    assert pausing.is_paused(conversation.pk, now=timezone.now() + timedelta(days=365))
    pausing.resume_conversation(conversation)
    assert not pausing.is_paused(conversation.pk, now=timezone.now())
    conversation.refresh_from_db()
    assert (conversation.paused_until, conversation.paused_until_resumed) == (None, False)


@pytest.mark.parametrize("minutes", [0, -5, pausing.MAX_PAUSE_MINUTES + 1])
def test_a_pause_of_no_time_or_too_long_is_refused(tenant_at, minutes):
    conversation = ConversationFactory.create(instance=tenant_at(name="acme"))

    with pytest.raises(ValidationError) as refused:
        pausing.pause_conversation(conversation, minutes)

    assert "minutes" in refused.value.message_dict
    assert not pausing.is_paused(conversation.pk, now=timezone.now())


def test_a_takeover_keeps_a_pause_until_resumed(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "ASK-1"))
    answer_all()
    pausing.pause_conversation(chat(), None)

    post_webhook("acme", from_the_phone("Oi Maria.", "PERSON-1"))

    assert chat().paused_until_resumed is True
    assert pausing.is_paused(chat().pk, now=timezone.now() + timedelta(days=1))


def test_a_paused_chat_is_not_answered_and_a_resumed_one_answers_only_what_comes_next(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "ASK-1"))
    answer_all()
    pausing.pause_conversation(chat(), None)

    post_webhook("acme", from_contact("Alguém aí?", "DURING-1"))
    answer_all()
    pausing.resume_conversation(chat())
    post_webhook("acme", from_contact("E agora?", "AFTER-1"))
    answer_all()

    assert [r.body["message_content"] for r in agent.requests] == ["Oi!", "E agora?"]
    assert Message.objects.get(whatsapp_id="DURING-1").status == Message.Status.PAUSED
    assert Message.objects.get(whatsapp_id="AFTER-1").status == Message.Status.ANSWERED


def test_messages_waiting_for_a_worker_when_the_chat_is_paused_are_never_answered(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "WAITING-1"))
    post_webhook("acme", from_contact("Vocês abrem amanhã?", "WAITING-2"))

    pausing.pause_conversation(chat(), 30)
    answer_all()

    assert agent.requests == []
    for message in Message.objects.all():
        assert message.status == Message.Status.PAUSED
        assert message.ignore_reason == pausing.PAUSED_BEFORE_ANSWER
    assert chat().ready_at is None
    assert chat().lease_owner == ""


def test_a_message_waiting_for_its_retry_when_the_chat_is_paused_is_not_retried(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "ASK-1"))
    # As after a failed attempt: its retry is due in a while.
    Message.objects.update(
        status=Message.Status.RETRYING, next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    pausing.pause_conversation(chat(), 30)
    answer_all()

    assert agent.requests == []
    message = Message.objects.get()
    assert (message.status, message.next_attempt_at) == (Message.Status.PAUSED, None)


def test_a_paused_chat_gets_no_canned_reply_either(agent, evolution, tenant_at):
    tenant_at(name="acme", unsupported_reply="Só texto.", reset_keyword="#reset")
    post_webhook("acme", from_contact("Oi!", "ASK-1"))
    pausing.pause_conversation(chat(), None)

    post_webhook("acme", sticker_from("STICKER-1"))
    post_webhook("acme", from_contact("#reset", "RESET-1"))
    answer_all()

    assert evolution.requests == []
    assert chat().session_generation == 0
    assert Message.objects.filter(status=Message.Status.PAUSED).count() == 3
