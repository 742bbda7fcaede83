"""The real path: webhook view → conversation ready → worker → agent → Evolution, with fakes."""

import threading
import time

import pytest
from django.db import connection

from instances.services import seed_default_instance
from tests.factories import InstanceConfigFactory
from tests.fakes import Recorded, agent_replying, evolution_accepting, presences, sends, serve
from tests.webhooks.conftest import (
    a_worker,
    answer_all,
    evolution_payload,
    post_webhook,
    running,
    text_in_chat,
    with_message_id,
)
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_legacy_route_works_with_only_the_env_tenant(agent, evolution):
    seed_default_instance(
        {
            "name": "legacy", "whatsapp_instance": "legacy-wa", "session_id_prefix": "env-",
            "agent_api_url": agent.url, "agent_api_key": "env-agent-key",
            "default_agent": "helper", "agent_timeout": 10,
            "evolution_url": "", "evolution_key": "",
        }
    )  # fmt: skip
    payload = evolution_payload(
        "text_pn", instance="legacy-wa", server_url=evolution.url, apikey="webhook-apikey"
    )
    payload["data"]["messageTimestamp"] = int(time.time())  # fresh: the tenant has the defaults

    def once_typing_was_shown(run: Recorded) -> tuple[int, object]:
        # "typing…" is on by default; an agent faster than that call would cancel it.
        evolution.wait_for(1)
        return 200, {"message": "Olá! Abrimos às 9h."}

    agent.responder = once_typing_was_shown

    assert post_webhook("", payload)["status"] == "queued"
    answer_all()

    [run] = agent.requests
    assert run.path == "/api/v1/agent/helper/run"
    assert run.headers["x-api-key"] == "env-agent-key"
    assert run.body["message_content"] == "Oi! Vocês abrem amanhã?"
    assert run.body["message_type"] == "text"
    assert run.body["session_name"] == "env-5511912345678"
    assert run.body["user"]["phone_number"] == "+5511912345678"
    assert run.body["user"]["user_data"]["source"] == "whatsapp"
    assert run.body["message_limit"] == 100
    [sent] = sends(evolution)
    assert sent.path == "/message/sendText/legacy-wa"
    assert sent.headers["apikey"] == "webhook-apikey"
    assert sent.body == {"number": "5511912345678", "text": "Olá! Abrimos às 9h."}
    # "typing…" (on by default) goes the same way, to the same number.
    assert {(r.path, r.headers["apikey"], r.body["number"]) for r in presences(evolution)} == {
        ("/chat/sendPresence/legacy-wa", "webhook-apikey", "5511912345678")
    }
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_each_tenant_talks_to_its_own_servers_with_its_own_keys():
    with (
        serve(agent_replying("from agent one")) as agent_one,
        serve(agent_replying("from agent two")) as agent_two,
        serve(evolution_accepting()) as evolution_one,
        serve(evolution_accepting()) as evolution_two,
    ):
        InstanceConfigFactory.create(
            name="one", agent_api_url=agent_one.url, agent_api_key="agent-key-one",
            evolution_url=evolution_one.url, evolution_key="evo-key-one",
            default_agent="sales", session_id_prefix="one-", whatsapp_instance="wa-one",
        )  # fmt: skip
        InstanceConfigFactory.create(
            name="two", agent_api_url=agent_two.url, agent_api_key="agent-key-two",
            evolution_url=evolution_two.url, evolution_key="evo-key-two",
            default_agent="support", session_id_prefix="two-", whatsapp_instance="wa-two",
        )  # fmt: skip
        post_webhook("one", evolution_payload("text_pn", instance="wa-one"))
        post_webhook("two", evolution_payload("text_pn", instance="wa-two"))
        answer_all()

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

    statuses = [post_webhook("acme", payload)["status"] for _ in range(3)]
    answer_all()
    post_webhook("acme", payload)
    answer_all()

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

    assert post_webhook("acme", evolution_payload(fixture))["status"] == "queued"
    answer_all()

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

    answer = post_webhook("acme", evolution_payload(fixture))
    answer_all()

    assert answer["status"] == "ignored"
    assert answer["reason"]
    assert agent.requests == []
    assert evolution.requests == []


def test_a_quoted_message_is_given_to_the_agent_as_context(agent, evolution, tenant_at):
    tenant_at(name="acme")
    payload = evolution_payload("text_reply_quoted")

    post_webhook("acme", payload)
    answer_all()

    message = Message.objects.get()
    assert message.quoted_text
    assert message.quoted_text in agent.requests[0].body["message_content"]


def test_the_agent_failing_twice_is_retried_and_answered_once(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "busy"}), (503, {"detail": "busy"})]

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert len(agent.requests) == 3
    assert len(evolution.requests) == 1
    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.attempts == 3
    assert message.agent_latency_ms is not None


def test_a_failed_message_can_be_retried_from_the_api(agent, evolution, tenant_at, api_client):
    tenant_at(name="acme")
    agent.script = [(401, {"detail": "bad key"})]
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()
    message = Message.objects.get()

    response = api_client.post(f"/api/v1/messages/{message.pk}/retry")
    answer_all()

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.ANSWERED
    assert len(evolution.requests) == 1


def test_an_empty_agent_reply_sends_nothing(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.default = (200, {"message": ""})

    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert evolution.requests == []
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_messages_of_one_chat_reach_the_agent_one_at_a_time_in_order(agent, evolution, tenant_at):
    tenant_at(name="acme")
    open_calls: list[str] = []
    overlapping: list[str] = []
    changed = threading.Condition()

    def one_call_per_chat_at_a_time(run):
        chat = run.body["message_content"][:13]
        with changed:
            if chat in open_calls:
                overlapping.append(chat)
            open_calls.append(chat)
            changed.notify_all()
            # Held open a while, so that a second call of the same chat would overlap it.
            changed.wait_for(lambda: open_calls.count(chat) > 1, timeout=0.05)
            open_calls.remove(chat)
        return 200, {"message": f"re: {run.body['message_content']}"}

    agent.responder = one_call_per_chat_at_a_time
    for n in range(4):
        for chat in ("5511900000001", "5511900000002"):
            post_webhook("acme", text_in_chat(chat, f"{chat} #{n}", f"{chat}-{n}"))

    answer_all()

    for chat in ("5511900000001", "5511900000002"):
        runs = [
            r.body["message_content"]
            for r in agent.requests
            if r.body["message_content"].startswith(chat)
        ]
        assert runs == [f"{chat} #{n}" for n in range(4)]
        sent = [s.body["text"] for s in evolution.requests if s.body["number"] == chat]
        assert sent == [f"re: {chat} #{n}" for n in range(4)]
    assert overlapping == []
    assert Message.objects.filter(status=Message.Status.ANSWERED).count() == 8


def test_a_message_to_a_chat_being_answered_is_answered_by_the_same_worker_next(
    agent, evolution, tenant_at
):
    tenant_at(name="acme")
    thinking = threading.Event()
    agent.responder = lambda request: thinking.wait(10) and agent.default
    payload = evolution_payload("text_pn")
    post_webhook("acme", with_message_id(payload, "FIRST"))
    with running(a_worker()) as worker:
        agent.wait_for(1)  # the worker holds the chat until the agent answers
        post_webhook("acme", with_message_id(payload, "SECOND"))
        held_by = Conversation.objects.get().lease_owner
        thinking.set()
        evolution.wait_for(2)

    assert held_by == worker.id
    assert [m.whatsapp_id for m in Message.objects.order_by("answered_at")] == ["FIRST", "SECOND"]
    assert all(m.status == Message.Status.ANSWERED for m in Message.objects.all())
    assert Conversation.objects.get().ready_at is None


def test_the_database_connection_is_not_left_in_a_transaction(agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert not connection.in_atomic_block
    assert Message.objects.get().status == Message.Status.ANSWERED
