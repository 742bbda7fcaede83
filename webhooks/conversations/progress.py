"""What a worker records as it answers a conversation, step by step.

Each step is one short transaction, run on a database thread while the worker's event loop goes
on with other chats. Only the conversation's lease holder may write: a step that finds another
worker holding the chat raises LeaseLostError, and the worker drops that chat at once.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from instances.selectors import tenant_config
from webhooks.conversations import debounce, error_reply, leases, pacing, pausing
from webhooks.conversations.attempts import Result, Stage, current_stage, record_attempt
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.retries import next_attempt_at, next_try_at
from webhooks.integrations.agents.client import AgentReply
from webhooks.models import Message, ReplyPart

logger = logging.getLogger(__name__)

Status = Message.Status


@dataclass(slots=True)
class Turn:
    """What a worker takes up next in a chat: the answer to a message, or to a burst of them
    (debounce), or the notice sent for one that failed.

    The answer (or notice) is stored on `carrier`, the first of the messages; `followers` are
    answered with it and share its status. `parts` are its reply's parts, in order, once the
    agent has answered; `notice` is the notice to send, for a notice's turn."""

    carrier: Message
    followers: list[Message] = field(default_factory=list)
    parts: list[ReplyPart] = field(default_factory=list)
    notice: ReplyPart | None = None

    @property
    def messages(self) -> list[Message]:
        return [self.carrier, *self.followers]


def begin_next(conversation_id: int, worker_id: str, *, stopping: bool = False) -> Turn | None:
    """The chat's next turn, in arrival order, its messages marked processing; None when there
    is none to take up now (or the worker is `stopping`), and the chat has been handed back,
    ready again when its next turn is due.

    A message waiting for its retry, or a notice waiting for its own, holds back the messages
    behind it: the agent never sees a chat out of order, nor a user its answers."""
    now = timezone.now()
    with transaction.atomic():
        if not leases.lock_if_held(conversation_id, worker_id):
            raise LeaseLostError(conversation_id)
        chat = (
            Message.objects.filter(conversation_id=conversation_id)
            .defer("raw_payload")
            .order_by("id")
        )
        # Two look-ups, each by its own index: an OR of them would read the chat's history.
        first = chat.filter(status__in=Message.PENDING).first()
        failed = chat.filter(notice_due_at__isnull=False).first()
        for message in (first, failed):
            if message is not None:
                # Read once per few seconds per process, not joined to every message.
                message.instance = tenant_config(message.instance_id)
        if (first or failed) and pausing.is_paused(conversation_id, now=now):
            # A paused chat's waiting messages are not answered, then or later, nor are the
            # notices of its failures sent into a conversation a person has taken over.
            pausing.hold_pending(conversation_id)
            chat.filter(notice_due_at__isnull=False).update(notice_due_at=None)
            first = failed = None
        if failed is not None and (first is None or failed.pk < first.pk):
            return _begin_notice(failed, worker_id, now=now, stopping=stopping)
        if first is None:
            leases.hand_back(conversation_id, worker_id, ready_at=None)
            return None
        due = first.next_attempt_at or now
        if due > now or stopping:
            leases.hand_back(conversation_id, worker_id, ready_at=due)
            return None
        if first.attempts:
            # Taken up before: its batch, as it was formed, is tried again together.
            batch = [first, *chat.filter(answered_with=first)]
        else:
            chosen = debounce.batch_or_quiet_at(first, now=now)
            if isinstance(chosen, datetime):
                leases.hand_back(conversation_id, worker_id, ready_at=chosen)
                return None
            batch = chosen
        _take_up(batch, now=now)
        parts = _reply_parts(first)
    return Turn(first, batch[1:], parts)


def _reply_parts(message: Message) -> list[ReplyPart]:
    """The parts the message's stored reply is sent as. A canned reply, set at intake without
    parts (the web path stays one insert), gets them when first taken up."""
    if not message.reply_text:
        return []
    parts = list(message.parts.filter(kind=ReplyPart.Kind.REPLY))
    return parts or _create_parts(message, message.reply_text)


def _create_parts(
    message: Message, text: str, *, started_at: datetime | None = None
) -> list[ReplyPart]:
    """`text` as the parts it is sent in, stored; `started_at`: the first part's send begins
    now, recorded with them."""
    texts = pacing.reply_parts(text, split=message.instance.split_replies)
    return ReplyPart.objects.bulk_create(
        ReplyPart(
            message=message,
            position=position,
            text=part,
            attempts=1 if started_at and position == 0 else 0,
            send_started_at=started_at if position == 0 else None,
        )
        for position, part in enumerate(texts)
    )


def store_reply(turn: Turn, reply: AgentReply, worker_id: str) -> None:
    """The agent's answer, stored with the parts it is sent as before any is sent: a failed
    send is retried alone, and the agent is not asked again. The first part's send, about to
    start, is recorded in the same transaction."""
    now = timezone.now()
    carrier = turn.carrier
    with transaction.atomic():
        record_attempt(carrier, Stage.AGENT, Result.OK, latency_ms=reply.latency_ms)
        turn.parts = _create_parts(carrier, reply.text, started_at=now)
        _write([carrier], worker_id, reply_text=reply.text, agent_latency_ms=reply.latency_ms,
               agent_answered_at=now, send_started_at=now if turn.parts else None)  # fmt: skip


def mark_part_sending(part: ReplyPart, worker_id: str) -> None:
    """Recorded before each send: if its outcome is never learnt (a crash, a timeout after the
    request went out), the next try looks for the part in Evolution before sending it again."""
    _write_part(part, worker_id, send_started_at=timezone.now(), attempts=part.attempts + 1)


def withhold_if_paused(turn: Turn, worker_id: str) -> bool:
    """Checked just before a reply is sent: a chat paused while its answer was being made (a
    person took over meanwhile) is not written to; the reply is kept, unsent, on the message,
    marked paused."""
    if not pausing.is_paused(turn.carrier.conversation_id, now=timezone.now()):
        return False
    _write(
        turn.messages,
        worker_id,
        status=Status.PAUSED,
        ignore_reason=pausing.PAUSED_BEFORE_SEND,
        send_started_at=None,
        media_base64="",
    )
    # Never sent: no longer a send under way that a person's own words could be taken for.
    ReplyPart.objects.filter(message=turn.carrier, sent_at__isnull=True).update(
        send_started_at=None
    )
    logger.info("message %s: not answered, its chat was paused", turn.carrier.pk)
    return True


def record_part_sent(part: ReplyPart, whatsapp_id: str, worker_id: str) -> None:
    _write_part(part, worker_id, sent_at=timezone.now(), whatsapp_id=whatsapp_id, last_error="")


def record_part_failure(
    part: ReplyPart, error: str, worker_id: str, *, maybe_delivered: bool
) -> None:
    """A send that failed: when it surely reached no one, the next try sends it without
    looking for it first."""
    changes: dict[str, Any] = {"last_error": error}
    if not maybe_delivered:
        changes["send_started_at"] = None
    _write_part(part, worker_id, **changes)


def record_answered(
    turn: Turn, worker_id: str, last_sent: tuple[ReplyPart, str] | None = None
) -> None:
    """The turn's messages answered; `last_sent`, its last part and the WhatsApp id Evolution
    gave it, is recorded in the same transaction. The reply's id is its first part's."""
    now = timezone.now()
    # Media are large and personal: kept only until the message is answered.
    answered = {"status": Status.ANSWERED, "answered_at": now, "last_error": "", "media_base64": ""}
    with transaction.atomic():
        if turn.carrier.reply_text:  # else the agent had nothing to say, and nothing was sent
            record_attempt(turn.carrier, Stage.SEND, Result.OK)
        if last_sent is not None:
            record_part_sent(*last_sent, worker_id)
        reply_id = {"reply_whatsapp_id": turn.parts[0].whatsapp_id if turn.parts else ""}
        if turn.followers:
            _write(turn.messages, worker_id, **answered)
            _write([turn.carrier], worker_id, **reply_id)
        else:
            _write([turn.carrier], worker_id, **answered, **reply_id)
    logger.info("message %s answered", turn.carrier.pk)


def record_failure(turn: Turn, error: str, worker_id: str, *, retryable: bool) -> None:
    """A failed attempt: tried again later while its retry window lasts, else failed, and the
    tenant's error reply, if it has one, queued for the user."""
    now = timezone.now()
    carrier = turn.carrier
    retry_at = next_attempt_at(carrier, now) if retryable else None
    status = Status.RETRYING if retry_at else Status.FAILED
    with transaction.atomic():
        result = Result.RETRYING if retry_at else Result.FAILED
        record_attempt(carrier, current_stage(carrier), result, error=error)
        _write(turn.messages, worker_id, last_error=error, next_attempt_at=retry_at, status=status)
        if retry_at is None and (due := error_reply.queue(carrier, now=now)):
            _write([carrier], worker_id, notice_due_at=due)
    if retry_at:
        logger.warning(
            "message %s attempt %d failed, retrying at %s: %s",
            carrier.pk, carrier.attempts, retry_at.isoformat(timespec="seconds"), error,
        )  # fmt: skip
    else:
        logger.error("message %s failed after %d attempts: %s", carrier.pk, carrier.attempts, error)


def record_notice_sent(turn: Turn, whatsapp_id: str, worker_id: str) -> None:
    assert turn.notice is not None
    with transaction.atomic():
        record_part_sent(turn.notice, whatsapp_id, worker_id)
        _write([turn.carrier], worker_id, notice_due_at=None)
    logger.info("message %s: its %s was sent", turn.carrier.pk, turn.notice.label)


def record_notice_failure(turn: Turn, error: str, worker_id: str, *, retryable: bool) -> None:
    """A notice's send failed (sending recorded the part's error): tried again with the same
    backoff as a message, within a retry window of its own, from when it was queued."""
    notice = turn.notice
    assert notice is not None
    now = timezone.now()
    retry_at = (
        next_try_at(attempts=notice.attempts, window_start=notice.created_at, now=now)
        if retryable
        else None
    )
    _write([turn.carrier], worker_id, notice_due_at=retry_at)
    if retry_at:
        logger.warning("message %s: its %s failed, retrying at %s: %s", turn.carrier.pk,
                       notice.label, retry_at.isoformat(timespec="seconds"), error)  # fmt: skip
    else:
        logger.error("message %s: its %s was not sent: %s", turn.carrier.pk, notice.label, error)


def _begin_notice(
    message: Message, worker_id: str, *, now: datetime, stopping: bool
) -> Turn | None:
    """The turn that sends `message`'s notice, once it is due. The message keeps its status."""
    due = message.notice_due_at
    assert due is not None
    if due > now or stopping:
        leases.hand_back(message.conversation_id, worker_id, ready_at=due)
        return None
    notice = message.parts.exclude(kind=ReplyPart.Kind.REPLY).filter(sent_at=None).first()
    if notice is None:  # sent meanwhile: nothing is left to do for it
        Message.objects.filter(pk=message.pk).update(notice_due_at=None)
        leases.hand_back(message.conversation_id, worker_id, ready_at=now)
        return None
    return Turn(message, notice=notice)


def _take_up(batch: list[Message], *, now: datetime) -> None:
    first, followers = batch[0], batch[1:]
    Message.objects.filter(pk__in=[m.pk for m in batch]).update(
        status=Status.PROCESSING,
        attempts=F("attempts") + 1,
        attempt_started_at=now,
        next_attempt_at=None,
        updated_at=now,
    )
    joining = [m.pk for m in followers if m.answered_with_id is None]
    if joining:
        Message.objects.filter(pk__in=joining).update(answered_with=first)
    for message in batch:
        message.status = Status.PROCESSING
        message.attempts += 1
        message.attempt_started_at = now
        message.next_attempt_at = None
        message.updated_at = now
    for message in followers:
        message.answered_with_id = first.pk


def _write(messages: list[Message], worker_id: str, **changes: Any) -> None:
    changes["updated_at"] = timezone.now()
    held = Message.objects.filter(
        pk__in=[m.pk for m in messages], conversation__lease_owner=worker_id
    )
    if not held.update(**changes):
        raise LeaseLostError(messages[0].conversation_id)
    for message in messages:
        for name, value in changes.items():
            setattr(message, name, value)


def _write_part(part: ReplyPart, worker_id: str, **changes: Any) -> None:
    held = ReplyPart.objects.filter(pk=part.pk, message__conversation__lease_owner=worker_id)
    if not held.update(**changes):
        raise LeaseLostError(part.message.conversation_id)
    for name, value in changes.items():
        setattr(part, name, value)
