"""Debounce through the real path: a burst of messages gets one agent call and one answer.

Time passes by moving the messages' arrival back (`arrived_ago`), never by sleeping."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from tests.factories import MessageFactory
from tests.fakes import sends
from tests.webhooks.conftest import a_worker, answer_all, post_webhook, running, text_in_chat
from tests.webhooks.conversations.steps import begin_next, claim_ready
from webhooks.conversations.retries import retry_message
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "5511900000001"


def arrived_ago(seconds: float) -> None:
    """As if `seconds` had passed: every message so far arrived that much earlier, and a chat
    waiting for a time is ready that much sooner."""
    earlier = timedelta(seconds=seconds)
    Message.objects.update(received_at=F("received_at") - earlier)
    Conversation.objects.filter(ready_at__isnull=False).update(ready_at=F("ready_at") - earlier)


def burst(texts: list[str], chat: str = CHAT, prefix: str = "M") -> None:
    for n, text in enumerate(texts):
        assert post_webhook("acme", text_in_chat(chat, text, f"{prefix}-{chat}-{n}"))["status"] == (
            "queued"
        )


def asked(agent) -> list[str]:
    return [run.body["message_content"] for run in agent.requests]


def test_a_burst_is_asked_of_the_agent_as_one_message_and_answered_once(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", debounce_seconds=5)
    burst(["Oi", "Fiz um pedido ontem", "Ainda não chegou"])
    arrived_ago(6)

    answer_all()

    assert asked(agent) == ["Oi\nFiz um pedido ontem\nAinda não chegou"]
    assert [r.body["text"] for r in sends(evolution)] == ["Olá! Abrimos às 9h."]
    first, *others = Message.objects.order_by("id")
    assert {m.status for m in [first, *others]} == {Message.Status.ANSWERED}
    # The answer is stored on the first; the others point at it.
    assert first.reply_text == "Olá! Abrimos às 9h."
    assert first.answered_with is None
    assert [(m.answered_with_id, m.reply_text) for m in others] == [(first.pk, None)] * 2
    assert all(m.attempts == 1 and m.answered_at is not None for m in [first, *others])


def test_a_chat_still_writing_waits_until_it_has_been_quiet_for_the_window(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", debounce_seconds=30)
    burst(["Oi", "Tudo bem?"])
    arrived_ago(20)  # the newest is 20 s old: 10 s of the window are left

    answer_all()

    assert agent.requests == []
    newest = Message.objects.latest("id")
    chat = Conversation.objects.get()
    assert chat.ready_at == newest.received_at + timedelta(seconds=30)
    assert chat.lease_owner == ""
    assert set(Message.objects.values_list("status", "attempts")) == {(Message.Status.RECEIVED, 0)}

    arrived_ago(10)
    answer_all()

    assert asked(agent) == ["Oi\nTudo bem?"]


def test_a_message_after_the_window_gets_an_answer_of_its_own(agent, evolution, tenant_at):
    tenant_at(name="acme", debounce_seconds=5)
    burst(["Oi", "Tudo bem?"])
    arrived_ago(6)
    answer_all()
    burst(["Outra coisa"], prefix="later")
    arrived_ago(6)
    answer_all()

    assert asked(agent) == ["Oi\nTudo bem?", "Outra coisa"]
    assert len(sends(evolution)) == 2


def test_without_debounce_each_message_is_answered_alone(agent, evolution, tenant_at):
    tenant_at(name="acme")
    burst(["Oi", "Tudo bem?"])

    answer_all()

    assert asked(agent) == ["Oi", "Tudo bem?"]
    assert not Message.objects.filter(answered_with__isnull=False).exists()


def test_a_burst_is_joined_in_the_order_whatsapp_gave_it(agent, evolution, tenant_at):
    tenant_at(name="acme", debounce_seconds=5)
    # The second message was written first: its webhook came late.
    for n, (text, sent) in enumerate([("segunda", 1_764_000_010), ("primeira", 1_764_000_005)]):
        payload = text_in_chat(CHAT, text, f"M-{n}")
        payload["data"]["messageTimestamp"] = sent
        post_webhook("acme", payload)
    arrived_ago(6)

    answer_all()

    assert asked(agent) == ["primeira\nsegunda"]


def test_a_burst_whose_agent_call_failed_is_retried_together(agent, evolution, tenant_at):
    tenant_at(name="acme", debounce_seconds=5)
    agent.script = [(503, {"detail": "busy"})]
    burst(["Oi", "Tudo bem?"])
    arrived_ago(6)

    answer_all()

    assert asked(agent) == ["Oi\nTudo bem?", "Oi\nTudo bem?"]
    assert len(sends(evolution)) == 1
    assert set(Message.objects.values_list("status", "attempts")) == {(Message.Status.ANSWERED, 2)}


def test_a_message_arriving_while_a_burst_waits_for_its_retry_waits_behind_it(
    agent, evolution, tenant_at, settings
):
    settings.RETRY_BASE_DELAY = settings.RETRY_MAX_DELAY = 600
    tenant_at(name="acme", debounce_seconds=5)
    agent.script = [(503, {"detail": "busy"})]
    burst(["Oi", "Tudo bem?"])
    arrived_ago(6)
    answer_all()  # the burst fails once and waits ten minutes for its retry
    burst(["Alô?"], prefix="later")
    arrived_ago(6)

    answer_all()

    assert asked(agent) == ["Oi\nTudo bem?"]
    later = Message.objects.get(text="Alô?")
    assert (later.status, later.answered_with) == (Message.Status.RECEIVED, None)
    retrying = Message.objects.filter(status=Message.Status.RETRYING)
    assert retrying.count() == 2


def test_a_burst_taken_up_by_a_worker_that_died_is_taken_up_together_by_the_next():
    tenant = MessageFactory.create(text="Oi").instance
    tenant.debounce_seconds = 5
    tenant.save()
    first = Message.objects.get()
    MessageFactory.create(instance=tenant, chat_jid=first.chat_jid, text="Tudo bem?")
    arrived_ago(6)
    Conversation.objects.update(ready_at=timezone.now())
    claim_ready("w1", limit=1, lease_seconds=60)
    taken = begin_next(first.conversation_id, "w1")
    assert taken is not None
    # w1 dies while the agent thinks; its lease runs out and w2 claims the chat.
    Conversation.objects.update(leased_until=timezone.now() - timedelta(seconds=1))
    MessageFactory.create(instance=tenant, chat_jid=first.chat_jid, text="Alô?")
    arrived_ago(6)
    assert claim_ready("w2", limit=1, lease_seconds=60) == [first.conversation_id]

    again = begin_next(first.conversation_id, "w2")

    assert again is not None
    assert (
        [m.text for m in again.messages] == [m.text for m in taken.messages] == ["Oi", "Tudo bem?"]
    )
    assert [m.attempts for m in again.messages] == [2, 2]


def test_a_person_s_retry_of_any_message_of_a_burst_retries_the_whole_burst(
    agent, evolution, tenant_at
):
    tenant_at(name="acme", debounce_seconds=5)
    agent.default = (401, {"detail": "bad key"})
    burst(["Oi", "Tudo bem?"])
    arrived_ago(6)
    answer_all()
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.FAILED}
    agent.default = (200, {"message": "Olá!"})

    retry_message(Message.objects.latest("id"))
    answer_all()

    assert asked(agent) == ["Oi\nTudo bem?", "Oi\nTudo bem?"]
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.ANSWERED}


def test_two_workers_answer_each_burst_once(agent, evolution, tenant_at):
    tenant_at(name="acme", debounce_seconds=5)
    chats = [f"55119{n:08d}" for n in range(20)]
    for chat in chats:
        burst([f"{chat} a", f"{chat} b", f"{chat} c"], chat=chat)
    arrived_ago(6)

    with running(a_worker(concurrency=4)), running(a_worker(concurrency=4)):
        assert len(evolution.wait_for(len(chats), timeout=30)) == len(chats)

    assert sorted(asked(agent)) == sorted(f"{c} a\n{c} b\n{c} c" for c in chats)
    assert len(sends(evolution)) == len(chats)
    assert Message.objects.filter(status=Message.Status.ANSWERED).count() == 3 * len(chats)


def test_the_admin_shows_the_message_whose_answer_answered_a_burst(
    agent, evolution, tenant_at, admin_client
):
    tenant_at(name="acme", debounce_seconds=5)
    burst(["Oi", "Tudo bem?"])
    arrived_ago(6)
    answer_all()
    first, second = Message.objects.order_by("id")

    page = admin_client.get(f"/admin/webhooks/message/{second.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Answered with" in html
    assert f"/admin/webhooks/message/{first.pk}/change/" in html
