"""Answering a conversation: its messages one at a time, in arrival order, each asked of the
agent once and its answer sent once.

A coroutine per conversation: it awaits the agent and Evolution on the worker's shared HTTP
client while its database steps (webhooks.conversations.progress) run on the few database
threads, so a thousand chats in flight cost a thousand small coroutines, not threads or
connections.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings

from omnihub.db_threads import run_in_db_thread
from webhooks.conversations import progress
from webhooks.conversations.leases import LeaseLostError
from webhooks.integrations.agents import client as agents
from webhooks.integrations.agents.requests import agent_request
from webhooks.integrations.evolution import client as evolution
from webhooks.integrations.transport import OutboundError
from webhooks.models import Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answerer:
    """What answering needs from its worker: who it is, the HTTP client it shares, and whether
    it is still taking up new messages (not once it was told to stop)."""

    worker_id: str
    client: httpx.AsyncClient
    taking_up_messages: Callable[[], bool] = lambda: True

    async def answer_conversation(self, conversation_id: int) -> int:
        """Answer the chat's pending messages until none is left to answer now; returns how
        many were taken up. A worker told to stop finishes the message under way, then hands
        the chat back for another worker."""
        done = 0
        while message := await run_in_db_thread(
            progress.begin_next, conversation_id, self.worker_id,
            stopping=not self.taking_up_messages(),
        ):  # fmt: skip
            await self.answer(message)
            done += 1
        return done

    async def answer(self, message: Message) -> None:
        try:
            if message.reply_text is None:
                reply = await self._ask_agent(message)
                await run_in_db_thread(progress.store_reply, message, reply, self.worker_id)
            elif message.reply_text and await self._was_sent_before(message):
                return
            if message.reply_text:
                if await run_in_db_thread(progress.withhold_if_paused, message, self.worker_id):
                    return  # a person took the chat over meanwhile: not sent
                await self._send(message)
            else:
                # The agent had nothing to say: nothing is sent.
                await run_in_db_thread(progress.record_answered, message, "", self.worker_id)
        except OutboundError as error:
            await run_in_db_thread(
                progress.record_failure, message, str(error), self.worker_id,
                retryable=error.retryable, maybe_delivered=error.maybe_delivered,
            )  # fmt: skip
        except LeaseLostError:
            raise
        except Exception as error:
            # A bug or a database hiccup: counted like any failed attempt, within the window.
            logger.exception("message %s: unexpected error", message.pk)
            await run_in_db_thread(
                progress.record_failure, message, f"unexpected error: {error!r}",
                self.worker_id, retryable=True, maybe_delivered=True,
            )  # fmt: skip

    async def _ask_agent(self, message: Message) -> agents.AgentReply:
        tenant = message.instance
        return await agents.run_agent(
            self.client,
            base_url=tenant.agent_api_url,
            api_key=tenant.agent_api_key,
            agent=tenant.default_agent,
            request=agent_request(message),
            deadline=tenant.agent_timeout,
        )

    async def _was_sent_before(self, message: Message) -> bool:
        """Whether an earlier try whose outcome is unknown did send the reply: then it is
        recorded as answered, not sent again (Evolution takes no idempotency key)."""
        if message.send_started_at is not None:
            base_url, api_key = _evolution_of(message)
            sent_id = await evolution.find_sent_text(
                self.client,
                base_url=base_url,
                api_key=api_key,
                instance=message.instance.whatsapp_instance,
                remote_jid=message.chat_jid,
                text=message.reply_text or "",
                since=message.send_started_at,
                deadline=settings.EVOLUTION_TIMEOUT,
            )
            if sent_id is not None:
                logger.warning(
                    "message %s: its reply reached Evolution; not sent again", message.pk
                )
                await run_in_db_thread(progress.record_answered, message, sent_id, self.worker_id)
                return True
        await run_in_db_thread(progress.mark_sending, message, self.worker_id)
        return False

    async def _send(self, message: Message) -> None:
        base_url, api_key = _evolution_of(message)
        try:
            sent_id = await evolution.send_text(
                self.client,
                base_url=base_url,
                api_key=api_key,
                instance=message.instance.whatsapp_instance,
                number=message.reply_to,
                text=message.reply_text or "",
                deadline=settings.EVOLUTION_TIMEOUT,
            )
        except OutboundError as error:
            raise OutboundError(
                f"sending the reply failed: {error}",
                retryable=error.retryable,
                status_code=error.status_code,
                maybe_delivered=error.maybe_delivered,
            ) from None
        await run_in_db_thread(progress.record_answered, message, sent_id, self.worker_id)


def _evolution_of(message: Message) -> tuple[str, str]:
    """The Evolution server and key that answer this message's tenant: its own, or the one its
    webhook named if intake found it trusted (webhooks.inbound.relay); never any other."""
    tenant = message.instance
    if tenant.evolution_url:
        return tenant.evolution_url, tenant.evolution_key
    if not message.reply_evolution_url:
        raise OutboundError(
            "no trusted Evolution server is known for this message: give the tenant an "
            "Evolution URL, or list the webhook's server in EVOLUTION_TRUSTED_SERVERS",
            retryable=False,
        )
    return message.reply_evolution_url, message.reply_evolution_key
