"""Telling Omnihub's own replies, posted back by Evolution, from a person's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import InstanceConfigFactory, MessageFactory
from webhooks.conversations.echoes import IN_FLIGHT, is_own_echo
from webhooks.models import Message

pytestmark = pytest.mark.django_db

MARIA = "5511912345678@s.whatsapp.net"


def answered(**fields) -> Message:
    """A message of Maria's chat whose reply was sent, as the worker records it."""
    defaults = {
        "chat_jid": MARIA,
        "status": Message.Status.ANSWERED,
        "reply_text": "Abrimos às 9h.",
        "send_started_at": timezone.now() - timedelta(days=2),
        "reply_whatsapp_id": "BAE5SENT",
    }
    return MessageFactory.create(**{**defaults, **fields})


def echo(message: Message, *, whatsapp_id: str, text: str, chat: str = MARIA) -> bool:
    return is_own_echo(
        tenant_id=message.instance_id, chat_jid=chat, whatsapp_id=whatsapp_id, text=text
    )


def test_a_sent_reply_is_recognised_by_its_id_however_old():
    message = answered()

    assert echo(message, whatsapp_id="BAE5SENT", text="Abrimos às 9h.")


def test_a_reply_being_sent_is_recognised_by_its_text_before_its_id_is_known():
    message = answered(
        status=Message.Status.PROCESSING,
        reply_whatsapp_id="",
        send_started_at=timezone.now(),
        reply_text="Abrimos às 9h.\n",  # the webhook's text is read stripped
    )

    assert echo(message, whatsapp_id="BAE5NEW", text="Abrimos às 9h.")


def test_other_words_or_an_old_send_are_a_person_writing():
    message = answered(send_started_at=timezone.now() - IN_FLIGHT - timedelta(seconds=1))

    assert not echo(message, whatsapp_id="BAE5OTHER", text="Abrimos às 9h.")
    assert not echo(message, whatsapp_id="BAE5OTHER", text="Oi Maria, aqui é a Ana.")


def test_a_message_with_no_text_is_never_taken_for_a_send_under_way():
    message = answered(send_started_at=timezone.now(), reply_whatsapp_id="", reply_text="")

    assert not echo(message, whatsapp_id="BAE5IMAGE", text="")


def test_a_reply_in_another_chat_or_of_another_tenant_is_not_this_chats_echo():
    message = answered(send_started_at=timezone.now())
    other_tenant = InstanceConfigFactory.create()

    assert not echo(
        message, whatsapp_id="BAE5SENT", text="Abrimos às 9h.", chat="5511900000000@s.whatsapp.net"
    )
    assert not is_own_echo(
        tenant_id=other_tenant.pk, chat_jid=MARIA, whatsapp_id="BAE5SENT", text="Abrimos às 9h."
    )
