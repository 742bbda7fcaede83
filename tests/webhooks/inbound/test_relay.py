"""No open relay: a webhook's server_url is used only when trusted, and a webhook from another
Evolution instance is not taken as this tenant's message. Through the real view and worker."""

import logging
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from instances.models import InstanceConfig
from instances.services import pin_evolution_origin
from tests.factories import InstanceConfigFactory
from tests.fakes import evolution_accepting, serve
from tests.webhooks.conftest import answer_all, evolution_payload, post_webhook, with_message_id
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def legacy(agent):
    """The default tenant as seeded from .env without an Evolution server."""
    return InstanceConfigFactory.create(
        name="legacy", is_default=True, agent_api_url=agent.url, evolution_url="", evolution_key=""
    )


@pytest.fixture
def stranger():
    """A server that is not the tenant's Evolution; nothing may reach it."""
    with serve(evolution_accepting()) as fake:
        yield fake


def from_server(url: str, message_id: str = "M1") -> dict[str, Any]:
    return with_message_id(evolution_payload("text_pn", server_url=url), message_id)


def test_it_replies_through_a_server_listed_in_evolution_trusted_servers(legacy, evolution):
    with override_settings(EVOLUTION_TRUSTED_SERVERS=[evolution.url.upper() + "/"]):
        answer = post_webhook("", from_server(evolution.url + "/"))
        answer_all()

    assert answer["status"] == "queued"
    assert len(evolution.requests) == 1
    assert Message.objects.get().status == Message.Status.ANSWERED


def test_it_refuses_a_server_not_listed_and_says_which_setting_to_fix(
    legacy, agent, stranger, caplog
):
    with (
        override_settings(EVOLUTION_TRUSTED_SERVERS=["https://evolution.example.com"]),
        caplog.at_level(logging.WARNING),
    ):
        answer = post_webhook("", from_server(stranger.url))
        answer_all()

    assert answer["status"] == "failed"
    assert "EVOLUTION_TRUSTED_SERVERS" in answer["reason"]
    assert stranger.requests == []
    assert agent.requests == []
    message = Message.objects.get()
    assert message.status == Message.Status.FAILED
    assert message.last_error == answer["reason"]
    assert message.reply_evolution_url == ""
    assert message.reply_evolution_key == ""
    assert "EVOLUTION_TRUSTED_SERVERS" in caplog.text
    # Not queued: no worker will take the chat up.
    assert Conversation.objects.get().ready_at is None


def test_without_a_list_the_first_server_seen_is_pinned_and_others_are_refused(
    legacy, evolution, stranger
):
    first = post_webhook("", from_server(evolution.url, "FIRST"))
    other = post_webhook("", from_server(stranger.url, "OTHER"))
    again = post_webhook("", from_server(evolution.url, "AGAIN"))
    answer_all()

    legacy.refresh_from_db()
    assert legacy.pinned_evolution_origin == evolution.url
    assert (first["status"], other["status"], again["status"]) == ("queued", "failed", "queued")
    assert "instance_clear_pin legacy" in other["reason"]
    assert stranger.requests == []
    assert len(evolution.requests) == 2


def test_the_pin_is_set_once_even_when_two_servers_race_for_it(legacy):
    won = pin_evolution_origin(legacy.pk, legacy.name, "http://first.test:80")
    lost = pin_evolution_origin(legacy.pk, legacy.name, "http://second.test:80")

    assert won == lost == "http://first.test:80"
    assert InstanceConfig.objects.get().pinned_evolution_origin == "http://first.test:80"


def test_clearing_the_pin_lets_the_next_webhook_pin_its_server(legacy, evolution, stranger):
    post_webhook("", from_server(stranger.url, "FIRST"))
    shown = StringIO()
    call_command("instance_show", "legacy", stdout=shown)

    call_command("instance_clear_pin", "legacy", stdout=StringIO())
    answer = post_webhook("", from_server(evolution.url, "AFTER"))

    assert stranger.url in shown.getvalue()
    assert answer["status"] == "queued"
    assert InstanceConfig.objects.get().pinned_evolution_origin == evolution.url


def test_a_webhook_without_a_server_url_is_refused(legacy):
    answer = post_webhook("", from_server(""))

    assert answer["status"] == "failed"
    assert "server_url" in answer["reason"]


def test_a_tenant_with_its_own_evolution_never_uses_the_webhook_s_server(
    tenant_at, evolution, stranger
):
    tenant_at(name="acme")

    post_webhook("acme", from_server(stranger.url))
    answer_all()

    assert stranger.requests == []
    assert len(evolution.requests) == 1
    assert InstanceConfig.objects.get().pinned_evolution_origin == ""


@pytest.mark.parametrize("instance", ["another-instance", "ACME-SALES", ""])
def test_a_webhook_from_another_evolution_instance_is_ignored_and_not_stored(
    tenant_at, instance, caplog
):
    tenant_at(name="acme", whatsapp_instance="acme-sales")

    with caplog.at_level(logging.WARNING):
        answer = post_webhook("acme", evolution_payload("text_pn", instance=instance))

    assert answer["status"] == "ignored"
    assert answer["reason"].startswith("misrouted")
    assert "'acme-sales'" in answer["reason"]
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()
    assert "misrouted" in caplog.text
