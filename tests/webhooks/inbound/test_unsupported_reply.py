"""A message kind the agent cannot take gets the tenant's unsupported_reply, when it has one."""

import pytest

from tests.webhooks.chat_payloads import sticker_from
from tests.webhooks.conftest import answer_all, post_webhook
from webhooks.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

SORRY = "Desculpe, só entendo texto, áudio e imagens."


def test_a_sticker_gets_the_unsupported_reply_without_asking_the_agent(agent, evolution, tenant_at):
    tenant_at(name="acme", unsupported_reply=SORRY)

    answer = post_webhook("acme", sticker_from("STICKER-1"))
    answer_all()

    assert answer["status"] == "queued"
    assert agent.requests == []
    [sent] = evolution.requests
    assert sent.body == {"number": "5511912345678", "text": SORRY}
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.canned_reply == Message.CannedReply.UNSUPPORTED
    assert message.ignore_reason == "unsupported message type: sticker"
    assert message.reply_whatsapp_id == "SENT-1"
    assert message.media_base64 == ""


def test_a_message_of_an_unknown_kind_gets_it_too(agent, evolution, tenant_at):
    tenant_at(name="acme", unsupported_reply=SORRY)
    payload = sticker_from("POLL-1")
    payload["data"]["message"] = {"pollCreationMessageV3": {"name": "Pizza?"}}
    payload["data"]["messageType"] = "pollCreationMessageV3"

    post_webhook("acme", payload)
    answer_all()

    assert [s.body["text"] for s in evolution.requests] == [SORRY]
    assert Message.objects.get().kind == "unsupported"


def test_without_an_unsupported_reply_a_sticker_is_ignored_as_before(agent, evolution, tenant_at):
    tenant_at(name="acme", unsupported_reply="")

    answer = post_webhook("acme", sticker_from("STICKER-1"))
    answer_all()

    assert answer["reason"] == "unsupported message type: sticker"
    assert evolution.requests == []
    assert Message.objects.get().status == Message.Status.IGNORED


def test_the_unsupported_reply_is_retried_like_any_reply(agent, evolution, tenant_at):
    tenant_at(name="acme", unsupported_reply=SORRY)
    evolution.script = [(500, {"error": "boom"})]

    post_webhook("acme", sticker_from("STICKER-1"))
    answer_all()

    assert [s.body["text"] for s in evolution.requests if "sendText" in s.path] == [SORRY, SORRY]
    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.ANSWERED, 2)
