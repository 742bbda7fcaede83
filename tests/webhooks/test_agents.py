"""The Agents API client against a real local HTTP server (tests.fakes): no database needed."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fakes import FakeServer, closed_port, serve
from webhooks.agents import AgentError, AgentMedia, AgentReply, AgentRequest, run_agent

REQUEST = AgentRequest(
    message_content="Oi! Vocês abrem amanhã?",
    message_type="text",
    session_name="acme-5511912345678",
    phone_number="+5511912345678",
    user_name="Maria Silva",
    whatsapp_id="5511912345678@s.whatsapp.net",
)


def ask(url: str, *, request: AgentRequest = REQUEST, timeout: float = 5) -> AgentReply:
    return run_agent(
        base_url=url, api_key="agent-key-0001", agent="sales", request=request, timeout=timeout
    )


def ask_fake(fake: FakeServer, **options: Any) -> AgentReply:
    with serve(fake):
        return ask(fake.url, **options)


@contextmanager
def serving_text(body: bytes, content_type: str = "text/html") -> Iterator[str]:
    """A server answering 200 with a body that is not JSON, as a misconfigured proxy would."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_it_posts_to_the_agents_run_endpoint_with_the_key():
    fake = FakeServer(default=(200, {"message": "Olá!"}))

    ask_fake(fake)

    [run] = fake.requests
    assert run.path == "/api/v1/agent/sales/run"
    assert run.headers["x-api-key"] == "agent-key-0001"
    assert run.headers["content-type"] == "application/json"


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


def test_it_sends_a_null_phone_number_when_none_is_known():
    fake = FakeServer(default=(200, {"message": "Olá!"}))
    request = AgentRequest(
        message_content="Oi",
        message_type="text",
        session_name="acme-103784512345678",
        phone_number=None,
        user_name="",
        whatsapp_id="103784512345678@lid",
        message_limit=20,
    )

    ask_fake(fake, request=request)

    body = fake.requests[0].body
    assert body["user"]["phone_number"] is None
    assert body["user"]["user_data"]["whatsapp_id"] == "103784512345678@lid"
    assert body["message_limit"] == 20


def test_it_sends_inline_media_as_data():
    fake = FakeServer(default=(200, {"message": "Bonita foto!"}))
    photo = AgentMedia(mime_type="image/jpeg", data="aGVsbG8=", name="photo.jpg", alt_text="Olha")
    request = replace(REQUEST, message_type="image", media=[photo])

    ask_fake(fake, request=request)

    body = fake.requests[0].body
    assert body["message_type"] == "image"
    assert body["media_contents"] == [
        {"mime_type": "image/jpeg", "data": "aGVsbG8=", "name": "photo.jpg", "alt_text": "Olha"}
    ]


def test_it_sends_media_it_does_not_hold_as_a_url():
    fake = FakeServer(default=(200, {"message": "Recebido"}))
    document = AgentMedia(mime_type="application/pdf", media_url="https://files.test/a.pdf")
    request = replace(REQUEST, message_type="document", media=[document])

    ask_fake(fake, request=request)

    assert fake.requests[0].body["media_contents"] == [
        {"mime_type": "application/pdf", "media_url": "https://files.test/a.pdf"}
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


@pytest.mark.parametrize("answer", [{}, {"message": ""}, {"message": None}])
def test_a_missing_or_empty_message_is_an_empty_reply(answer):
    assert ask_fake(FakeServer(default=(200, answer))).text == ""


@pytest.mark.parametrize("answer", [["a", "list"], "a string", 42])
def test_a_json_answer_that_is_not_an_object_is_a_permanent_error(answer):
    with pytest.raises(AgentError, match="not a JSON object") as caught:
        ask_fake(FakeServer(default=(200, answer)))

    assert caught.value.retryable is False
    assert caught.value.status_code == 200


def test_an_answer_that_is_not_json_is_a_permanent_error():
    with (
        serving_text(b"<html>Welcome to nginx!</html>") as url,
        pytest.raises(AgentError, match="not a JSON object") as caught,
    ):
        ask(url)

    assert caught.value.retryable is False
    assert "Welcome to nginx!" in str(caught.value)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_busy_or_broken_agent_is_worth_retrying(status):
    with pytest.raises(AgentError) as caught:
        ask_fake(FakeServer(default=(status, {"detail": "try later"})))

    assert caught.value.retryable is True
    assert caught.value.status_code == status
    assert str(status) in str(caught.value)
    assert "try later" in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_refused_request_is_not_worth_retrying(status):
    with pytest.raises(AgentError) as caught:
        ask_fake(FakeServer(default=(status, {"detail": "no"})))

    assert caught.value.retryable is False
    assert caught.value.status_code == status
    assert str(status) in str(caught.value)


def test_an_agent_slower_than_the_timeout_is_worth_retrying():
    fake = FakeServer(default=(200, {"message": "too late"}), delay=0.5)

    with serve(fake):
        with pytest.raises(AgentError) as caught:
            ask(fake.url, timeout=0.2)
        # The fake's late answer fails on the closed socket: let that happen inside this test.
        time.sleep(fake.delay)

    assert caught.value.retryable is True
    assert "did not answer within 0.2 s" in str(caught.value)


def test_an_agent_that_cannot_be_reached_is_worth_retrying():
    with pytest.raises(AgentError, match="cannot reach the agent") as caught:
        ask(f"http://127.0.0.1:{closed_port()}")

    assert caught.value.retryable is True
    assert caught.value.status_code is None


def test_each_call_sends_the_key_it_is_given():
    first = FakeServer(default=(200, {"message": "one"}))
    second = FakeServer(default=(200, {"message": "two"}))

    with serve(first), serve(second):
        run_agent(base_url=first.url, api_key="key-one", agent="a", request=REQUEST, timeout=5)
        run_agent(base_url=second.url, api_key="key-two", agent="b", request=REQUEST, timeout=5)

    assert first.requests[0].headers["x-api-key"] == "key-one"
    assert second.requests[0].headers["x-api-key"] == "key-two"
