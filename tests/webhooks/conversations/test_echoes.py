"""Telling an echo of Omnihub's own send from a person replying by hand on the business's phone."""

from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from tests.factories import InstanceConfigFactory, MessageFactory
from tests.fakes import Recorded
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook
from webhooks.conversations.echoes import IN_FLIGHT_SECONDS, is_own_echo
from webhooks.models import Message, ReplyPart

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "5511912345678@s.whatsapp.net"


def part(**fields) -> ReplyPart:
    message = fields.pop("message", None) or MessageFactory.create(chat_jid=CHAT)
    return ReplyPart.objects.create(message=message, text=fields.pop("text", "Olá!"), **fields)


def echo(message: Message, *, whatsapp_id: str = "BAE5-ECHO", text: str = "Olá!", **overrides):
    arguments = {
        "tenant_id": message.instance_id,
        "chat_jid": CHAT,
        "whatsapp_id": whatsapp_id,
        "text": text,
        **overrides,
    }
    return is_own_echo(**arguments)


def test_a_message_with_the_id_evolution_gave_a_part_we_sent_is_ours():
    sent = part(whatsapp_id="BAE5F00D", sent_at=timezone.now())

    assert echo(sent.message, whatsapp_id="BAE5F00D", text="whatever it says")
    assert not echo(sent.message, whatsapp_id="BAE5OTHER", text="whatever it says")


def test_an_id_is_ours_only_for_the_tenant_that_sent_it():
    sent = part(whatsapp_id="BAE5F00D", sent_at=timezone.now())
    other = InstanceConfigFactory.create()

    assert not echo(sent.message, whatsapp_id="BAE5F00D", tenant_id=other.pk)


def test_a_part_in_flight_with_that_text_in_that_chat_makes_an_echo_ours_before_its_id_is_known():
    in_flight = part(text="Olá!", send_started_at=timezone.now())

    assert echo(in_flight.message, text="Olá!")
    assert not echo(in_flight.message, text="Outra coisa")
    assert not echo(in_flight.message, chat_jid="5511900000000@s.whatsapp.net")
    assert not echo(in_flight.message, tenant_id=InstanceConfigFactory.create().pk)


def test_an_echo_of_a_lid_chat_s_reply_may_name_the_number_it_was_sent_to():
    message = MessageFactory.create(
        chat_jid="103784512345678@lid", phone="5511912345678", reply_to="5511912345678"
    )
    part(message=message, text="Olá!", send_started_at=timezone.now())

    assert echo(message, chat_jid="5511912345678@s.whatsapp.net")
    assert echo(message, chat_jid="103784512345678@lid")


def test_a_person_typing_the_words_of_a_reply_already_sent_is_not_an_echo():
    sent = part(text="Olá!", send_started_at=timezone.now(), sent_at=timezone.now(),
                whatsapp_id="BAE5F00D")  # fmt: skip

    assert not echo(sent.message, whatsapp_id="3EB0BYHAND", text="Olá!")


def test_a_send_that_began_long_ago_no_longer_claims_echoes():
    long_ago = timezone.now() - timedelta(seconds=IN_FLIGHT_SECONDS + 1)
    stale = part(text="Olá!", send_started_at=long_ago)

    assert not echo(stale.message, text="Olá!")


def test_a_part_never_sent_claims_no_echo():
    queued = part(text="Olá!")

    assert not echo(queued.message, text="Olá!")
    assert not echo(queued.message, whatsapp_id="", text="Olá!")


def test_an_echo_delivered_before_send_text_returned_counts_as_ours(agent, evolution, tenant_at):
    tenant = tenant_at(name="acme")
    accept = evolution.default
    assert callable(accept)
    seen: list[bool] = []

    def echo_before_answering(sent: Recorded):
        # As Evolution does: the upsert of our own message comes while sendText is still open.
        try:
            ours = is_own_echo(
                tenant_id=tenant.pk, chat_jid=CHAT, whatsapp_id="BAE5-NOT-YET-KNOWN",
                text=sent.body["text"],
            )  # fmt: skip
            seen.append(ours)
        finally:
            close_old_connections()
        return accept(sent)

    evolution.default = echo_before_answering
    post_webhook("acme", evolution_payload("text_pn"))
    answer_all()

    assert seen == [True]
    # And once the send is recorded, by the id Evolution gave it.
    assert is_own_echo(tenant_id=tenant.pk, chat_jid=CHAT, whatsapp_id="SENT-1", text="")
