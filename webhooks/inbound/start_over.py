"""Start over: a message equal to the tenant's `reset_keyword` (trimmed, in any case; empty is
off) is not sent to the agent. The chat's next message starts a new agent session, and the
tenant's `reset_reply` is sent."""

from django.db.models import F

from instances.selectors import TenantRef
from webhooks.inbound.screening import Canned, Screening
from webhooks.models import Conversation, Message


def screen(tenant: TenantRef, text: str) -> Screening | None:
    """The screening of a reset keyword; None for any other text."""
    keyword = tenant.reset_keyword.strip()
    if not keyword or text.strip().casefold() != keyword.casefold():
        return None
    note = "reset keyword: the next message starts a new agent session"
    return Screening(canned=Canned(Message.CannedReply.RESET, tenant.reset_reply, note))


def start_new_session(conversation_id: int) -> None:
    """The chat's messages from now on belong to a new agent session. Call it in the
    transaction that stores the reset keyword, under the chat's row lock, so that every later
    message is stored with the new session (Message.session_generation)."""
    Conversation.objects.filter(pk=conversation_id).update(
        session_generation=F("session_generation") + 1
    )
