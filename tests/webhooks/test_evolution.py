"""The Evolution API client against a real local HTTP server (tests.fakes): no database needed."""

import time
from typing import Any

import pytest

from tests.fakes import FakeServer, closed_port, serve
from webhooks.evolution import EvolutionError, send_text


def send(url: str, *, timeout: float = 5) -> None:
    send_text(
        base_url=url,
        api_key="evolution-key-0001",
        instance="acme-wa",
        number="5511912345678",
        text="Olá! Abrimos às 9h.",
        timeout=timeout,
    )


def send_to(fake: FakeServer, **options: Any) -> None:
    with serve(fake):
        send(fake.url, **options)


def test_it_posts_the_text_to_the_instances_send_text_endpoint():
    fake = FakeServer(default=(201, {"key": {"id": "SENT"}, "status": "PENDING"}))

    send_to(fake)

    [sent] = fake.requests
    assert sent.path == "/message/sendText/acme-wa"
    assert sent.headers["apikey"] == "evolution-key-0001"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {"number": "5511912345678", "text": "Olá! Abrimos às 9h."}


@pytest.mark.parametrize("status", [200, 201])
def test_a_success_status_is_a_sent_reply(status):
    fake = FakeServer(default=(status, {"status": "PENDING"}))

    send_to(fake)  # raises on failure

    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_a_busy_or_broken_evolution_is_worth_retrying(status):
    with pytest.raises(EvolutionError) as caught:
        send_to(FakeServer(default=(status, {"error": "Internal Server Error"})))

    assert caught.value.retryable is True
    assert caught.value.status_code == status
    assert f"Evolution answered {status}" in str(caught.value)
    assert "Internal Server Error" in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refused_send_is_not_worth_retrying(status):
    answer = {"status": status, "error": "Bad Request", "response": {"message": ["not exists"]}}

    with pytest.raises(EvolutionError) as caught:
        send_to(FakeServer(default=(status, answer)))

    assert caught.value.retryable is False
    assert caught.value.status_code == status
    assert "not exists" in str(caught.value)


def test_an_evolution_slower_than_the_timeout_is_worth_retrying():
    fake = FakeServer(default=(201, {}), delay=0.5)

    with serve(fake):
        with pytest.raises(EvolutionError) as caught:
            send(fake.url, timeout=0.2)
        # The fake's late answer fails on the closed socket: let that happen inside this test.
        time.sleep(fake.delay)

    assert caught.value.retryable is True
    assert "did not answer within 0.2 s" in str(caught.value)


def test_an_evolution_that_cannot_be_reached_is_worth_retrying():
    with pytest.raises(EvolutionError, match="cannot reach Evolution") as caught:
        send(f"http://127.0.0.1:{closed_port()}")

    assert caught.value.retryable is True
    assert caught.value.status_code is None
