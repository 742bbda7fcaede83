"""Conversation leases: which worker answers a chat now.

A worker leases a conversation to answer its messages one at a time. It looks for pending
messages under the conversation's lock before it lets go (a row lock on PostgreSQL; SQLite runs
one write transaction at a time), so a message stored under that lock while the lease is held
is answered by the holder. Kept apart from the worker's code: the web process needs this much
and none of the worker's HTTP clients.
"""

from datetime import datetime

from django.utils import timezone

from webhooks.models import Conversation


def locked_lease(conversation_id: int) -> tuple[str, datetime | None] | None:
    """The conversation's lease (holder, expiry), its row locked until the transaction ends;
    None when there is no such conversation. The lock does not block inserting its messages."""
    return (
        Conversation.objects.select_for_update(no_key=True)
        .filter(pk=conversation_id)
        .values_list("lease_owner", "leased_until")
        .first()
    )


def is_held(owner: str, leased_until: datetime | None, now: datetime) -> bool:
    return bool(owner) and leased_until is not None and leased_until > now


def is_being_answered(conversation_id: int) -> bool:
    """Whether a worker holds the conversation, and so will answer a message stored now before
    it lets go. Call it in the transaction that stores the message, before storing it."""
    lease = locked_lease(conversation_id)
    return lease is not None and is_held(*lease, timezone.now())
