"""Pausing the bot in a chat: while a chat is paused its messages are stored `paused`, shown
but never sent to the agent, and a reply the agent gave meanwhile is not sent.

A chat is paused by a person (the admin, the API, the CLI: for some minutes or until resumed)
or by a person replying from the business's phone (webhooks.conversations.takeover). A pause
ends by itself at `paused_until`; what arrived during it stays unanswered, as a person was
looking after the chat.

Each change is one UPDATE of the chat's row, so it is safe whichever process makes it. It waits
for a webhook or a worker step holding that row, and every later one sees it: intake stores the
chat's next messages paused (webhooks.inbound.policy), a worker taking the chat up holds its
waiting messages, and one whose agent answered meanwhile does not send the answer
(webhooks.conversations.progress). Only a send already on its way to Evolution when the pause
lands still goes out: nothing can call it back.
"""

import logging
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from webhooks.models import Conversation, Message

logger = logging.getLogger(__name__)

# As long as the longest human takeover a tenant may set: a month.
MAX_PAUSE_MINUTES = 43200

# Why a message was not answered (its ignore_reason), by when the pause caught it.
PAUSED_ON_ARRIVAL = "the chat is paused: a person is answering it"
PAUSED_BEFORE_ANSWER = "the chat was paused before this message was answered"
PAUSED_BEFORE_SEND = "the chat was paused before the reply was sent"


def paused(now: datetime) -> Q:
    """The one definition of a paused chat: until resumed, or until a time still to come."""
    return Q(paused_until_resumed=True) | Q(paused_until__gt=now)


def reading(now: datetime) -> dict[str, Q]:
    """`paused(now)` as what a caller locking chats reads of each (leases.lock_held), as
    "is_paused": a chat's own columns, read as they are once its lock is taken."""
    return {"is_paused": paused(now)}


def is_paused(conversation_id: int, *, now: datetime) -> bool:
    return Conversation.objects.filter(paused(now), pk=conversation_id).exists()


def pause_conversation(conversation: Conversation, minutes: int | None) -> Conversation:
    """A person pauses the bot in this chat for `minutes`, or until resumed when None; this
    replaces any pause it had."""
    if minutes is not None and not 1 <= minutes <= MAX_PAUSE_MINUTES:
        raise ValidationError(
            {"minutes": f"Give 1 to {MAX_PAUSE_MINUTES} minutes, or none to pause until resumed."}
        )
    until = None if minutes is None else timezone.now() + timedelta(minutes=minutes)
    _set_pause(conversation, paused_until=until, paused_until_resumed=minutes is None)
    logger.info(
        "conversation %s paused %s",
        conversation, f"for {minutes} minutes" if minutes else "until resumed",
    )  # fmt: skip
    return conversation


def resume_conversation(conversation: Conversation) -> Conversation:
    """A person lets the bot answer this chat again, from its next message on."""
    _set_pause(conversation, paused_until=None, paused_until_resumed=False)
    logger.info("conversation %s resumed", conversation)
    return conversation


def extend_pause(conversation_id: int, *, until: datetime) -> None:
    """Keep the chat paused at least until `until`: a longer pause, or one until resumed, is
    kept. Call it in the transaction that stores the message that asked for it."""
    Conversation.objects.filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until), pk=conversation_id
    ).update(paused_until=until)


def hold_pending(conversation_ids: list[int]) -> int:
    """Mark the chats' messages still waiting for the agent `paused`, in the transaction that
    holds the chats' leases; returns how many."""
    return Message.objects.filter(
        conversation_id__in=conversation_ids, status__in=Message.PENDING
    ).update(
        status=Message.Status.PAUSED,
        ignore_reason=PAUSED_BEFORE_ANSWER,
        next_attempt_at=None,
        media_base64="",
        updated_at=timezone.now(),
    )


def _set_pause(
    conversation: Conversation, *, paused_until: datetime | None, paused_until_resumed: bool
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        paused_until=paused_until, paused_until_resumed=paused_until_resumed
    )
    conversation.paused_until = paused_until
    conversation.paused_until_resumed = paused_until_resumed
