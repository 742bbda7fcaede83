"""The outbound connection pool against real local HTTP/1.1 servers (tests.fakes)."""

import httpx
import pytest

from tests.fakes import FakeServer, serve
from webhooks.outbound import post_json


def post(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return post_json(f"{url}/x", body={"n": 1}, headers=headers or {}, timeout=5)


def test_it_reuses_the_connection_for_the_next_call_to_the_same_server() -> None:
    with serve(FakeServer()) as fake:
        post(fake.url)
        post(fake.url)
    first, second = fake.requests
    assert first.client_port == second.client_port


def test_it_keeps_no_cookie_a_server_sets() -> None:
    with serve(FakeServer(headers={"Set-Cookie": "session=tenant-a; Path=/"})) as fake:
        post(fake.url)
        post(fake.url)
    assert "cookie" not in fake.requests[1].headers


def test_it_sends_only_the_headers_of_each_call() -> None:
    with serve(FakeServer()) as fake:
        post(fake.url, {"apikey": "tenant-a-key"})
        post(fake.url, {"x-api-key": "tenant-b-key"})
    first, second = (request.headers for request in fake.requests)
    assert first["apikey"] == "tenant-a-key"
    assert "apikey" not in second
    assert second["x-api-key"] == "tenant-b-key"


def test_it_reads_the_whole_answer() -> None:
    with serve(FakeServer(default=(201, {"key": {"id": "SENT"}}))) as fake:
        response = post(fake.url)
    assert response.status_code == 201
    assert response.json() == {"key": {"id": "SENT"}}


def test_a_server_that_stopped_is_not_reached_through_a_kept_connection() -> None:
    with serve(FakeServer()) as fake:
        post(fake.url)
    with pytest.raises(httpx.ConnectError):
        post(fake.url)
