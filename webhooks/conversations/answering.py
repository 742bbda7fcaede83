"""Answering a conversation: its turns one at a time, in arrival order, each asked of the agent
once and its answer sent once, part by part.

A coroutine per conversation: it awaits the agent and Evolution on the worker's shared HTTP
client while its database steps (webhooks.conversations.progress) run on the few database
threads, so a thousand chats in flight cost a thousand small coroutines, not threads or
connections. The two steps every message takes are handed over together with those of the
worker's other chats (`Steps`): one run of each serves every chat that reached it meanwhile.
"""

import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from omnihub.db_batches import Batched
from omnihub.db_threads import run_in_db_thread
from webhooks.conversations import composing, progress
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.progress import Answered, Step
from webhooks.conversations.sending import Sender
from webhooks.conversations.turns import Taken, Turn
from webhooks.integrations.agents import client as agents
from webhooks.integrations.agents.requests import agent_request
from webhooks.integrations.transport import HttpClient, OutboundError

logger = logging.getLogger(__name__)


class Steps:
    """A worker's batched steps, shared by all its conversations."""

    def __init__(self, worker_id: str) -> None:
        self.store_reply = Batched(functools.partial(progress.store_replies, worker_id))
        self.advance = Batched(functools.partial(progress.advance, worker_id))


class Answerer:
    """What answering needs from its worker: who it is, its batched steps, the HTTP client it
    shares, and whether it is still taking up new messages (not once it was told to stop)."""

    def __init__(
        self,
        worker_id: str,
        client: HttpClient,
        taking_up_messages: Callable[[], bool] = lambda: True,
    ) -> None:
        self.worker_id = worker_id
        self.client = client
        self.steps = Steps(worker_id)
        self.taking_up_messages = taking_up_messages

    async def answer_conversation(self, conversation_id: int, turn: Turn | None = None) -> int:
        """Take up the chat's turns, from `turn` (else its next one), until none is left to
        take up now; returns how many were taken up. A worker told to stop finishes the turn
        under way, then hands the chat back for another worker."""
        done = 0
        if turn is None:
            turn = await self._advance(Step(conversation_id, stopping=self._stopping()))
        while turn is not None:
            answered = await (self.answer(turn) if turn.notice is None else self.send_notice(turn))
            done += 1
            step = Step(conversation_id, answered, stopping=self._stopping())
            turn = await self._advance(step)
        return done

    async def answer(self, turn: Turn) -> Answered | None:
        """Ask the agent (unless the turn's reply is stored already) and send the reply; what
        went out, for `advance` to record, or None when nothing is left to record (the reply
        withheld, or the failure recorded)."""
        sender = Sender(self.worker_id, self.client)
        answered = None
        async with self._failures_recorded(turn, progress.record_failure):
            started = None
            if turn.carrier.reply_text is None:
                reply = await self._ask_agent(turn)
                if not await self.steps.store_reply((turn, reply)):
                    return None  # a person took the chat over meanwhile: not sent
                started = turn.parts[0] if turn.parts else None
            elif turn.parts:
                withheld = await run_in_db_thread(progress.withhold_if_paused, turn, self.worker_id)
                if withheld:
                    return None
            # An empty answer has no parts: nothing is sent.
            last_sent = await sender.deliver(turn.carrier, turn.parts, started=started)
            answered = Answered(turn, last_sent)
        return answered

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

    async def _advance(self, step: Step) -> Turn | None:
        taken: Taken = await self.steps.advance(step)
        if isinstance(taken, LeaseLostError):
            raise taken
        return taken

    def _stopping(self) -> bool:
        return not self.taking_up_messages()

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
