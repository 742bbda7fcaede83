"""Whether a message Evolution reports as sent from the business's number (`fromMe`) is an echo
of one Omnihub sent, rather than a person replying by hand.

Evolution may deliver the echo before sendText has returned the id, so two records count: the
id Evolution gave a part we sent, and a part of that chat with that text whose send is in
flight (recorded before the call, not yet answered).
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from webhooks.inbound.content import read_str
from webhooks.models import ReplyPart

# How long after its send began a part with no answer yet may still be echoed: Evolution may
# carry out a send after Omnihub's call gave up on it (its number lookup can be slow).
IN_FLIGHT_SECONDS = 300


def is_own_echo(*, tenant_id: int, chat_jid: str, whatsapp_id: str, text: str) -> bool:
    """Whether the tenant's `fromMe` message `whatsapp_id` (Evolution's key.id) in `chat_jid`,
    saying `text`, is one Omnihub sent: a reply part or notice with that id, or one of that
    chat with that text whose send is under way."""
    parts = ReplyPart.objects.filter(message__instance_id=tenant_id)
    if whatsapp_id and parts.filter(whatsapp_id=whatsapp_id).exists():
        return True
    if not text or not chat_jid:
        return False
    # The echo names the chat as WhatsApp does; Omnihub sent to the chat's number, which a LID
    # chat's echo may name instead.
    number = chat_jid.partition("@")[0]
    chat = Q(message__chat_jid=chat_jid)
    if number:
        chat |= Q(message__reply_to=number)
    in_flight = parts.filter(
        chat,
        sent_at__isnull=True,
        send_started_at__gte=timezone.now() - timedelta(seconds=IN_FLIGHT_SECONDS),
    ).values_list("text", flat=True)
    # Compared as the webhook's text was read (stripped, made storable).
    return any(read_str(sent) == text for sent in in_flight)
