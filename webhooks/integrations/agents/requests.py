"""What the agent is asked for a stored message: the Agents API request it maps to."""

from webhooks.integrations.agents.client import AgentMedia, AgentRequest
from webhooks.models import Message

MEDIA_KINDS = frozenset({"image", "video", "document", "audio"})


def agent_request(message: Message) -> AgentRequest:
    instance = message.instance
    content = message.text
    if message.quoted_text:
        content = f'[In reply to: "{message.quoted_text}"]\n{content}'
    media = []
    if message.kind in MEDIA_KINDS and (message.media_base64 or message.media_url):
        media.append(
            AgentMedia(
                mime_type=message.media_mimetype or "application/octet-stream",
                data=message.media_base64 or None,
                media_url=None if message.media_base64 else message.media_url,
                name=message.media_file_name,
                alt_text=message.text,
            )
        )
    # Without a phone number (a LID chat) the LID itself names the session.
    user_key = message.phone or message.reply_to.partition("@")[0]
    session_name = f"{instance.session_id_prefix}{user_key}"
    if message.session_generation:  # the chat was started over (a reset keyword)
        session_name = f"{session_name}-{message.session_generation}"
    return AgentRequest(
        message_content=content,
        message_type=message.kind if message.kind in MEDIA_KINDS else "text",
        session_name=session_name,
        phone_number=f"+{message.phone}" if message.phone else None,
        user_name=message.push_name,
        whatsapp_id=message.whatsapp_user_id,
        media=media,
    )
