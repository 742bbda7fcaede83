"""The worker process: many conversations in flight at once, prompt wake-up, clean stops."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fakes import sends
from tests.webhooks.conftest import (
    a_worker,
    answer_all,
    evolution_payload,
    post_webhook,
    running,
    text_in_chat,
)
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

IN_FLIGHT = 500


def test_one_worker_has_500_conversations_in_flight_at_once(agent, evolution, tenant_at):
    tenant_at(name="acme")
    # Every agent call is held until 500 are open together: only a worker that has 500
    # conversations in flight at once gets any answer at all.
    all_open = threading.Barrier(IN_FLIGHT, timeout=60)

    def answer_once_all_are_open(run):
        all_open.wait()
        return 200, {"message": f"re: {run.body['message_content']}"}

    agent.responder = answer_once_all_are_open
    for n in range(IN_FLIGHT):
        post_webhook("acme", text_in_chat(f"55119{n:08d}", f"hello {n}", f"M-{n}"))

    answer_all(concurrency=IN_FLIGHT)

    assert not all_open.broken
    assert len(agent.requests) == IN_FLIGHT
    # A send slower than its deadline on a busy machine is looked up, never sent twice.
    assert sorted(s.body["text"] for s in sends(evolution)) == sorted(
        f"re: hello {n}" for n in range(IN_FLIGHT)
    )
    assert Message.objects.filter(status=Message.Status.ANSWERED).count() == IN_FLIGHT


def test_an_idle_worker_is_woken_by_a_new_message_long_before_its_poll(agent, evolution, tenant_at):
    tenant_at(name="acme")
    with running(a_worker(poll_interval=600)):
        post_webhook("acme", evolution_payload("text_pn"))
        sent = evolution.wait_for(1, timeout=10)

    assert len(sent) == 1


def test_a_worker_told_to_stop_finishes_the_conversations_under_way(agent, evolution, tenant_at):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda run: thinking.wait(10) and agent.default
    post_webhook("acme", evolution_payload("text_pn"))
    worker = a_worker(grace_seconds=30)

    with running(worker):
        agent.wait_for(1)
        worker.stop()
        thinking.set()

    assert len(evolution.requests) == 1
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_a_conversation_cut_short_by_a_stop_is_handed_back_for_another_worker(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda run: thinking.wait(10) and agent.default
    post_webhook("acme", evolution_payload("text_pn"))

    with running(a_worker(grace_seconds=0)) as worker:
        agent.wait_for(1)
        worker.stop()
    thinking.set()
    chat = Conversation.objects.get()
    assert chat.lease_owner == ""
    assert chat.ready_at is not None

    answer_all()
    # Asked again: the first worker stopped before the agent answered it.
    assert len(agent.requests) == 2
    assert len(evolution.requests) == 1
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_a_worker_takes_up_the_chat_of_a_worker_that_died(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", evolution_payload("text_pn"))
    # Claimed, started and then killed: its lease is left to expire.
    Message.objects.update(status=Message.Status.PROCESSING, attempts=1)
    Conversation.objects.update(
        lease_owner="dead-worker", leased_until=timezone.now() - timedelta(seconds=1)
    )

    answer_all()

    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.ANSWERED, 2)
    assert len(evolution.requests) == 1
    assert Conversation.objects.get().lease_owner == ""


def test_a_worker_drops_a_chat_another_worker_took_over(agent, evolution, tenant_at):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda run: thinking.wait(10) and agent.default
    post_webhook("acme", evolution_payload("text_pn"))

    with running(a_worker(lease_seconds=0.2)) as worker:
        agent.wait_for(1)
        Conversation.objects.update(
            lease_owner="another-worker", leased_until=timezone.now() + timedelta(hours=1)
        )
        dropped = worker.idle.wait(10)
        thinking.set()

    assert dropped
    assert evolution.requests == []
    assert Message.objects.get().reply_text is None


def test_a_worker_told_to_stop_takes_up_no_further_message_of_a_chat(agent, evolution, tenant_at):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda run: thinking.wait(10) and agent.default
    post_webhook("acme", text_in_chat("5511900000001", "first", "M-1"))
    post_webhook("acme", text_in_chat("5511900000001", "second", "M-2"))
    worker = a_worker(grace_seconds=30)

    with running(worker):
        agent.wait_for(1)
        worker.stop()
        thinking.set()

    assert len(agent.requests) == 1  # the second is left for the next worker, at once
    chat = Conversation.objects.get()
    assert (chat.lease_owner, chat.ready_at is not None) == ("", True)
    answer_all()
    assert [s.body["text"] for s in evolution.requests] == ["Olá! Abrimos às 9h."] * 2
