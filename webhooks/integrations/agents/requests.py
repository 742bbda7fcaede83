"""What the agent is asked for stored messages: the Agents API request they map to."""

from datetime import datetime

from webhooks.integrations.agents.client import AgentMedia, AgentRequest
from webhooks.models import Message

MEDIA_KINDS = frozenset({"image", "video", "document", "audio"})


def agent_request(first: Message, *more: Message) -> AgentRequest:
    """The request that answers `first`, or a burst of messages of one chat (debounce) in one
    call: their contents joined by newlines in the order WhatsApp gave them, their media
    together, asked in the chat's session as its latest sender. The type is the first media
    message's kind, else text."""
    messages = sorted([first, *more], key=_whatsapp_order)
    kinds = [message.kind for message in messages if message.kind in MEDIA_KINDS]
    latest = messages[-1]
    instance = first.instance
    # Without a phone number (a LID chat) the LID itself names the session.
    user_key = first.phone or first.reply_to.partition("@")[0]
    session_name = f"{instance.session_id_prefix}{user_key}"
    if first.session_generation:  # the chat was started over (a reset keyword)
        session_name = f"{session_name}-{first.session_generation}"
    return AgentRequest(
        # A photo without a caption adds its media, not an empty line.
        message_content="\n".join(filter(None, (_content(message) for message in messages))),
        message_type=kinds[0] if kinds else "text",
        session_name=session_name,
        phone_number=f"+{first.phone}" if first.phone else None,
        user_name=latest.push_name,
        whatsapp_id=latest.whatsapp_user_id,
        media=[media for message in messages if (media := _media(message)) is not None],
    )


def _whatsapp_order(message: Message) -> tuple[datetime, int]:
    # WhatsApp's timestamps are whole seconds: messages of one second keep their arrival order.
    return message.sent_at or message.received_at, message.pk


def _content(message: Message) -> str:
    if message.quoted_text:
        return f'[In reply to: "{message.quoted_text}"]\n{message.text}'
    return message.text


def _media(message: Message) -> AgentMedia | None:
    if message.kind not in MEDIA_KINDS or not (message.media_base64 or message.media_url):
        return None
    return AgentMedia(
        mime_type=message.media_mimetype or "application/octet-stream",
        data=message.media_base64 or None,
        media_url=None if message.media_base64 else message.media_url,
        name=message.media_file_name,
        alt_text=message.text,
    )
