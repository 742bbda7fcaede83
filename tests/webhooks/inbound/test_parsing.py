"""Parsing Evolution API v2 webhook bodies; fixtures are real-shaped payloads (see their README)."""

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from webhooks.inbound.parsing import (
    IncomingMessage,
    MessageKind,
    UnreadablePayloadError,
    event_name,
    parse_incoming_message,
)
from webhooks.inbound.policy import ignore_reason

FIXTURES = Path(__file__).parent.parent / "fixtures"

MESSAGE_FIXTURES = [
    "contact_card.json",
    "document_caption.json",
    "event_upper_snake_text.json",
    "from_me_operator.json",
    "group_text.json",
    "image_caption_base64.json",
    "image_no_base64_v22.json",
    "lid_with_alt_v236.json",
    "lid_without_phone.json",
    "location.json",
    "reaction.json",
    "status_broadcast.json",
    "sticker.json",
    "text_extended_legacy.json",
    "text_pn.json",
    "text_reply_quoted.json",
    "video_caption.json",
    "voice_note_ptt.json",
]
OTHER_EVENT_FIXTURES = {
    "event_connection_update.json": "connection.update",
    "event_messages_update.json": "messages.update",
    "event_send_message.json": "send.message",
}


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return payload


def parse(name: str) -> IncomingMessage:
    return parse_incoming_message(load(name))


def text_payload(**data: Any) -> dict[str, Any]:
    """A minimal messages.upsert body; keyword arguments replace fields of `data`."""
    payload = copy.deepcopy(load("text_pn.json"))
    payload["data"].update(data)
    return payload


def with_key(**key: Any) -> dict[str, Any]:
    payload = text_payload()
    payload["data"]["key"] = key
    return payload


def test_every_fixture_is_covered_by_these_tests() -> None:
    on_disk = {path.name for path in FIXTURES.glob("*.json")}
    assert on_disk == set(MESSAGE_FIXTURES) | set(OTHER_EVENT_FIXTURES)


@pytest.mark.parametrize("name", MESSAGE_FIXTURES)
def test_it_parses_every_message_fixture(name: str) -> None:
    message = parse(name)

    assert event_name(load(name)) == "messages.upsert"
    assert message.instance == "acme-sales"
    assert message.message_id
    assert message.chat_jid
    assert message.timestamp is not None
    assert message.timestamp.tzinfo is UTC
    assert message.server_url == "http://127.0.0.1:8080"
    assert message.apikey == "B6D711FCDE4D4FD5936544120E713976"


@pytest.mark.parametrize(("name", "event"), sorted(OTHER_EVENT_FIXTURES.items()))
def test_it_names_the_events_that_are_not_messages(name: str, event: str) -> None:
    assert event_name(load(name)) == event


@pytest.mark.parametrize("name", sorted(OTHER_EVENT_FIXTURES))
def test_it_refuses_to_parse_events_that_are_not_incoming_messages(name: str) -> None:
    with pytest.raises(UnreadablePayloadError, match=r"is not 'messages\.upsert'"):
        parse(name)


@pytest.mark.parametrize("spelling", ["messages.upsert", "MESSAGES_UPSERT", "messages-upsert"])
def test_it_normalises_every_spelling_of_the_event_name(spelling: str) -> None:
    assert event_name({"event": spelling}) == "messages.upsert"


def test_it_gives_an_empty_event_name_when_there_is_none() -> None:
    assert event_name({}) == ""
    assert event_name({"event": 42}) == ""


def test_it_takes_the_event_from_the_url_when_the_body_names_none() -> None:
    payload = text_payload()
    del payload["event"]

    assert parse_incoming_message(payload, event_from_url="messages-upsert").text
    with pytest.raises(UnreadablePayloadError, match=r"'send\.message'"):
        parse_incoming_message(payload, event_from_url="send-message")


def test_it_reads_a_plain_text_message() -> None:
    message = parse("text_pn.json")

    assert message.kind is MessageKind.TEXT
    assert message.text == "Oi! Vocês abrem amanhã?"
    assert message.phone == "5511912345678"
    assert message.reply_to == "5511912345678"
    assert message.whatsapp_id == "5511912345678@s.whatsapp.net"
    assert message.push_name == "Maria Silva"
    assert message.timestamp == datetime(2025, 10, 21, 14, 40, 39, tzinfo=UTC)
    assert message.quoted_text == ""
    assert message.media is None
    assert ignore_reason(message) is None


def test_it_reads_the_upper_snake_case_event_as_a_message() -> None:
    message = parse("event_upper_snake_text.json")

    assert message.text == "Bom dia"
    assert ignore_reason(message) is None


def test_it_reads_a_legacy_extended_text_with_its_quoted_message() -> None:
    message = parse("text_extended_legacy.json")

    assert message.kind is MessageKind.TEXT
    assert message.text == "Quero falar sobre meu pedido https://loja.example/p/42"
    assert message.quoted_text == "Seu pedido #42 foi enviado"
    assert message.timestamp == datetime.fromtimestamp(1761057650, tz=UTC)
    assert ignore_reason(message) is None


def test_it_reads_the_quoted_message_from_the_lifted_context_info() -> None:
    message = parse("text_reply_quoted.json")

    assert message.text == "Esse aqui, chegou amassado"
    assert message.quoted_text == "Seu pedido #42 foi entregue"
    assert ignore_reason(message) is None


def test_it_reads_a_quoted_caption() -> None:
    payload = text_payload(
        contextInfo={"quotedMessage": {"imageMessage": {"caption": "a foto do produto"}}}
    )

    assert parse_incoming_message(payload).quoted_text == "a foto do produto"


def test_it_reads_the_caption_of_an_image_and_its_base64() -> None:
    message = parse("image_caption_base64.json")

    assert message.kind is MessageKind.IMAGE
    assert message.text == "Comprovante do pix"
    assert message.media is not None
    assert message.media.base64 is not None
    assert message.media.base64.startswith("iVBORw0KGgo")
    assert message.media.mimetype == "image/png"
    assert message.media.size == 70  # the decoded base64, not the claimed fileLength
    assert ignore_reason(message) is None


def test_it_gives_the_url_of_an_image_sent_without_base64() -> None:
    message = parse("image_no_base64_v22.json")

    assert message.kind is MessageKind.IMAGE
    assert message.text == ""
    assert message.media is not None
    assert message.media.base64 is None
    assert message.media.url == "https://mmg.whatsapp.net/o1/v/t62.7118-24/f2/m234/BQRy?ccb=9-4"
    assert message.media.mimetype == "image/jpeg"
    assert message.media.size == 226688  # fileLength as a string
    assert ignore_reason(message) is None


def test_it_prefers_evolutions_stored_media_url() -> None:
    payload = load("image_no_base64_v22.json")
    payload["data"]["message"]["mediaUrl"] = "https://s3.example/evolution/image.jpg"

    media = parse_incoming_message(payload).media

    assert media is not None
    assert media.url == "https://s3.example/evolution/image.jpg"


def test_it_reads_a_voice_note() -> None:
    message = parse("voice_note_ptt.json")

    assert message.kind is MessageKind.AUDIO
    assert message.media is not None
    assert message.media.ptt is True
    assert message.media.seconds == 7
    assert message.media.mimetype == "audio/ogg; codecs=opus"
    assert message.media.base64 is not None
    assert message.media.size == 64
    assert ignore_reason(message) is None


def test_it_reads_a_document_with_its_file_name_and_caption() -> None:
    message = parse("document_caption.json")

    assert message.kind is MessageKind.DOCUMENT
    assert message.text == "segue assinado"
    assert message.media is not None
    assert message.media.file_name == "contrato.pdf"
    assert message.media.mimetype == "application/pdf"
    assert message.media.size == 84211  # fileLength as a Long object
    assert message.media.url == "https://mmg.whatsapp.net/v/t62.7119-24/contrato.enc"
    assert ignore_reason(message) is None


def test_it_reads_a_document_wrapped_with_its_caption() -> None:
    payload = load("document_caption.json")
    document = payload["data"]["message"].pop("documentMessage")
    payload["data"]["message"]["documentWithCaptionMessage"] = {
        "message": {"documentMessage": document}
    }
    payload["data"]["messageType"] = "documentWithCaptionMessage"

    message = parse_incoming_message(payload)

    assert message.kind is MessageKind.DOCUMENT
    assert message.text == "segue assinado"
    assert message.media is not None
    assert message.media.file_name == "contrato.pdf"


def test_it_reads_the_caption_of_a_video() -> None:
    message = parse("video_caption.json")

    assert message.kind is MessageKind.VIDEO
    assert message.text == "olha o defeito"
    assert message.media is not None
    assert message.media.seconds == 12
    assert message.media.mimetype == "video/mp4"
    assert ignore_reason(message) is None


def test_it_reads_a_sticker_and_leaves_it_to_the_tenants_unsupported_reply() -> None:
    message = parse("sticker.json")

    assert message.kind is MessageKind.STICKER
    assert ignore_reason(message) is None  # see tests/webhooks/inbound/test_policy.py


def test_it_renders_a_location_as_readable_text() -> None:
    message = parse("location.json")

    assert message.kind is MessageKind.LOCATION
    assert message.text == (
        "Location: Av. Paulista, 1578, Bela Vista, São Paulo - SP (-23.5614, -46.6559)"
    )
    assert message.media is None
    assert ignore_reason(message) is None


def test_it_renders_a_contact_card_as_its_name_and_number() -> None:
    message = parse("contact_card.json")

    assert message.kind is MessageKind.CONTACT
    assert message.text == "Contact: Ana Souza +55 11 95555-4444"
    assert ignore_reason(message) is None


def test_it_renders_every_card_of_a_contacts_array() -> None:
    vcard = "BEGIN:VCARD\nFN:Bruno\nitem1.TEL;waid=5511944443333:+55 11 94444-3333\nEND:VCARD"
    payload = text_payload(
        message={
            "contactsArrayMessage": {
                "contacts": [
                    {"displayName": "Ana", "vcard": "BEGIN:VCARD\nTEL:+55 11 1\nEND:VCARD"},
                    {"vcard": vcard},
                ]
            }
        },
        messageType="contactsArrayMessage",
    )

    assert parse_incoming_message(payload).text == (
        "Contact: Ana +55 11 1\nContact: Bruno +55 11 94444-3333"
    )


def test_it_ignores_a_reaction_but_keeps_its_emoji() -> None:
    message = parse("reaction.json")

    assert message.kind is MessageKind.REACTION
    assert message.text == "👍"
    assert ignore_reason(message) == "reactions are not handled"


def test_it_reads_what_the_business_typed_on_its_phone_and_leaves_it_to_takeover() -> None:
    message = parse("from_me_operator.json")

    assert message.from_me is True
    assert ignore_reason(message) is None  # see tests/webhooks/conversations/test_takeover.py


def test_it_ignores_a_status_broadcast() -> None:
    message = parse("status_broadcast.json")

    assert message.is_status_broadcast is True
    assert message.participant == "5511912345678"
    assert ignore_reason(message) == "status broadcasts are not handled"


def test_it_ignores_a_group_message_and_finds_its_senders_phone() -> None:
    message = parse("group_text.json")

    assert message.is_group is True
    assert message.participant == "5521998765432"
    assert message.phone == "5521998765432"
    assert message.reply_to == "120363025246125486@g.us"
    assert message.quoted_text == "Enviamos o boleto por aqui"
    assert ignore_reason(message) == "group chats are not handled"


def test_it_answers_a_lid_chat_at_the_phone_in_remote_jid_alt() -> None:
    message = parse("lid_with_alt_v236.json")

    assert message.chat_jid == "232366454870257@lid"
    assert message.phone == "5511997529604"
    assert message.reply_to == "5511997529604"
    assert message.whatsapp_id == "5511997529604@s.whatsapp.net"
    assert ignore_reason(message) is None


def test_it_answers_a_lid_chat_without_a_phone_at_the_full_lid() -> None:
    message = parse("lid_without_phone.json")

    assert message.phone == ""
    assert message.reply_to == "103784512345678@lid"
    assert message.whatsapp_id == "103784512345678@lid"
    assert ignore_reason(message) is None


def test_it_finds_the_phone_of_a_lid_chat_in_sender_pn_on_older_servers() -> None:
    payload = with_key(
        remoteJid="103784512345678@lid", senderPn="5511933332222@s.whatsapp.net", id="X1"
    )

    message = parse_incoming_message(payload)

    assert message.phone == "5511933332222"
    assert message.reply_to == "5511933332222"


def test_it_drops_the_device_part_of_a_phone_jid() -> None:
    message = parse_incoming_message(with_key(remoteJid="5511912345678:12@s.whatsapp.net", id="X"))

    assert message.phone == "5511912345678"
    assert message.whatsapp_id == "5511912345678@s.whatsapp.net"


def test_it_does_not_take_a_lid_in_remote_jid_alt_for_a_phone() -> None:
    assert parse("text_pn.json").phone == "5511912345678"  # its remoteJidAlt is a LID


@pytest.mark.parametrize(
    "timestamp",
    [
        1761057639,
        1761057639.0,
        "1761057639",
        {"low": 1761057639, "high": 0, "unsigned": False},
        {"low": 1761057639, "high": 0, "unsigned": True},
    ],
)
def test_it_reads_the_timestamp_in_every_format(timestamp: object) -> None:
    message = parse_incoming_message(text_payload(messageTimestamp=timestamp))

    assert message.timestamp == datetime(2025, 10, 21, 14, 40, 39, tzinfo=UTC)


def test_it_reads_a_long_timestamp_whose_low_half_looks_negative() -> None:
    # long.js stores each half as a signed 32-bit int: 3000000000 has its top bit set.
    long = {"low": 3_000_000_000 - 2**32, "high": 0, "unsigned": False}

    message = parse_incoming_message(text_payload(messageTimestamp=long))

    assert message.timestamp == datetime.fromtimestamp(3_000_000_000, tz=UTC)


@pytest.mark.parametrize("timestamp", [None, "soon", {"0": 6}, True, 10**20])
def test_it_leaves_an_unreadable_timestamp_empty(timestamp: object) -> None:
    assert parse_incoming_message(text_payload(messageTimestamp=timestamp)).timestamp is None


def test_it_keeps_the_api_key_out_of_the_repr() -> None:
    message = parse("image_caption_base64.json")

    assert "B6D711FCDE4D4FD5936544120E713976" not in repr(message)
    assert "iVBORw0KGgo" not in repr(message)  # nor megabytes of media


def test_it_ignores_an_edit_or_delete_notice() -> None:
    payload = text_payload(
        message={"protocolMessage": {"type": "REVOKE", "key": {"id": "3EB0"}}},
        messageType="protocolMessage",
    )

    message = parse_incoming_message(payload)

    assert message.kind is MessageKind.PROTOCOL
    assert ignore_reason(message) == "protocol notice (edit, delete or similar)"


def test_it_reads_a_message_type_it_does_not_know_as_unsupported() -> None:
    payload = text_payload(message={"pollCreationMessageV3": {}}, messageType="pollMessage")

    message = parse_incoming_message(payload)

    assert message.kind is MessageKind.UNSUPPORTED
    assert ignore_reason(message) is None  # see tests/webhooks/inbound/test_policy.py


def test_it_ignores_an_empty_text() -> None:
    message = parse_incoming_message(text_payload(message={"conversation": "  "}))

    assert ignore_reason(message) == "empty message"


def test_it_reads_a_message_inside_an_ephemeral_wrapper() -> None:
    payload = text_payload(
        message={"ephemeralMessage": {"message": {"extendedTextMessage": {"text": "sumindo"}}}},
        messageType="ephemeralMessage",
    )

    message = parse_incoming_message(payload)

    assert message.kind is MessageKind.TEXT
    assert message.text == "sumindo"


def test_it_is_forgiving_about_a_missing_envelope() -> None:
    payload = text_payload()
    for field in ("instance", "server_url", "apikey", "event"):
        del payload[field]

    message = parse_incoming_message(payload)

    assert (message.instance, message.server_url, message.apikey) == ("", "", "")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (with_key(remoteJid="5511912345678@s.whatsapp.net"), "data.key.id is missing"),
        (with_key(id="3EB0"), "data.key.remoteJid is missing"),
        (text_payload(key="3EB0"), "data.key is missing or not an object"),
        ({"event": "messages.upsert", "data": ["not", "a", "dict"]}, "data is missing"),
        ({"event": "messages.upsert"}, "data is missing"),
        ([], "the body is not a JSON object"),
    ],
)
def test_it_explains_why_a_payload_is_unreadable(payload: Any, reason: str) -> None:
    with pytest.raises(UnreadablePayloadError, match=re.escape(reason)):
        parse_incoming_message(payload)
