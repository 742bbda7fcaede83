"""Whether a message sent from the tenant's own WhatsApp account is Omnihub's reply coming
back (Evolution posts what the account sends, whoever sent it) rather than a person writing
from the business's phone.

Evolution may post the echo before the sendText call that caused it has returned, so before
the reply's id is known: a reply is therefore recognised by its id once it was sent, and, while
its send is under way, by its chat and text (the send is recorded before the call is made:
Message.send_started_at).
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from webhooks.inbound.content import read_str
from webhooks.models import Message

# Longer than a send can take (the Evolution timeout, a typing delay and the retries of a
# reply whose outcome was unknown), short enough that a person who types the bot's last words
# again, later, is still seen as a person.
IN_FLIGHT = timedelta(minutes=10)


def is_own_echo(*, tenant_id: int, chat_jid: str, whatsapp_id: str, text: str) -> bool:
    """Whether the message `whatsapp_id` with `text`, sent from the tenant's account to
    `chat_jid`, is a reply Omnihub sent or is sending there."""
    sends = Message.objects.filter(
        Q(reply_whatsapp_id=whatsapp_id) | Q(send_started_at__gte=timezone.now() - IN_FLIGHT),
        conversation__instance_id=tenant_id,
        conversation__chat_jid=chat_jid,
    ).values_list("reply_whatsapp_id", "reply_text")
    # Compared as the webhook's text was read (stripped, made storable).
    return any(
        sent_id == whatsapp_id or (bool(text) and read_str(reply or "") == text)
        for sent_id, reply in sends
    )
