"""The real path: webhook view → task → agent client → Evolution client, against fake servers."""

import threading
import time
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from instances.services import seed_default_instance
from tests.fakes import agent_replying, evolution_accepting, serve
from tests.webhooks.conftest import drain_tasks, evolution_payload, post_json, with_message_id
from webhooks.models import Conversation, Message
from webhooks.processing import _claim_next_message, recover_expired_leases
from webhooks.worker import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def post(path: str, body: dict) -> dict:
    response = post_json(path, body)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_legacy_route_works_with_only_the_env_tenant(agent, evolution):
    seed_default_instance(
        {
            "name": "legacy", "whatsapp_instance": "legacy-wa", "session_id_prefix": "env-",
            "agent_api_url": agent.url, "agent_api_key": "env-agent-key",
            "default_agent": "helper", "agent_timeout": 10,
            "evolution_url": "", "evolution_key": "",
        }
    )  # fmt: skip
    payload = evolution_payload("text_pn", server_url=evolution.url, apikey="webhook-apikey")

    assert post("/webhook/evolution", payload)["status"] == "queued"
    drain_tasks()

    [run] = agent.requests
    assert run.path == "/api/v1/agent/helper/run"
    assert run.headers["x-api-key"] == "env-agent-key"
    assert run.body["message_content"] == "Oi! Vocês abrem amanhã?"
    assert run.body["message_type"] == "text"
    assert run.body["session_name"] == "env-5511912345678"
    assert run.body["user"]["phone_number"] == "+5511912345678"
    assert run.body["user"]["user_data"]["source"] == "whatsapp"
    assert run.body["message_limit"] == 100
    [sent] = evolution.requests
    assert sent.path == "/message/sendText/legacy-wa"
    assert sent.headers["apikey"] == "webhook-apikey"
    assert sent.body == {"number": "5511912345678", "text": "Olá! Abrimos às 9h."}
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_each_tenant_talks_to_its_own_servers_with_its_own_keys():
    with (
        serve(agent_replying("from agent one")) as agent_one,
        serve(agent_replying("from agent two")) as agent_two,
        serve(evolution_accepting()) as evolution_one,
        serve(evolution_accepting()) as evolution_two,
    ):
        from tests.factories import InstanceConfigFactory

        InstanceConfigFactory(
            name="one", agent_api_url=agent_one.url, agent_api_key="agent-key-one",
            evolution_url=evolution_one.url, evolution_key="evo-key-one",
            default_agent="sales", session_id_prefix="one-", whatsapp_instance="wa-one",
        )  # fmt: skip
        InstanceConfigFactory(
            name="two", agent_api_url=agent_two.url, agent_api_key="agent-key-two",
            evolution_url=evolution_two.url, evolution_key="evo-key-two",
            default_agent="support", session_id_prefix="two-", whatsapp_instance="wa-two",
        )  # fmt: skip
        post("/webhook/evolution/one", evolution_payload("text_pn"))
        post("/webhook/evolution/two", evolution_payload("text_pn"))
        drain_tasks()

    for agent, key, name, prefix in [
        (agent_one, "agent-key-one", "sales", "one-"),
        (agent_two, "agent-key-two", "support", "two-"),
    ]:
        [run] = agent.requests
        assert run.headers["x-api-key"] == key
        assert run.path == f"/api/v1/agent/{name}/run"
        assert run.body["session_name"] == f"{prefix}5511912345678"
    for evolution, key, instance, text in [
        (evolution_one, "evo-key-one", "wa-one", "from agent one"),
        (evolution_two, "evo-key-two", "wa-two", "from agent two"),
    ]:
        [sent] = evolution.requests
        assert sent.headers["apikey"] == key
        assert sent.path == f"/message/sendText/{instance}"
        assert sent.body["text"] == text


def test_a_redelivered_webhook_is_answered_once(agent, evolution, tenant_at):
    tenant_at(name="acme")
    payload = evolution_payload("text_pn")

    statuses = [post("/webhook/evolution/acme", payload)["status"] for _ in range(3)]
    drain_tasks()
    post("/webhook/evolution/acme", payload)
    drain_tasks()

    assert statuses == ["queued", "duplicate", "duplicate"]
    assert len(agent.requests) == 1
    assert len(evolution.requests) == 1


ANSWERED = {
    "text_pn": ("text", "5511912345678"),
    "text_extended_legacy": ("text", None),
    "text_reply_quoted": ("text", None),
    "image_caption_base64": ("image", None),
    "image_no_base64_v22": ("image", None),
    "voice_note_ptt": ("audio", None),
    "document_caption": ("document", None),
    "video_caption": ("video", None),
    "location": ("text", None),
    "contact_card": ("text", None),
    "lid_with_alt_v236": ("text", "5511997529604"),
    "lid_without_phone": ("text", "103784512345678@lid"),
    "event_upper_snake_text": ("text", None),
}
IGNORED = ["group_text", "sticker", "reaction", "from_me_operator", "status_broadcast",
           "event_connection_update", "event_messages_update", "event_send_message"]  # fmt: skip


@pytest.mark.parametrize("fixture", sorted(ANSWERED))
def test_every_answerable_fixture_reaches_the_agent_and_is_answered(
    fixture, agent, evolution, tenant_at
):
    tenant_at(name="acme")
    message_type, number = ANSWERED[fixture]

    assert post("/webhook/evolution/acme", evolution_payload(fixture))["status"] == "queued"
    drain_tasks()

    [run] = agent.requests
    assert run.body["message_type"] == message_type
    assert run.body["message_content"] or run.body.get("media_contents")
    if message_type != "text":
        [media] = run.body["media_contents"]
        assert media["mime_type"]
        assert media.get("data") or media.get("media_url")
    [sent] = evolution.requests
    if number:
        assert sent.body["number"] == number
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.media_base64 == ""


@pytest.mark.parametrize("fixture", IGNORED)
def test_every_ignored_fixture_never_reaches_the_agent(fixture, agent, evolution, tenant_at):
    tenant_at(name="acme")

    answer = post("/webhook/evolution/acme", evolution_payload(fixture))
    drain_tasks()

    assert answer["status"] == "ignored"
    assert answer["reason"]
    assert agent.requests == []
    assert evolution.requests == []


def test_a_quoted_message_is_given_to_the_agent_as_context(agent, evolution, tenant_at):
    tenant_at(name="acme")
    payload = evolution_payload("text_reply_quoted")

    post("/webhook/evolution/acme", payload)
    drain_tasks()

    message = Message.objects.get()
    assert message.quoted_text
    assert message.quoted_text in agent.requests[0].body["message_content"]


def test_the_agent_failing_twice_is_retried_and_answered_once(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "busy"}), (503, {"detail": "busy"})]

    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    drain_tasks()

    assert len(agent.requests) == 3
    assert len(evolution.requests) == 1
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.attempts == 3
    assert message.agent_latency_ms is not None


def test_a_failed_send_is_retried_without_asking_the_agent_again(agent, evolution, tenant_at):
    tenant_at(name="acme")
    evolution.script = [(500, {"error": "boom"})]

    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    drain_tasks()

    assert len(agent.requests) == 1
    assert len(evolution.requests) == 2
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_a_permanent_agent_error_fails_at_once_without_a_reply(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (401, {"detail": "bad key"})

    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    drain_tasks()

    assert len(agent.requests) == 1
    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "401" in message.last_error


def test_a_failed_message_can_be_retried_from_the_api(agent, evolution, tenant_at, api_client):
    tenant_at(name="acme")
    agent.script = [(401, {"detail": "bad key"})]
    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    drain_tasks()
    message = Message.objects.get()

    response = api_client.post(f"/api/v1/messages/{message.pk}/retry")
    drain_tasks()

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.ANSWERED
    assert len(evolution.requests) == 1


def test_an_empty_agent_reply_sends_nothing(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (200, {"message": ""})

    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    drain_tasks()

    assert evolution.requests == []
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_messages_of_one_chat_reach_the_agent_one_at_a_time_in_order(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.delay = 0.05
    chat_a, chat_b = "5511900000001@s.whatsapp.net", "5511900000002@s.whatsapp.net"
    for n in range(4):
        for chat in (chat_a, chat_b):
            payload = evolution_payload("text_pn")
            payload["data"]["message"] = {"conversation": f"{chat[:13]} #{n}"}
            post("/webhook/evolution/acme", with_message_id(payload, f"{chat[:13]}-{n}", chat))

    worker = WorkerProcess(concurrency=4, poll_interval=0.02)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        agent.wait_for(8)
        evolution.wait_for(8)
    finally:
        worker.stop()
        thread.join(timeout=10)

    for chat in (chat_a, chat_b):
        runs = [r for r in agent.requests if r.body["message_content"].startswith(chat[:13])]
        assert [r.body["message_content"][-2:] for r in runs] == ["#0", "#1", "#2", "#3"]
        starts = [r.at for r in runs]
        # Each next call starts only after the previous one was answered (delay 50 ms).
        assert all(later - earlier >= 0.045 for earlier, later in pairwise(starts))
    assert Message.objects.filter(status=Message.Status.ANSWERED).count() == 8


def test_a_message_held_by_a_dead_worker_is_picked_up_after_its_lease_expires(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    conversation = Conversation.objects.get()
    # A worker claims the task and the message, then dies (kill -9): nothing is released.
    DBTaskResult.objects.update(status="RUNNING")
    assert _claim_next_message(conversation.pk, "dead-worker") is not None
    drain_tasks()
    assert agent.requests == []

    assert recover_expired_leases() == 0  # the lease has not expired yet
    Conversation.objects.update(leased_until=timezone.now() - timedelta(seconds=1))
    assert recover_expired_leases() == 1
    drain_tasks()

    assert len(agent.requests) == 1
    assert len(evolution.requests) == 1
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.attempts == 2
    assert Conversation.objects.get().lease_owner == ""


def test_a_message_that_keeps_killing_its_worker_ends_failed(agent, evolution, tenant_at, settings):
    settings.MESSAGE_MAX_ATTEMPTS = 2
    tenant_at(name="acme")
    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    conversation = Conversation.objects.get()
    DBTaskResult.objects.update(status="RUNNING")
    for _ in range(2):
        _claim_next_message(conversation.pk, "dead-worker")
        Conversation.objects.update(leased_until=timezone.now() - timedelta(seconds=1))
        recover_expired_leases()
    drain_tasks()

    assert agent.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert "worker stopped" in message.last_error


def test_the_database_connection_is_not_left_in_a_transaction(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    drain_tasks()

    assert not connection.in_atomic_block
    assert time.monotonic() > 0


def test_a_task_whose_worker_died_before_leasing_its_conversation_is_requeued(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    # The worker took the task, then was killed before it leased the conversation.
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now())
    assert recover_expired_leases() == 0  # too recent: its worker may still be starting
    DBTaskResult.objects.update(started_at=timezone.now() - timedelta(minutes=5))

    assert recover_expired_leases() == 1
    assert recover_expired_leases() == 0
    drain_tasks()

    assert len(evolution.requests) == 1
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_a_live_task_holding_its_lease_is_left_alone(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post("/webhook/evolution/acme", evolution_payload("text_pn"))
    DBTaskResult.objects.update(status="RUNNING", started_at=timezone.now() - timedelta(minutes=5))
    _claim_next_message(Conversation.objects.get().pk, "live-worker")

    assert recover_expired_leases() == 0
    assert DBTaskResult.objects.get().status == "RUNNING"


def test_a_message_to_a_chat_being_answered_is_left_to_the_worker_answering_it(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda request: thinking.wait(5) and agent.default
    payload = evolution_payload("text_pn")
    post("/webhook/evolution/acme", with_message_id(payload, "FIRST"))
    worker = WorkerProcess(concurrency=2, poll_interval=0.02)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        agent.wait_for(1)  # the worker holds the chat until the agent answers
        post("/webhook/evolution/acme", with_message_id(payload, "SECOND"))
        tasks_after_second = DBTaskResult.objects.count()
        thinking.set()
        evolution.wait_for(2)
    finally:
        worker.stop()
        thread.join(timeout=10)

    assert tasks_after_second == 1
    assert [m.whatsapp_id for m in Message.objects.order_by("answered_at")] == ["FIRST", "SECOND"]
    assert all(m.status == Message.Status.ANSWERED for m in Message.objects.all())


def test_a_message_to_a_chat_whose_worker_lease_expired_is_queued(agent, evolution, tenant_at):
    tenant_at(name="acme")
    payload = evolution_payload("text_pn")
    post("/webhook/evolution/acme", with_message_id(payload, "FIRST"))
    drain_tasks()
    Conversation.objects.update(
        lease_owner="dead-worker", leased_until=timezone.now() - timedelta(seconds=1)
    )

    post("/webhook/evolution/acme", with_message_id(payload, "SECOND"))
    drain_tasks()

    assert DBTaskResult.objects.count() == 2
    assert len(evolution.requests) == 2
