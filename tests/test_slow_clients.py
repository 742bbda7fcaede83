"""The real web process (uvicorn serving omnihub.asgi) with clients that stall mid-body."""

import socket
import sys
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.processes import Children, answers_health, child_env, free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)  # the web process reads the test database

PLACES = 2  # WEB_MAX_REQUESTS: requests inside Django at once
HEADERS_THEN_PART_OF_THE_BODY = (
    b"POST /webhook/evolution/acme HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    b'{"event": "messages.upsert", "da'
)


def start_web(stack: ExitStack, tmp_path: Path, **settings: str) -> int:
    children = stack.enter_context(Children(tmp_path, child_env(**settings)))
    port = free_port()
    web = children.start("web", [sys.executable, "-m", "uvicorn", "omnihub.asgi:application",
                                 "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
                                 "--no-access-log", "--log-level", "warning"])  # fmt: skip
    wait_until(lambda: answers_health(f"http://127.0.0.1:{port}"), 30, "the web to start", web)
    return port


def stalling_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(HEADERS_THEN_PART_OF_THE_BODY)
    return sock


def test_clients_stalled_mid_body_do_not_take_the_server_offline(tmp_path):
    with ExitStack() as stack:
        port = start_web(stack, tmp_path, WEB_MAX_REQUESTS=str(PLACES), WEB_BODY_TIMEOUT="60")
        for _ in range(PLACES * 4):
            stack.enter_context(stalling_client(port))

        # Before, every place was held by a stalled body and this waited as long as they did.
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)

        assert response.status_code == 200


def test_a_body_that_stalls_is_answered_408_and_its_connection_closed(tmp_path):
    with ExitStack() as stack:
        port = start_web(stack, tmp_path, WEB_BODY_TIMEOUT="0.2")
        client = stack.enter_context(stalling_client(port))

        answer = b""
        while chunk := client.recv(4096):  # until the server closes the connection
            answer += chunk

        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'"detail"' in answer
