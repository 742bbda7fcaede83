"""Linking a tenant to Evolution in one step, and checking the link: through the API, the CLI
and the admin, against a fake Evolution and a fake Agents API."""

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

from instances.models import InstanceConfig
from tests.factories import InstanceConfigFactory
from tests.fakes import FakeServer, agent_replying, closed_port, evolution_instances, serve

pytestmark = pytest.mark.django_db

EVOLUTION_KEY = "evolution-global-key-0001"
PUBLIC_URL = "https://omnihub.example.com"


@pytest.fixture
def evolution() -> Iterator[FakeServer]:
    with serve(evolution_instances(EVOLUTION_KEY, {"acme-wa": "open", "idle-wa": "close"})) as fake:
        yield fake


@pytest.fixture
def agent() -> Iterator[FakeServer]:
    with serve(agent_replying()) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _public_url() -> Iterator[None]:
    with override_settings(OMNIHUB_PUBLIC_URL=PUBLIC_URL + "/"):
        yield


@pytest.fixture
def tenant(evolution, agent):
    """A tenant from before webhook authentication, on the fakes."""
    return InstanceConfigFactory.create(
        name="acme",
        whatsapp_instance="acme-wa",
        evolution_url=evolution.url,
        evolution_key=EVOLUTION_KEY,
        agent_api_url=agent.url,
    )


def status_of(api_client, name="acme"):
    response = api_client.get(f"/api/v1/instances/{name}/status")
    assert response.status_code == 200, response.content
    return response.json()


def test_connecting_sets_evolution_s_webhook_and_requires_authentication(
    api_client, tenant, evolution
):
    response = api_client.post("/api/v1/instances/acme/connect")

    assert response.status_code == 200
    assert response.json()["webhook_authenticated"] is True
    tenant.refresh_from_db()
    [call] = [r for r in evolution.requests if r.path.startswith("/webhook/set/")]
    assert call.path == "/webhook/set/acme-wa"
    assert call.headers["apikey"] == EVOLUTION_KEY
    assert call.body == {
        "webhook": {
            "enabled": True,
            "url": f"{PUBLIC_URL}/webhook/evolution/acme",
            "byEvents": False,
            "base64": True,
            "events": ["MESSAGES_UPSERT"],
            "headers": {"jwt_key": tenant.webhook_secret},
        }
    }
    assert tenant.require_webhook_auth is True
    assert len(tenant.webhook_secret) >= 32


def test_a_connected_tenant_reports_every_check_ok(api_client, tenant):
    api_client.post("/api/v1/instances/acme/connect")

    status = status_of(api_client)

    assert status["ok"] is True
    assert status["evolution"] == {"ok": True, "message": "open: WhatsApp is connected"}
    assert status["webhook"]["ok"] is True
    assert status["agent"]["ok"] is True


def test_status_says_when_evolution_s_webhook_points_elsewhere(api_client, tenant):
    other = InstanceConfigFactory.create(
        name="other", whatsapp_instance="acme-wa", evolution_url=tenant.evolution_url,
        evolution_key=EVOLUTION_KEY, agent_api_url=tenant.agent_api_url,
    )  # fmt: skip
    api_client.post(f"/api/v1/instances/{other.name}/connect")

    webhook = status_of(api_client)["webhook"]

    assert webhook["ok"] is False
    assert "/webhook/evolution/other" in webhook["message"]


def test_status_says_when_evolution_has_no_webhook_yet(api_client, tenant):
    webhook = status_of(api_client)["webhook"]

    assert webhook == {
        "ok": False,
        "message": f"Evolution has no webhook for this instance; expected "
        f"{PUBLIC_URL}/webhook/evolution/acme",
    }


def test_status_says_when_evolution_signs_with_another_secret(api_client, tenant):
    api_client.post("/api/v1/instances/acme/connect")
    InstanceConfig.objects.filter(pk=tenant.pk).update(webhook_secret="x" * 40)

    webhook = status_of(api_client)["webhook"]

    assert webhook["ok"] is False
    assert "jwt_key" in webhook["message"]


def test_status_reports_a_closed_whatsapp_connection(api_client, tenant):
    InstanceConfig.objects.filter(pk=tenant.pk).update(whatsapp_instance="idle-wa")

    evolution_check = status_of(api_client)["evolution"]

    assert evolution_check == {"ok": False, "message": "close: WhatsApp is not connected"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"evolution_key": "wrong-key-0000"}, "wrong key: Evolution answered 401"),
        ({"whatsapp_instance": "ghost"}, "unknown instance"),
        ({"evolution_url": f"http://127.0.0.1:{closed_port()}"}, "unreachable: cannot reach"),
    ],
)
def test_a_failed_connect_says_why_in_plain_words_and_changes_nothing(
    api_client, tenant, change, message
):
    InstanceConfig.objects.filter(pk=tenant.pk).update(**change)
    tenant.refresh_from_db()

    response = api_client.post("/api/v1/instances/acme/connect")
    status = status_of(api_client)

    assert response.status_code == 502
    assert response.json()["detail"].startswith(message)
    assert status["evolution"]["message"].startswith(message)
    assert status["webhook"]["message"].startswith(message)
    assert InstanceConfig.objects.get().require_webhook_auth is False


@pytest.mark.parametrize(
    ("answer", "ok", "message"),
    [
        ((422, {"detail": "message_content missing"}), True, "the Agents API answers"),
        ((401, {"detail": "bad key"}), False, "wrong key: the Agents API answered 401"),
        ((404, {"detail": "no such agent"}), False, "unknown agent 'assistant'"),
    ],
)
def test_status_reports_whether_the_agents_api_answers(
    api_client, tenant, agent, answer, ok, message
):
    agent.default = answer

    check = status_of(api_client)["agent"]

    assert check["ok"] is ok
    assert check["message"].startswith(message)
    [probe] = agent.requests
    assert probe.body == {}  # nothing for the agent to run


def test_status_reports_an_unreachable_agents_api(api_client, tenant):
    InstanceConfig.objects.filter(pk=tenant.pk).update(
        agent_api_url=f"http://127.0.0.1:{closed_port()}"
    )

    assert status_of(api_client)["agent"]["message"].startswith("unreachable: cannot reach")


def test_connect_needs_omnihub_public_url(api_client, tenant, evolution):
    with override_settings(OMNIHUB_PUBLIC_URL=""):
        response = api_client.post("/api/v1/instances/acme/connect")

    assert response.status_code == 409
    assert "OMNIHUB_PUBLIC_URL" in response.json()["detail"]
    assert evolution.requests == []


def test_connect_needs_the_tenant_s_own_evolution(api_client, agent):
    InstanceConfigFactory.create(name="legacy", evolution_url="", evolution_key="")

    response = api_client.post("/api/v1/instances/legacy/connect")

    assert response.status_code == 409
    assert "no Evolution URL" in response.json()["detail"]


def test_connect_and_status_answer_404_for_an_unknown_tenant(api_client):
    assert api_client.post("/api/v1/instances/ghost/connect").status_code == 404
    assert api_client.get("/api/v1/instances/ghost/status").status_code == 404


def test_the_commands_connect_and_report_status(tenant):
    connected, status = StringIO(), StringIO()

    call_command("instance_connect", "acme", stdout=connected)
    call_command("instance_status", "acme", stdout=status)

    assert f"{PUBLIC_URL}/webhook/evolution/acme" in connected.getvalue()
    lines = status.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "evolution"], ["ok", "webhook"], ["ok", "agent"],
    ]  # fmt: skip


def test_instance_status_fails_when_a_check_fails(tenant):
    status = StringIO()

    with pytest.raises(CommandError, match="not fully connected"):
        call_command("instance_status", "acme", stdout=status)

    assert "FAIL  webhook" in status.getvalue()


def test_instance_connect_fails_in_one_line(tenant):
    InstanceConfig.objects.filter(pk=tenant.pk).update(evolution_key="wrong-key-0000")

    with pytest.raises(CommandError, match=r"^not connected: wrong key"):
        call_command("instance_connect", "acme", stdout=StringIO())


def admin_action(admin_client, action, tenant):
    response = admin_client.post(
        reverse("admin:instances_instanceconfig_changelist"),
        {"action": action, "_selected_action": [tenant.pk]},
        follow=True,
    )
    return [str(message) for message in response.context["messages"]]


def test_the_admin_connects_and_tests_the_connection(admin_client, tenant):
    connected = admin_action(admin_client, "connect_to_evolution", tenant)
    tested = admin_action(admin_client, "test_connection", tenant)

    assert connected == ["acme: Evolution's webhook now points here."]
    assert tested[0] == "acme: Evolution: open: WhatsApp is connected"
    assert tested[1].startswith("acme: webhook: points at this tenant")
    assert tested[2].startswith("acme: Agents API: the Agents API answers")
    assert InstanceConfig.objects.get().require_webhook_auth is True
