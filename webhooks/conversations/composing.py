"""Typing while the agent thinks: with the tenant's `show_typing` on, the user sees "typing…"
from TYPING_AFTER_SECONDS after the agent was asked until it answers (an agent that answers
sooner needs none).

Evolution holds a presence call open for its whole `delay`, so the calls run as a task of
their own beside the agent call, renewed every TYPING_REFRESH_SECONDS, and the task is
cancelled as soon as the agent answers. Each call has its deadline and a bounded answer like
every outbound call; a slow or failing one never delays or fails the reply: it is logged once
as a warning, and the reply goes on without it.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

from django.conf import settings

from webhooks.conversations.sending import evolution_server
from webhooks.integrations.evolution import client as evolution
from webhooks.integrations.transport import HttpClient, OutboundError
from webhooks.models import Message

logger = logging.getLogger(__name__)


@asynccontextmanager
async def while_thinking(client: HttpClient, message: Message) -> AsyncIterator[None]:
    """Show `message`'s chat that the bot is typing for as long as the block runs."""
    show = _presence_call(client, message)
    if show is None:
        yield
        return
    every, chat = settings.TYPING_REFRESH_SECONDS, message.conversation_id
    tasks: list[asyncio.Task[None]] = []
    start = asyncio.get_running_loop().call_later(
        settings.TYPING_AFTER_SECONDS,
        lambda: tasks.append(asyncio.create_task(_keep_showing(show, every=every, chat=chat))),
    )
    try:
        yield
    finally:
        start.cancel()
        for task in tasks:
            # Not awaited: a presence call held open must not hold up the reply.
            task.cancel()


async def _keep_showing(show: Callable[[], Awaitable[None]], *, every: float, chat: int) -> None:
    """Call `show` every `every` seconds (or as soon as the previous call ends, when it took
    longer) until cancelled; a failure is logged once."""
    loop = asyncio.get_running_loop()
    warned = False
    while True:
        started = loop.time()
        try:
            await show()
        except Exception as error:  # "typing…" is a courtesy: nothing of it may break the reply
            if not warned:
                reason = str(error) if isinstance(error, OutboundError) else repr(error)
                logger.warning("conversation %s: showing 'typing…' failed: %s", chat, reason)
                warned = True
        await asyncio.sleep(max(0.0, every - (loop.time() - started)))


def _presence_call(client: HttpClient, message: Message) -> Callable[[], Awaitable[None]] | None:
    tenant = message.instance
    if not tenant.show_typing:
        return None
    try:
        base_url, api_key = evolution_server(message)
    except OutboundError:
        return None  # nowhere to show it; the reply's send says why
    every = settings.TYPING_REFRESH_SECONDS
    return partial(
        evolution.send_presence,
        client,
        base_url=base_url,
        api_key=api_key,
        instance=tenant.whatsapp_instance,
        number=message.reply_to,
        # Shown until the next refresh; Evolution answers once it is over.
        delay_ms=round(every * 1000),
        deadline=settings.EVOLUTION_TIMEOUT + every,
    )
