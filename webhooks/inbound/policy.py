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
from webhooks.conversations.chat_state import lock_chat_state, note_contact_name
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


def admit(message: Message, screening: Screening, tenant: TenantRef, *, now: datetime) -> None:
    """The rules that read the chat, applied to `message` before it is stored: call it in the
    transaction that stores it, once its conversation is known, before the chat is marked
    ready. The chat's row is locked first, as in every transaction that stores a message."""
    conversation_id = message.conversation_id
    if screening.pause_until is not None:
        pausing.extend_pause(conversation_id, until=screening.pause_until)
    if not screening.by_contact:
        return
    chat = lock_chat_state(conversation_id, now=now)
    if message.push_name and message.push_name != chat.contact_name:
        note_contact_name(conversation_id, message.push_name)
    if message.status != Message.Status.RECEIVED:
        return  # ignored, or with nowhere to send a reply (failed)
    if chat.is_paused:
        _not_answered(message, Message.Status.PAUSED, pausing.PAUSED_ON_ARRIVAL)
    elif rate_limit.is_over_limit(tenant, conversation_id, now=now):
        if tenant.rate_limited_reply and rate_limit.reply_due(chat.rate_limited_reply_at, now=now):
            rate_limit.note_reply(conversation_id, now=now)
            kind = Message.CannedReply.RATE_LIMITED
            _answer_with(message, Canned(kind, tenant.rate_limited_reply, rate_limit.REASON))
        else:
            _not_answered(message, Message.Status.IGNORED, rate_limit.REASON)
    elif screening.canned is not None:
        if screening.canned.kind == Message.CannedReply.RESET:
            start_over.start_new_session(conversation_id)
        _answer_with(message, screening.canned)
    message.session_generation = chat.session_generation


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
