import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnihub.settings")

# As Django's ASGIHandler takes them, so that it is an ASGIApp.
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BoundedRequests:
    """At most `limit` requests inside Django at once; the others wait their turn on the event
    loop. Django gives every request a thread of its own for its sync parts (its signals, sync
    views), so without a bound a burst of 256 webhooks held 256 threads and their memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None  # made on the server's own event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # e.g. a server's lifespan messages
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, receive, send)


django_application = get_asgi_application()
application = BoundedRequests(django_application, settings.WEB_MAX_REQUESTS)
