"""The REST API of a tenant's conversations: list them, pause and resume the bot in one."""

import json
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import ConversationFactory, InstanceConfigFactory
from tests.webhooks.chat_payloads import from_contact, from_the_phone
from tests.webhooks.conftest import answer_all, post_webhook
from webhooks.conversations import pausing
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/instances/acme/conversations"
MARIA = "5511912345678@s.whatsapp.net"


def post(api_client: Client, path: str, body: object | None = None):
    if body is None:  # no body at all, as `curl -X POST` sends
        return api_client.generic("POST", path)
    return api_client.post(path, json.dumps(body), content_type="application/json")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
def acme():
    return InstanceConfigFactory.create(name="acme")


def test_it_lists_a_tenants_conversations_with_their_contact_and_state(
    api_client, agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "M-1", chat="5511900000001", name="Maria Silva"))
    post_webhook("acme", from_contact("Olá", "J-1", chat="5511900000002", name="João"))
    answer_all()
    pausing.pause_conversation(Conversation.objects.get(chat_jid__startswith="5511900000002"), 10)

    response = api_client.get(BASE)

    assert response.status_code == 200
    joao, maria = response.json()["items"]  # the latest message first
    assert maria["chat"] == "5511900000001@s.whatsapp.net"
    assert maria["contact_name"] == "Maria Silva"
    assert maria["state"] == "active"
    assert maria["paused_until"] is None
    assert maria["paused_until_resumed"] is False
    assert at(maria["last_message_at"]) <= at(joao["last_message_at"])
    assert joao["contact_name"] == "João"
    assert joao["state"] == "paused"
    assert at(joao["paused_until"]) > timezone.now() + timedelta(minutes=9)
    assert response.json()["count"] == 2


def test_the_contact_name_is_the_one_of_the_chats_last_message(
    api_client, agent, evolution, tenant_at
):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "M-1", name="Maria"))
    post_webhook("acme", from_contact("Oi de novo", "M-2", name="Maria Silva"))
    post_webhook("acme", from_the_phone("Oi Maria!", "ANA-1"))  # named after the business

    [item] = api_client.get(BASE).json()["items"]

    assert item["contact_name"] == "Maria Silva"


def test_it_lists_only_the_tenants_own_conversations(api_client, acme):
    ConversationFactory.create(instance=acme, chat_jid=MARIA)
    ConversationFactory.create(instance=InstanceConfigFactory.create(name="other"))

    items = api_client.get(BASE).json()["items"]

    assert [item["chat"] for item in items] == [MARIA]


def test_an_expired_pause_is_listed_as_active(api_client, acme):
    ConversationFactory.create(
        instance=acme, chat_jid=MARIA, paused_until=timezone.now() - timedelta(minutes=1)
    )

    [item] = api_client.get(BASE).json()["items"]

    assert (item["state"], item["paused_until"]) == ("active", None)


@pytest.mark.parametrize("chat", [MARIA, "5511912345678", "+5511912345678"])
def test_it_pauses_a_chat_named_by_its_jid_or_its_phone_number(api_client, acme, chat):
    ConversationFactory.create(instance=acme, chat_jid=MARIA)

    response = post(api_client, f"{BASE}/{chat}/pause", {"minutes": 45})

    assert response.status_code == 200, response.content
    shown = response.json()
    assert (shown["chat"], shown["state"], shown["paused_until_resumed"]) == (
        MARIA, "paused", False,
    )  # fmt: skip
    assert at(shown["paused_until"]) > timezone.now() + timedelta(minutes=44)


@pytest.mark.parametrize("body", [None, {}, {"minutes": None}])
def test_a_pause_without_minutes_lasts_until_resumed(api_client, acme, body):
    ConversationFactory.create(instance=acme, chat_jid=MARIA)

    response = post(api_client, f"{BASE}/{MARIA}/pause", body)

    assert response.status_code == 200, response.content
    shown = response.json()
    assert (shown["state"], shown["paused_until"], shown["paused_until_resumed"]) == (
        "paused", None, True,
    )  # fmt: skip


def test_it_pauses_a_lid_chat_by_its_jid(api_client, acme):
    ConversationFactory.create(instance=acme, chat_jid="103784512345678@lid")

    response = post(api_client, f"{BASE}/103784512345678@lid/pause")

    assert response.json()["chat"] == "103784512345678@lid"


def test_it_resumes_a_paused_chat(api_client, acme):
    conversation = ConversationFactory.create(instance=acme, chat_jid=MARIA)
    pausing.pause_conversation(conversation, None)

    response = post(api_client, f"{BASE}/{MARIA}/resume")

    assert response.status_code == 200
    shown = response.json()
    assert (shown["state"], shown["paused_until"], shown["paused_until_resumed"]) == (
        "active", None, False,
    )  # fmt: skip


@pytest.mark.parametrize("minutes", [0, -1, pausing.MAX_PAUSE_MINUTES + 1, "ten", 1.5, True, 2**70])
def test_a_bad_number_of_minutes_is_a_422_that_changes_nothing(api_client, acme, minutes):
    ConversationFactory.create(instance=acme, chat_jid=MARIA)

    response = post(api_client, f"{BASE}/{MARIA}/pause", {"minutes": minutes})

    assert response.status_code == 422, response.content
    assert response.json()["detail"]
    assert Conversation.objects.get().paused_until is None


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_an_unknown_chat_is_a_404_with_a_detail(api_client, acme, action):
    response = post(api_client, f"{BASE}/5511900000000/{action}")

    assert response.status_code == 404
    assert response.json() == {"detail": "instance 'acme' has no conversation with '5511900000000'"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/instances/nobody/conversations",
        f"/api/v1/instances/nobody/conversations/{MARIA}/pause",
    ],
)
def test_an_unknown_instance_is_a_404_with_a_detail(api_client, path):
    response = api_client.get(path) if path.endswith("conversations") else post(api_client, path)

    assert response.status_code == 404
    assert response.json() == {"detail": "instance 'nobody' not found"}


def test_another_tenants_chat_is_not_found(api_client, acme):
    ConversationFactory.create(instance=InstanceConfigFactory.create(name="other"), chat_jid=MARIA)

    response = post(api_client, f"{BASE}/{MARIA}/pause")

    assert response.status_code == 404


def test_the_conversation_endpoints_need_the_api_key(acme):
    ConversationFactory.create(instance=acme, chat_jid=MARIA)

    assert Client().get(BASE).status_code == 401
    assert Client().generic("POST", f"{BASE}/{MARIA}/pause").status_code == 401
    assert Conversation.objects.get().paused_until_resumed is False


def test_a_chat_paused_through_the_api_is_not_answered(api_client, agent, evolution, tenant_at):
    tenant_at(name="acme")
    post_webhook("acme", from_contact("Oi!", "ASK-1"))
    answer_all()

    post(api_client, f"{BASE}/5511912345678/pause", {"minutes": 30})
    post_webhook("acme", from_contact("Alguém aí?", "ASK-2"))
    answer_all()

    assert len(agent.requests) == 1
    assert Message.objects.get(whatsapp_id="ASK-2").status == Message.Status.PAUSED
