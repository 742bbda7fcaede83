"""Messages the agent cannot take (a sticker, a poll, anything Omnihub cannot read): answered
with the tenant's `unsupported_reply` when it has one, rather than with silence."""

from instances.selectors import TenantRef
from webhooks.inbound.parsing import IncomingMessage, MessageKind
from webhooks.inbound.screening import Canned, Screening
from webhooks.models import Message

UNANSWERABLE_KINDS = frozenset({MessageKind.STICKER, MessageKind.UNSUPPORTED})


def screen(tenant: TenantRef, incoming: IncomingMessage) -> Screening | None:
    """The screening of a message of a kind the agent cannot take; None for any other."""
    if incoming.kind not in UNANSWERABLE_KINDS:
        return None
    reason = f"unsupported message type: {incoming.kind}"
    if not tenant.unsupported_reply:
        return Screening(ignore_reason=reason)
    kind = Message.CannedReply.UNSUPPORTED
    return Screening(canned=Canned(kind, tenant.unsupported_reply, reason))
