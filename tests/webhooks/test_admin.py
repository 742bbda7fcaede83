import pytest
from django.contrib import messages as django_messages
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.factories import InstanceConfigFactory, MessageFactory
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db

CHANGELIST_URL = "/admin/webhooks/message/"
MEDIA_BYTES = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
WEBHOOK_KEY = "evolution-webhook-key-7777"


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "admin@example.test", "password")
    client.force_login(user)
    return client


def listed(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {message.pk for message in response.context["cl"].result_list}


def notices(response) -> list[tuple[int, str]]:
    return [(notice.level, str(notice)) for notice in get_messages(response.wsgi_request)]


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
        (django_messages.WARNING, f"message {answered.pk} is answered, not failed"),
        (django_messages.SUCCESS, "1 message(s) queued again."),
    ]
    answered.refresh_from_db()
    assert answered.status == Message.Status.ANSWERED
    failed.refresh_from_db()
    assert failed.status == Message.Status.RECEIVED
    assert Conversation.objects.filter(ready_at__isnull=False).count() == 1
