import json
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client, override_settings

from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, with_message_id
from tests.webhooks.conftest import post_json as post
from webhooks.models import Conversation, Message

# The webhook view does its database work on its own threads: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_it_queues_a_text_message_for_a_tenant():
    InstanceConfigFactory.create(name="acme")

    response = post("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    message = Message.objects.get()
    assert message.status == Message.Status.RECEIVED
    assert message.text == "Oi! Vocês abrem amanhã?"
    assert message.instance.name == "acme"


def test_it_answers_404_for_an_unknown_tenant():
    response = post("/webhook/evolution/ghost", evolution_payload("text_pn"))

    assert response.status_code == 404
    assert "ghost" in response.json()["detail"]


def test_the_legacy_route_serves_the_default_tenant():
    InstanceConfigFactory.create(name="main", is_default=True)

    response = post("/webhook/evolution", evolution_payload("text_pn"))

    assert response.json()["status"] == "queued"
    assert Message.objects.get().instance.name == "main"


def test_the_legacy_route_answers_404_without_a_default_tenant():
    assert post("/webhook/evolution", evolution_payload("text_pn")).status_code == 404


@pytest.mark.parametrize(
    "path", ["/webhook/evolution/acme/messages-upsert", "/webhook/evolution/messages-upsert"]
)
def test_it_accepts_webhook_by_events_urls(path):
    InstanceConfigFactory.create(name="acme", is_default=True)
    payload = evolution_payload("text_pn")
    del payload["event"]

    response = post(path, payload)

    assert response.json()["status"] == "queued"


def test_a_tenant_named_like_an_event_keeps_its_name():
    InstanceConfigFactory.create(name="main", is_default=True)
    InstanceConfigFactory.create(name="messages-upsert")

    post("/webhook/evolution/messages-upsert", evolution_payload("text_pn"))

    assert Message.objects.get().instance.name == "messages-upsert"


def test_it_answers_duplicate_for_a_redelivered_message():
    InstanceConfigFactory.create(name="acme")
    payload = evolution_payload("text_pn")

    first = post("/webhook/evolution/acme", payload)
    second = post("/webhook/evolution/acme", payload)

    assert first.json()["status"] == "queued"
    assert second.json() == {"status": "duplicate", "message_id": payload["data"]["key"]["id"]}
    assert Message.objects.count() == 1


def test_a_chat_s_messages_share_one_conversation():
    InstanceConfigFactory.create(name="acme")
    payload = evolution_payload("text_pn")

    post("/webhook/evolution/acme", with_message_id(payload, "FIRST"))
    post("/webhook/evolution/acme", with_message_id(payload, "SECOND"))
    post(
        "/webhook/evolution/acme",
        with_message_id(payload, "OTHER", chat="5511900000000@s.whatsapp.net"),
    )

    first, second, other = Message.objects.order_by("id")
    assert first.conversation_id == second.conversation_id != other.conversation_id
    assert Conversation.objects.count() == 2


def test_a_conversation_whose_first_message_was_not_stored_is_not_remembered():
    InstanceConfigFactory.create(name="acme")
    payload = evolution_payload("text_pn")
    down = mock.patch.object(Message.objects, "bulk_create", side_effect=OperationalError("x"))
    with down:
        # Evolution retries a 503: the message is not lost.
        assert post("/webhook/evolution/acme", with_message_id(payload, "FIRST")).status_code == 503
    # Rolled back with the message.
    assert not Conversation.objects.exists()

    response = post("/webhook/evolution/acme", with_message_id(payload, "FIRST"))

    assert response.json()["status"] == "queued"
    assert Message.objects.get().conversation == Conversation.objects.get()


def test_the_same_message_id_on_two_tenants_is_two_messages():
    InstanceConfigFactory.create(name="one")
    InstanceConfigFactory.create(name="two")

    post("/webhook/evolution/one", evolution_payload("text_pn"))
    post("/webhook/evolution/two", evolution_payload("text_pn"))

    assert Message.objects.count() == 2


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("event_connection_update", "connection.update"),
        ("event_messages_update", "messages.update"),
        ("event_send_message", "send.message"),
    ],
)
def test_it_ignores_events_that_are_not_new_messages(fixture, reason):
    InstanceConfigFactory.create(name="acme")

    response = post("/webhook/evolution/acme", evolution_payload(fixture))

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert reason in response.json()["reason"]
    assert not Message.objects.exists()


def test_it_ignores_an_unreadable_message_with_the_reason(caplog):
    InstanceConfigFactory.create(name="acme")

    response = post("/webhook/evolution/acme", {"event": "messages.upsert", "data": {"key": {}}})

    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert "unreadable" in response.json()["reason"]
    assert "unreadable webhook" in caplog.text


def test_it_stores_an_ignored_message_with_its_reason_and_queues_nothing():
    InstanceConfigFactory.create(name="acme")

    response = post("/webhook/evolution/acme", evolution_payload("group_text"))

    assert response.json()["status"] == "ignored"
    message = Message.objects.get()
    assert message.status == Message.Status.IGNORED
    assert message.ignore_reason == response.json()["reason"]


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""])
def test_it_answers_400_to_a_body_that_is_not_json(body):
    InstanceConfigFactory.create(name="acme")

    response = Client().post("/webhook/evolution/acme", body, content_type="application/json")

    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


@pytest.mark.parametrize("body", [[1, 2], "text", 3])
def test_it_answers_400_to_json_that_is_not_an_object(body):
    InstanceConfigFactory.create(name="acme")

    response = post("/webhook/evolution/acme", body)

    assert response.status_code == 400
    assert "object" in response.json()["detail"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_it_answers_413_to_a_body_over_the_limit():
    InstanceConfigFactory.create(name="acme")
    payload = evolution_payload("text_pn")
    payload["padding"] = "x" * 2048

    response = post("/webhook/evolution/acme", payload)

    assert response.status_code == 413
    assert not Message.objects.exists()


def test_it_answers_405_to_a_get():
    InstanceConfigFactory.create(name="acme")

    assert Client().get("/webhook/evolution/acme").status_code == 405


def test_it_keeps_no_apikey_and_no_media_bytes_in_the_stored_payload():
    InstanceConfigFactory.create(name="acme")
    payload = evolution_payload("image_caption_base64")

    post("/webhook/evolution/acme", payload)

    message = Message.objects.get()
    stored = json.dumps(message.raw_payload)
    assert payload["apikey"] not in stored
    assert payload["data"]["message"]["base64"] not in stored
    assert message.media_base64 == payload["data"]["message"]["base64"]
    assert message.media_mimetype == "image/png"
