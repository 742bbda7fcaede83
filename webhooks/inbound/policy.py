"""Which incoming messages are for the agent, and why the others are not.

Every reason is stored with the message and answered to Evolution as 200 "ignored": these are
messages Omnihub chose not to answer, not errors Evolution should retry.
"""

from webhooks.inbound.parsing import IncomingMessage, MessageKind


def ignore_reason(message: IncomingMessage) -> str | None:
    """Why this message is not for the agent, or None when it is."""
    if message.from_me:
        return "sent by this WhatsApp account"
    if message.is_status_broadcast:
        return "status broadcasts are not handled"
    if message.is_group:
        return "group chats are not handled"
    if message.kind is MessageKind.PROTOCOL:
        return "protocol notice (edit, delete or similar)"
    if message.kind is MessageKind.REACTION:
        return "reactions are not handled"
    if message.kind in (MessageKind.STICKER, MessageKind.UNSUPPORTED):
        return f"unsupported message type: {message.kind}"
    if not message.text and message.media is None:
        return "empty message"
    return None
