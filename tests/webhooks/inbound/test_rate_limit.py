"""The per-contact limit: beyond max_messages_per_hour a contact's messages are ignored, and
told so once an hour."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.chat_payloads import from_contact
from tests.webhooks.conftest import answer_all, post_webhook
from webhooks.inbound import rate_limit
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_DOWN = "Você enviou muitas mensagens; tente de novo mais tarde."


def statuses() -> list[str]:
    return list(Message.objects.order_by("id").values_list("status", flat=True))


def test_messages_beyond_the_limit_are_ignored_and_never_reach_the_agent(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", max_messages_per_hour=2)

    answers = [post_webhook("acme", from_contact(f"#{n}", f"M-{n}")) for n in range(4)]
    answer_all()

    assert [a["status"] for a in answers] == ["queued", "queued", "ignored", "ignored"]
    assert answers[2]["reason"] == rate_limit.REASON
    assert [r.body["message_content"] for r in agent.requests] == ["#0", "#1"]
    assert statuses() == ["answered", "answered", "ignored", "ignored"]


def test_the_limit_is_per_contact(agent, evolution, tenant_at):
    tenant_at(name="acme", max_messages_per_hour=1)

    post_webhook("acme", from_contact("Oi", "A-1", chat="5511900000001"))
    post_webhook("acme", from_contact("Oi", "A-2", chat="5511900000001"))
    post_webhook("acme", from_contact("Oi", "B-1", chat="5511900000002"))
    answer_all()

    assert sorted(r.body["user"]["phone_number"] for r in agent.requests) == [
        "+5511900000001", "+5511900000002",
    ]  # fmt: skip


def test_the_contact_is_told_once_an_hour_through_the_normal_send_path(agent, evolution, tenant_at):
    tenant_at(name="acme", max_messages_per_hour=1, rate_limited_reply=SLOW_DOWN)

    answers = [post_webhook("acme", from_contact(f"#{n}", f"M-{n}")) for n in range(4)]
    answer_all()

    assert [a["status"] for a in answers] == ["queued", "queued", "ignored", "ignored"]
    assert [r.body["message_content"] for r in agent.requests] == ["#0"]
    assert [s.body["text"] for s in evolution.requests] == ["Olá! Abrimos às 9h.", SLOW_DOWN]
    told = Message.objects.get(whatsapp_id="M-1")
    assert told.status == Message.Status.ANSWERED
    assert told.canned_reply == Message.CannedReply.RATE_LIMITED
    assert told.ignore_reason == rate_limit.REASON


def test_an_hour_later_the_contact_is_answered_again(agent, evolution, tenant_at):
    tenant_at(name="acme", max_messages_per_hour=1, rate_limited_reply=SLOW_DOWN)
    post_webhook("acme", from_contact("#0", "M-0"))
    post_webhook("acme", from_contact("#1", "M-1"))
    answer_all()
    # An hour goes by.
    an_hour_ago = timezone.now() - rate_limit.WINDOW - timedelta(seconds=1)
    Message.objects.update(received_at=an_hour_ago)
    Conversation.objects.update(rate_limited_reply_at=an_hour_ago)

    post_webhook("acme", from_contact("#2", "M-2"))
    post_webhook("acme", from_contact("#3", "M-3"))
    post_webhook("acme", from_contact("#4", "M-4"))
    answer_all()

    assert [r.body["message_content"] for r in agent.requests] == ["#0", "#2"]
    sent = [s.body["text"] for s in evolution.requests]
    assert sent == ["Olá! Abrimos às 9h.", SLOW_DOWN, "Olá! Abrimos às 9h.", SLOW_DOWN]
    assert Message.objects.get(whatsapp_id="M-4").status == Message.Status.IGNORED


def test_without_a_limit_nothing_is_counted(agent, evolution, tenant_at):
    tenant_at(name="acme", max_messages_per_hour=0)

    for n in range(5):
        post_webhook("acme", from_contact(f"#{n}", f"M-{n}"))
    answer_all()

    assert len(agent.requests) == 5


def test_the_limit_holds_when_a_contacts_messages_arrive_at_once(agent, evolution, tenant_at):
    """Each count runs under the chat's row lock: webhooks storing at the same time, as on
    several web processes, are counted one after the other."""
    tenant_at(name="acme", max_messages_per_hour=3)
    post_webhook("acme", from_contact("first", "M-first"))  # the chat exists
    senders = 8
    together = threading.Barrier(senders, timeout=10)
    answers: list[str] = []

    def send(n: int) -> None:
        together.wait()
        answers.append(post_webhook("acme", from_contact(f"#{n}", f"M-{n}"))["status"])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == ["ignored"] * 6 + ["queued"] * 2
    assert Message.objects.exclude(status=Message.Status.IGNORED).count() == 3
