"""Per-contact limit: at most the tenant's `max_messages_per_hour` messages of one chat (in a
1:1 chat, one contact) reach the agent or a canned reply in any hour (0 is no limit). It keeps
one runaway contact, or two bots answering each other, from using up the tenant's agent.

Counted in the database, over the last hour, so the limit holds however many web processes
take the chat's webhooks: each count runs under the chat's row lock (see
webhooks.inbound.policy), so two messages arriving at once are counted one after the other;
the messages stored with it in the same transaction are counted as they are admitted.
"""

from collections.abc import Collection
from datetime import datetime, timedelta

from django.db.models import Count

from instances.selectors import TenantRef
from webhooks.models import Conversation, Message

WINDOW = timedelta(hours=1)
# Messages that never reached the agent do not count: a contact told to slow down, or one
# waiting for a person, is not held back further by what it sent meanwhile.
_UNCOUNTED = (Message.Status.IGNORED, Message.Status.PAUSED)
REASON = "rate limited: too many messages from this contact in the last hour"


def recent_counts(conversation_ids: Collection[int], *, now: datetime) -> dict[int, int]:
    """How many messages of each chat count towards the limit now; a chat with none is left
    out. Call it under the chats' row locks."""
    recent = Message.objects.filter(
        conversation_id__in=conversation_ids, received_at__gte=now - WINDOW
    ).exclude(status__in=_UNCOUNTED)
    return dict(
        # order_by(): a message's default order (by id) would be grouped by too.
        recent.order_by()
        .values_list("conversation_id")
        .annotate(n=Count("pk"))
        .values_list("conversation_id", "n")
    )


def counts(message: Message) -> bool:
    """Whether `message`, as it is stored, counts towards its chat's limit."""
    return message.status not in _UNCOUNTED


def is_over_limit(tenant: TenantRef, recent_messages: int) -> bool:
    """Whether the chat's next message would be over the tenant's limit, given how many of
    its messages count now (`recent_counts`)."""
    limit = tenant.max_messages_per_hour
    return bool(limit) and recent_messages >= limit


def reply_due(last_replied_at: datetime | None, *, now: datetime) -> bool:
    """Whether the contact is due the tenant's rate-limited reply: once an hour at most."""
    return last_replied_at is None or last_replied_at <= now - WINDOW


def note_reply(conversation_id: int, *, now: datetime) -> None:
    """Record that the chat's contact is being told (in the transaction that stores the
    message the reply answers)."""
    Conversation.objects.filter(pk=conversation_id).update(rate_limited_reply_at=now)
