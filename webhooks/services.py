"""Receiving webhooks: store each message once, then queue its conversation for a worker."""

import copy
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from instances.selectors import TenantNotFoundError, TenantRef, forget_tenant
from webhooks import one_statement
from webhooks.leases import is_being_answered
from webhooks.models import Conversation, Message
from webhooks.parsing import (
    IncomingMessage,
    UnreadablePayloadError,
    event_name,
    ignore_reason,
    normalise_event,
    parse_incoming_message,
)
from webhooks.routing import tenant_and_event
from webhooks.tasks import queue_conversation

logger = logging.getLogger(__name__)

MESSAGE_EVENT = "messages.upsert"
CONVERSATION_CACHE_SECONDS = 3600


class MessageNotRetryableError(Exception):
    pass


class MessageNotFoundError(Exception):
    def __init__(self, message_id: int) -> None:
        super().__init__(f"message {message_id} not found")


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: str  # "queued", "ignored" or "duplicate"
    reason: str = ""
    message_id: str = ""

    def as_dict(self) -> dict[str, str]:
        answer = {"status": self.status}
        if self.reason:
            answer["reason"] = self.reason
        if self.message_id:
            answer["message_id"] = self.message_id
        return answer


def handle_webhook_for(name: str, event_from_url: str, payload: dict[str, Any]) -> WebhookOutcome:
    """A webhook posted to /webhook/evolution[/{name}][/{event}]."""
    tenant, event_from_url = tenant_and_event(name, event_from_url)
    return handle_webhook(tenant, payload, event_from_url=event_from_url)


def handle_webhook(
    tenant: TenantRef, payload: dict[str, Any], *, event_from_url: str = ""
) -> WebhookOutcome:
    event = event_name(payload) or normalise_event(event_from_url)
    if event != MESSAGE_EVENT:
        return WebhookOutcome("ignored", f"event {event or '(none)'!r} is not handled")
    try:
        incoming = parse_incoming_message(payload)
    except UnreadablePayloadError as error:
        # Answered 200: Evolution would otherwise redeliver a payload that can never be read.
        logger.warning("unreadable webhook for instance %s: %s", tenant.name, error)
        return WebhookOutcome("ignored", f"unreadable message: {error}")
    return handle_incoming_message(tenant, incoming, payload)


def handle_incoming_message(
    tenant: TenantRef, incoming: IncomingMessage, payload: dict[str, Any]
) -> WebhookOutcome:
    reason = ignore_reason(incoming) or ""
    key = f"omnihub:conversation:{tenant.id}:{incoming.chat_jid}"
    # The id is cached: conversations are deleted only with their tenant, which is then no
    # longer found. A chat not seen lately may be new: it has no worker yet.
    remembered = cache.get(key)
    message = _message(tenant, incoming, payload, reason)
    # No look-up first: the unique constraint tells duplicates apart, one query less per webhook.
    try:
        if not reason and one_statement.available():
            conversation_id = _store_in_one_statement(message, remembered)
        else:
            with transaction.atomic():
                conversation_id = _store(message, remembered)
        if remembered is None:
            # Only once committed: a rolled-back conversation must not be remembered.
            transaction.on_commit(
                lambda: cache.set(key, conversation_id, CONVERSATION_CACHE_SECONDS)
            )
    except IntegrityError:
        if not _is_stored(tenant, incoming):
            # Not a duplicate: the tenant was deleted after it was looked up.
            forget_tenant(tenant.name)
            raise TenantNotFoundError(tenant.name) from None
        # The same message delivered twice at the same moment: the other delivery stored it.
        return WebhookOutcome("duplicate", message_id=incoming.message_id)
    if reason:
        return WebhookOutcome("ignored", reason, incoming.message_id)
    return WebhookOutcome("queued", message_id=incoming.message_id)


def get_message(message_id: int) -> Message:
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


def retry_message(message: Message) -> Message:
    """Send a failed message through the pipeline again, with a fresh count of attempts."""
    if message.status != Message.Status.FAILED:
        raise MessageNotRetryableError(f"message {message.pk} is {message.status}, not failed")
    with transaction.atomic():
        message.status = Message.Status.RECEIVED
        message.attempts = 0
        message.next_attempt_at = None
        message.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        queue_conversation(message.conversation_id)
    logger.info("message %s queued again", message.pk)
    return message


def _is_stored(tenant: TenantRef, incoming: IncomingMessage) -> bool:
    return Message.objects.filter(instance_id=tenant.id, whatsapp_id=incoming.message_id).exists()


def _store(message: Message, conversation_id: int | None) -> int:
    """Store the message, and queue its conversation unless it is ignored or being answered;
    call it in a transaction. `conversation_id` is None for a chat not seen lately. Returns the
    conversation's id."""
    ignored = bool(message.ignore_reason)
    is_new = conversation_id is None
    if conversation_id is None:
        # One statement (INSERT ... ON CONFLICT ... RETURNING id) where get_or_create takes two
        # to four.
        conversation_id = one_statement.upsert_conversation.upsert(_conversation_of(message))
    # A worker answering the chat will answer this message too: no task is needed for it, and
    # none would find anything to do. A new chat has no worker yet.
    answered_anyway = not (ignored or is_new) and is_being_answered(conversation_id)
    message.conversation_id = conversation_id
    one_statement.insert_message.insert(message)
    if not (ignored or answered_anyway):
        # In the same transaction as the message: both are stored, or neither.
        queue_conversation(conversation_id)
    return conversation_id


def _store_in_one_statement(message: Message, conversation_id: int | None) -> int:
    """As _store, for a message to answer, in one statement (webhooks.one_statement)."""
    if conversation_id is None:
        return one_statement.store_new_chat_message(_conversation_of(message), message)
    one_statement.store_known_chat_message(conversation_id, message, timezone.now())
    return conversation_id


def _conversation_of(message: Message) -> Conversation:
    return Conversation(instance_id=message.instance_id, chat_jid=message.chat_jid)


def _message(
    tenant: TenantRef, incoming: IncomingMessage, payload: dict[str, Any], reason: str
) -> Message:
    """The message as stored; its conversation is set when it is stored."""
    media = incoming.media
    falls_back = tenant.replies_through_webhook
    return Message(
        instance_id=tenant.id,
        whatsapp_id=incoming.message_id,
        status=Message.Status.IGNORED if reason else Message.Status.RECEIVED,
        ignore_reason=reason,
        chat_jid=incoming.chat_jid,
        phone=incoming.phone,
        reply_to=incoming.reply_to,
        whatsapp_user_id=incoming.whatsapp_id,
        push_name=incoming.push_name,
        kind=incoming.kind,
        text=incoming.text,
        quoted_text=incoming.quoted_text,
        sent_at=incoming.timestamp,
        media_mimetype=media.mimetype if media else "",
        media_file_name=media.file_name if media else "",
        media_size=media.size if media else None,
        media_url=(media.url or "") if media else "",
        media_base64=(media.base64 or "") if media and not reason else "",
        raw_payload=_redacted(payload),
        reply_evolution_url=incoming.server_url.rstrip("/") if falls_back else "",
        reply_evolution_key=incoming.apikey if falls_back else "",
    )


def _redacted(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as kept for debugging: no API key, and no media bytes (kept apart)."""
    kept = copy.copy(payload)
    if "apikey" in kept:
        kept["apikey"] = "(removed)"
    data = kept.get("data")
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, dict) and "base64" in message:
        kept["data"] = {**data, "message": {**message, "base64": "(kept apart)"}}
    return kept
