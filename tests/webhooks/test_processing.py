"""webhooks.processing piece by piece: backoff, what the agent is asked, retries and their order."""

import pytest

from tests.factories import InstanceConfigFactory, MessageFactory
from tests.fakes import Recorded
from tests.webhooks.conftest import drain_tasks, evolution_payload, post_json, with_message_id
from webhooks import agents, processing
from webhooks.models import Message
from webhooks.processing import agent_request, retry_delay

pytestmark = pytest.mark.django_db(transaction=True)

PHOTO = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
PHOTO_URL = "https://mmg.whatsapp.net/o1/v/t62.7118-24/photo.enc"


def post(tenant: str, payload: dict) -> None:
    response = post_json(f"/webhook/evolution/{tenant}", payload)
    assert response.json()["status"] == "queued", response.content


def text_in_chat(chat_digits: str, text: str, message_id: str) -> dict:
    payload = evolution_payload("text_pn")
    payload["data"]["message"] = {"conversation": text}
    return with_message_id(payload, message_id, f"{chat_digits}@s.whatsapp.net")


# retry_delay


@pytest.fixture
def real_backoff(settings):
    settings.RETRY_BASE_DELAY = 2.0
    settings.RETRY_MAX_DELAY = 300.0


@pytest.mark.usefixtures("real_backoff")
def test_the_retry_delay_doubles_with_each_attempt_until_its_cap(monkeypatch):
    monkeypatch.setattr(processing.random, "uniform", lambda low, high: high)

    ceilings = [retry_delay(attempt) for attempt in range(1, 11)]

    assert ceilings == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


@pytest.mark.usefixtures("real_backoff")
def test_the_retry_delay_is_jittered_between_half_its_ceiling_and_its_ceiling():
    for attempt, ceiling in [(1, 2), (3, 8), (6, 64), (9, 300), (30, 300)]:
        delays = [retry_delay(attempt) for _ in range(200)]

        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), attempt
        assert len(set(delays)) > 1  # jittered, so retries do not arrive together
        assert max(delays) - min(delays) > ceiling / 10


def test_the_retry_delay_follows_the_settings(settings):
    settings.RETRY_BASE_DELAY = 0.5
    settings.RETRY_MAX_DELAY = 3.0

    assert 0.25 <= retry_delay(1) <= 0.5
    assert 1.0 <= retry_delay(3) <= 2.0
    assert 1.5 <= retry_delay(10) <= 3.0


# agent_request


def test_a_text_is_asked_as_text_in_the_phones_session():
    tenant = InstanceConfigFactory(session_id_prefix="acme-")
    message = MessageFactory(
        instance=tenant,
        chat_jid="5511912345678@s.whatsapp.net",
        whatsapp_user_id="5511912345678@s.whatsapp.net",
        push_name="Maria Silva",
        text="Oi! Vocês abrem amanhã?",
    )

    request = agent_request(message)

    assert request == agents.AgentRequest(
        message_content="Oi! Vocês abrem amanhã?",
        message_type="text",
        session_name="acme-5511912345678",
        phone_number="+5511912345678",
        user_name="Maria Silva",
        whatsapp_id="5511912345678@s.whatsapp.net",
        media=[],
    )


def test_a_quoted_text_carries_what_it_replies_to():
    message = MessageFactory(
        text="Esse aqui, chegou amassado", quoted_text="Seu pedido #42 foi entregue"
    )

    request = agent_request(message)

    assert request.message_content == (
        '[In reply to: "Seu pedido #42 foi entregue"]\nEsse aqui, chegou amassado'
    )
    assert request.message_type == "text"


@pytest.mark.parametrize("kind", ["location", "contact"])
def test_other_readable_kinds_are_asked_as_text(kind):
    message = MessageFactory(kind=kind, text="📍 Av. Paulista, 1000")

    request = agent_request(message)

    assert request.message_type == "text"
    assert request.message_content == "📍 Av. Paulista, 1000"
    assert request.media == []


def test_an_image_with_its_bytes_is_sent_inline():
    message = MessageFactory(
        kind="image",
        text="Olha a foto",
        media_mimetype="image/png",
        media_base64=PHOTO,
        media_url=PHOTO_URL,
    )

    request = agent_request(message)

    assert request.message_type == "image"
    assert request.message_content == "Olha a foto"
    assert request.media == [
        agents.AgentMedia(
            mime_type="image/png", data=PHOTO, media_url=None, name="", alt_text="Olha a foto"
        )
    ]


def test_an_image_without_its_bytes_is_sent_by_url():
    message = MessageFactory(
        kind="image", text="", media_mimetype="image/jpeg", media_url=PHOTO_URL
    )

    [media] = agent_request(message).media

    assert media.data is None
    assert media.media_url == PHOTO_URL
    assert media.mime_type == "image/jpeg"


def test_a_document_keeps_its_file_name_and_a_default_mime_type():
    message = MessageFactory(
        kind="document", text="", media_file_name="boleto.pdf", media_url="https://files.test/b"
    )

    request = agent_request(message)

    assert request.message_type == "document"
    assert request.media == [
        agents.AgentMedia(
            mime_type="application/octet-stream",
            media_url="https://files.test/b",
            name="boleto.pdf",
        )
    ]


def test_media_that_is_neither_held_nor_linked_is_left_out():
    message = MessageFactory(kind="audio", text="", media_mimetype="audio/ogg")

    request = agent_request(message)

    assert request.message_type == "audio"
    assert request.media == []


def test_a_lid_chat_without_a_phone_is_its_own_session(agent, evolution, tenant_at):
    tenant_at(name="acme", session_id_prefix="acme-")
    post("acme", evolution_payload("lid_without_phone"))
    message = Message.objects.get()

    request = agent_request(message)

    assert message.phone == ""
    assert request.phone_number is None
    assert request.session_name == "acme-103784512345678"
    assert request.whatsapp_id == "103784512345678@lid"


# attempts and retries


def test_a_message_the_agent_keeps_failing_ends_failed_after_the_last_attempt(
    agent, evolution, tenant_at, settings
):
    settings.MESSAGE_MAX_ATTEMPTS = 3
    tenant_at(name="acme")
    agent.default = (503, {"detail": "overloaded"})

    post("acme", evolution_payload("text_pn"))
    drain_tasks()

    assert len(agent.requests) == 3
    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.attempts == 3
    assert message.next_attempt_at is None
    assert message.reply_text is None
    assert "503" in message.last_error
    assert "overloaded" in message.last_error


def test_a_retried_message_that_then_succeeds_forgets_its_last_error(agent, evolution, tenant_at):
    tenant_at(name="acme")
    agent.script = [(503, {"detail": "overloaded"})]

    post("acme", evolution_payload("text_pn"))
    drain_tasks()

    message = Message.objects.get()
    assert message.status == Message.Status.ANSWERED
    assert message.attempts == 2
    assert message.last_error == ""
    assert message.reply_text == "Olá! Abrimos às 9h."
    assert message.answered_at is not None


def test_a_reply_evolution_keeps_refusing_ends_failed_having_asked_the_agent_once(
    agent, evolution, tenant_at, settings
):
    settings.MESSAGE_MAX_ATTEMPTS = 2
    tenant_at(name="acme")
    evolution.default = (500, {"error": "boom"})

    post("acme", evolution_payload("text_pn"))
    drain_tasks()

    assert len(agent.requests) == 1
    assert len(evolution.requests) == 2
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.reply_text == "Olá! Abrimos às 9h."
    assert message.last_error.startswith("sending the reply failed: Evolution answered 500")


def test_an_unexpected_error_counts_as_a_failed_attempt(
    evolution, tenant_at, settings, monkeypatch
):
    settings.MESSAGE_MAX_ATTEMPTS = 2
    tenant_at(name="acme")
    calls = []

    def broken_agent(**arguments):
        calls.append(arguments)
        raise RuntimeError("boom")

    monkeypatch.setattr(agents, "run_agent", broken_agent)

    post("acme", evolution_payload("text_pn"))
    drain_tasks()

    assert len(calls) == 2
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.last_error == "unexpected error: RuntimeError('boom')"


def test_a_tenant_with_no_known_evolution_server_fails_without_retrying(agent, evolution):
    InstanceConfigFactory(name="acme", agent_api_url=agent.url, evolution_url="", evolution_key="")

    post("acme", evolution_payload("text_pn", server_url=""))
    drain_tasks()

    assert len(agent.requests) == 1
    assert evolution.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.attempts == 1
    assert message.last_error == "no Evolution server is known for this tenant"


def test_a_message_waiting_for_a_retry_holds_back_its_chat_but_not_others(
    agent, evolution, tenant_at, settings
):
    # Long enough that the other chat's task surely runs while the first message waits.
    settings.RETRY_BASE_DELAY = settings.RETRY_MAX_DELAY = 0.3
    tenant_at(name="acme")
    failed_once: set[str] = set()

    def first_try_of_a1_fails(run: Recorded) -> tuple[int, dict]:
        content = run.body["message_content"]
        if content == "A1" and content not in failed_once:
            failed_once.add(content)
            return 503, {"detail": "busy"}
        return 200, {"message": f"re: {content}"}

    agent.responder = first_try_of_a1_fails
    post("acme", text_in_chat("5511900000001", "A1", "A-1"))
    post("acme", text_in_chat("5511900000001", "A2", "A-2"))
    post("acme", text_in_chat("5511900000002", "B1", "B-1"))
    drain_tasks()

    asked = [run.body["message_content"] for run in agent.requests]
    assert asked == ["A1", "B1", "A1", "A2"]
    assert [sent.body["text"] for sent in evolution.requests] == ["re: B1", "re: A1", "re: A2"]
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.ANSWERED}


# connections


@pytest.mark.parametrize("max_age", [0, None])
def test_a_worker_waiting_on_its_agent_holds_a_connection_only_if_they_persist(
    max_age, agent, evolution, tenant_at, monkeypatch
):
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", max_age)
    connection.close()  # reopened under that setting
    tenant_at(name="acme")
    post("acme", evolution_payload("text_pn"))
    held = []
    run_agent = agents.run_agent

    def noting_the_connection(**kwargs: object) -> agents.AgentReply:
        held.append(connection.connection is not None)
        return run_agent(**kwargs)

    monkeypatch.setattr(agents, "run_agent", noting_the_connection)

    drain_tasks()

    # Postgres runs with CONN_MAX_AGE=0: the connection is back in its pool meanwhile.
    assert held == [max_age is None]
    assert len(evolution.requests) == 1
