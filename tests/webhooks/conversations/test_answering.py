"""Answering a message through the real path, when the agent or Evolution misbehave."""

import threading

import pytest

from tests.factories import InstanceConfigFactory
from tests.fakes import Recorded, closed_port
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook, text_in_chat
from webhooks.conversations.retries import retry_message
from webhooks.integrations.agents import client as agents
from webhooks.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_the_agent_keeps_failing_ends_failed_when_its_window_closes(
    agent, evolution, tenant_at, settings
):
    settings.RETRY_WINDOW_SECONDS = 1.0  # room for a second try on a busy machine
    tenant_at(name="acme")
    agent.default = (503, {"detail": "overloaded"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) >= 2
    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.attempts == len(agent.requests)
    assert message.next_attempt_at is None
    assert message.reply_text is None
    assert "503" in message.last_error
    assert "overloaded" in message.last_error


def test_an_outage_longer_than_a_few_attempts_loses_nothing(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "down"})] * 12  # more tries than the old fixed count of 6

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.ANSWERED, 13)
    assert len(evolution.requests) == 1


def test_a_retried_message_that_then_succeeds_forgets_its_last_error(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "overloaded"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.attempts == 2
    assert message.last_error == ""
    assert message.reply_text == "Olá! Abrimos às 9h."
    assert message.answered_at is not None


def test_a_failed_send_is_retried_without_asking_the_agent_again(agent, evolution, tenant_at):
    tenant_at(name="acme")
    evolution.script = [(500, {"error": "boom"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) == 1
    assert len([r for r in evolution.requests if "sendText" in r.path]) == 2
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_the_id_evolution_gives_the_reply_is_stored(agent, evolution, tenant_at):
    tenant_at(name="acme")
    evolution.default = (201, {"key": {"id": "BAE5F00D"}, "status": "PENDING"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert message.reply_whatsapp_id == "BAE5F00D"
    assert message.send_started_at is not None


def test_a_reply_evolution_refuses_for_good_fails_having_asked_the_agent_once(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    evolution.default = (400, {"error": "bad number"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) == 1
    assert len(evolution.requests) == 1
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.reply_text == "Olá! Abrimos às 9h."
    assert message.last_error.startswith("sending the reply failed:")
    assert "400" in message.last_error


def test_a_permanent_agent_error_fails_at_once_without_a_reply(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (401, {"detail": "bad key"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) == 1
    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "401" in message.last_error


def test_an_agent_key_that_can_never_be_sent_fails_at_once(evolution, tenant_at):
    tenant_at(name="acme", agent_api_key="pasted-with-a\nnewline")

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.FAILED, 1)
    assert evolution.requests == []


def test_an_unexpected_error_counts_as_a_failed_attempt(
    evolution, tenant_at, settings, monkeypatch
):
    settings.RETRY_WINDOW_SECONDS = 1.0  # long enough for a second try on a busy machine
    tenant_at(name="acme")
    calls = []

    async def broken_agent(*args, **arguments):
        calls.append(arguments)
        raise RuntimeError("boom")

    monkeypatch.setattr(agents, "run_agent", broken_agent)

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(calls) >= 2
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.last_error == "unexpected error: RuntimeError('boom')"


def test_a_message_with_no_trusted_evolution_server_fails_at_once_and_reaches_nothing(
    agent, evolution
):
    InstanceConfigFactory.create(
        name="acme", agent_api_url=agent.url, evolution_url="", evolution_key=""
    )

    answer = post_webhook("acme", evolution_payload("text_pn", server_url=""))
    answer_all()

    assert answer["status"] == "failed"
    assert agent.requests == []
    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.attempts == 0
    assert "server_url" in message.last_error


def test_a_retried_message_with_no_trusted_evolution_server_is_sent_nowhere(agent, evolution):
    InstanceConfigFactory.create(
        name="acme", agent_api_url=agent.url, evolution_url="", evolution_key=""
    )
    post_webhook("acme", evolution_payload("text_pn", server_url=""))

    retry_message(Message.objects.get())
    answer_all()

    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "EVOLUTION_TRUSTED_SERVERS" in message.last_error


def test_a_message_waiting_for_a_retry_holds_back_its_chat_but_not_others(
    agent, evolution, tenant_at, settings
):
    settings.RETRY_BASE_DELAY = settings.RETRY_MAX_DELAY = 0.3
    tenant_at(name="acme")
    failed_once: set[str] = set()

    def first_try_of_a1_fails(run: Recorded) -> tuple[int, dict[str, str]]:
        content = run.body["message_content"]
        if content == "A1" and content not in failed_once:
            failed_once.add(content)
            return 503, {"detail": "busy"}
        return 200, {"message": f"re: {content}"}

    agent.responder = first_try_of_a1_fails
    post_webhook("acme", text_in_chat("5511900000001", "A1", "A-1"))
    post_webhook("acme", text_in_chat("5511900000001", "A2", "A-2"))
    post_webhook("acme", text_in_chat("5511900000002", "B1", "B-1"))
    answer_all()

    asked = [run.body["message_content"] for run in agent.requests]
    assert asked in (["A1", "B1", "A1", "A2"], ["B1", "A1", "A1", "A2"])
    assert [sent.body["text"] for sent in evolution.requests] == ["re: B1", "re: A1", "re: A2"]
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.ANSWERED}


def test_a_message_waiting_for_its_retry_shows_retrying(agent, evolution, tenant_at, settings):
    settings.RETRY_BASE_DELAY = settings.RETRY_MAX_DELAY = 600
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "busy"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert message.status == Message.Status.RETRYING
    assert message.next_attempt_at is not None
    assert message.conversation.ready_at == message.next_attempt_at
    assert message.conversation.lease_owner == ""


def test_a_send_whose_answer_never_came_is_found_in_evolution_not_sent_again(
    agent, evolution, tenant_at, settings
):
    settings.EVOLUTION_TIMEOUT = 0.3
    tenant_at(name="acme")
    # Evolution takes the reply, then never answers the call.
    evolution.gate, evolution.gate_prefix = threading.Event(), "/message/sendText/"

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    sends = [r for r in evolution.requests if r.path.startswith("/message/sendText/")]
    looked_up = [r for r in evolution.requests if r.path.startswith("/chat/findMessages/")]
    assert len(sends) == 1
    assert len(looked_up) == 1
    message = Message.objects.get()
    assert (message.status, message.attempts) == (Message.Status.ANSWERED, 2)
    assert message.reply_whatsapp_id == "SENT-1"
    assert len(agent.requests) == 1


def test_a_send_that_never_connected_is_tried_again_without_a_lookup(agent, tenant_at, settings):
    settings.RETRY_WINDOW_SECONDS = 1.0  # room for a second try on a busy machine
    tenant_at(name="acme", evolution_url=f"http://127.0.0.1:{closed_port()}")

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.attempts >= 2
    assert "cannot reach Evolution" in message.last_error
    # Nothing reached Evolution, so nothing was looked up before each new try.
    [part] = message.parts.all()
    assert part.send_started_at is None
    assert part.attempts == message.attempts
    assert "cannot reach Evolution" in part.last_error
