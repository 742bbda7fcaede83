"""The async Agents API client against a real local HTTP server (tests.fakes): no database."""

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from tests.fakes import FakeServer, closed_port, serve
from tests.misbehaving import answering_text, serve_misbehaving
from webhooks.integrations.agents.client import AgentMedia, AgentReply, AgentRequest, run_agent
from webhooks.integrations.transport import OutboundError, new_client

REQUEST = AgentRequest(
    message_content="Oi! Vocês abrem amanhã?",
    message_type="text",
    session_name="acme-5511912345678",
    phone_number="+5511912345678",
    user_name="Maria Silva",
    whatsapp_id="5511912345678@s.whatsapp.net",
)


def ask(url: str, *, request: AgentRequest = REQUEST, **options: Any) -> AgentReply:
    async def run() -> AgentReply:
        async with new_client() as client:
            return await run_agent(
                client,
                base_url=url,
                api_key=options.pop("api_key", "agent-key-0001"),
                agent=options.pop("agent", "sales"),
                request=request,
                deadline=options.pop("deadline", 5.0),
            )

    return asyncio.run(run())


def ask_fake(fake: FakeServer, **options: Any) -> AgentReply:
    with serve(fake):
        return ask(fake.url, **options)


def refusal(fake: FakeServer) -> OutboundError:
    with pytest.raises(OutboundError) as caught:
        ask_fake(fake)
    return caught.value


def test_it_posts_to_the_agents_run_endpoint_with_the_key():
    fake = FakeServer(default=(200, {"message": "Olá!"}))

    ask_fake(fake, api_key="key-one")

    [run] = fake.requests
    assert run.path == "/api/v1/agent/sales/run"
    assert run.headers["x-api-key"] == "key-one"
    assert run.headers["content-type"] == "application/json"


def test_an_agent_name_cannot_leave_its_path_segment():
    fake = FakeServer(default=(200, {"message": "Olá!"}))

    ask_fake(fake, agent="sales/../admin?x=1")

    # "/" and "?" stay escaped; "=" means nothing in a path, and yarl sends it unescaped.
    assert fake.requests[0].path == "/api/v1/agent/sales%2F..%2Fadmin%3Fx=1/run"


def test_it_sends_the_message_and_who_sent_it():
    fake = FakeServer(default=(200, {"message": "Olá!"}))

    ask_fake(fake)

    assert fake.requests[0].body == {
        "message_content": "Oi! Vocês abrem amanhã?",
        "message_type": "text",
        "session_name": "acme-5511912345678",
        "user": {
            "phone_number": "+5511912345678",
            "email": None,
            "user_data": {
                "name": "Maria Silva",
                "whatsapp_id": "5511912345678@s.whatsapp.net",
                "source": "whatsapp",
            },
        },
        "message_limit": 100,
    }


def test_it_sends_inline_media_as_data_and_other_media_as_a_url():
    fake = FakeServer(default=(200, {"message": "Bonita foto!"}))
    photo = AgentMedia(mime_type="image/jpeg", data="aGVsbG8=", name="photo.jpg", alt_text="Olha")
    document = AgentMedia(mime_type="application/pdf", media_url="https://files.test/a.pdf")

    ask_fake(fake, request=replace(REQUEST, message_type="image", media=[photo, document]))

    assert fake.requests[0].body["media_contents"] == [
        {"mime_type": "image/jpeg", "data": "aGVsbG8=", "name": "photo.jpg", "alt_text": "Olha"},
        {"mime_type": "application/pdf", "media_url": "https://files.test/a.pdf"},
    ]


def test_it_sends_no_media_contents_for_a_text():
    fake = FakeServer(default=(200, {"message": "Olá!"}))

    ask_fake(fake)

    assert "media_contents" not in fake.requests[0].body


def test_it_returns_the_agents_message_and_how_long_it_took():
    fake = FakeServer(default=(200, {"message": "Abrimos às 9h.", "session": "x"}), delay=0.05)

    reply = ask_fake(fake)

    assert reply.text == "Abrimos às 9h."
    assert 50 <= reply.latency_ms < 5000


@pytest.mark.parametrize("message", ["", None])
def test_an_empty_message_means_nothing_to_send(message):
    assert ask_fake(FakeServer(default=(200, {"message": message}))).text == ""


@pytest.mark.parametrize(("message", "text"), [(42, "42"), (True, "True")])
def test_a_message_that_is_not_a_string_is_sent_as_text(message, text):
    assert ask_fake(FakeServer(default=(200, {"message": message}))).text == text


@pytest.mark.parametrize("answer", [{"answer": "Sim"}, {}, ["a", "list"], "a string", 42])
def test_an_answer_without_a_message_is_a_permanent_error_that_quotes_it(answer):
    error = refusal(FakeServer(default=(200, answer)))

    assert str(error).startswith("the agent answered without a message: ")
    assert error.retryable is False
    assert error.status_code == 200


def test_the_quoted_answer_is_cut_short():
    error = refusal(FakeServer(default=(200, {"answer": "Sim! " * 200})))

    assert '{"answer": "Sim! Sim!' in str(error)
    assert len(str(error)) < 300


def test_an_answer_that_is_not_json_is_a_permanent_error():
    with (
        serve_misbehaving(answering_text(b"<html>Welcome to nginx!</html>")) as server,
        pytest.raises(OutboundError) as caught,
    ):
        ask(server.url)

    assert caught.value.retryable is False
    assert "Welcome to nginx!" in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_broken_agent_is_worth_retrying(status):
    error = refusal(FakeServer(default=(status, {"detail": "try later"})))

    assert error.retryable is True
    assert error.status_code == status
    assert "try later" in str(error)


@pytest.mark.parametrize("status", [401, 404, 422])
def test_a_refused_request_is_not_worth_retrying(status):
    error = refusal(FakeServer(default=(status, {"detail": "no"})))

    assert error.retryable is False
    assert error.status_code == status


def test_an_agent_slower_than_the_deadline_is_worth_retrying():
    fake = FakeServer(default=(200, {"message": "too late"}), delay=0.5)

    with serve(fake), pytest.raises(OutboundError) as caught:
        ask(fake.url, deadline=0.2)

    assert str(caught.value) == f"the agent at {fake.url} did not answer within 0.2 s"
    assert caught.value.retryable is True
    assert caught.value.maybe_delivered is True


def test_an_agent_that_cannot_be_reached_is_worth_retrying():
    url = f"http://127.0.0.1:{closed_port()}"

    with pytest.raises(OutboundError) as caught:
        ask(url)

    assert str(caught.value) == f"cannot reach the agent at {url}: connection refused"
    assert caught.value.retryable is True
    assert caught.value.maybe_delivered is False
