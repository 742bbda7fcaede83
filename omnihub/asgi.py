import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.asgi import get_asgi_application

from omnihub.middleware import WEBHOOK_PATH_PREFIX

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnihub.settings")

# As Django's ASGIHandler takes them, so that it is an ASGIApp.
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyTooLargeError(Exception):
    pass


class _ClientGoneError(Exception):
    pass


class BoundedRequests:
    """At most `limit` requests inside Django at once; the others wait their turn on the event
    loop. Django gives every request a thread of its own for its sync parts (its signals, sync
    views), so without a bound a burst of 256 webhooks held 256 threads and their memory.

    A request takes its place only once its whole body has arrived, within `body_timeout`
    seconds (else 408) and `max_body_size` bytes (else 413; None: no limit): Django reads the
    body inside, so clients that sent headers and then stalled held every place, and the
    server answered nothing, /health included, for as long as they stayed connected."""

    def __init__(
        self, app: ASGIApp, limit: int, *, body_timeout: float, max_body_size: int | None
    ) -> None:
        self.app = app
        self.limit = limit
        self.body_timeout = body_timeout
        self.max_body_size = max_body_size
        self._slots: asyncio.Semaphore | None = None  # made on the server's own event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # e.g. a server's lifespan messages
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read_body(scope, receive)
        except TimeoutError:
            detail = f"the request body did not arrive within {self.body_timeout:g} s"
            await _answer(send, 408, detail)
            return
        except _BodyTooLargeError:
            await _answer(send, 413, f"the body is larger than {self.max_body_size} bytes")
            return
        except _ClientGoneError:
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, _replaying(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_size
        if limit is not None and _declared_length(scope) > limit:
            raise _BodyTooLargeError  # refused before a byte of it is read
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message.get("type") != "http.request":  # http.disconnect
                raise _ClientGoneError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                raise _BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class SharedSyncThread:
    """The requests whose path starts with `prefix` do their sync work on one long-lived
    thread, shared by all of them.

    Django runs a request's sync parts on a thread made for that request (its
    ThreadSensitiveContext), started and joined around it. A webhook's only sync parts are
    Django's own request signals (its view is async; its database work runs on the database
    threads, omnihub.db_threads), which take microseconds: making and joining a thread for
    them cost each webhook more CPU than they do. Sync views (the admin's, the API's) keep a
    thread each, so that one slow page does not hold up the next."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        # One call at a time on one thread, as ThreadSensitiveContext requires of an executor.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-sync")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        async with ThreadSensitiveContext(executor=self._thread):
            await self.app(scope, receive, send)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body, already read, as one message; then the client's own messages (a disconnect),
    which Django listens for while it answers."""
    replayed = False

    async def replay() -> Mapping[str, Any]:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # read by its real length, and limited as it arrives
    return 0


async def _answer(send: Send, status: int, detail: str) -> None:
    """A JSON error like the app's own, on a connection closed after it: the rest of the body
    may still be on its way."""
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


django_application = get_asgi_application()
application = BoundedRequests(
    SharedSyncThread(django_application, WEBHOOK_PATH_PREFIX),
    settings.WEB_MAX_REQUESTS,
    body_timeout=settings.WEB_BODY_TIMEOUT,
    max_body_size=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
)
