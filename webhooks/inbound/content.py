"""What a WhatsApp message says (kind, text, media, quoted text), read from `data.message`.

`data.message` is Baileys' message protobuf rendered as JSON, and its shape changes between
Evolution versions, so every reader here is forgiving: a field it cannot read becomes an empty
value, never an error. What the readers return can be stored as it is: strings without NULs or
lone surrogates and no longer than their column, integers within a column's range.
"""

import base64
import binascii
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import models

from omnihub.json_input import storable_text
from webhooks.models import Message

# What a PositiveBigIntegerField holds on every database: any other value is treated as absent.
_LARGEST_INT = 2**63 - 1


class MessageKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"
    AUDIO = "audio"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"
    REACTION = "reaction"
    PROTOCOL = "protocol"  # edits, deletes and other notices about earlier messages
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    mimetype: str  # "" when unknown
    # When Evolution included the file (webhook "base64" option); megabytes, so not in repr.
    base64: str | None = field(repr=False)
    url: str | None  # Evolution's stored copy (mediaUrl) if any, else WhatsApp's encrypted URL
    file_name: str  # documents; "" otherwise
    size: int | None  # bytes
    seconds: int | None  # audio/video duration
    ptt: bool  # a voice note recorded in the app, not an audio file


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageContent:
    kind: MessageKind
    text: str
    quoted_text: str
    media: Media | None


_KIND_BY_KEY: dict[str, MessageKind] = {
    "conversation": MessageKind.TEXT,
    "extendedTextMessage": MessageKind.TEXT,
    "imageMessage": MessageKind.IMAGE,
    "videoMessage": MessageKind.VIDEO,
    "ptvMessage": MessageKind.VIDEO,  # round "video note"
    "documentMessage": MessageKind.DOCUMENT,
    "audioMessage": MessageKind.AUDIO,
    "stickerMessage": MessageKind.STICKER,
    "locationMessage": MessageKind.LOCATION,
    "liveLocationMessage": MessageKind.LOCATION,
    "contactMessage": MessageKind.CONTACT,
    "contactsArrayMessage": MessageKind.CONTACT,
    "reactionMessage": MessageKind.REACTION,
    "protocolMessage": MessageKind.PROTOCOL,
    "editedMessage": MessageKind.PROTOCOL,
}
_MEDIA_KINDS = frozenset(
    {
        MessageKind.IMAGE,
        MessageKind.VIDEO,
        MessageKind.DOCUMENT,
        MessageKind.AUDIO,
        MessageKind.STICKER,
    }
)
# These carry the real message one level down, under their own "message" key.
_WRAPPERS = (
    "documentWithCaptionMessage",
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
)
_VCARD_TEL = re.compile(r"^(?:item\d+\.)?TEL([^:\r\n]*):(.*)$", re.IGNORECASE | re.MULTILINE)
_VCARD_FN = re.compile(r"^FN[^:\r\n]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_WAID = re.compile(r"waid=(\d+)", re.IGNORECASE)


def read_content(message: object, *, message_type: str, context_info: object) -> MessageContent:
    """Read `data.message`; `context_info` is `data.contextInfo`, where Evolution ≥2.2 lifts it."""
    outer = message if isinstance(message, dict) else {}
    kind, body = _kind_and_body(outer, message_type)
    return MessageContent(
        kind=kind,
        text=_text_of(kind, body),
        quoted_text=_quoted_text(context_info, body),
        media=_media(kind, body, outer) if kind in _MEDIA_KINDS else None,
    )


def read_int(value: object) -> int | None:
    """A count, size or timestamp (0 to 2**63 - 1) in any of Evolution's encodings: number,
    numeric string or protobuf Long. Negative or larger numbers are no size or time: None."""
    number = _any_int(value)
    return number if number is not None and 0 <= number <= _LARGEST_INT else None


def read_str(value: object, *, column: str = "") -> str:
    """A string, stripped and made storable; cut to the length of the Message `column` it is
    stored in, if one is named. Anything else is ""."""
    if not isinstance(value, str):
        return ""
    text = storable_text(value).strip()
    return fit(text, column) if column else text


def fit(text: str, column: str) -> str:
    """`text` cut to the length of the Message `column` it is stored in."""
    field = Message._meta.get_field(column)
    max_length = field.max_length if isinstance(field, models.Field) else None
    return text[:max_length] if max_length else text


def _any_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    if isinstance(value, dict):
        low, high = value.get("low"), value.get("high")
        if type(low) is not int or type(high) is not int:
            return None
        # long.js keeps both halves as signed 32-bit ints, whatever the "unsigned" flag says.
        if value.get("unsigned") is True:
            high &= 0xFFFFFFFF
        return (high << 32) | (low & 0xFFFFFFFF)
    return None


def _kind_and_body(message: dict[str, Any], message_type: str) -> tuple[MessageKind, Any]:
    for _ in range(3):  # wrappers may nest, e.g. an ephemeral document with a caption
        inner = next((message[w] for w in _WRAPPERS if isinstance(message.get(w), dict)), None)
        if inner is None or not isinstance(inner.get("message"), dict):
            break
        message = inner["message"]
    # messageType names the content key; side keys (messageContextInfo, base64...) are not content.
    if message_type in _KIND_BY_KEY and message_type in message:
        return _KIND_BY_KEY[message_type], message[message_type]
    for key, body in message.items():
        if key in _KIND_BY_KEY:
            return _KIND_BY_KEY[key], body
    return _KIND_BY_KEY.get(message_type, MessageKind.UNSUPPORTED), None


def _text_of(kind: MessageKind, body: Any) -> str:
    if isinstance(body, str):  # "conversation" is the text itself
        return read_str(body)
    if not isinstance(body, dict):
        return ""
    match kind:
        case MessageKind.TEXT | MessageKind.REACTION:
            return read_str(body.get("text"))
        case MessageKind.IMAGE | MessageKind.VIDEO | MessageKind.DOCUMENT:
            return read_str(body.get("caption"))
        case MessageKind.LOCATION:
            return _render_location(body)
        case MessageKind.CONTACT:
            return _render_contacts(body)
        case _:
            return ""


def _quoted_text(context_info: object, body: Any) -> str:
    own_context = body.get("contextInfo") if isinstance(body, dict) else None
    for context in (context_info, own_context):
        quoted = context.get("quotedMessage") if isinstance(context, dict) else None
        if isinstance(quoted, dict):
            return _text_of(*_kind_and_body(quoted, ""))
    return ""


def _media(kind: MessageKind, body: Any, outer: dict[str, Any]) -> Media:
    details = body if isinstance(body, dict) else {}
    encoded = read_str(outer.get("base64")) or None
    size = _decoded_size(encoded) if encoded else None
    return Media(
        mimetype=read_str(details.get("mimetype"), column="media_mimetype"),
        base64=encoded,
        # Evolution's own stored copy is plain; WhatsApp's URL needs the media key to decrypt.
        url=read_str(outer.get("mediaUrl")) or read_str(details.get("url")) or None,
        file_name=(
            fit(
                read_str(details.get("fileName")) or read_str(details.get("title")),
                "media_file_name",
            )
            if kind is MessageKind.DOCUMENT
            else ""
        ),
        size=size if size is not None else read_int(details.get("fileLength")),
        seconds=read_int(details.get("seconds")),
        ptt=details.get("ptt") is True,
    )


def _decoded_size(encoded: str) -> int | None:
    try:
        return len(base64.b64decode(encoded))
    except (binascii.Error, ValueError):
        return None


def _render_location(body: dict[str, Any]) -> str:
    place = ", ".join(
        part
        for part in (
            read_str(body.get("name")) or read_str(body.get("caption")),
            read_str(body.get("address")),
        )
        if part
    )
    lat, lng = body.get("degreesLatitude"), body.get("degreesLongitude")
    if _is_number(lat) and _is_number(lng):
        place = f"{place} ({lat}, {lng})".strip()
    return f"Location: {place}" if place else "Location"


def _render_contacts(body: dict[str, Any]) -> str:
    cards = body.get("contacts")
    if not isinstance(cards, list):
        cards = [body]
    return "\n".join(_render_contact(card) for card in cards if isinstance(card, dict))


def _render_contact(card: dict[str, Any]) -> str:
    vcard = read_str(card.get("vcard"))
    name = read_str(card.get("displayName"))
    if not name and (fn := _VCARD_FN.search(vcard)):
        name = fn.group(1).strip()
    phones = []
    for params, value in _VCARD_TEL.findall(vcard):
        waid = _WAID.search(params)
        phone = value.strip() or (waid.group(1) if waid else "")
        if phone:
            phones.append(phone)
    return " ".join(part for part in ("Contact:", name, ", ".join(phones)) if part)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
