"""A raw Evolution API v2 webhook body → one typed `IncomingMessage`, at the boundary.

Nothing past this module looks at the raw dict. Evolution's fields vary by version (see
tests/webhooks/fixtures/), so extraction is explicit and forgiving: only a body without a message
id or chat is unreadable. Every field of an `IncomingMessage` can be stored as it is (see
`content.read_str`): a value longer than its column is cut, so a hostile body is stored, not
refused, and Evolution does not send it again and again.

Reference: https://doc.evolution-api.com/v2/en/configuration/webhooks
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from webhooks.inbound.content import Media, MessageKind, fit, read_content, read_int, read_str

__all__ = [
    "MESSAGES_UPSERT",
    "IncomingMessage",
    "Media",
    "MessageKind",
    "UnreadablePayloadError",
    "event_name",
    "normalise_event",
    "parse_incoming_message",
]

MESSAGES_UPSERT = "messages.upsert"
_PHONE_SERVERS = ("s.whatsapp.net", "c.us")
_STATUS_BROADCAST = "status@broadcast"
# Longer is no event name: it is cut before it is echoed in answers and logs.
_EVENT_NAME_LENGTH = 64


class UnreadablePayloadError(ValueError):
    """The body is not an incoming message Omnihub can read; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingMessage:
    instance: str
    message_id: str
    chat_jid: str
    phone: str  # digits; "" when only a LID is known
    reply_to: str  # phone digits, the LID JID when no phone is known, or the group JID
    whatsapp_id: str  # the sender's phone JID when known, else chat_jid
    from_me: bool
    push_name: str
    participant: str  # group/status sender: phone digits, else their JID; "" for 1:1 chats
    is_group: bool
    is_status_broadcast: bool
    timestamp: datetime | None  # aware, UTC
    kind: MessageKind
    text: str  # text, caption, or a readable rendering of a location, contact or reaction
    quoted_text: str
    media: Media | None
    server_url: str
    apikey: str = field(repr=False)  # a secret: keep it out of logs and tracebacks


class _Sender(NamedTuple):
    phone: str
    participant: str
    reply_to: str


def event_name(payload: dict[str, Any]) -> str:
    """Normalised event name: "messages.upsert", "MESSAGES_UPSERT" and "messages-upsert" all
    become "messages.upsert"; "" when absent."""
    raw = payload.get("event") if isinstance(payload, dict) else None
    return normalise_event(raw) if isinstance(raw, str) else ""


def parse_incoming_message(payload: dict[str, Any], *, event_from_url: str = "") -> IncomingMessage:
    """Read a messages.upsert body; `event_from_url` is the "/messages-upsert" suffix Evolution adds
    with "webhook by events", used when the body names no event."""
    if not isinstance(payload, dict):
        raise UnreadablePayloadError("the body is not a JSON object")
    event = event_name(payload) or normalise_event(event_from_url)
    # No event at all is let through: the body's shape, not its label, decides if it is readable.
    if event and event != MESSAGES_UPSERT:
        raise UnreadablePayloadError(f"event {event!r} is not {MESSAGES_UPSERT!r}")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise UnreadablePayloadError("data is missing or not an object")
    key = data.get("key")
    if not isinstance(key, dict):
        raise UnreadablePayloadError("data.key is missing or not an object")
    message_id = read_str(key.get("id"), column="whatsapp_id")
    if not message_id:
        raise UnreadablePayloadError("data.key.id is missing")
    chat_jid = read_str(key.get("remoteJid"), column="chat_jid")
    if not chat_jid:
        raise UnreadablePayloadError("data.key.remoteJid is missing")

    is_group = chat_jid.endswith("@g.us")
    is_status_broadcast = chat_jid == _STATUS_BROADCAST
    sender = _sender(key, chat_jid, is_group=is_group, is_status_broadcast=is_status_broadcast)
    content = read_content(
        data.get("message"),
        message_type=read_str(data.get("messageType")),
        context_info=data.get("contextInfo"),
    )
    return IncomingMessage(
        instance=read_str(payload.get("instance")),
        message_id=message_id,
        chat_jid=chat_jid,
        phone=sender.phone,
        reply_to=fit(sender.reply_to, "reply_to"),
        whatsapp_id=fit(
            f"{sender.phone}@s.whatsapp.net" if sender.phone else chat_jid, "whatsapp_user_id"
        ),
        # Read strictly-but-widely: missing an own message would make the agent answer the operator.
        from_me=str(key.get("fromMe")).lower() == "true",
        push_name=read_str(data.get("pushName"), column="push_name"),
        participant=sender.participant,
        is_group=is_group,
        is_status_broadcast=is_status_broadcast,
        timestamp=_timestamp(data.get("messageTimestamp")),
        kind=content.kind,
        text=content.text,
        quoted_text=content.quoted_text,
        media=content.media,
        server_url=read_str(payload.get("server_url"), column="reply_evolution_url"),
        apikey=read_str(payload.get("apikey")),
    )


def _sender(
    key: dict[str, Any], chat_jid: str, *, is_group: bool, is_status_broadcast: bool
) -> _Sender:
    if is_group or is_status_broadcast:
        # The chat is not the person: the sender is the participant, which may be a LID whose
        # phone number, when WhatsApp shares it, is in participantAlt (older: participantPn).
        participant_jid = read_str(key.get("participant"))
        phone = _first_phone(key.get("participantAlt"), participant_jid, key.get("participantPn"))
        participant = phone or participant_jid
        # Answering a group means writing to the group.
        return _Sender(phone, participant, chat_jid if is_group else participant or chat_jid)
    # A LID chat (…@lid) hides the number: 2.3.6+ puts it in remoteJidAlt, older ones in senderPn.
    phone = _first_phone(chat_jid, key.get("remoteJidAlt"), key.get("senderPn"))
    return _Sender(phone, "", phone or chat_jid)


def _first_phone(*jids: object) -> str:
    return next((phone for jid in jids if (phone := _phone_digits(jid))), "")


def _phone_digits(jid: object) -> str:
    """Digits of a phone JID ("5511…:12@s.whatsapp.net" → "5511…"); "" for LIDs, groups, junk."""
    user, _, server = read_str(jid).partition("@")
    if server and server not in _PHONE_SERVERS:
        return ""
    digits = user.partition(":")[0].removeprefix("+")
    # Cut, a number would be someone else's: one longer than its column is no number.
    is_number = digits.isascii() and digits.isdigit() and fit(digits, "phone") == digits
    return digits if is_number else ""


def _timestamp(value: object) -> datetime | None:
    seconds = read_int(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def normalise_event(raw: str) -> str:
    last_segment = read_str(raw).strip("/").rpartition("/")[2][:_EVENT_NAME_LENGTH]
    return last_segment.lower().replace("_", ".").replace("-", ".")
