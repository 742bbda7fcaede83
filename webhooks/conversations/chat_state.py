"""What intake reads of a chat before it stores a message, under the chat's row lock: whether
it is paused, its agent session and its contact's name, read together in one query."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from webhooks.conversations.pausing import is_paused_expression
from webhooks.models import Conversation


@dataclass(frozen=True, slots=True)
class ChatState:
    is_paused: bool
    session_generation: int
    contact_name: str
    rate_limited_reply_at: datetime | None


def lock_chat_state(conversation_id: int, *, now: datetime) -> ChatState:
    """The chat's state, its row locked for the rest of the transaction: the rules that read
    it (the per-contact count included) see every message stored before and none stored
    meanwhile. The lock is the one any write of the row takes (FOR NO KEY UPDATE)."""
    assert connection.in_atomic_block, "the lock lasts only as long as a transaction"
    row = (
        Conversation.objects.select_for_update(no_key=True)
        .filter(pk=conversation_id)
        .annotate(is_paused=is_paused_expression(now))
        .values_list("is_paused", "session_generation", "contact_name", "rate_limited_reply_at")
        .first()
    )
    if row is None:
        # Deleted with its tenant since its id was cached: storing the message then fails on
        # its foreign key, which intake reports as the tenant being gone.
        return ChatState(False, 0, "", None)
    is_paused, generation, name, replied_at = row
    return ChatState(bool(is_paused), generation, name, replied_at)


def note_contact_name(conversation_id: int, name: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(contact_name=name)
