"""What the agent is asked for a stored message."""

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
