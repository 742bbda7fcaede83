"""The message log in the admin: listing, searching, a message's page, retrying."""

from datetime import UTC, datetime

import pytest
from django.contrib import messages as django_messages
from django.test import Client
from django.urls import reverse

from tests.factories import InstanceConfigFactory, MessageFactory
from tests.webhooks.admin.conftest import CHANGELIST_URL, listed, notices
from webhooks.models import Conversation, Message, MessageAttempt

pytestmark = pytest.mark.django_db

MEDIA_BYTES = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
WEBHOOK_KEY = "evolution-webhook-key-7777"


def test_the_changelist_is_at_the_expected_url():
    assert reverse("admin:webhooks_message_changelist") == CHANGELIST_URL


def test_it_needs_a_staff_login(client):
    MessageFactory.create()

    response = client.get(CHANGELIST_URL)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_it_lists_messages(admin_client):
    acme = InstanceConfigFactory.create(name="acme")
    first = MessageFactory.create(instance=acme, chat_jid="5511912345678@s.whatsapp.net")
    second = MessageFactory.create(push_name="João", status=Message.Status.FAILED)

    response = admin_client.get(CHANGELIST_URL)

    assert listed(response) == {first.pk, second.pk}
    html = response.content.decode()
    assert "5511912345678" in html
    assert "João" in html
    assert "acme" in html


def test_it_filters_messages_by_status(admin_client):
    failed = MessageFactory.create(status=Message.Status.FAILED)
    MessageFactory.create(status=Message.Status.ANSWERED)

    response = admin_client.get(CHANGELIST_URL, {"status__exact": "failed"})

    assert listed(response) == {failed.pk}


def test_it_searches_messages_by_phone(admin_client):
    hers = MessageFactory.create(chat_jid="5511912345678@s.whatsapp.net")
    MessageFactory.create(chat_jid="5521988887777@s.whatsapp.net")

    assert listed(admin_client.get(CHANGELIST_URL, {"q": "5511912345678"})) == {hers.pk}
    assert listed(admin_client.get(CHANGELIST_URL, {"q": "91234"})) == {hers.pk}


def test_it_offers_no_way_to_add_a_message(admin_client):
    assert admin_client.get(f"{CHANGELIST_URL}add/").status_code == 403


def test_the_change_page_shows_the_message_read_only(admin_client):
    message = MessageFactory.create(
        text="Quanto custa o plano anual?",
        status=Message.Status.FAILED,
        last_error="the agent answered 503",
    )
    url = reverse("admin:webhooks_message_change", args=[message.pk])

    response = admin_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Quanto custa o plano anual?" in html
    assert "the agent answered 503" in html
    assert message.whatsapp_id in html
    assert 'name="_save"' not in html
    assert 'name="text"' not in html


def test_the_change_page_never_shows_the_reply_key_or_the_media(admin_client):
    message = MessageFactory.create(
        kind="image",
        media_mimetype="image/png",
        media_base64=MEDIA_BYTES,
        reply_evolution_url="http://127.0.0.1:8080",
        reply_evolution_key=WEBHOOK_KEY,
    )

    response = admin_client.get(reverse("admin:webhooks_message_change", args=[message.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "image/png" in html
    assert MEDIA_BYTES not in html
    assert WEBHOOK_KEY not in html
    assert "reply_evolution_key" not in html
    assert "media_base64" not in html


def test_a_posted_change_does_not_edit_the_message(admin_client):
    message = MessageFactory.create(text="original")
    url = reverse("admin:webhooks_message_change", args=[message.pk])

    response = admin_client.post(url, {"text": "edited", "status": "answered"})

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.text == "original"
    assert message.status == Message.Status.RECEIVED


def test_the_retry_action_queues_the_selected_failed_messages(admin_client):
    failed = [MessageFactory.create(status=Message.Status.FAILED, attempts=6) for _ in range(2)]
    untouched = MessageFactory.create(status=Message.Status.FAILED)

    response = admin_client.post(
        CHANGELIST_URL,
        {"action": "retry_failed", "_selected_action": [message.pk for message in failed]},
    )

    assert response.status_code == 302
    assert notices(response) == [(django_messages.SUCCESS, "2 message(s) queued again.")]
    for message in failed:
        message.refresh_from_db()
        assert message.status == Message.Status.RECEIVED
        assert message.retried_at is not None
    untouched.refresh_from_db()
    assert untouched.status == Message.Status.FAILED
    queued = sorted(
        Conversation.objects.filter(ready_at__isnull=False).values_list("pk", flat=True)
    )
    assert queued == sorted(message.conversation_id for message in failed)


def test_the_retry_action_warns_about_messages_that_have_not_failed(admin_client):
    failed = MessageFactory.create(status=Message.Status.FAILED)
    answered = MessageFactory.create(status=Message.Status.ANSWERED)

    response = admin_client.post(
        CHANGELIST_URL, {"action": "retry_failed", "_selected_action": [failed.pk, answered.pk]}
    )

    assert response.status_code == 302
    assert notices(response) == [
        (django_messages.WARNING, f"message {answered.pk} is answered, not failed or retrying"),
        (django_messages.SUCCESS, "1 message(s) queued again."),
    ]
    answered.refresh_from_db()
    assert answered.status == Message.Status.ANSWERED
    failed.refresh_from_db()
    assert failed.status == Message.Status.RECEIVED
    assert Conversation.objects.filter(ready_at__isnull=False).count() == 1


def message_page(admin_client, message):
    response = admin_client.get(reverse("admin:webhooks_message_change", args=[message.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_shows_time_to_the_second_contact_text_reply_error_and_status(admin_client):
    MessageFactory.create(
        push_name="Maria",
        chat_jid="5511912345678@s.whatsapp.net",
        text="Quanto custa o plano anual? " * 5,
        reply_text="O plano anual custa R$ 1.200.",
        status=Message.Status.ANSWERED,
    )
    failed = MessageFactory.create(
        status=Message.Status.FAILED, last_error="the agent at http://a.test:80 answered 503"
    )
    Message.objects.filter(pk=failed.pk).update(
        received_at=datetime(2026, 12, 1, 18, 32, 7, tzinfo=UTC)
    )

    html = admin_client.get(CHANGELIST_URL).content.decode()

    assert "2026-12-01 18:32:07" in html
    assert "Maria<br><small>+5511912345678</small>" in html
    assert "Quanto custa o plano anual? Quanto custa o plano anual? " in html
    assert "Quanto custa o plano anual? " * 5 not in html  # an excerpt
    assert "O plano anual custa R$ 1.200." in html
    assert "the agent at http://a.test:80 answered 503" in html
    assert '<span class="omnihub-badge omnihub-failed">Failed</span>' in html
    assert '<span class="omnihub-badge omnihub-answered">Answered</span>' in html


def test_a_retrying_message_shows_when_its_next_try_is(admin_client):
    MessageFactory.create(
        status=Message.Status.RETRYING,
        next_attempt_at=datetime(2026, 12, 1, 18, 33, 10, tzinfo=UTC),
    )

    html = admin_client.get(CHANGELIST_URL).content.decode()

    assert "Retrying</span><br><small>next try 2026-12-01 18:33:10</small>" in html


@pytest.mark.parametrize("term", ["+55 (11) 91234-5678", "Maria Clara", "plano anual"])
def test_it_searches_by_phone_however_written_by_name_and_by_text(admin_client, term):
    hers = MessageFactory.create(
        chat_jid="5511912345678@s.whatsapp.net",
        push_name="Maria Clara",
        text="Quanto custa o plano anual?",
    )
    MessageFactory.create(
        chat_jid="5521988887777@s.whatsapp.net", push_name="João", text="Tem entrega?"
    )

    assert listed(admin_client.get(CHANGELIST_URL, {"q": term})) == {hers.pk}


def test_the_message_page_groups_what_arrived_what_happened_and_the_payload(admin_client):
    message = MessageFactory.create(status=Message.Status.FAILED, attempts=2)
    for number, result in [(1, "retrying"), (2, "failed")]:
        MessageAttempt.objects.create(
            message=message, number=number, stage="agent", result=result,
            started_at=datetime(2026, 12, 1, 18, 32, number, tzinfo=UTC), latency_ms=30001,
            error=f"the agent did not answer within 30 s ({number})",
        )  # fmt: skip

    html = message_page(admin_client, message)

    assert html.index("What arrived") < html.index("What happened") < html.index("Raw payload")
    assert "<td>1</td><td>Agent</td><td>Retrying</td><td>2026-12-01 18:32:01</td>" in html
    assert "<td>30001 ms</td><td>the agent did not answer within 30 s (2)</td>" in html
    # Collapsed (a <details> the admin opens on a click) and pretty-printed.
    assert html.index("<details><summary>") < html.index("Raw payload") < html.index("</details>")
    assert '<pre class="omnihub-payload">{\n  &quot;data&quot;: {' in html


def test_a_message_no_attempt_has_finished_says_so(admin_client):
    assert "No attempt has finished yet." in message_page(admin_client, MessageFactory.create())


@pytest.mark.parametrize(
    ("status", "offered"),
    [
        (Message.Status.FAILED, True),
        (Message.Status.RETRYING, True),
        (Message.Status.ANSWERED, False),
        (Message.Status.PROCESSING, False),
    ],
)
def test_the_retry_button_is_offered_for_failed_and_retrying_messages(
    admin_client, status, offered
):
    html = message_page(admin_client, MessageFactory.create(status=status))

    assert ('id="retry-message"' in html) is offered


def test_the_retry_button_queues_the_message_again_and_keeps_its_attempts(admin_client):
    message = MessageFactory.create(status=Message.Status.FAILED, attempts=3)
    url = reverse("admin:webhooks_message_retry", args=[message.pk])

    response = admin_client.post(url)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:webhooks_message_change", args=[message.pk])
    assert notices(response) == [(django_messages.SUCCESS, f"Message {message.pk} queued again.")]
    message.refresh_from_db()
    assert (message.status, message.attempts) == (Message.Status.RECEIVED, 3)
    assert Conversation.objects.get(pk=message.conversation_id).ready_at is not None


def test_the_retry_button_warns_about_a_message_that_cannot_be_retried(admin_client):
    message = MessageFactory.create(status=Message.Status.ANSWERED)

    response = admin_client.post(reverse("admin:webhooks_message_retry", args=[message.pk]))

    assert notices(response) == [
        (django_messages.WARNING, f"message {message.pk} is answered, not failed or retrying")
    ]
    message.refresh_from_db()
    assert message.status == Message.Status.ANSWERED


def test_retrying_needs_a_post_a_staff_login_and_a_message_that_exists(admin_client):
    message = MessageFactory.create(status=Message.Status.FAILED)
    url = reverse("admin:webhooks_message_retry", args=[message.pk])

    assert admin_client.get(url).status_code == 405
    anonymous = Client().post(url)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert (
        admin_client.post(reverse("admin:webhooks_message_retry", args=[99999])).status_code == 404
    )
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED


def test_whatsapp_is_spelled_so_in_every_label_and_help_text():
    texts = [
        str(text)
        for model in (Message, Conversation, MessageAttempt)
        for field in model._meta.get_fields()
        if field.concrete
        for text in (field.verbose_name, field.help_text)
    ]

    assert [text for text in texts if "whatsapp" in text.lower() and "WhatsApp" not in text] == []
