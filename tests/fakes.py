"""Fakes of the Agents API and the Evolution API: real HTTP servers on 127.0.0.1.

Each records the requests it gets and answers from a script the test sets, so tests (and the
benchmarks) exercise the real clients, sockets and JSON included. A test can hold requests
open (`gate`) and wait until a number of them are open at once (`wait_for_open`), with no
sleeping. Servers that answer badly, for the transport's tests, are in tests.misbehaving.
"""

import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    client_port: int = 0  # tells the connections apart
    method: str = "POST"


Responder = Callable[[Recorded], Answer]


@dataclass
class FakeServer:
    """Answers each POST (and GET, with an empty body) from the first of `routes` whose key
    starts its path, else with the next scripted answer, else from `responder`, else from
    `default` (an answer, or a function giving one).

    While `gate` is set to an unset Event, requests whose path starts with `gate_prefix` are
    held, after their answer is chosen, until the test sets it."""

    default: Answer | Responder = (200, {})
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    responder: Responder | None = None
    requests: list[Recorded] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    routes: dict[str, Responder] = field(default_factory=dict)
    gate: threading.Event | None = None
    gate_prefix: str = ""
    open_requests: int = 0  # arrived and not yet answered
    most_open: int = 0  # the most that were open at once
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def answer(self, recorded: Recorded) -> Answer:
        with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
        for prefix, route in self.routes.items():
            if recorded.path.startswith(prefix):
                return route(recorded)
        with self._lock:
            if self.script:
                return self.script.pop(0)
        if self.responder is not None:
            return self.responder(recorded)
        return self.default(recorded) if callable(self.default) else self.default

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """The requests so far, once `count` have come (or `timeout` passed)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def wait_for_open(self, count: int, timeout: float = 10.0) -> bool:
        """Whether `count` requests were open at once within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.most_open >= count, timeout)

    def hold(self, recorded: Recorded) -> None:
        gate = self.gate
        if gate is not None and recorded.path.startswith(self.gate_prefix):
            gate.wait()

    def count_open(self, change: int) -> None:
        with self._changed:
            self.open_requests += change
            self.most_open = max(self.most_open, self.open_requests)
            self._changed.notify_all()


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            recorded = Recorded(
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                time.monotonic(),
                client_port=self.client_address[1],
                method=self.command,
            )
            fake.count_open(+1)
            try:
                if fake.delay:
                    time.sleep(fake.delay)
                status, answer = fake.answer(recorded)
                fake.hold(recorded)
                payload = json.dumps(answer).encode()
                # A client that gave up has closed the connection: nothing to tell it.
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in fake.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
            finally:
                fake.count_open(-1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    """Closes its clients' kept-alive connections when shut down, as a stopped process would:
    a pooled connection must not reach a server that a test has stopped."""

    daemon_threads = True
    # Tests open hundreds of connections at once; the default backlog of 5 would drop some.
    request_queue_size = 1024

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a call cancelled mid-way, as the worker's typing calls are)
        # is no error of the fake's; anything else is printed as usual.
        if not isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        for connection in self.connections:
            with suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)


@contextmanager
def serve_handler(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 for the block, over TLS with `tls` (see tests.tls); yields
    the server's URL."""
    server = _Server(handler)
    if tls is not None:
        # Each connection's handshake runs in accept(); one the client aborts is dropped there.
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve(fake: FakeServer, *, tls: ssl.SSLContext | None = None) -> Iterator[FakeServer]:
    with serve_handler(_handler(fake), tls=tls) as url:
        fake.url = url
        try:
            yield fake
        finally:
            if fake.gate is not None:
                fake.gate.set()  # lets held handler threads end with the test


def agent_replying(text: str = "Olá! Abrimos às 9h.") -> FakeServer:
    return FakeServer(default=(200, {"message": text}))


def evolution_accepting() -> FakeServer:
    """Accepts every sendText as Evolution v2 does, each with its own id ("SENT-1", ...),
    answers findMessages with the texts it sent, newest first, in Evolution v2's shape, and
    takes sendPresence at once (a test gates it to hold it open, as Evolution does)."""
    chats = _EvolutionChats()
    return FakeServer(
        default=chats.send,
        routes={"/chat/findMessages/": chats.find, "/chat/sendPresence/": presence_shown},
    )


def presence_shown(recorded: Recorded) -> Answer:
    """Evolution v2's answer to sendPresence, once the delay is over."""
    return 201, {"presence": recorded.body.get("presence")}


def sends(fake: FakeServer) -> list[Recorded]:
    """The sendText calls a fake Evolution took, in order."""
    return [r for r in fake.requests if r.path.startswith("/message/sendText/")]


def presences(fake: FakeServer) -> list[Recorded]:
    """The sendPresence calls a fake Evolution took, in order."""
    return [r for r in fake.requests if r.path.startswith("/chat/sendPresence/")]


def evolution_instances(api_key: str, states: dict[str, str]) -> FakeServer:
    """An Evolution server with these instances (name → connection state) and this global
    key: webhook/set, webhook/find and instance/connectionState as Evolution v2 answers them,
    404 for an unknown instance (checked first, as Evolution's guards do) and 401 for a wrong
    key."""
    webhooks: dict[str, dict[str, Any] | None] = dict.fromkeys(states)

    def guarded(handle: Callable[[str, Recorded], Answer]) -> Responder:
        def respond(recorded: Recorded) -> Answer:
            instance = recorded.path.rsplit("/", 1)[-1]
            if instance not in states:
                message = f'The "{instance}" instance does not exist'
                return 404, {
                    "status": 404,
                    "error": "Not Found",
                    "response": {"message": [message]},
                }
            if recorded.headers.get("apikey") != api_key:
                return 401, {
                    "status": 401,
                    "error": "Unauthorized",
                    "response": {"message": "Unauthorized"},
                }
            return handle(instance, recorded)

        return respond

    def set_webhook(instance: str, recorded: Recorded) -> Answer:
        given = recorded.body["webhook"]
        webhooks[instance] = {
            "id": f"webhook-{instance}", "url": given["url"], "headers": given.get("headers"),
            "enabled": given["enabled"], "events": given["events"],
            "webhookByEvents": given["byEvents"], "webhookBase64": given["base64"],
            "instanceId": f"id-{instance}",
        }  # fmt: skip
        return 201, webhooks[instance]

    def find_webhook(instance: str, recorded: Recorded) -> Answer:
        return 200, webhooks[instance]

    def connection_state(instance: str, recorded: Recorded) -> Answer:
        return 200, {"instance": {"instanceName": instance, "state": states[instance]}}

    return FakeServer(
        routes={
            "/webhook/set/": guarded(set_webhook),
            "/webhook/find/": guarded(find_webhook),
            "/instance/connectionState/": guarded(connection_state),
        }
    )


class _EvolutionChats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[dict[str, Any]] = []

    def send(self, recorded: Recorded) -> Answer:
        number = str(recorded.body.get("number", ""))
        with self._lock:
            record = {
                "id": f"record-{len(self._sent) + 1}",
                "key": {
                    "remoteJid": number if "@" in number else f"{number}@s.whatsapp.net",
                    "fromMe": True,
                    "id": f"SENT-{len(self._sent) + 1}",
                },
                "pushName": "Você",
                "messageType": "conversation",
                "message": {"conversation": recorded.body.get("text", "")},
                "messageTimestamp": int(time.time()),
                "instanceId": "fake-instance",
                "source": "unknown",
                "contextInfo": None,
                "MessageUpdate": [],
            }
            self._sent.append(record)
        return 201, {**record, "status": "PENDING"}

    def find(self, recorded: Recorded) -> Answer:
        key = (recorded.body.get("where") or {}).get("key") or {}
        size = int(recorded.body.get("offset") or 50)
        page = int(recorded.body.get("page") or 1)
        with self._lock:
            found = [
                record
                for record in reversed(self._sent)
                if all(record["key"].get(name) == value for name, value in key.items())
            ]
        records = found[(page - 1) * size : page * size]
        pages = -(-len(found) // size)
        return 200, {
            "messages": {
                "total": len(found),
                "pages": pages,
                "currentPage": page,
                "records": records,
            }
        }


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
