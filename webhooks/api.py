from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from instances.services import get_instance
from webhooks import selectors
from webhooks.conversations import pausing, retries
from webhooks.conversations.selectors import (
    conversation_row,
    conversation_rows,
    find_conversation,
)
from webhooks.models import Conversation, Message
from webhooks.schemas import ConversationOut, MessageDetailOut, MessageOut, PauseIn

router = Router(tags=["messages"])
# Mounted under /instances: a tenant's conversations are named by the tenant's name.
conversations_router = Router(tags=["conversations"])


class MessageFilters(Schema):
    instance: str | None = None
    status: Message.Status | None = None
    phone: str | None = None


class MessagePages(LimitOffsetPagination):
    class Input(LimitOffsetPagination.Input):
        # SQL's OFFSET is a 64-bit integer: a larger one is a 422, not a database error.
        offset: int = Field(0, ge=0, le=2**63 - 1)


@router.get("", response=list[MessageOut])
@paginate(MessagePages)
def list_messages(request: HttpRequest, filters: Query[MessageFilters]) -> QuerySet[Message]:
    return selectors.find_messages(
        instance=filters.instance, status=filters.status, phone=filters.phone
    )


@router.get("/{message_id}", response=MessageDetailOut)
def get_message(request: HttpRequest, message_id: int) -> Message:
    return selectors.get_message(message_id)


@router.post("/{message_id}/retry", response=MessageOut)
def retry_message(request: HttpRequest, message_id: int) -> Message:
    return retries.retry_message(selectors.get_message(message_id))


@conversations_router.get("/{name}/conversations", response=list[ConversationOut])
@paginate(MessagePages)
def list_conversations(
    request: HttpRequest, name: str
) -> QuerySet[Conversation, Mapping[str, Any]]:
    return conversation_rows(get_instance(name))


@conversations_router.post("/{name}/conversations/{chat}/pause", response=ConversationOut)
def pause_conversation(
    request: HttpRequest, name: str, chat: str, payload: PauseIn | None = None
) -> Mapping[str, Any]:
    """Pause the bot in the chat for `minutes`, or until resumed when none are given. `chat`
    is the chat's JID or its phone number's digits."""
    conversation = find_conversation(name, chat)
    pausing.pause_conversation(conversation, payload.minutes if payload else None)
    return conversation_row(conversation)


@conversations_router.post("/{name}/conversations/{chat}/resume", response=ConversationOut)
def resume_conversation(request: HttpRequest, name: str, chat: str) -> Mapping[str, Any]:
    """Let the bot answer the chat again, from its next message on."""
    conversation = find_conversation(name, chat)
    pausing.resume_conversation(conversation)
    return conversation_row(conversation)
