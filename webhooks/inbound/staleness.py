"""Stale backlog: after a reconnect Evolution delivers the messages it missed, some of them
hours old. Answering them now would surprise the people who sent them, so a message older than
the tenant's `max_message_age_seconds` (by WhatsApp's timestamp; 0 is off) is not answered."""

from datetime import datetime, timedelta

from instances.selectors import TenantRef


def stale_reason(tenant: TenantRef, sent_at: datetime | None, *, now: datetime) -> str | None:
    """Why a message sent at `sent_at` is too old to answer, or None. A message without a
    timestamp is answered: its age is unknown."""
    limit = tenant.max_message_age_seconds
    if not limit or sent_at is None or sent_at >= now - timedelta(seconds=limit):
        return None
    return f"stale: sent over {limit} seconds before it arrived"
