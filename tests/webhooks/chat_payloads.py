"""Webhook bodies for the conversation behaviours: messages a contact sends and messages the
business's own account sends, stamped now unless told otherwise (the captured fixtures are
from 2025, older than any tenant's stale-message limit)."""

import time
from typing import Any

from tests.webhooks.conftest import evolution_payload, with_message_id

CHAT = "5511912345678"


def from_contact(
    text: str, message_id: str, *, chat: str = CHAT, at: float | None = None, name: str = ""
) -> dict[str, Any]:
    """A text the contact `chat` (digits) sent, at `at` (Unix seconds; now by default)."""
    payload = stamped(with_message_id(evolution_payload("text_pn"), message_id, jid(chat)), at)
    payload["data"]["message"] = {"conversation": text}
    if name:
        payload["data"]["pushName"] = name
    return payload


def from_the_phone(
    text: str, message_id: str, *, chat: str = CHAT, at: float | None = None
) -> dict[str, Any]:
    """A text the business's own account sent to `chat`: typed by a person on its phone, or
    Omnihub's own reply coming back."""
    payload = stamped(
        with_message_id(evolution_payload("from_me_operator"), message_id, jid(chat)), at
    )
    payload["data"]["message"] = {"conversation": text}
    return payload


def sticker_from(message_id: str, *, chat: str = CHAT) -> dict[str, Any]:
    return stamped(with_message_id(evolution_payload("sticker"), message_id, jid(chat)))


def stamped(payload: dict[str, Any], at: float | None = None) -> dict[str, Any]:
    data = {**payload["data"], "messageTimestamp": int(time.time() if at is None else at)}
    return {**payload, "data": data}


def jid(chat: str) -> str:
    return f"{chat}@s.whatsapp.net"
