"""Receiving webhooks: store each message once and mark its conversation ready for a worker,
both in one transaction."""

import copy
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from instances.models import InstanceConfig
from instances.selectors import TenantNotFoundError, TenantRef, forget_tenant
from omnihub.json_input import storable_copy
from webhooks.conversations import leases
from webhooks.inbound import policy
from webhooks.inbound.authentication import WebhookCredentials, authenticate_webhook
from webhooks.inbound.parsing import (
    MESSAGES_UPSERT,
    IncomingMessage,
    UnreadablePayloadError,
    event_name,
    normalise_event,
    parse_incoming_message,
)
from webhooks.inbound.relay import ReplyServer, reply_server
from webhooks.inbound.routing import tenant_and_event
from webhooks.models import Conversation, Message

logger = logging.getLogger(__name__)

CONVERSATION_CACHE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: str  # "queued", "ignored", "duplicate" or "failed"
    reason: str = ""
    message_id: str = ""

    def as_dict(self) -> dict[str, str]:
        answer = {"status": self.status}
        if self.reason:
            answer["reason"] = self.reason
        if self.message_id:
            answer["message_id"] = self.message_id
        return answer


def handle_webhook_for(
    name: str, event_from_url: str, payload: dict[str, Any], credentials: WebhookCredentials
) -> WebhookOutcome:
    """A webhook posted to /webhook/evolution[/{name}][/{event}]; WebhookRejectedError, before
    anything is stored, when it does not prove it comes from the tenant's Evolution."""
    tenant, event_from_url = tenant_and_event(name, event_from_url)
    authenticate_webhook(tenant, credentials)
    return handle_webhook(tenant, payload, event_from_url=event_from_url)


def handle_webhook(
    tenant: TenantRef, payload: dict[str, Any], *, event_from_url: str = ""
) -> WebhookOutcome:
    event = event_name(payload) or normalise_event(event_from_url)
    if event != MESSAGES_UPSERT:
        return WebhookOutcome("ignored", f"event {event or '(none)'!r} is not handled")
    try:
        incoming = parse_incoming_message(payload)
    except UnreadablePayloadError as error:
        # Answered 200: Evolution would otherwise redeliver a payload that can never be read.
        logger.warning("unreadable webhook for instance %s: %s", tenant.name, error)
        return WebhookOutcome("ignored", f"unreadable message: {error}")
    if incoming.instance != tenant.whatsapp_instance:
        # Another instance's message posted to this tenant's URL (a copied webhook config):
        # not stored, so this tenant's log and conversations hold only its own chats.
        reason = (
            f"misrouted: the webhook is from Evolution instance {incoming.instance or '(none)'!r}"
            f", this tenant's is {tenant.whatsapp_instance!r}"
        )
        logger.warning("webhook for instance %s ignored: %s", tenant.name, reason)
        return WebhookOutcome("ignored", reason, incoming.message_id)
    return store_message(tenant, incoming, payload)


def store_message(
    tenant: TenantRef, incoming: IncomingMessage, payload: dict[str, Any]
) -> WebhookOutcome:
    """Store the message, unique per tenant and WhatsApp id, and, unless it is ignored, mark
    its conversation ready: both or neither."""
    now = timezone.now()
    screening = policy.screen(tenant, incoming, now=now)
    reason = screening.ignore_reason
    server = ReplyServer() if reason else reply_server(tenant, incoming)
    key = _conversation_key(tenant, incoming.chat_jid)
    # The id is cached: conversations are deleted only with their tenant, which is then no
    # longer found.
    remembered = cache.get(key)
    message = _message(tenant, incoming, payload, reason, server)
    # No look-up first: the unique constraint tells duplicates apart, one query less per webhook.
    try:
        with transaction.atomic():
            message.conversation_id = remembered or _conversation_id(tenant, incoming.chat_jid)
            # The conversation's row first, then the message's unique key, in every transaction:
            # two deliveries of one message taking them in opposite orders would deadlock.
            policy.admit(message, screening, tenant, now=now)
            if message.status == Message.Status.RECEIVED:
                leases.mark_ready(message.conversation_id, now=now)
            else:
                leases.note_message(message.conversation_id, now=now)
            message.save(force_insert=True)
        if remembered is None:
            # Only once committed: a rolled-back conversation must not be remembered.
            conversation_id = message.conversation_id
            transaction.on_commit(
                lambda: cache.set(key, conversation_id, CONVERSATION_CACHE_SECONDS)
            )
    except IntegrityError:
        if _is_stored(tenant, incoming):
            # The same message delivered twice: the other delivery stored it.
            return WebhookOutcome("duplicate", message_id=incoming.message_id)
        if not InstanceConfig.objects.filter(pk=tenant.id).exists():
            # The tenant was deleted after it was looked up.
            forget_tenant(tenant.name)
            raise TenantNotFoundError(tenant.name) from None
        # Neither: the message could not be stored, which no "not found" may hide (Evolution
        # drops a 404 and the message would be lost).
        raise
    if message.status in (Message.Status.IGNORED, Message.Status.PAUSED):
        return WebhookOutcome("ignored", message.ignore_reason, incoming.message_id)
    if server.refusal:
        return WebhookOutcome("failed", server.refusal, incoming.message_id)
    return WebhookOutcome("queued", message_id=incoming.message_id)


def _conversation_key(tenant: TenantRef, chat_jid: str) -> str:
    # A chat JID comes from the body, and memcached refuses keys with spaces, control
    # characters or over 250 bytes: its digest has none of those.
    digest = hashlib.blake2b(chat_jid.encode(), digest_size=16).hexdigest()
    return f"omnihub:conversation:{tenant.id}:{digest}"


def _conversation_id(tenant: TenantRef, chat_jid: str) -> int:
    """The chat's conversation, made on its first message: one statement (INSERT … ON CONFLICT
    … RETURNING) where get_or_create takes two to four."""
    (conversation,) = Conversation.objects.bulk_create(
        [Conversation(instance_id=tenant.id, chat_jid=chat_jid)],
        update_conflicts=True,
        unique_fields=["instance", "chat_jid"],
        update_fields=["chat_jid"],
    )
    return conversation.pk


def _is_stored(tenant: TenantRef, incoming: IncomingMessage) -> bool:
    return Message.objects.filter(instance_id=tenant.id, whatsapp_id=incoming.message_id).exists()


def _message(
    tenant: TenantRef,
    incoming: IncomingMessage,
    payload: dict[str, Any],
    reason: str,
    server: ReplyServer,
) -> Message:
    """The message as stored; its conversation is set when it is stored. A message whose reply
    has nowhere trusted to go is stored failed, with the reason."""
    media = incoming.media
    if reason:
        status = Message.Status.IGNORED
    elif server.refusal:
        status = Message.Status.FAILED
    else:
        status = Message.Status.RECEIVED
    return Message(
        instance_id=tenant.id,
        whatsapp_id=incoming.message_id,
        status=status,
        ignore_reason=reason,
        last_error=server.refusal,
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
        reply_evolution_url=server.url,
        reply_evolution_key=server.key,
    )


def _redacted(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as kept for debugging: no API key, no media bytes (kept apart), and every
    string storable (PostgreSQL's jsonb refuses NULs and lone surrogates)."""
    kept = copy.copy(payload)
    if "apikey" in kept:
        kept["apikey"] = "(removed)"
    data = kept.get("data")
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(message, dict) and "base64" in message:
        kept["data"] = {**data, "message": {**message, "base64": "(kept apart)"}}
    stored: dict[str, Any] = storable_copy(kept)
    return stored
