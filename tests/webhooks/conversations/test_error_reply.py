"""Never silent, through the real path: a message that ends failed sends the tenant's error
reply once, through the same send path and retries as any reply."""

import threading
from datetime import timedelta

import pytest
from django.db.models import F

from tests.fakes import Recorded, sends
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook, text_in_chat
from webhooks.conversations.retries import retry_message
from webhooks.models import Message, ReplyPart

pytestmark = pytest.mark.django_db(transaction=True)

SORRY = "Desculpe, não consegui responder agora. Tente de novo em instantes."


def sent_texts(evolution) -> list[str]:
    return [r.body["text"] for r in sends(evolution)]


def test_a_message_that_fails_at_once_sends_the_error_reply_and_stays_failed(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", error_reply=SORRY)
    agent.default = (401, {"detail": "bad key"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) == 1
    [sent] = sends(evolution)
    assert sent.body == {"number": "5511912345678", "text": SORRY}
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "401" in message.last_error
    assert message.notice_due_at is None
    [notice] = message.parts.all()
    assert (notice.kind, notice.text, notice.whatsapp_id) == (
        ReplyPart.Kind.ERROR_REPLY,
        SORRY,
        "SENT-1",
    )
    assert notice.sent_at is not None


def test_a_message_whose_retries_run_out_sends_the_error_reply_once(
    agent, evolution, tenant_at, settings
):
    settings.RETRY_WINDOW_SECONDS = 1.0  # room for a second try on a busy machine
    tenant_at(name="acme", error_reply=SORRY)
    agent.default = (503, {"detail": "overloaded"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) >= 2
    assert sent_texts(evolution) == [SORRY]
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "overloaded" in message.last_error


def test_a_tenant_without_an_error_reply_says_nothing(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (401, {"detail": "bad key"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sends(evolution) == []
    assert not ReplyPart.objects.exists()


def test_an_answer_that_could_not_be_sent_is_followed_by_the_error_reply(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", error_reply=SORRY)
    evolution.script = [(400, {"error": "the text was refused"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == ["Olá! Abrimos às 9h.", SORRY]
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.last_error.startswith("sending the reply failed:")


def test_the_error_reply_s_own_failed_send_is_retried(agent, evolution, tenant_at):
    tenant_at(name="acme", error_reply=SORRY)
    agent.default = (401, {"detail": "bad key"})
    evolution.script = [(503, {"error": "restarting"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == [SORRY, SORRY]
    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.FAILED, 1)
    assert "401" in message.last_error  # the message's own error, not the notice's
    notice = message.parts.get()
    assert (notice.attempts, notice.whatsapp_id, notice.last_error) == (2, "SENT-1", "")


def test_an_error_reply_evolution_refuses_for_good_is_not_tried_again(agent, evolution, tenant_at):
    tenant_at(name="acme", error_reply=SORRY)
    agent.default = (401, {"detail": "bad key"})
    evolution.default = (400, {"error": "not on WhatsApp"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == [SORRY]
    message = Message.objects.get()
    assert (message.status, message.notice_due_at) == (Message.Status.FAILED, None)
    notice = message.parts.get()
    assert notice.sent_at is None
    assert "400" in notice.last_error


def test_an_error_reply_whose_send_outcome_is_unknown_is_found_not_sent_twice(
    agent, evolution, tenant_at, settings
):
    settings.EVOLUTION_TIMEOUT = 0.3
    tenant_at(name="acme", error_reply=SORRY)
    agent.default = (401, {"detail": "bad key"})
    evolution.gate, evolution.gate_prefix = threading.Event(), "/message/sendText/"

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert sent_texts(evolution) == [SORRY]
    assert [r for r in evolution.requests if r.path.startswith("/chat/findMessages/")]
    notice = Message.objects.get().parts.get()
    assert (notice.whatsapp_id, notice.attempts) == ("SENT-1", 1)


def test_the_error_reply_comes_before_the_answer_to_the_chat_s_next_message(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", error_reply=SORRY)

    def first_is_refused(run: Recorded) -> tuple[int, dict[str, str]]:
        if run.body["message_content"] == "#0":
            return 401, {"detail": "bad key"}
        return 200, {"message": f"re: {run.body['message_content']}"}

    agent.responder = first_is_refused
    for n in range(2):
        post_webhook("acme", text_in_chat("5511900000001", f"#{n}", f"M-{n}"))
    answer_all()

    assert sent_texts(evolution) == [SORRY, "re: #1"]


def test_a_message_failing_again_after_a_person_s_retry_sends_no_second_error_reply(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", error_reply=SORRY)
    agent.default = (401, {"detail": "bad key"})
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    retry_message(Message.objects.get())
    answer_all()

    assert len(agent.requests) == 2
    assert sent_texts(evolution) == [SORRY]
    assert Message.objects.get().status == Message.Status.FAILED


def test_a_failed_burst_sends_one_error_reply(agent, evolution, tenant_at):
    tenant_at(name="acme", error_reply=SORRY, debounce_seconds=5)
    agent.default = (401, {"detail": "bad key"})
    for n in range(3):
        post_webhook("acme", text_in_chat("5511900000001", f"#{n}", f"M-{n}"))
    Message.objects.update(received_at=F("received_at") - timedelta(seconds=6))  # a quiet chat
    answer_all()

    assert len(agent.requests) == 1
    assert sent_texts(evolution) == [SORRY]
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.FAILED}
