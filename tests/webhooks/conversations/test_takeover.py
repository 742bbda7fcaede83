"""Human takeover through the real path: a person replying from the business's phone pauses
the chat; Omnihub's own replies, posted back by Evolution, do not."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fakes import Recorded
from tests.webhooks.chat_payloads import CHAT, from_contact, from_the_phone, jid
from tests.webhooks.conftest import a_worker, answer_all, evolution_payload, post_webhook, running
from webhooks.conversations import pausing
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def sends(evolution) -> list[Recorded]:
    return [r for r in evolution.requests if "/message/sendText/" in r.path]


def test_a_person_replying_from_the_phone_pauses_the_chat(agent, evolution, tenant_at):
    tenant_at(name="acme", human_takeover_minutes=30)
    before = timezone.now()

    answer = post_webhook("acme", from_the_phone("Oi Maria, aqui é a Ana.", "PERSON-1"))

    assert answer["status"] == "ignored"
    assert (
        answer["reason"]
        == "sent by a person on the business's phone: the bot is paused in this chat"
    )
    stored = Message.objects.get()
    assert (stored.status, stored.text) == (Message.Status.IGNORED, "Oi Maria, aqui é a Ana.")
    chat = Conversation.objects.get()
    assert chat.chat_jid == jid(CHAT)
    assert chat.paused_until is not None
    # Counted from when the person wrote, in WhatsApp's whole seconds.
    assert before - timedelta(seconds=1) + timedelta(minutes=30) <= chat.paused_until
    assert chat.paused_until <= timezone.now() + timedelta(minutes=30)
    assert chat.paused_until_resumed is False


def test_the_contacts_messages_during_the_pause_are_stored_paused_and_never_answered(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_the_phone("Oi Maria, aqui é a Ana.", "PERSON-1"))

    answer = post_webhook("acme", from_contact("Obrigada, Ana!", "DURING-1"))
    answer_all()

    assert answer == {
        "status": "ignored",
        "reason": pausing.PAUSED_ON_ARRIVAL,
        "message_id": "DURING-1",
    }
    assert agent.requests == []
    assert sends(evolution) == []
    during = Message.objects.get(whatsapp_id="DURING-1")
    assert during.status == Message.Status.PAUSED
    assert during.text == "Obrigada, Ana!"
    assert Conversation.objects.get().ready_at is None


def test_when_the_pause_ends_only_new_messages_are_answered(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", from_the_phone("Oi Maria, aqui é a Ana.", "PERSON-1"))
    post_webhook("acme", from_contact("Obrigada, Ana!", "DURING-1"))
    # The half hour has passed.
    Conversation.objects.update(paused_until=timezone.now() - timedelta(seconds=1))

    post_webhook("acme", from_contact("Outra dúvida: vocês entregam?", "AFTER-1"))
    answer_all()

    [run] = agent.requests
    assert run.body["message_content"] == "Outra dúvida: vocês entregam?"
    assert len(sends(evolution)) == 1
    statuses = dict(Message.objects.values_list("whatsapp_id", "status"))
    assert statuses == {
        "PERSON-1": Message.Status.IGNORED,
        "DURING-1": Message.Status.PAUSED,
        "AFTER-1": Message.Status.ANSWERED,
    }


def test_each_reply_of_the_person_starts_the_pause_again(agent, evolution, tenant_at):
    tenant_at(name="acme", human_takeover_minutes=30)
    now = time.time()
    post_webhook("acme", from_the_phone("Oi Maria.", "PERSON-1", at=now - 20 * 60))
    first_until = Conversation.objects.get().paused_until

    post_webhook("acme", from_the_phone("Já verifico.", "PERSON-2", at=now))

    until = Conversation.objects.get().paused_until
    assert first_until is not None
    assert until is not None
    assert until - first_until >= timedelta(minutes=19)


def test_a_late_delivery_of_an_older_person_reply_never_shortens_the_pause(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", human_takeover_minutes=30)
    now = time.time()
    post_webhook("acme", from_the_phone("Já verifico.", "PERSON-2", at=now))
    until = Conversation.objects.get().paused_until

    post_webhook("acme", from_the_phone("Oi Maria.", "PERSON-1", at=now - 20 * 60))

    assert Conversation.objects.get().paused_until == until


def test_a_person_reply_older_than_the_takeover_time_does_not_pause(agent, evolution, tenant_at):
    tenant_at(name="acme", human_takeover_minutes=30)

    answer = post_webhook("acme", from_the_phone("Oi Maria.", "PERSON-1", at=time.time() - 31 * 60))
    post_webhook("acme", from_contact("Oi!", "LATER-1"))
    answer_all()

    assert answer["reason"] == "sent by a person on the business's phone, too long ago to pause"
    assert Conversation.objects.get().paused_until is None
    assert len(agent.requests) == 1


def test_with_takeover_off_a_person_reply_never_pauses(agent, evolution, tenant_at):
    tenant_at(name="acme", human_takeover_minutes=0)

    answer = post_webhook("acme", from_the_phone("Oi Maria.", "PERSON-1"))
    post_webhook("acme", from_contact("Oi!", "LATER-1"))
    answer_all()

    assert answer["reason"] == "sent by a person on the business's phone; takeover is off"
    assert Conversation.objects.get().paused_until is None
    assert Message.objects.get(whatsapp_id="LATER-1").status == Message.Status.ANSWERED


def test_a_takeover_pauses_only_its_own_chat(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", from_the_phone("Oi Maria.", "PERSON-1", chat="5511900000001"))

    post_webhook("acme", from_contact("Oi!", "OTHER-1", chat="5511900000002"))
    answer_all()

    assert Message.objects.get(whatsapp_id="OTHER-1").status == Message.Status.ANSWERED


def test_a_group_message_from_the_phone_pauses_nothing(agent, evolution, tenant_at):
    tenant_at(name="acme")
    group = evolution_payload("group_text")
    group["data"]["key"]["fromMe"] = True

    answer = post_webhook("acme", group)

    assert answer["reason"] == "group chats are not handled"
    assert not Conversation.objects.filter(paused_until__isnull=False).exists()


def test_the_echo_of_a_reply_omnihub_sent_does_not_pause_the_chat(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Vocês abrem amanhã?", "ASK-1"))
    answer_all()
    reply = Message.objects.get()
    assert reply.reply_whatsapp_id == "SENT-1"

    # Evolution posts what the account sent, the bot's replies included, after the send.
    answer = post_webhook("acme", from_the_phone(reply.reply_text or "", "SENT-1"))
    post_webhook("acme", from_contact("E no sábado?", "ASK-2"))
    answer_all()

    assert answer["reason"] == "Omnihub's own reply"
    assert Conversation.objects.get().paused_until is None
    assert Message.objects.get(whatsapp_id="ASK-2").status == Message.Status.ANSWERED


def test_an_echo_posted_before_send_text_returned_does_not_pause_the_chat(
    agent, evolution, tenant_at
):
    """Evolution may post the echo of a reply while its sendText call is still open, before
    Omnihub knows the reply's id: this fake Evolution answers sendText only once the echo's
    webhook was answered."""
    tenant_at(name="acme")
    echo_answers: list[dict[str, object]] = []

    def echo_then_answer(request: Recorded) -> tuple[int, object]:
        echo_answers.append(post_webhook("acme", from_the_phone(request.body["text"], "ECHO-1")))
        return 201, {"key": {"id": "ECHO-1", "fromMe": True}, "status": "PENDING"}

    evolution.routes["/message/sendText/"] = echo_then_answer
    post_webhook("acme", from_contact("Vocês abrem amanhã?", "ASK-1"))
    answer_all()

    assert [answer["reason"] for answer in echo_answers] == ["Omnihub's own reply"]
    assert Conversation.objects.get().paused_until is None
    assert Message.objects.get(whatsapp_id="ASK-1").reply_whatsapp_id == "ECHO-1"

    post_webhook("acme", from_contact("E no sábado?", "ASK-2"))
    answer_all()

    assert Message.objects.get(whatsapp_id="ASK-2").status == Message.Status.ANSWERED


def test_the_same_words_typed_by_a_person_after_the_send_window_pause_the_chat(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Vocês abrem amanhã?", "ASK-1"))
    answer_all()
    reply = Message.objects.get()
    Message.objects.update(send_started_at=timezone.now() - timedelta(hours=1))

    answer = post_webhook("acme", from_the_phone(reply.reply_text or "", "PERSON-1"))

    assert answer["reason"].startswith("sent by a person")
    assert Conversation.objects.get().paused_until is not None


def test_a_person_taking_over_while_the_agent_thinks_is_not_talked_over(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda request: thinking.wait(10) and agent.default
    with running(a_worker()) as worker:
        post_webhook("acme", from_contact("Vocês abrem amanhã?", "ASK-1"))
        agent.wait_for(1)  # the agent was asked
        post_webhook("acme", from_the_phone("Oi Maria, aqui é a Ana: abrimos às 8h.", "ANA-1"))
        thinking.set()
        assert worker.idle.wait(10)

    assert sends(evolution) == []
    asked = Message.objects.get(whatsapp_id="ASK-1")
    assert asked.status == Message.Status.PAUSED
    assert asked.ignore_reason == pausing.PAUSED_BEFORE_SEND
    assert asked.reply_text == "Olá! Abrimos às 9h."  # kept, unsent, for the person to read
    assert asked.send_started_at is None
