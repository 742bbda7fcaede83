from datetime import UTC, datetime

import pytest
from django.test import Client

from tests.conftest import API_KEY
from tests.factories import InstanceConfigFactory, MessageFactory
from tests.webhooks.conftest import evolution_payload, post_json
from webhooks.models import Conversation, Message, MessageAttempt

# The webhook view does its database work on its own threads: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = "/api/v1/messages"
MEDIA_BYTES = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
WEBHOOK_KEY = "evolution-webhook-key-7777"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def receive(tenant: str, fixture: str, **changes) -> Message:
    """Store a message the way production does: through the webhook."""
    response = post_json(f"/webhook/evolution/{tenant}", evolution_payload(fixture, **changes))
    assert response.json()["status"] == "queued", response.content
    return Message.objects.latest("id")


def test_it_lists_messages_newest_first(api_client):
    first, second, third = MessageFactory.create(), MessageFactory.create(), MessageFactory.create()

    response = api_client.get(LIST_URL)

    assert ids(response) == [third.pk, second.pk, first.pk]
    assert response.json()["count"] == 3


def test_it_describes_each_message(api_client):
    message = MessageFactory.create(
        instance=InstanceConfigFactory.create(name="acme"),
        chat_jid="5511912345678@s.whatsapp.net",
        push_name="Maria Silva",
        text="Oi!",
    )

    [item] = api_client.get(LIST_URL).json()["items"]

    assert item["id"] == message.pk
    assert item["instance"] == "acme"
    assert item["whatsapp_id"] == message.whatsapp_id
    assert item["status"] == "received"
    assert item["phone"] == "5511912345678"
    assert item["push_name"] == "Maria Silva"
    assert item["kind"] == "text"
    assert item["text"] == "Oi!"
    assert item["attempts"] == 0
    assert item["reply_text"] is None
    assert "raw_payload" not in item


def test_it_paginates_with_limit_and_offset(api_client):
    messages = [MessageFactory.create() for _ in range(5)]

    response = api_client.get(LIST_URL, {"limit": 2, "offset": 1})

    assert ids(response) == [messages[3].pk, messages[2].pk]
    assert response.json()["count"] == 5


def test_it_filters_by_tenant_name(api_client):
    acme, globex = (
        InstanceConfigFactory.create(name="acme"),
        InstanceConfigFactory.create(name="globex"),
    )
    ours = MessageFactory.create(instance=acme)
    MessageFactory.create(instance=globex)

    response = api_client.get(LIST_URL, {"instance": "acme"})

    assert ids(response) == [ours.pk]
    assert response.json()["count"] == 1
    assert ids(api_client.get(LIST_URL, {"instance": "ghost"})) == []


def test_it_filters_by_status(api_client):
    failed = MessageFactory.create(status=Message.Status.FAILED)
    MessageFactory.create(status=Message.Status.ANSWERED)
    MessageFactory.create(status=Message.Status.RECEIVED)

    response = api_client.get(LIST_URL, {"status": "failed"})

    assert ids(response) == [failed.pk]
    assert response.json()["count"] == 1


@pytest.mark.parametrize("phone", ["5511912345678", "+55 11 91234-5678", "+55 (11) 9 1234 5678"])
def test_it_filters_by_phone_however_it_is_written(api_client, phone):
    hers = MessageFactory.create(chat_jid="5511912345678@s.whatsapp.net")
    MessageFactory.create(chat_jid="5511900000000@s.whatsapp.net")

    assert ids(api_client.get(LIST_URL, {"phone": phone})) == [hers.pk]


def test_a_phone_without_digits_matches_no_message(api_client):
    MessageFactory.create(chat_jid="103784512345678@lid", phone="", reply_to="103784512345678@lid")

    assert ids(api_client.get(LIST_URL, {"phone": "+"})) == []


def test_it_combines_filters(api_client):
    acme = InstanceConfigFactory.create(name="acme")
    chat = "5511912345678@s.whatsapp.net"
    wanted = MessageFactory.create(instance=acme, chat_jid=chat, status=Message.Status.FAILED)
    MessageFactory.create(instance=acme, chat_jid=chat, status=Message.Status.ANSWERED)
    MessageFactory.create(chat_jid=chat, status=Message.Status.FAILED)

    response = api_client.get(
        LIST_URL, {"instance": "acme", "status": "failed", "phone": "+55 11 91234-5678"}
    )

    assert ids(response) == [wanted.pk]


def test_it_answers_422_for_an_unknown_status(api_client):
    MessageFactory.create()

    response = api_client.get(LIST_URL, {"status": "lost"})

    assert response.status_code == 422
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", LIST_URL), ("get", "/api/v1/messages/{id}"), ("post", "/api/v1/messages/{id}/retry")],
)
def test_every_endpoint_needs_the_api_key(method, path):
    message = MessageFactory.create(status=Message.Status.FAILED)
    url = path.format(id=message.pk)

    without_key = getattr(Client(), method)(url)
    wrong_key = getattr(Client(headers={"X-API-Key": "not-the-key"}), method)(url)

    assert without_key.status_code == 401
    assert wrong_key.status_code == 401
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert not Conversation.objects.filter(ready_at__isnull=False).exists()


def test_it_accepts_the_key_as_a_bearer_token():
    MessageFactory.create()

    response = Client(headers={"Authorization": f"Bearer {API_KEY}"}).get(LIST_URL)

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_it_shows_a_message_with_its_payload_but_not_the_webhook_apikey(api_client):
    # A tenant without an Evolution server of its own replies with the key each webhook names.
    InstanceConfigFactory.create(name="acme", evolution_url="", evolution_key="")
    message = receive("acme", "text_pn", apikey=WEBHOOK_KEY)
    assert message.reply_evolution_key == WEBHOOK_KEY

    response = api_client.get(f"/api/v1/messages/{message.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == message.pk
    assert body["instance"] == "acme"
    assert body["text"] == "Oi! Vocês abrem amanhã?"
    assert body["raw_payload"]["data"]["key"]["id"] == "3A1F2B9C8D7E6F5A4B3C"
    assert body["raw_payload"]["apikey"] == "(removed)"
    assert WEBHOOK_KEY not in response.content.decode()
    assert "reply_evolution_key" not in body


def test_it_shows_an_image_without_its_bytes(api_client):
    InstanceConfigFactory.create(name="acme")
    message = receive("acme", "image_caption_base64")
    assert message.media_base64

    response = api_client.get(f"/api/v1/messages/{message.pk}")

    body = response.json()
    assert body["kind"] == "image"
    assert body["media_mimetype"] == "image/png"
    assert body["raw_payload"]["data"]["message"]["base64"] == "(kept apart)"
    assert "media_base64" not in body
    assert message.media_base64 not in response.content.decode()


def test_no_answer_ever_includes_the_media_or_the_reply_key(api_client):
    message = MessageFactory.create(
        status=Message.Status.FAILED,
        kind="image",
        media_mimetype="image/png",
        media_base64=MEDIA_BYTES,
        reply_evolution_url="http://127.0.0.1:8080",
        reply_evolution_key=WEBHOOK_KEY,
    )

    responses = [
        api_client.get(LIST_URL),
        api_client.get(f"/api/v1/messages/{message.pk}"),
        api_client.post(f"/api/v1/messages/{message.pk}/retry"),
    ]

    for response in responses:
        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert MEDIA_BYTES not in text
        assert WEBHOOK_KEY not in text
        assert "media_base64" not in text
        assert "reply_evolution_key" not in text


def test_it_answers_404_in_json_for_an_unknown_message(api_client):
    response = api_client.get("/api/v1/messages/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "message 999999 not found"}


def test_it_retries_a_failed_message(api_client):
    message = MessageFactory.create(
        status=Message.Status.FAILED, attempts=6, last_error="the agent answered 503"
    )

    response = api_client.post(f"/api/v1/messages/{message.pk}/retry")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == message.pk
    assert body["status"] == "received"
    assert body["next_attempt_at"] is None
    message.refresh_from_db()
    assert message.status == Message.Status.RECEIVED
    [ready] = Conversation.objects.filter(ready_at__isnull=False)
    assert ready.pk == message.conversation_id


@pytest.mark.parametrize(
    "status",
    [
        Message.Status.RECEIVED,
        Message.Status.PROCESSING,
        Message.Status.ANSWERED,
        Message.Status.IGNORED,
    ],
)
def test_it_answers_409_when_the_message_has_not_failed(api_client, status):
    message = MessageFactory.create(status=status, attempts=2)

    response = api_client.post(f"/api/v1/messages/{message.pk}/retry")

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert str(message.pk) in detail
    assert status in detail
    message.refresh_from_db()
    assert message.status == status
    assert message.attempts == 2
    assert not Conversation.objects.filter(ready_at__isnull=False).exists()


def test_it_answers_404_when_retrying_an_unknown_message(api_client):
    response = api_client.post("/api/v1/messages/999999/retry")

    assert response.status_code == 404
    assert response.json() == {"detail": "message 999999 not found"}
    assert not Conversation.objects.filter(ready_at__isnull=False).exists()


def test_a_message_shows_the_history_of_its_attempts(api_client):
    message = MessageFactory.create(status=Message.Status.FAILED, attempts=2)
    for number, result in [(1, "retrying"), (2, "failed")]:
        MessageAttempt.objects.create(
            message=message, number=number, stage="agent", result=result,
            started_at=datetime(2026, 12, 1, 18, 32, number, tzinfo=UTC), latency_ms=30001,
            error="the agent did not answer within 30 s",
        )  # fmt: skip

    body = api_client.get(f"/api/v1/messages/{message.pk}").json()

    assert body["attempts"] == 2
    assert body["attempt_history"] == [
        {
            "number": number,
            "stage": "agent",
            "result": result,
            "started_at": f"2026-12-01T18:32:0{number}Z",
            "latency_ms": 30001,
            "error": "the agent did not answer within 30 s",
        }
        for number, result in [(1, "retrying"), (2, "failed")]
    ]


def test_a_message_waiting_for_its_next_try_shows_retrying_and_when(api_client):
    MessageFactory.create(
        status=Message.Status.RETRYING,
        next_attempt_at=datetime(2026, 12, 1, 18, 33, 10, tzinfo=UTC),
    )

    [item] = api_client.get(LIST_URL).json()["items"]

    assert (item["status"], item["next_attempt_at"]) == ("retrying", "2026-12-01T18:33:10Z")


def test_it_retries_a_message_waiting_for_its_next_try_now(api_client):
    message = MessageFactory.create(
        status=Message.Status.RETRYING, attempts=1, next_attempt_at=datetime(2099, 1, 1, tzinfo=UTC)
    )

    response = api_client.post(f"/api/v1/messages/{message.pk}/retry")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["attempts"]) == ("received", 1)
