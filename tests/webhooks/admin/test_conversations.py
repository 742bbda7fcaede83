"""Conversations in the admin: the list with states, a thread as a person reads it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import ConversationFactory, InstanceConfigFactory, MessageFactory
from tests.webhooks.admin.conftest import CHANGELIST_URL, listed
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db


def test_the_conversation_list_shows_tenant_chat_contact_last_message_and_state(admin_client):
    acme = InstanceConfigFactory.create(name="acme")
    chat = "5511912345678@s.whatsapp.net"
    MessageFactory.create(instance=acme, chat_jid=chat, push_name="Maria", text="Oi")
    MessageFactory.create(instance=acme, chat_jid=chat, push_name="", text="Tem entrega?")
    # As intake keeps it: the name the contact last gave.
    Conversation.objects.update(
        last_message_at=datetime(2026, 12, 1, 18, 32, 7, tzinfo=UTC), contact_name="Maria"
    )

    response = admin_client.get(reverse("admin:webhooks_conversation_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "+5511912345678" in html
    assert "acme" in html
    assert "Maria" in html
    assert "Tem entrega?<br><small>2026-12-01 18:32:07</small>" in html
    assert '<span class="omnihub-badge omnihub-idle">Idle</span>' in html


def test_the_conversation_list_filters_by_state(admin_client):
    waiting = ConversationFactory.create(ready_at=timezone.now() + timedelta(minutes=5))
    ConversationFactory.create()
    url = reverse("admin:webhooks_conversation_changelist")

    response = admin_client.get(url, {"state": "waiting"})

    assert {c.pk for c in response.context["cl"].result_list} == {waiting.pk}


def test_the_conversation_page_shows_its_thread_oldest_first(admin_client):
    chat = "5511912345678@s.whatsapp.net"
    first = MessageFactory.create(
        chat_jid=chat, text="Oi! Vocês abrem amanhã?", status=Message.Status.ANSWERED,
        reply_text="Abrimos às 9h.",
    )  # fmt: skip
    MessageFactory.create(
        instance=first.instance, chat_jid=chat, text="Quanto custa?",
        status=Message.Status.FAILED, last_error="the agent answered 401",
    )  # fmt: skip
    url = reverse("admin:webhooks_conversation_change", args=[first.conversation_id])

    html = admin_client.get(url).content.decode()

    order = ["Oi! Vocês abrem amanhã?", "Abrimos às 9h.", "Quanto custa?", "the agent answered 401"]
    assert [html.index(text) for text in order] == sorted(html.index(text) for text in order)
    assert f"?conversation__id__exact={first.conversation_id}" in html


def test_the_conversations_messages_are_listed_in_the_log(admin_client):
    mine = MessageFactory.create()
    MessageFactory.create()

    response = admin_client.get(CHANGELIST_URL, {"conversation__id__exact": mine.conversation_id})

    assert listed(response) == {mine.pk}


def test_conversations_are_neither_added_nor_edited_nor_deleted_by_hand(admin_client):
    conversation = ConversationFactory.create()
    change = reverse("admin:webhooks_conversation_change", args=[conversation.pk])

    assert admin_client.get(reverse("admin:webhooks_conversation_add")).status_code == 403
    assert admin_client.post(change, {"chat_jid": "x"}).status_code == 403
    delete = reverse("admin:webhooks_conversation_delete", args=[conversation.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_a_person_pauses_and_resumes_chats_from_the_conversation_list(admin_client):
    MessageFactory.create(chat_jid="5511912345678@s.whatsapp.net")
    conversation = Conversation.objects.get()
    changelist = reverse("admin:webhooks_conversation_changelist")

    def act(action):
        response = admin_client.post(
            changelist, {"action": action, "_selected_action": [conversation.pk]}, follow=True
        )
        return response.content.decode()

    assert "1 chat(s) paused for an hour." in act("pause_for_an_hour")
    conversation.refresh_from_db()
    assert (conversation.paused_until is not None, conversation.paused_until_resumed) == (
        True,
        False,
    )
    assert "Paused: a person took over until" in admin_client.get(changelist).content.decode()

    assert "1 chat(s) paused until resumed." in act("pause_until_resumed")
    conversation.refresh_from_db()
    assert conversation.paused_until_resumed
    assert "until resumed" in admin_client.get(changelist).content.decode()

    assert "1 chat(s) resumed." in act("resume")
    conversation.refresh_from_db()
    assert (conversation.paused_until, conversation.paused_until_resumed) == (None, False)
