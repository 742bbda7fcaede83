"""Fakes of the Agents API and the Evolution API: real HTTP servers on 127.0.0.1.

Each records the requests it gets and answers from a script the test sets, so tests (and the
benchmarks) exercise the real clients, sockets and JSON included.
"""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    client_port: int = 0  # tells the connections apart


@dataclass
class FakeServer:
    """Answers each POST with the next scripted (status, body), then with `default`."""

    default: tuple[int, dict[str, Any]] = (200, {})
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    responder: Callable[[Recorded], tuple[int, dict[str, Any]]] | None = None
    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, recorded: Recorded) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(recorded)
            if self.script:
                return self.script.pop(0)
        if self.responder is not None:
            return self.responder(recorded)
        return self.default

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            recorded = Recorded(
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                time.monotonic(),
                client_port=self.client_address[1],
            )
            if fake.delay:
                time.sleep(fake.delay)
            status, answer = fake.answer(recorded)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in fake.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    """Closes its clients' kept-alive connections when shut down, as a stopped process would:
    a pooled connection must not reach a server that a test has stopped."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        for connection in self.connections:
            with suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)


@contextmanager
def serve(fake: FakeServer) -> Iterator[FakeServer]:
    server = _Server(_handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def agent_replying(text: str = "Olá! Abrimos às 9h.") -> FakeServer:
    return FakeServer(default=(200, {"message": text}))


def evolution_accepting() -> FakeServer:
    return FakeServer(default=(201, {"key": {"id": "SENT"}, "status": "PENDING"}))


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
