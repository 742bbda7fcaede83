"""What the agent is asked for a stored message, or for a burst of them."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import InstanceConfigFactory, MessageFactory
from tests.webhooks.conftest import evolution_payload, post_webhook
from webhooks.integrations.agents.client import AgentMedia, AgentRequest
from webhooks.integrations.agents.requests import agent_request
from webhooks.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

PHOTO = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
PHOTO_URL = "https://mmg.whatsapp.net/o1/v/t62.7118-24/photo.enc"


def test_a_text_is_asked_as_text_in_the_phones_session():
    tenant = InstanceConfigFactory.create(session_id_prefix="acme-")
    message = MessageFactory.create(
        instance=tenant,
        chat_jid="5511912345678@s.whatsapp.net",
        whatsapp_user_id="5511912345678@s.whatsapp.net",
        push_name="Maria Silva",
        text="Oi! Vocês abrem amanhã?",
    )

    request = agent_request(message)

    assert request == AgentRequest(
        message_content="Oi! Vocês abrem amanhã?",
        message_type="text",
        session_name="acme-5511912345678",
        phone_number="+5511912345678",
        user_name="Maria Silva",
        whatsapp_id="5511912345678@s.whatsapp.net",
        media=[],
    )


def test_a_quoted_text_carries_what_it_replies_to():
    message = MessageFactory.create(
        text="Esse aqui, chegou amassado", quoted_text="Seu pedido #42 foi entregue"
    )

    request = agent_request(message)

    assert request.message_content == (
        '[In reply to: "Seu pedido #42 foi entregue"]\nEsse aqui, chegou amassado'
    )
    assert request.message_type == "text"


@pytest.mark.parametrize("kind", ["location", "contact"])
def test_other_readable_kinds_are_asked_as_text(kind):
    message = MessageFactory.create(kind=kind, text="📍 Av. Paulista, 1000")

    request = agent_request(message)

    assert request.message_type == "text"
    assert request.message_content == "📍 Av. Paulista, 1000"
    assert request.media == []


def test_an_image_with_its_bytes_is_sent_inline():
    message = MessageFactory.create(
        kind="image",
        text="Olha a foto",
        media_mimetype="image/png",
        media_base64=PHOTO,
        media_url=PHOTO_URL,
    )

    request = agent_request(message)

    assert request.message_type == "image"
    assert request.message_content == "Olha a foto"
    assert request.media == [
        AgentMedia(
            mime_type="image/png", data=PHOTO, media_url=None, name="", alt_text="Olha a foto"
        )
    ]


def test_an_image_without_its_bytes_is_sent_by_url():
    message = MessageFactory.create(
        kind="image", text="", media_mimetype="image/jpeg", media_url=PHOTO_URL
    )

    [media] = agent_request(message).media

    assert media.data is None
    assert media.media_url == PHOTO_URL
    assert media.mime_type == "image/jpeg"


def test_a_document_keeps_its_file_name_and_a_default_mime_type():
    message = MessageFactory.create(
        kind="document", text="", media_file_name="boleto.pdf", media_url="https://files.test/b"
    )

    request = agent_request(message)

    assert request.message_type == "document"
    assert request.media == [
        AgentMedia(
            mime_type="application/octet-stream",
            media_url="https://files.test/b",
            name="boleto.pdf",
        )
    ]


def test_media_that_is_neither_held_nor_linked_is_left_out():
    message = MessageFactory.create(kind="audio", text="", media_mimetype="audio/ogg")

    request = agent_request(message)

    assert request.message_type == "audio"
    assert request.media == []


def test_a_lid_chat_without_a_phone_is_its_own_session(agent, evolution, tenant_at):
    tenant_at(name="acme", session_id_prefix="acme-")
    post_webhook("acme", evolution_payload("lid_without_phone"))
    message = Message.objects.get()

    request = agent_request(message)

    assert message.phone == ""
    assert request.phone_number is None
    assert request.session_name == "acme-103784512345678"
    assert request.whatsapp_id == "103784512345678@lid"


def test_a_burst_is_asked_as_one_message_its_texts_in_whatsapp_order():
    tenant = InstanceConfigFactory.create(session_id_prefix="acme-")
    chat = "5511912345678@s.whatsapp.net"
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    first = MessageFactory.create(instance=tenant, chat_jid=chat, text="b", sent_at=at)
    second = MessageFactory.create(
        instance=tenant, chat_jid=chat, text="a", sent_at=at - timedelta(seconds=3)
    )
    # Same second: arrival order.
    third = MessageFactory.create(instance=tenant, chat_jid=chat, text="c", sent_at=at)
    fourth = MessageFactory.create(
        instance=tenant, chat_jid=chat, text="d", quoted_text="q", push_name="Maria S."
    )

    request = agent_request(first, second, third, fourth)

    assert request.message_content == 'a\nb\nc\n[In reply to: "q"]\nd'
    assert request.session_name == "acme-5511912345678"
    assert request.user_name == "Maria S."  # the latest name the contact gave
    assert request.message_type == "text"


def test_a_burst_s_media_are_sent_together_and_typed_by_the_first():
    chat = "5511912345678@s.whatsapp.net"
    photo = MessageFactory.create(
        chat_jid=chat, kind="image", text="", media_mimetype="image/png", media_base64=PHOTO
    )
    text = MessageFactory.create(instance=photo.instance, chat_jid=chat, text="E esta?")
    voice = MessageFactory.create(
        instance=photo.instance, chat_jid=chat, kind="audio", text="",
        media_mimetype="audio/ogg", media_url="https://files.test/v",
    )  # fmt: skip

    request = agent_request(photo, text, voice)

    assert request.message_type == "image"
    assert [media.mime_type for media in request.media] == ["image/png", "audio/ogg"]
    assert request.message_content == "E esta?"
