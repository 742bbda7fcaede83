"""Never silent: when a message ends failed, the tenant's `error_reply` (when it has one) is
sent to the user, once.

The notice is a part of its own on the failed message (ReplyPart, kind error_reply), queued in
the transaction that fails the message and sent by the worker through the same send path as
any reply: recorded before the call, looked up in Evolution after an unknown outcome, retried
with the same backoff. The message stays failed, with its error.
"""

from datetime import datetime

from webhooks.models import Message, ReplyPart


def queue(message: Message, *, now: datetime) -> datetime | None:
    """Queue the error reply for `message`, which has just failed; returns when it is due, or
    None when the tenant has none or the user was already sent one for this message (it may
    fail again after a person's retry). Call it in the transaction that records the failure."""
    text = message.instance.error_reply.strip()
    if not text:
        return None
    notice, _ = ReplyPart.objects.get_or_create(
        message=message, kind=ReplyPart.Kind.ERROR_REPLY, position=0, defaults={"text": text}
    )
    return now if notice.sent_at is None else None
