"""Answering a conversation: its turns one at a time, in arrival order, each asked of the agent
once and its answer sent once, part by part.

A turn is a message, or a burst of them the tenant debounces into one agent call, or the
notice sent for one that failed (webhooks.conversations.progress.Turn). A coroutine per
conversation: it awaits the agent and Evolution on the worker's shared HTTP client while its
database steps (webhooks.conversations.progress) run on the few database threads, so a thousand
chats in flight cost a thousand small coroutines, not threads or connections.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from omnihub.db_threads import run_in_db_thread
from webhooks.conversations import composing, progress
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.progress import Turn
from webhooks.conversations.sending import Sender
from webhooks.integrations.agents import client as agents
from webhooks.integrations.agents.requests import agent_request
from webhooks.integrations.transport import HttpClient, OutboundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answerer:
    """What answering needs from its worker: who it is, the HTTP client it shares, and whether
    it is still taking up new messages (not once it was told to stop)."""

    worker_id: str
    client: HttpClient
    taking_up_messages: Callable[[], bool] = lambda: True

    async def answer_conversation(self, conversation_id: int) -> int:
        """Take up the chat's turns until none is left to take up now; returns how many were
        taken up. A worker told to stop finishes the turn under way, then hands the chat back
        for another worker."""
        done = 0
        while turn := await run_in_db_thread(
            progress.begin_next, conversation_id, self.worker_id,
            stopping=not self.taking_up_messages(),
        ):  # fmt: skip
            if turn.notice is None:
                await self.answer(turn)
            else:
                await self.send_notice(turn)
            done += 1
        return done

    async def answer(self, turn: Turn) -> None:
        sender = Sender(self.worker_id, self.client)
        async with self._failures_recorded(turn, progress.record_failure):
            started = None
            if turn.carrier.reply_text is None:
                reply = await self._ask_agent(turn)
                await run_in_db_thread(progress.store_reply, turn, reply, self.worker_id)
                started = turn.parts[0] if turn.parts else None
            if turn.parts:
                withheld = await run_in_db_thread(progress.withhold_if_paused, turn, self.worker_id)
                if withheld:
                    return  # a person took the chat over meanwhile: not sent
            # An empty answer has no parts: nothing is sent.
            last_sent = await sender.deliver(turn.carrier, turn.parts, started=started)
            await run_in_db_thread(progress.record_answered, turn, self.worker_id, last_sent)

    async def send_notice(self, turn: Turn) -> None:
        """Send the notice of a failed message (its error reply); the message stays failed."""
        assert turn.notice is not None
        sender = Sender(self.worker_id, self.client)
        async with self._failures_recorded(
            turn, progress.record_notice_failure, doing=" sending its notice"
        ):
            last_sent = await sender.deliver(turn.carrier, [turn.notice])
            sent_id = last_sent[1] if last_sent else turn.notice.whatsapp_id
            await run_in_db_thread(progress.record_notice_sent, turn, sent_id, self.worker_id)

    @asynccontextmanager
    async def _failures_recorded(
        self, turn: Turn, record: Callable[..., None], *, doing: str = ""
    ) -> AsyncIterator[None]:
        """A failed step recorded with `record`: an outbound failure as it says it is retryable
        or not; a bug or a database hiccup counted like any failed attempt, within the window.
        A lost lease goes up: the chat is another worker's now."""
        try:
            yield
        except OutboundError as error:
            await run_in_db_thread(
                record, turn, str(error), self.worker_id, retryable=error.retryable
            )
        except LeaseLostError:
            raise
        except Exception as error:
            logger.exception("message %s: unexpected error%s", turn.carrier.pk, doing)
            await run_in_db_thread(
                record, turn, f"unexpected error: {error!r}", self.worker_id, retryable=True
            )

    async def _ask_agent(self, turn: Turn) -> agents.AgentReply:
        tenant = turn.carrier.instance
        async with composing.while_thinking(self.client, turn.carrier):
            return await agents.run_agent(
                self.client,
                base_url=tenant.agent_api_url,
                api_key=tenant.agent_api_key,
                agent=tenant.default_agent,
                request=agent_request(*turn.messages),
                deadline=tenant.agent_timeout,
            )
