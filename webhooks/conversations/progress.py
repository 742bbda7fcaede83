"""What a worker records as it answers its conversations, step by step.

Each step is one short transaction, run on a database thread while the worker's event loop goes
on with other chats. The two steps every message takes, storing the agent's answer
(`store_replies`) and recording it sent then taking up the chat's next turn (`advance`), take
the chats of many conversations at once (omnihub.db_batches.Batched): one statement serves them
all. Only a conversation's lease holder may write: a chat another worker holds now gets a
LeaseLostError, and the worker drops it at once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from webhooks.conversations import error_reply, leases, pacing, pausing, reply_parts, sending
from webhooks.conversations.attempts import (
    Result,
    Stage,
    agent_answered_in_attempt,
    attempt_ended,
    current_stage,
    new_attempt,
)
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.retries import next_attempt_at, next_try_at
from webhooks.conversations.turns import (
    Taken,
    Turn,
    begin_turns,
    read_chats,
)
from webhooks.integrations.agents.client import AgentReply
from webhooks.models import Conversation, Message, MessageAttempt, ReplyPart

logger = logging.getLogger(__name__)

Status = Message.Status
# Media are large and personal: kept only until the message is answered.
_ANSWERED = {"status": Status.ANSWERED, "last_error": "", "media_base64": ""}
# Up to this many answered turns in one step, each message gets an UPDATE of its own.
FEW = 3


@dataclass(frozen=True, slots=True)
class Answered:
    """A turn whose reply went out; `last_sent` is its last part with the WhatsApp id Evolution
    gave it, recorded here with the turn's outcome (None: nothing was left to send)."""

    turn: Turn
    last_sent: tuple[ReplyPart, str] | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What a chat hands to `advance`: the turn it answered, if any, and whether its worker is
    stopping (then nothing new is taken up, and the chat is handed back)."""

    conversation_id: int
    answered: Answered | None = None
    stopping: bool = False


def store_replies(worker_id: str, replies: list[tuple[Turn, AgentReply]]) -> list[bool | Exception]:
    """The agents' answers, each stored with the parts it is sent as before any is sent: a
    failed send is retried alone, and the agent is not asked again. For each, whether it may be
    sent now: the first part's send, about to start, is recorded in the same transaction. Not
    in a chat paused while its answer was being made (a person took over meanwhile): the reply
    is kept, unsent, and its messages are marked paused."""
    now = timezone.now()
    outcomes: list[bool | Exception] = []
    attempts: list[MessageAttempt] = []
    parts: list[ReplyPart] = []
    withheld: list[Turn] = []
    with transaction.atomic():
        chats = {turn.conversation_id for turn, _ in replies}
        held = leases.lock_held(worker_id, chats, reading=pausing.reading(now))
        for turn, reply in replies:
            if turn.conversation_id not in held:
                outcomes.append(LeaseLostError(turn.conversation_id))
                continue
            paused = held[turn.conversation_id]["is_paused"]
            carrier = turn.carrier
            texts = pacing.reply_parts(reply.text, split=carrier.instance.split_replies)
            turn.parts = reply_parts.parts_of(carrier, texts, started_at=None if paused else now)
            parts += turn.parts
            carrier.reply_text = reply.text
            carrier.agent_latency_ms = reply.latency_ms
            carrier.agent_answered_at = carrier.updated_at = now
            carrier.send_started_at = now if turn.parts and not paused else None
            if paused:
                withheld.append(turn)
                # The attempt ends here: its rows are written now (else with its send's).
                attempts.append(
                    new_attempt(carrier, Stage.AGENT, Result.OK, latency_ms=reply.latency_ms)
                )
            outcomes.append(not paused)
        MessageAttempt.objects.bulk_create(attempts)
        ReplyPart.objects.bulk_create(parts)
        for turn, _ in replies:
            if turn.conversation_id in held:
                # One UPDATE each: bulk_update's CASE costs more per row and field.
                _store_reply(turn.carrier)
        for turn in withheld:
            _withhold(turn, worker_id)
    return outcomes


def _store_reply(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(
        reply_text=message.reply_text,
        agent_latency_ms=message.agent_latency_ms,
        agent_answered_at=message.agent_answered_at,
        send_started_at=message.send_started_at,
        updated_at=message.updated_at,
    )


def advance(worker_id: str, steps: list[Step]) -> list[Taken | Exception]:
    """Record each chat's answered turn, then take up its next turn (begin_turns): one
    transaction under the chats' locks, so a message that arrived meanwhile is either seen
    here or makes its chat ready again.

    A chat whose turn found nothing behind it, and that was not queued again since, has
    nothing more to take up: it is handed back without looking."""
    now = timezone.now()
    answered = [step.answered for step in steps if step.answered]
    ending = [m.pk for answer in answered for m in answer.turn.messages]
    with transaction.atomic():
        chats = {step.conversation_id for step in steps}
        held = leases.lock_held(worker_id, chats, reading={"queued": F("times_queued")})
        _record_answered([a for a in answered if a.turn.conversation_id in held], now=now)
        done = {a.turn.conversation_id for a in answered if _nothing_more(a.turn, held)}
        leases.hand_back(worker_id, dict.fromkeys(done))
        taken: dict[int, Taken] = dict.fromkeys(done)
        rest = Conversation.objects.filter(pk__in=held.keys() - done)
        now_read = read_chats(rest, now=now, excluding=ending) if held.keys() - done else {}
        for stopping in (False, True):
            mine = {s.conversation_id for s in steps if s.stopping is stopping}
            rows = {chat: row for chat, row in now_read.items() if chat in mine}
            taken |= begin_turns(worker_id, rows, now=now, stopping=stopping)
    lost = LeaseLostError
    return [taken.get(step.conversation_id, lost(step.conversation_id)) for step in steps]


def _nothing_more(turn: Turn, held: dict[int, dict[str, Any]]) -> bool:
    row = held.get(turn.conversation_id)
    return row is not None and turn.nothing_behind and row["queued"] == turn.chat_times_queued


def _record_answered(done: list[Answered], *, now: datetime) -> None:
    """The turns' messages answered; each last part sent with the WhatsApp id Evolution gave
    it. The reply's id is its first part's."""
    if not done:
        return
    sent = [answer.last_sent for answer in done if answer.last_sent is not None]
    for part, whatsapp_id in sent:
        part.sent_at, part.whatsapp_id, part.last_error = now, whatsapp_id, ""
    _record_sent([part for part, _ in sent])
    MessageAttempt.objects.bulk_create(
        row for answer in done for row in _attempt_answered(answer.turn.carrier)
    )
    messages = [message for answer in done for message in answer.turn.messages]
    for answer in done:
        carrier, parts = answer.turn.carrier, answer.turn.parts
        carrier.reply_whatsapp_id = parts[0].whatsapp_id if parts else ""
    answered = {**_ANSWERED, "answered_at": now, "updated_at": now}
    if len(done) <= FEW:
        # Each reply's id, the one thing that differs, in one UPDATE per message: for a few,
        # cheaper than compiling the subquery below.
        for message in messages:
            Message.objects.filter(pk=message.pk).update(
                **answered, reply_whatsapp_id=message.reply_whatsapp_id
            )
    else:
        first_part = ReplyPart.objects.filter(
            message=OuterRef("pk"), kind=ReplyPart.Kind.REPLY, position=0
        )
        Message.objects.filter(pk__in=[m.pk for m in messages]).update(
            **answered,
            # The carrier's first part's; a follower has no parts of its own, and a reply with
            # nothing to send none at all.
            reply_whatsapp_id=Coalesce(Subquery(first_part.values("whatsapp_id")[:1]), Value("")),
        )
    for message in messages:
        for name, value in _ANSWERED.items():
            setattr(message, name, value)
        message.answered_at = message.updated_at = now
    for answer in done:
        logger.info("message %s answered", answer.turn.carrier.pk)


def _attempt_answered(carrier: Message) -> list[MessageAttempt]:
    if carrier.reply_text:
        return attempt_ended(carrier, Stage.SEND, Result.OK)
    if agent_answered_in_attempt(carrier):  # it had nothing to say: nothing was sent
        return [new_attempt(carrier, Stage.AGENT, Result.OK, latency_ms=carrier.agent_latency_ms)]
    return []


def _record_sent(parts: list[ReplyPart]) -> None:
    """Each part's send recorded (sent_at, whatsapp_id, last_error) in one statement: an upsert
    (INSERT … ON CONFLICT (id) DO UPDATE) of rows that exist, where bulk_update's CASE costs
    ~0.4 ms of CPU per row and field. A part a person deleted meanwhile, with its message,
    fails the transaction on the message's foreign key rather than come back."""
    ReplyPart.objects.bulk_create(
        parts,
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["sent_at", "whatsapp_id", "last_error"],
    )


def withhold_if_paused(turn: Turn, worker_id: str) -> bool:
    """Checked just before a stored reply is sent (a retry's, a canned one): a chat paused
    since is not written to; the reply is kept, unsent, on the message, marked paused."""
    with transaction.atomic():
        held = leases.lock_held(
            worker_id, [turn.conversation_id], reading=pausing.reading(timezone.now())
        )
        if turn.conversation_id not in held:
            raise LeaseLostError(turn.conversation_id)
        if held[turn.conversation_id]["is_paused"]:
            _withhold(turn, worker_id)
            return True
    return False


def _withhold(turn: Turn, worker_id: str) -> None:
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


def record_failure(turn: Turn, error: str, worker_id: str, *, retryable: bool) -> None:
    """A failed attempt: tried again later while its retry window lasts, else failed, and the
    tenant's error reply, if it has one, queued for the user."""
    now = timezone.now()
    carrier = turn.carrier
    retry_at = next_attempt_at(carrier, now) if retryable else None
    status = Status.RETRYING if retry_at else Status.FAILED
    with transaction.atomic():
        result = Result.RETRYING if retry_at else Result.FAILED
        MessageAttempt.objects.bulk_create(
            attempt_ended(carrier, current_stage(carrier), result, error=error)
        )
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
        sending.record_part_sent(turn.notice, whatsapp_id, worker_id)
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
