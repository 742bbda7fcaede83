"""Receiving webhooks: each is routed, authenticated, read and screened on its own; then the
messages of the webhooks that arrived together are stored together (webhooks.inbound.storage).

While one batch is being stored, the webhooks that arrive wait, and go together in the next
(omnihub.db_batches): an idle server stores a webhook at once, a busy one many per transaction.
"""

import copy
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from instances.selectors import TenantRef
from omnihub.db_batches import Batched, Outcome
from omnihub.json_input import storable_copy
from webhooks.inbound import policy
from webhooks.inbound.authentication import WebhookCredentials, authenticate_webhook
from webhooks.inbound.parsing import (
    MESSAGES_UPSERT,
    UnreadablePayloadError,
    event_name,
    normalise_event,
    parse_incoming_message,
)
from webhooks.inbound.relay import ReplyServer, reply_server
from webhooks.inbound.routing import tenant_and_event
from webhooks.inbound.storage import Arrival, Duplicate, Stored, store_messages
from webhooks.models import Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as posted to /webhook/evolution[/{name}][/{event}], its body decoded."""

    name: str
    event: str
    payload: dict[str, Any] = field(repr=False)
    credentials: WebhookCredentials


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


async def receive_webhook(webhook: Webhook) -> WebhookOutcome:
    """Handle the webhook with those that arrive meanwhile. Raises TenantNotFoundError, or
    WebhookRejectedError before anything is stored when it does not prove it comes from the
    tenant's Evolution."""
    return await _batches()(webhook)


def receive_webhooks(webhooks: list[Webhook]) -> list[Outcome[WebhookOutcome]]:
    """Each webhook's outcome, or the error only its sender is to hear of (a tenant not found,
    a webhook refused, a message that could not be stored)."""
    now = timezone.now()
    outcomes: list[Outcome[WebhookOutcome] | Arrival] = []
    routes: dict[tuple[str, str], tuple[TenantRef, str]] = {}
    for webhook in webhooks:
        try:
            outcomes.append(_arrival(webhook, routes, now=now))
        except Exception as error:  # this webhook's alone
            outcomes.append(error)
    arrivals = [outcome for outcome in outcomes if isinstance(outcome, Arrival)]
    stored = iter(store_messages(arrivals, now=now) if arrivals else ())
    return [
        _answer(outcome, next(stored)) if isinstance(outcome, Arrival) else outcome
        for outcome in outcomes
    ]


@functools.cache
def _batches() -> Batched[Webhook, WebhookOutcome]:
    return Batched(receive_webhooks)


def _arrival(
    webhook: Webhook, routes: dict[tuple[str, str], tuple[TenantRef, str]], *, now: datetime
) -> WebhookOutcome | Arrival:
    """What is to be stored of the webhook, or its answer when nothing is."""
    route = (webhook.name, webhook.event)
    if route not in routes:  # looked up once for the webhooks of one tenant stored together
        routes[route] = tenant_and_event(*route)
    tenant, event_from_url = routes[route]
    authenticate_webhook(tenant, webhook.credentials)
    payload = webhook.payload
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
    screening = policy.screen(tenant, incoming, now=now)
    server = ReplyServer() if screening.ignore_reason else reply_server(tenant, incoming)
    return Arrival(tenant, incoming, screening, server, _redacted(payload))


def _answer(arrival: Arrival, stored: Stored) -> Outcome[WebhookOutcome]:
    message_id = arrival.incoming.message_id
    if isinstance(stored, Exception):
        return stored
    if isinstance(stored, Duplicate):
        return WebhookOutcome("duplicate", message_id=message_id)
    if stored.status in (Message.Status.IGNORED, Message.Status.PAUSED):
        return WebhookOutcome("ignored", stored.ignore_reason, message_id)
    if arrival.server.refusal:
        return WebhookOutcome("failed", arrival.server.refusal, message_id)
    return WebhookOutcome("queued", message_id=message_id)


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
