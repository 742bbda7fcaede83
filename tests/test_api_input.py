"""What the REST API answers to input it cannot take: a 4xx with a JSON detail, never a 500."""

from unittest import mock

import pytest

from instances import services
from instances.models import InstanceConfig
from tests.factories import InstanceConfigFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "query", ["limit=18446744073709551616", "offset=18446744073709551616", "limit=1001"]
)
def test_a_page_beyond_what_the_database_takes_is_a_422(api_client, query):
    MessageFactory.create()

    response = api_client.get(f"/api/v1/messages?{query}")

    assert response.status_code == 422
    assert response.json()["detail"]


def test_the_largest_offset_is_an_empty_page(api_client):
    MessageFactory.create()

    response = api_client.get(f"/api/v1/messages?offset={2**63 - 1}")

    assert response.status_code == 200
    assert response.json()["items"] == []


@pytest.mark.parametrize("message_id", [0, 2**63, 2**64])
@pytest.mark.parametrize("suffix", ["", "/retry"])
def test_a_message_id_no_message_can_have_is_a_404(api_client, message_id, suffix):
    method = api_client.post if suffix else api_client.get

    response = method(f"/api/v1/messages/{message_id}{suffix}")

    assert response.status_code == 404
    assert response.json()["detail"]


@pytest.mark.parametrize("field", ["evolution_url", "agent_api_url", "session_id_prefix"])
def test_null_for_a_field_that_has_no_null_is_a_422(api_client, field):
    InstanceConfigFactory.create(name="acme")

    response = api_client.patch(
        "/api/v1/instances/acme", {field: None}, content_type="application/json"
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


def test_null_for_a_secret_keeps_the_stored_one(api_client):
    InstanceConfigFactory.create(name="acme", evolution_key="kept-evolution-key")

    response = api_client.patch(
        "/api/v1/instances/acme", {"evolution_key": None}, content_type="application/json"
    )

    assert response.status_code == 200
    assert InstanceConfig.objects.get().evolution_key == "kept-evolution-key"


def test_set_default_for_a_tenant_deleted_meanwhile_is_a_404_and_keeps_the_old_default(
    api_client,
):
    InstanceConfigFactory.create(name="old", is_default=True)
    read_before_the_delete = InstanceConfigFactory.create(name="gone")
    InstanceConfig.objects.filter(name="gone").delete()

    with mock.patch.object(services, "get_instance", return_value=read_before_the_delete):
        response = api_client.post("/api/v1/instances/gone/set-default")

    assert response.status_code == 404
    assert "gone" in response.json()["detail"]
    assert InstanceConfig.objects.get(is_default=True).name == "old"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "acme", "whatsapp_instance": "a\\u0000b"}',
        b'{"name": "acme", "whatsapp_instance": "\\ud800"}',
        b'{"name": "acme", "agent_timeout": NaN}',
        b'{"name": "acme", "x": ' + b"[" * 2_000 + b"]" * 2_000 + b"}",
        b'{"name": "acm\xff"}',
    ],
    ids=["NUL", "lone surrogate", "NaN", "too deep", "invalid UTF-8"],
)
def test_a_body_the_database_cannot_store_is_a_400(api_client, body):
    response = api_client.post("/api/v1/instances", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert not InstanceConfig.objects.exists()


@pytest.mark.parametrize(
    "url", ["/api/v1/instances/ac%00me", "/api/v1/messages?instance=ac%00me", "/admin/?q=%00"]
)
def test_a_nul_anywhere_in_the_url_is_a_400(api_client, url):
    response = api_client.get(url)

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
