"""Every attempt at a message is recorded, through the real webhook -> worker -> fakes path."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import MessageFactory
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook
from webhooks.conversations import progress
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.retries import next_attempt_at, retry_message
from webhooks.conversations.turns import Turn
from webhooks.models import Conversation, Message, MessageAttempt

pytestmark = pytest.mark.django_db(transaction=True)


def history(message: Message) -> list[tuple[int, str, str]]:
    return [(a.number, a.stage, a.result) for a in message.attempt_log.order_by("id")]


def test_each_attempt_records_its_stage_and_result(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "overloaded"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert history(message) == [(1, "agent", "retrying"), (2, "agent", "ok"), (2, "send", "ok")]
    failed, asked, sent = message.attempt_log.order_by("id")
    assert "503" in failed.error
    assert "overloaded" in failed.error
    assert asked.error == sent.error == ""
    assert failed.started_at <= asked.started_at <= sent.started_at


def test_the_agent_stage_records_the_agents_latency(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.delay = 0.05

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    asked = message.attempt_log.get(stage=MessageAttempt.Stage.AGENT)
    assert asked.latency_ms == message.agent_latency_ms


def test_a_failed_send_is_recorded_as_the_send_stage_and_retried_alone(agent, evolution, tenant_at):
    tenant_at(name="acme")
    evolution.script = [(500, {"error": "boom"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert history(message) == [(1, "agent", "ok"), (1, "send", "retrying"), (2, "send", "ok")]
    assert message.attempt_log.get(result="retrying").error.startswith("sending the reply failed")


def test_an_error_no_retry_can_fix_is_recorded_failed(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (401, {"detail": "bad key"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert history(message) == [(1, "agent", "failed")]
    assert "401" in message.attempt_log.get().error


def test_an_agent_answer_without_a_message_fails_the_message_quoting_the_answer(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    agent.default = (200, {"answer": "Sim"})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.reply_text is None
    assert message.last_error == 'the agent answered without a message: {"answer": "Sim"}'
    assert history(message) == [(1, "agent", "failed")]
    assert len(agent.requests) == 1
    assert evolution.requests == []


def test_an_answer_with_nothing_to_send_records_the_agent_stage_alone(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (200, {"message": ""})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert history(message) == [(1, "agent", "ok")]


def test_a_persons_retry_keeps_the_history_and_the_count(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(401, {"detail": "bad key"})]
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    retry_message(Message.objects.get())
    answer_all()

    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.attempts == 2
    assert history(message) == [(1, "agent", "failed"), (2, "agent", "ok"), (2, "send", "ok")]


def test_a_message_waiting_for_its_next_try_can_be_retried_now(
    agent, evolution, tenant_at, settings
):
    settings.RETRY_BASE_DELAY = settings.RETRY_MAX_DELAY = 600
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "busy"})]
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()
    message = Message.objects.get()
    assert message.status == Message.Status.RETRYING

    retry_message(message)

    chat = Conversation.objects.get(pk=message.conversation_id)
    assert chat.ready_at is not None
    assert chat.ready_at <= timezone.now()
    answer_all()
    message.refresh_from_db()
    assert message.status == Message.Status.ANSWERED
    assert history(message) == [(1, "agent", "retrying"), (2, "agent", "ok"), (2, "send", "ok")]


@pytest.mark.parametrize("status", [Message.Status.FAILED, Message.Status.RETRYING])
def test_the_backoff_starts_again_after_a_persons_retry(settings, status):
    settings.RETRY_BASE_DELAY, settings.RETRY_MAX_DELAY = 2.0, 120.0
    message = MessageFactory.create(status=status, attempts=12)

    retry_message(message)
    message.attempts += 1  # its first try after the retry failed
    now = timezone.now()
    retry_at = next_attempt_at(message, now)

    assert message.attempts_before_retry == 12
    assert retry_at is not None
    assert retry_at - now <= timedelta(seconds=2)


def test_a_step_of_a_worker_that_lost_its_lease_records_no_attempt():
    message = MessageFactory.create(status=Message.Status.PROCESSING, attempts=1)
    Conversation.objects.filter(pk=message.conversation_id).update(
        lease_owner="another-worker", leased_until=timezone.now() + timedelta(minutes=1)
    )

    with pytest.raises(LeaseLostError):
        progress.record_failure(
            Turn(message), "the agent answered 503", "this-worker", retryable=True
        )

    assert not MessageAttempt.objects.exists()
    message.refresh_from_db()
    assert (message.status, message.last_error) == (Message.Status.PROCESSING, "")
