"""Reading a tenant's conversations: the REST API, the CLI and the admin share these.

A chat is named by its WhatsApp JID (`5511912345678@s.whatsapp.net`, `1037…@lid`) or, for a
chat with a phone number, by the number's digits (`5511912345678`; a leading `+` is dropped).
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Case, DateTimeField, F, Q, QuerySet, Value, When
from django.db.models.expressions import OrderBy
from django.utils import timezone

from instances.models import InstanceConfig
from instances.services import get_instance
from webhooks.conversations.pausing import paused
from webhooks.models import Conversation

_PHONE_SERVER = "s.whatsapp.net"
# How conversations are listed everywhere: the most recently active first.
LATEST_FIRST: tuple[OrderBy, str] = (F("last_message_at").desc(nulls_last=True), "-id")


class ConversationNotFoundError(Exception):
    def __init__(self, instance: str, chat: str) -> None:
        super().__init__(f"instance {instance!r} has no conversation with {chat!r}")


def chat_jid(chat: str) -> str:
    """The JID a chat is named by: a JID as it is, a phone number's digits as its phone JID."""
    if "@" in chat:
        return chat
    digits = chat.removeprefix("+")
    return f"{digits}@{_PHONE_SERVER}" if digits.isascii() and digits.isdigit() else chat


def find_conversation(instance_name: str, chat: str) -> Conversation:
    """The conversation `chat` of the tenant named `instance_name`, as the API and CLI name it."""
    return get_conversation(get_instance(instance_name), chat)


def get_conversation(instance: InstanceConfig, chat: str) -> Conversation:
    found = Conversation.objects.filter(instance=instance, chat_jid=chat_jid(chat)).first()
    if found is None:
        raise ConversationNotFoundError(instance.name, chat)
    return found


def conversation_rows(instance: InstanceConfig) -> QuerySet[Conversation, Mapping[str, Any]]:
    """The tenant's conversations as listed (ConversationOut), the latest message first: chat,
    contact name, last message time, state ("active" or "paused") and when the pause ends
    (None while not paused, or paused until resumed)."""
    return _rows(Conversation.objects.filter(instance=instance)).order_by(*LATEST_FIRST)


def conversation_row(conversation: Conversation) -> Mapping[str, Any]:
    """One conversation as listed, as it is now in the database."""
    return _rows(Conversation.objects.filter(pk=conversation.pk)).get()


def pause_ends_at(now: datetime) -> Case:
    """When the chat's pause ends: None while it is not paused, or paused until resumed."""
    return Case(
        When(paused(now) & Q(paused_until_resumed=False), then=F("paused_until")),
        default=Value(None),
        output_field=DateTimeField(),
    )


def _rows(conversations: QuerySet[Conversation]) -> QuerySet[Any, Mapping[str, Any]]:
    now = timezone.now()
    return conversations.annotate(
        chat=F("chat_jid"),
        state=Case(When(paused(now), then=Value("paused")), default=Value("active")),
        pause_ends_at=pause_ends_at(now),
    ).values(
        "chat", "contact_name", "last_message_at", "state", "pause_ends_at",
        "paused_until_resumed",
    )  # fmt: skip
