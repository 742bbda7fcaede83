"""HTTP servers on 127.0.0.1 that answer badly, for the outbound transport's tests.

    with serve_misbehaving(trickling) as server:    headers, then a byte every 50 ms
    with serve_misbehaving(silent) as server:       reads the request, never answers
    with serve_misbehaving(huge(50 * MiB)) as server:   a huge answer, made as it is sent
    with serve_misbehaving(hanging_up) as server:   reads the request, closes the connection
    with serve_misbehaving(answering_text(b"<html>")) as server:   a body that is not JSON

Each yields a `Misbehaving` whose `bytes_sent` counts the body bytes the server managed to
write and whose `finished` is set when its handler is done (the client gave up, or all sent).
Leaving the block releases a handler that is still waiting. A proxy's CONNECT gets the same
treatment, so each can also play a proxy that misbehaves.
"""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes import serve_handler

MiB = 1024 * 1024
CHUNK = 64 * 1024


@dataclass
class Misbehaving:
    url: str = ""
    bytes_sent: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


Behaviour = Callable[[BaseHTTPRequestHandler, Misbehaving], None]


@contextmanager
def serve_misbehaving(behaviour: Behaviour) -> Iterator[Misbehaving]:
    state = Misbehaving()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                behaviour(self, state)
            except OSError:  # the client closed the connection: what these tests want
                pass
            finally:
                state.finished.set()

        def do_CONNECT(self) -> None:
            self.do_POST()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve_handler(Handler) as url:
        state.url = url
        try:
            yield state
        finally:
            state.stop.set()


def trickling(handler: BaseHTTPRequestHandler, state: Misbehaving) -> None:
    """A 200 whose body comes a byte every 50 ms: each read succeeds, the answer never ends."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"[")
    while not state.stop.wait(0.05):
        handler.wfile.write(b" ")
        state.bytes_sent += 1


def silent(handler: BaseHTTPRequestHandler, state: Misbehaving) -> None:
    """Takes the request and says nothing until the test ends."""
    state.stop.wait()


def huge(size: int, *, declared: bool = False) -> Behaviour:
    """A 200 of `size` bytes, generated as it is sent; chunked unless `declared`, when its
    Content-Length says the size up front."""

    def answer(handler: BaseHTTPRequestHandler, state: Misbehaving) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if declared:
            handler.send_header("Content-Length", str(size))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b" " * CHUNK
        while state.bytes_sent < size and not state.stop.is_set():
            piece = chunk[: size - state.bytes_sent]
            frame = b"%x\r\n%b\r\n" % (len(piece), piece) if not declared else piece
            handler.wfile.write(frame)
            state.bytes_sent += len(piece)
        if not declared:
            handler.wfile.write(b"0\r\n\r\n")

    return answer


def hanging_up(handler: BaseHTTPRequestHandler, state: Misbehaving) -> None:
    """Takes the request and closes the connection without a word."""
    handler.close_connection = True


def answering_text(
    body: bytes, *, status: int = 200, content_type: str = "text/html", content_encoding: str = ""
) -> Behaviour:
    """A well-formed answer whose body is `body`, as a misconfigured proxy would send; with
    `content_encoding`, a body that says it is compressed so ("gzip")."""

    def answer(handler: BaseHTTPRequestHandler, state: Misbehaving) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if content_encoding:
            handler.send_header("Content-Encoding", content_encoding)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        state.bytes_sent += len(body)

    return answer


@contextmanager
def serve_nothing_accepting() -> Iterator[str]:
    """A port whose listen queue is full, so a new connection hangs in the handshake: a call
    to it times out before any byte of the request is sent. Yields its URL."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        fillers: list[socket.socket] = []
        try:
            for _ in range(10):  # Linux queues backlog + 1; stop at the first that hangs
                filler = socket.socket()
                fillers.append(filler)
                filler.settimeout(0.2)
                try:
                    filler.connect(address)
                except TimeoutError:
                    break
            yield f"http://127.0.0.1:{address[1]}"
        finally:
            for filler in fillers:
                filler.close()
