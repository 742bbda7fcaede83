"""Reading the message log and the conversations: the admin, the REST API and the CLI share
these."""

import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Literal, TypedDict

from django.db.models import Case, OuterRef, QuerySet, Subquery, TextChoices, Value, When
from django_stubs_ext import WithAnnotations

from webhooks.conversations import leases, pausing
from webhooks.conversations.selectors import LATEST_FIRST, pause_ends_at
from webhooks.models import Conversation, Message


class MessageNotFoundError(Exception):
    def __init__(self, message_id: int) -> None:
        super().__init__(f"message {message_id} not found")


# Ids are 64-bit: a larger one names no message, and SQLite would raise an overflow on it.
_LARGEST_ID = 2**63 - 1
# Digits, with only what people write phone numbers with around them.
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]*\d[\d\s().-]*")


def get_message(message_id: int) -> Message:
    if not 0 < message_id <= _LARGEST_ID:
        raise MessageNotFoundError(message_id)
    try:
        return Message.objects.select_related("instance").get(pk=message_id)
    except Message.DoesNotExist:
        raise MessageNotFoundError(message_id) from None


def find_messages(
    *, instance: str | None = None, status: str | None = None, phone: str | None = None
) -> QuerySet[Message]:
    """Newest first, narrowed by tenant name, status and sender phone (digits)."""
    messages = Message.objects.select_related("instance").order_by("-id")
    if instance:
        messages = messages.filter(instance__name=instance)
    if status:
        messages = messages.filter(status=status)
    if phone:
        # Stored phones are digits; one with none ("+", "abc") matches nothing, not every LID chat.
        digits = "".join(filter(str.isdigit, phone))
        messages = messages.filter(phone=digits) if digits else messages.none()
    return messages


def phone_search_digits(term: str) -> str:
    """The digits of a search `term` written as a phone number ("+55 (11) 91234-5678"), which
    stored phones hold without the punctuation; "" for any other term."""
    return "".join(filter(str.isdigit, term)) if _PHONE_LIKE.fullmatch(term.strip()) else ""


class ConversationState(TextChoices):
    PAUSED = "paused", "Paused: a person took over"
    ANSWERING = "answering", "Being answered"
    READY = "ready", "Waiting for a worker"
    WAITING = "waiting", "Waiting for a retry"
    IDLE = "idle", "Idle"


class _Listed(TypedDict):
    state: str
    pause_ends_at: datetime | None
    last_text: str | None


type ListedConversation = WithAnnotations[Conversation, _Listed]


def conversations(now: datetime) -> QuerySet[ListedConversation]:
    """Conversations as the admin lists them, with `state` (a ConversationState), when a
    pause ends (`pause_ends_at`) and the `last_text`, most recently active first."""
    latest = Message.objects.filter(conversation=OuterRef("pk")).order_by("-id")
    return (
        Conversation.objects.select_related("instance")
        .annotate(
            state=Case(
                When(pausing.paused(now), then=Value(ConversationState.PAUSED)),
                When(leases.lease_held(now), then=Value(ConversationState.ANSWERING)),
                When(leases.ready(now), then=Value(ConversationState.READY)),
                When(ready_at__isnull=False, then=Value(ConversationState.WAITING)),
                default=Value(ConversationState.IDLE),
            ),
            pause_ends_at=pause_ends_at(now),
            last_text=Subquery(latest.values("text")[:1]),
        )
        .order_by(*LATEST_FIRST)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadEntry:
    """One line of a conversation as a person reads it: said by the customer, said by the
    agent, or a note on what became of a message (ignored, failed, waiting)."""

    side: Literal["customer", "agent", "note"]
    at: datetime | None
    text: str
    message_id: int
    author: str = ""
    quoted: str = ""
    tone: Literal["", "ok", "warning", "error"] = ""


@dataclass(frozen=True, slots=True)
class Thread:
    entries: list[ThreadEntry]
    earlier_messages: bool  # the thread starts later than the conversation


def conversation_thread(conversation_id: int, *, limit: int = 200) -> Thread:
    """The conversation's last `limit` messages, oldest first, each followed by the agent's
    answer or what happened instead. A reply Evolution echoed back as a message of its own
    (sent by this WhatsApp account) is shown once, as the agent's answer."""
    newest_first = list(
        Message.objects.filter(conversation_id=conversation_id)
        .defer("raw_payload", "media_base64", "reply_evolution_key")
        .order_by("-id")[: limit + 1]
    )
    messages = newest_first[:limit][::-1]
    echoes = {message.reply_whatsapp_id for message in messages if message.reply_whatsapp_id}
    entries = [
        entry
        for message in messages
        if message.whatsapp_id not in echoes
        for entry in _entries_of(message)
    ]
    return Thread(entries=entries, earlier_messages=len(newest_first) > limit)


def _entries_of(message: Message) -> list[ThreadEntry]:
    said = ThreadEntry(
        side="customer",
        at=message.received_at,
        text=message_content(message),
        message_id=message.pk,
        author=message.push_name,
        quoted=message.quoted_text,
    )
    return [said, _outcome_of(message)]


def _outcome_of(message: Message) -> ThreadEntry:
    Status = Message.Status
    note = partial(ThreadEntry, side="note", at=message.updated_at, message_id=message.pk)
    match message.status:
        case Status.ANSWERED if message.reply_text:
            return ThreadEntry(
                side="agent",
                at=message.answered_at,
                text=message.reply_text,
                message_id=message.pk,
                tone="ok",
            )
        case Status.ANSWERED:
            return note(text="The agent had nothing to send.")
        case Status.IGNORED:
            return note(text=f"Ignored: {message.ignore_reason}.")
        case Status.FAILED if message.reply_text:
            return note(text=f"The reply was never sent: {message.last_error}", tone="error")
        case Status.FAILED:
            return note(text=f"Failed: {message.last_error}", tone="error")
        case Status.RETRYING:
            when = message.next_attempt_at
            at = f" at {when:%Y-%m-%d %H:%M:%S}" if when else ""
            return note(text=f"Next try{at}. {message.last_error}", tone="warning")
        case Status.PROCESSING:
            return note(text="Being answered.")
        case _:
            return note(text="Waiting for a worker.")


def message_content(message: Message) -> str:
    """What the customer sent, as a line of text: the text, with the kind of media it came
    with ("[image] Olha isso"), or the media alone ("[document: contrato.pdf]")."""
    if message.kind == "text":
        return message.text
    media = (
        f"{message.kind}: {message.media_file_name}" if message.media_file_name else message.kind
    )
    return f"[{media}] {message.text}".strip()
