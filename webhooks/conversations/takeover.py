"""Human takeover: when someone replies by hand from the business's phone or WhatsApp Web, the
bot goes quiet in that chat for the tenant's `human_takeover_minutes` (0 never pauses), counted
from when the person wrote. Each reply of theirs starts the count again; Omnihub's own replies,
which Evolution posts back too, do not (webhooks.conversations.echoes)."""

from datetime import datetime, timedelta

from instances.selectors import TenantRef
from webhooks.conversations.echoes import is_own_echo
from webhooks.inbound.parsing import IncomingMessage
from webhooks.inbound.screening import Screening

BY_A_PERSON = "sent by a person on the business's phone"


def screen(tenant: TenantRef, incoming: IncomingMessage, *, now: datetime) -> Screening:
    """The screening of a message sent from the tenant's own account to a contact's chat."""
    if is_own_echo(
        tenant_id=tenant.id,
        chat_jid=incoming.chat_jid,
        whatsapp_id=incoming.message_id,
        text=incoming.text,
    ):
        return Screening(ignore_reason="Omnihub's own reply", by_contact=False)
    minutes = tenant.human_takeover_minutes
    if not minutes:
        return Screening(ignore_reason=f"{BY_A_PERSON}; takeover is off", by_contact=False)
    # From when the person wrote: a reply delivered late pauses for what is left, if anything.
    written_at = min(incoming.timestamp or now, now)
    until = written_at + timedelta(minutes=minutes)
    if until <= now:
        return Screening(ignore_reason=f"{BY_A_PERSON}, too long ago to pause", by_contact=False)
    return Screening(
        ignore_reason=f"{BY_A_PERSON}: the bot is paused in this chat",
        pause_until=until,
        by_contact=False,
    )
