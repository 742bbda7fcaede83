"""What a worker records as it answers a message, step by step.

Each step is one short transaction, run on a database thread while the worker's event loop goes
on with other chats. Only the conversation's lease holder may write: a step that finds another
worker holding the chat raises LeaseLostError, and the worker drops that chat at once.
"""

import logging

from django.db import transaction
from django.utils import timezone

from webhooks.conversations import leases
from webhooks.conversations.attempts import Result, Stage, current_stage, record_attempt
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.retries import next_attempt_at
from webhooks.integrations.agents.client import AgentReply
from webhooks.models import Message

logger = logging.getLogger(__name__)

Status = Message.Status


def begin_next(conversation_id: int, worker_id: str, *, stopping: bool = False) -> Message | None:
    """The chat's next message to answer, in arrival order, marked processing; None when there
    is none to answer now (or the worker is `stopping`), and the chat has been handed back,
    ready again when its next message is due.

    A message waiting for its retry holds back the messages behind it: the agent never sees a
    chat out of order."""
    now = timezone.now()
    with transaction.atomic():
        if not leases.lock_if_held(conversation_id, worker_id):
            raise LeaseLostError(conversation_id)
        message = (
            Message.objects.filter(conversation_id=conversation_id, status__in=Message.PENDING)
            .select_related("instance")
            .defer("raw_payload")
            .order_by("id")
            .first()
        )
        if message is None:
            leases.hand_back(conversation_id, worker_id, ready_at=None)
            return None
        due = message.next_attempt_at or now
        if due > now or stopping:
            leases.hand_back(conversation_id, worker_id, ready_at=due)
            return None
        message.status = Status.PROCESSING
        message.attempts += 1
        message.attempt_started_at = now
        message.next_attempt_at = None
        changed = ["status", "attempts", "attempt_started_at", "next_attempt_at", "updated_at"]
        message.save(update_fields=changed)
    return message


@transaction.atomic
def store_reply(message: Message, reply: AgentReply, worker_id: str) -> None:
    """The agent's answer, stored before it is sent: a failed send is retried alone, and the
    agent is not asked again. The send about to start is recorded in the same write."""
    now = timezone.now()
    record_attempt(message, Stage.AGENT, Result.OK, latency_ms=reply.latency_ms)
    _write(
        message,
        worker_id,
        reply_text=reply.text,
        agent_latency_ms=reply.latency_ms,
        agent_answered_at=now,
        send_started_at=now if reply.text else None,
    )


def mark_sending(message: Message, worker_id: str) -> None:
    """Recorded before each send: if its outcome is never learnt (a crash, a timeout after the
    request went out), the next try looks for the reply in Evolution before sending again."""
    _write(message, worker_id, send_started_at=timezone.now())


@transaction.atomic
def record_answered(message: Message, reply_whatsapp_id: str, worker_id: str) -> None:
    if message.reply_text:  # else the agent had nothing to say, and nothing was sent
        record_attempt(message, Stage.SEND, Result.OK)
    _write(
        message,
        worker_id,
        status=Status.ANSWERED,
        answered_at=timezone.now(),
        reply_whatsapp_id=reply_whatsapp_id,
        last_error="",
        media_base64="",  # large and personal: kept only until the message is answered
    )
    logger.info("message %s answered", message.pk)


@transaction.atomic
def record_failure(
    message: Message, error: str, worker_id: str, *, retryable: bool, maybe_delivered: bool
) -> None:
    """A failed attempt: tried again later while its retry window lasts, else failed."""
    retry_at = next_attempt_at(message, timezone.now()) if retryable else None
    changes: dict[str, object] = {"last_error": error, "next_attempt_at": retry_at}
    changes["status"] = Status.RETRYING if retry_at else Status.FAILED
    if not maybe_delivered:
        changes["send_started_at"] = None
    result = Result.RETRYING if retry_at else Result.FAILED
    record_attempt(message, current_stage(message), result, error=error)
    _write(message, worker_id, **changes)
    if retry_at:
        logger.warning(
            "message %s attempt %d failed, retrying at %s: %s",
            message.pk, message.attempts, retry_at.isoformat(timespec="seconds"), error,
        )  # fmt: skip
    else:
        logger.error("message %s failed after %d attempts: %s", message.pk, message.attempts, error)


def _write(message: Message, worker_id: str, **changes: object) -> None:
    changes["updated_at"] = timezone.now()
    held = Message.objects.filter(pk=message.pk, conversation__lease_owner=worker_id)
    if not held.update(**changes):
        raise LeaseLostError(message.conversation_id)
    for field, value in changes.items():
        setattr(message, field, value)
