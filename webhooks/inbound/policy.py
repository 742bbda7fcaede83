"""Which incoming messages are for the agent, and why the others are not: the order in which
intake's rules apply, each rule in a module of its own.

`screen` runs first, with only the message and the tenant's settings, before anything is
written; `admit` then runs in the transaction that stores the message, under its chat's row
lock, for the rules that read the chat (a pause, the per-contact limit, the agent session).

Every reason is stored with the message and answered to Evolution as 200 "ignored": these are
messages Omnihub chose not to answer, not errors Evolution should retry.
"""

from datetime import datetime

from instances.selectors import TenantRef
from webhooks.conversations import pausing, takeover
from webhooks.conversations.chat_state import ChatState
from webhooks.inbound import access, rate_limit, staleness, start_over, unsupported
from webhooks.inbound.parsing import IncomingMessage, MessageKind
from webhooks.inbound.screening import FOR_THE_AGENT, Canned, Screening
from webhooks.models import Message


def ignore_reason(message: IncomingMessage) -> str | None:
    """Why this message is for no one, whatever the tenant's settings; None when the tenant's
    rules decide (`screen`)."""
    if message.is_status_broadcast:
        return "status broadcasts are not handled"
    if message.is_group:
        return "group chats are not handled"
    if message.kind is MessageKind.PROTOCOL:
        return "protocol notice (edit, delete or similar)"
    if message.kind is MessageKind.REACTION:
        return "reactions are not handled"
    if (
        message.kind not in unsupported.UNANSWERABLE_KINDS
        and not message.text
        and message.media is None
    ):
        return "empty message"
    return None


def screen(tenant: TenantRef, incoming: IncomingMessage, *, now: datetime) -> Screening:
    """The rules that need no chat state, in order; the first that applies decides."""
    if reason := ignore_reason(incoming):
        return Screening(ignore_reason=reason, by_contact=False)
    if incoming.from_me:
        return takeover.screen(tenant, incoming, now=now)
    if reason := access.refusal(tenant, incoming.phone) or staleness.stale_reason(
        tenant, incoming.timestamp, now=now
    ):
        return Screening(ignore_reason=reason)
    return (
        unsupported.screen(tenant, incoming)
        or start_over.screen(tenant, incoming.text)
        or FOR_THE_AGENT
    )


def admit(
    message: Message, screening: Screening, tenant: TenantRef, chat: ChatState, *, now: datetime
) -> None:
    """The rules that read the chat, applied to `message` before it is stored: call it in the
    transaction that stores it, with `chat` read under the chat's row lock
    (chat_state.lock_chats) and the chat not yet marked ready. The messages of one chat stored
    together are admitted in arrival order: `chat` is as the earlier ones left it, and this
    one's effects on it are noted for the next."""
    if screening.pause_until is not None:
        pausing.extend_pause(chat.id, until=screening.pause_until)
        # Read again, as stored: whether that pauses the chat now is pausing's to say.
        chat.is_paused = pausing.is_paused(chat.id, now=now)
    if screening.by_contact:
        _admit_from_contact(message, screening, tenant, chat, now=now)
    if rate_limit.counts(message):
        chat.recent_messages += 1


def contact_name(message: Message, screening: Screening) -> str:
    """The name the chat's contact goes by after `message`; "" when it says nothing of it."""
    return message.push_name if screening.by_contact else ""


def _admit_from_contact(
    message: Message, screening: Screening, tenant: TenantRef, chat: ChatState, *, now: datetime
) -> None:
    chat.contact_name = contact_name(message, screening) or chat.contact_name
    if message.status != Message.Status.RECEIVED:
        return  # ignored, or with nowhere to send a reply (failed)
    message.session_generation = chat.session_generation
    if chat.is_paused:
        _not_answered(message, Message.Status.PAUSED, pausing.PAUSED_ON_ARRIVAL)
    elif rate_limit.is_over_limit(tenant, chat.recent_messages):
        if tenant.rate_limited_reply and rate_limit.reply_due(chat.rate_limited_reply_at, now=now):
            rate_limit.note_reply(chat.id, now=now)
            chat.rate_limited_reply_at = now
            kind = Message.CannedReply.RATE_LIMITED
            _answer_with(message, Canned(kind, tenant.rate_limited_reply, rate_limit.REASON))
        else:
            _not_answered(message, Message.Status.IGNORED, rate_limit.REASON)
    elif screening.canned is not None:
        if screening.canned.kind == Message.CannedReply.RESET:
            start_over.start_new_session(chat.id)
            chat.session_generation += 1
        _answer_with(message, screening.canned)


def _not_answered(message: Message, status: Message.Status, reason: str) -> None:
    message.status = status
    message.ignore_reason = reason
    # Kept only for a reply: media are large and personal, and a key is a secret.
    message.media_base64 = ""
    message.reply_evolution_url = ""
    message.reply_evolution_key = ""


def _answer_with(message: Message, canned: Canned) -> None:
    """Queued with its reply already written: the worker sends it, through the same path and
    retries as the agent's, and does not ask the agent (webhooks.conversations.answering)."""
    message.canned_reply = canned.kind
    message.reply_text = canned.text
    message.ignore_reason = canned.note
    message.media_base64 = ""
