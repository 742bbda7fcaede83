from collections.abc import Mapping

import pytest
from django.test import Client, override_settings

from instances import services
from instances.models import InstanceConfig
from tests.conftest import API_KEY
from tests.factories import InstanceConfigFactory, MessageFactory
from webhooks.models import Message

pytestmark = pytest.mark.django_db

NEW_INSTANCE = {
    "name": "acme",
    "evolution_url": "https://evolution.acme.test/",
    "evolution_key": "evo-secret-key-8888",
    "whatsapp_instance": "acme-wa",
    "session_id_prefix": "acme-",
    "agent_api_url": "https://agents.acme.test/",
    "agent_api_key": "agent-secret-key-4444",
    "default_agent": "sales",
    "agent_timeout": 90,
}


def test_it_creates_an_instance(api_client):
    response = api_client.post("/api/v1/instances", NEW_INSTANCE, content_type="application/json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "acme"
    assert body["evolution_url"] == "https://evolution.acme.test"
    assert body["agent_api_url"] == "https://agents.acme.test"
    assert body["agent_timeout"] == 90
    instance = InstanceConfig.objects.get(name="acme")
    assert instance.evolution_key == "evo-secret-key-8888"
    assert instance.agent_api_key == "agent-secret-key-4444"


def test_it_never_returns_a_key_in_full(api_client):
    response = api_client.post("/api/v1/instances", NEW_INSTANCE, content_type="application/json")

    assert response.json()["evolution_key"] == "••••8888"
    assert response.json()["agent_api_key"] == "••••4444"
    for path in ("/api/v1/instances", "/api/v1/instances/acme"):
        text = api_client.get(path).content.decode()
        assert "evo-secret-key-8888" not in text
        assert "agent-secret-key-4444" not in text


def test_it_answers_409_when_the_name_exists(api_client):
    InstanceConfigFactory.create(name="acme")

    response = api_client.post("/api/v1/instances", NEW_INSTANCE, content_type="application/json")

    assert response.status_code == 409
    assert "acme" in response.json()["detail"]
    assert InstanceConfig.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "not a valid name!"),
        ("name", "x" * 65),
        ("evolution_url", "ftp://evolution.test"),
        ("agent_api_url", "not a url"),
        ("agent_timeout", 0),
        ("agent_timeout", 3601),
        ("evolution_key", ""),
        ("default_agent", ""),
    ],
)
def test_it_answers_422_naming_the_invalid_field(api_client, field, value):
    response = api_client.post(
        "/api/v1/instances", {**NEW_INSTANCE, field: value}, content_type="application/json"
    )

    assert response.status_code == 422
    assert field in {error["loc"][-1] for error in response.json()["detail"]}
    assert not InstanceConfig.objects.exists()


def test_it_requires_the_evolution_server_for_new_instances(api_client):
    payload = {k: v for k, v in NEW_INSTANCE.items() if k != "evolution_url"}

    response = api_client.post("/api/v1/instances", payload, content_type="application/json")

    assert response.status_code == 422
    assert "evolution_url" in str(response.json()["detail"])


def test_it_answers_422_for_a_body_that_is_not_json(api_client):
    response = api_client.post("/api/v1/instances", "{nope", content_type="application/json")

    assert response.status_code in (400, 422)
    assert "detail" in response.json()


def test_it_lists_instances_by_name(api_client):
    InstanceConfigFactory.create(name="zeta")
    InstanceConfigFactory.create(name="alpha")

    response = api_client.get("/api/v1/instances")

    assert response.status_code == 200
    assert [item["name"] for item in response.json()] == ["alpha", "zeta"]


def test_it_shows_one_instance(api_client):
    InstanceConfigFactory.create(name="acme", default_agent="sales")

    response = api_client.get("/api/v1/instances/acme")

    assert response.status_code == 200
    assert response.json()["default_agent"] == "sales"


def test_it_answers_404_for_an_unknown_instance(api_client):
    for method in ("get", "put", "patch", "delete"):
        response = getattr(api_client, method)(
            "/api/v1/instances/ghost", {}, content_type="application/json"
        )
        assert response.status_code == 404, method
        assert response.json() == {"detail": "instance 'ghost' not found"}
    assert api_client.post("/api/v1/instances/ghost/set-default").status_code == 404


@pytest.mark.parametrize("method", ["put", "patch"])
def test_it_changes_only_the_fields_sent(api_client, method):
    instance = InstanceConfigFactory.create(name="acme", default_agent="sales", agent_timeout=30)
    old_key = instance.evolution_key

    response = getattr(api_client, method)(
        "/api/v1/instances/acme", {"default_agent": "support"}, content_type="application/json"
    )

    assert response.status_code == 200
    instance.refresh_from_db()
    assert instance.default_agent == "support"
    assert instance.agent_timeout == 30
    assert instance.evolution_key == old_key


def test_it_replaces_a_key_sent_and_keeps_a_blank_one(api_client):
    instance = InstanceConfigFactory.create(name="acme")
    old_agent_key = instance.agent_api_key

    response = api_client.patch(
        "/api/v1/instances/acme",
        {"evolution_key": "brand-new-evolution-key", "agent_api_key": ""},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["evolution_key"] == "••••-key"
    instance.refresh_from_db()
    assert instance.evolution_key == "brand-new-evolution-key"
    assert instance.agent_api_key == old_agent_key


def test_it_answers_422_for_an_invalid_update_and_writes_nothing(api_client):
    InstanceConfigFactory.create(name="acme", agent_api_url="http://agents.test")

    response = api_client.patch(
        "/api/v1/instances/acme", {"agent_api_url": "gopher://x"}, content_type="application/json"
    )

    assert response.status_code == 422
    assert InstanceConfig.objects.get(name="acme").agent_api_url == "http://agents.test"


def test_it_deletes_an_instance_and_says_how_much_of_its_message_log_went(api_client):
    acme = InstanceConfigFactory.create(name="acme")
    other = InstanceConfigFactory.create(name="other")
    for chat in ("5511900000001@s.whatsapp.net", "5511900000002@s.whatsapp.net"):
        MessageFactory.create_batch(2, instance=acme, chat_jid=chat)
    kept = MessageFactory.create(instance=other)

    response = api_client.delete("/api/v1/instances/acme")

    assert response.status_code == 200
    assert response.json() == {"name": "acme", "messages": 4, "conversations": 2}
    assert list(InstanceConfig.objects.all()) == [other]
    assert list(Message.objects.all()) == [kept]


def test_the_api_docs_warn_that_deleting_a_tenant_deletes_its_message_log():
    schema = Client().get("/api/v1/openapi.json").json()

    delete = schema["paths"]["/api/v1/instances/{name}"]["delete"]
    assert "message log" in delete["description"]
    assert "no undo" in delete["description"]


def test_it_sets_the_default_and_undefaults_the_previous_one(api_client):
    old = InstanceConfigFactory.create(name="old", is_default=True)
    InstanceConfigFactory.create(name="new")

    response = api_client.post("/api/v1/instances/new/set-default")

    assert response.status_code == 200
    assert response.json()["is_default"] is True
    old.refresh_from_db()
    assert old.is_default is False
    assert list(InstanceConfig.objects.filter(is_default=True).values_list("name", flat=True)) == [
        "new"
    ]


def test_it_sets_the_default_through_an_update(api_client):
    InstanceConfigFactory.create(name="old", is_default=True)
    InstanceConfigFactory.create(name="new")

    api_client.patch("/api/v1/instances/new", {"is_default": True}, content_type="application/json")

    assert InstanceConfig.objects.get(is_default=True).name == "new"


def test_it_accepts_a_bearer_token():
    InstanceConfigFactory.create(name="acme")

    response = Client(headers={"Authorization": f"Bearer {API_KEY}"}).get("/api/v1/instances")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"X-API-Key": ""}],
)
def test_it_answers_401_without_the_right_key(headers):
    response = Client(headers=headers).get("/api/v1/instances")

    assert response.status_code == 401
    assert "detail" in response.json()


@override_settings(OMNIHUB_API_KEY="")
def test_it_is_closed_with_503_when_no_api_key_is_configured():
    response = Client(headers={"X-API-Key": ""}).get("/api/v1/instances")

    assert response.status_code == 503
    assert "OMNIHUB_API_KEY" in response.json()["detail"]


def test_it_answers_json_for_unknown_routes_and_methods(api_client):
    not_found = api_client.get("/api/v1/nothing-here")
    not_allowed = api_client.delete("/api/v1/instances")

    assert not_found.status_code == 404
    assert not_found.json() == {"detail": "Not Found"}
    assert not_allowed.status_code == 405
    assert not_allowed.json() == {"detail": "Method not allowed"}


def test_it_serves_the_openapi_docs(api_client):
    assert Client().get("/api/v1/docs").status_code == 200
    schema = Client().get("/api/v1/openapi.json").json()
    assert "/api/v1/instances" in schema["paths"]


WEBHOOK_SECRET = "chosen-webhook-secret-" + "c" * 20 + "WXYZ"


def test_the_api_creates_a_tenant_with_authentication_on_and_shows_the_secret_masked(api_client):
    response = api_client.post(
        "/api/v1/instances", {**NEW_INSTANCE, "webhook_secret": WEBHOOK_SECRET}, "application/json"
    )

    body = response.json()
    assert response.status_code == 201
    assert body["webhook_secret"] == "••••WXYZ"
    assert body["require_webhook_auth"] is True
    assert body["webhook_authenticated"] is True
    assert WEBHOOK_SECRET not in api_client.get("/api/v1/instances/acme").content.decode()


def test_the_api_flags_a_tenant_whose_webhooks_are_not_authenticated(api_client):
    InstanceConfigFactory.create(name="legacy")
    InstanceConfigFactory.create(name="signed", authenticated=True)

    listed = {item["name"]: item for item in api_client.get("/api/v1/instances").json()}

    assert listed["legacy"]["webhook_authenticated"] is False
    assert listed["signed"]["webhook_authenticated"] is True


def test_the_api_shows_the_rejection_counters(api_client):
    tenant = InstanceConfigFactory.create(name="acme", authenticated=True)
    services.record_webhook_rejection(tenant.pk, "expired")

    body = api_client.get("/api/v1/instances/acme").json()

    assert body["webhook_rejections"] == 1
    assert body["webhook_last_rejection"] == "expired"
    assert body["webhook_last_rejected_at"]


def test_the_api_switches_authentication_on(api_client):
    InstanceConfigFactory.create(name="legacy")

    response = api_client.patch(
        "/api/v1/instances/legacy", {"require_webhook_auth": True}, "application/json"
    )

    assert response.json()["webhook_authenticated"] is True
    assert InstanceConfig.objects.get().webhook_secret


def test_the_api_rotates_the_secret_and_shows_the_new_one_this_once(api_client):
    tenant = InstanceConfigFactory.create(name="acme", authenticated=True)

    with override_settings(OMNIHUB_PUBLIC_URL="https://omnihub.example.com/"):
        response = api_client.post("/api/v1/instances/acme/rotate-webhook-secret")

    body = response.json()
    tenant.refresh_from_db()
    assert response.status_code == 200
    assert body["webhook_secret"] == tenant.webhook_secret
    assert tenant.previous_webhook_secret
    assert body["previous_secret_valid_until"]
    assert body["evolution_webhook"] == {
        "enabled": True,
        "url": "https://omnihub.example.com/webhook/evolution/acme",
        "byEvents": False,
        "base64": True,
        "events": ["MESSAGES_UPSERT"],
        "headers": {"jwt_key": tenant.webhook_secret},
    }
    assert tenant.webhook_secret not in api_client.get("/api/v1/instances/acme").content.decode()


def test_the_api_answers_404_when_rotating_an_unknown_tenant(api_client):
    assert api_client.post("/api/v1/instances/ghost/rotate-webhook-secret").status_code == 404


def test_the_api_answers_422_to_a_secret_too_short(api_client):
    response = api_client.post(
        "/api/v1/instances", {**NEW_INSTANCE, "webhook_secret": "short"}, "application/json"
    )

    assert response.status_code == 422
    assert "webhook_secret" in {error["loc"][-1] for error in response.json()["detail"]}


# --- the conversation settings, and one validation pass -----------------------------------------

CONVERSATION_SETTINGS = {
    "human_takeover_minutes": 45,
    "debounce_seconds": 5,
    "split_replies": False,
    "typing_ms_per_char": 30,
    "show_typing": False,
    "allowed_numbers": ["5511*", "5521987654321"],
    "blocked_numbers": ["5511999999999"],
    "max_messages_per_hour": 20,
    "rate_limited_reply": "Slow down, please.",
    "max_message_age_seconds": 60,
    "error_reply": "Sorry, something went wrong.",
    "unsupported_reply": "I can only read text.",
    "reset_keyword": "#reset",
    "reset_reply": "Starting over!",
}
DEFAULTS = {
    "human_takeover_minutes": 30,
    "debounce_seconds": 0,
    "split_replies": True,
    "typing_ms_per_char": 0,
    "show_typing": True,
    "allowed_numbers": [],
    "blocked_numbers": [],
    "max_messages_per_hour": 0,
    "rate_limited_reply": "",
    "max_message_age_seconds": 900,
    "error_reply": "",
    "unsupported_reply": "",
    "reset_keyword": "",
    "reset_reply": "Ok, starting over.",
}
INVALID_SETTINGS = [
    ("human_takeover_minutes", 43201, "less than or equal to 43200"),
    ("human_takeover_minutes", -1, "greater than or equal to 0"),
    ("debounce_seconds", 61, "less than or equal to 60"),
    ("typing_ms_per_char", 1001, "less than or equal to 1000"),
    ("max_messages_per_hour", 100001, "less than or equal to 100000"),
    ("max_message_age_seconds", 604801, "less than or equal to 604800"),
    ("allowed_numbers", ["55 11"], "Use digits"),
    ("allowed_numbers", "5511*", "valid list"),
    ("blocked_numbers", ["5511*", 42], "item 1: Input should be a valid string"),
    ("blocked_numbers", ["*"], "Use digits"),
    ("split_replies", "perhaps", "valid boolean"),
    ("show_typing", None, "not null"),
    ("rate_limited_reply", "x" * 4001, "at most 4000 characters"),
    ("error_reply", "x" * 4001, "at most 4000 characters"),
    ("unsupported_reply", "x" * 4001, "at most 4000 characters"),
    ("reset_keyword", "x" * 101, "at most 100 characters"),
    ("reset_reply", "x" * 4001, "at most 4000 characters"),
    ("debounce_seconds", "soon", "valid integer"),
]


def errors_by_location(response):
    return {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}


def test_a_new_tenant_takes_every_conversation_setting_and_shows_it(api_client):
    response = api_client.post(
        "/api/v1/instances", {**NEW_INSTANCE, **CONVERSATION_SETTINGS}, "application/json"
    )

    assert response.status_code == 201
    shown = api_client.get("/api/v1/instances/acme").json()
    assert {name: shown[name] for name in CONVERSATION_SETTINGS} == CONVERSATION_SETTINGS
    stored = InstanceConfig.objects.values(*CONVERSATION_SETTINGS).get()
    assert stored == CONVERSATION_SETTINGS


def test_a_new_tenant_gets_the_documented_defaults(api_client):
    body = api_client.post("/api/v1/instances", NEW_INSTANCE, "application/json").json()

    assert {name: body[name] for name in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(("field", "value"), CONVERSATION_SETTINGS.items())
def test_each_conversation_setting_changes_alone(api_client, field, value):
    # From the model's defaults (the factory changes some), so each value is a change.
    InstanceConfigFactory.create(name="acme", **{name: DEFAULTS[name] for name in DEFAULTS})
    before: Mapping[str, object] = InstanceConfig.objects.values().get()

    response = api_client.patch("/api/v1/instances/acme", {field: value}, "application/json")

    assert response.status_code == 200
    assert response.json()[field] == value
    after: Mapping[str, object] = InstanceConfig.objects.values().get()
    assert {name for name in after if after[name] != before[name]} == {field, "updated_at"}


@pytest.mark.parametrize(("field", "value", "message"), INVALID_SETTINGS)
@pytest.mark.parametrize("method", ["post", "patch"])
def test_an_invalid_conversation_setting_is_a_422_naming_it(
    api_client, method, field, value, message
):
    InstanceConfigFactory.create(name="globex")
    url, body = (
        ("/api/v1/instances", {**NEW_INSTANCE, field: value})
        if method == "post"
        else ("/api/v1/instances/globex", {field: value})
    )
    before = list(InstanceConfig.objects.values())

    response = getattr(api_client, method)(url, body, "application/json")

    assert response.status_code == 422
    errors = errors_by_location(response)
    assert list(errors) == [("body", field)]
    assert message in errors[("body", field)]
    assert list(InstanceConfig.objects.values()) == before


@pytest.mark.parametrize("method", ["post", "patch"])
def test_an_unknown_field_is_a_422_naming_it(api_client, method):
    InstanceConfigFactory.create(name="globex")
    url, body = (
        ("/api/v1/instances", {**NEW_INSTANCE, "colour": "red"})
        if method == "post"
        else ("/api/v1/instances/globex", {"colour": "red", "default_agent": "support"})
    )
    before = list(InstanceConfig.objects.values())

    response = getattr(api_client, method)(url, body, "application/json")

    assert response.status_code == 422
    assert errors_by_location(response) == {("body", "colour"): "Unknown field."}
    assert list(InstanceConfig.objects.values()) == before


@pytest.mark.parametrize(
    "field", ["name", "webhook_rejections", "pinned_evolution_origin", "created_at"]
)
def test_a_read_only_field_in_an_update_is_a_422_naming_it(api_client, field):
    InstanceConfigFactory.create(name="acme")

    response = api_client.patch("/api/v1/instances/acme", {field: "x"}, "application/json")

    assert response.status_code == 422
    assert errors_by_location(response) == {("body", field): "This field is read-only."}
    assert InstanceConfig.objects.get().name == "acme"


def test_a_read_only_field_in_a_new_tenant_is_a_422_naming_it(api_client):
    body = {**NEW_INSTANCE, "webhook_authenticated": False}

    response = api_client.post("/api/v1/instances", body, "application/json")

    assert response.status_code == 422
    assert errors_by_location(response) == {
        ("body", "webhook_authenticated"): "This field is read-only."
    }


def test_one_answer_names_every_invalid_field_of_an_update(api_client):
    InstanceConfigFactory.create(name="acme", agent_timeout=30)
    before = list(InstanceConfig.objects.values())

    response = api_client.patch(
        "/api/v1/instances/acme",
        {
            "agent_api_url": "not a url",
            "agent_timeout": 0,
            "debounce_seconds": "soon",
            "allowed_numbers": ["55-11"],
            "colour": "red",
            "default_agent": "support",
        },
        "application/json",
    )

    assert response.status_code == 422
    errors = errors_by_location(response)
    assert set(errors) == {
        ("body", "agent_api_url"),
        ("body", "agent_timeout"),
        ("body", "debounce_seconds"),
        ("body", "allowed_numbers"),
        ("body", "colour"),
    }
    assert errors[("body", "agent_api_url")] == "Enter an http(s) URL."
    assert errors[("body", "agent_timeout")] == "Ensure this value is greater than or equal to 1."
    assert list(InstanceConfig.objects.values()) == before


def test_one_answer_names_every_missing_and_invalid_field_of_a_new_tenant(api_client):
    response = api_client.post(
        "/api/v1/instances",
        {"name": "acme", "evolution_url": "gopher://x", "evolution_key": "", "agent_timeout": 0},
        "application/json",
    )

    assert response.status_code == 422
    errors = errors_by_location(response)
    assert errors == {
        ("body", "evolution_url"): "Enter an http(s) URL.",
        ("body", "evolution_key"): "This field is required.",
        ("body", "whatsapp_instance"): "This field is required.",
        ("body", "agent_api_url"): "This field is required.",
        ("body", "default_agent"): "This field is required.",
        ("body", "agent_timeout"): "Ensure this value is greater than or equal to 1.",
    }


def test_a_body_that_is_not_an_object_is_a_422_for_the_whole_body(api_client):
    response = api_client.post("/api/v1/instances", [NEW_INSTANCE], "application/json")

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body"]]


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://agents.acme.test/api/v1/agent/sales/run", "https://agents.acme.test"),
        ("https://agents.acme.test/api/v1/agent/", "https://agents.acme.test"),
        ("https://agents.acme.test/api/v1", "https://agents.acme.test"),
        ("http://10.0.0.5:8001/tenants/acme/api/v1/agent/x", "http://10.0.0.5:8001/tenants/acme"),
    ],
)
def test_an_agent_endpoint_given_for_the_base_url_is_a_422_with_the_base_to_give(
    api_client, url, base
):
    response = api_client.post(
        "/api/v1/instances", {**NEW_INSTANCE, "agent_api_url": url}, "application/json"
    )

    assert response.status_code == 422
    message = errors_by_location(response)[("body", "agent_api_url")]
    assert f"base URL of the Agents API, e.g. {base}:" in message
    assert "/api/v1/agent/<agent>/run" in message


def test_a_base_url_with_a_path_of_its_own_is_fine(api_client):
    body = {**NEW_INSTANCE, "agent_api_url": "https://gateway.acme.test/agents"}

    response = api_client.post("/api/v1/instances", body, "application/json")

    assert response.status_code == 201
    assert response.json()["agent_api_url"] == "https://gateway.acme.test/agents"


def test_placeholder_values_are_values(api_client):
    body = {
        **NEW_INSTANCE,
        "evolution_url": "http://localhost:8080",
        "evolution_key": "change-me",
        "agent_api_url": "http://localhost:8001",
        "default_agent": "my-agent",
    }

    assert api_client.post("/api/v1/instances", body, "application/json").status_code == 201


def test_the_openapi_schema_documents_every_setting_with_its_bounds():
    components = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]

    new, update, out = (
        components[name] for name in ("InstanceIn", "InstanceUpdate", "InstanceOut")
    )
    assert set(CONVERSATION_SETTINGS) <= set(new["properties"])
    assert set(CONVERSATION_SETTINGS) <= set(update["properties"])
    assert set(CONVERSATION_SETTINGS) <= set(out["properties"])
    assert new["additionalProperties"] is False
    assert update["additionalProperties"] is False
    debounce = new["properties"]["debounce_seconds"]
    assert (debounce["default"], debounce["minimum"], debounce["maximum"]) == (0, 0, 60)
    assert update["properties"]["agent_timeout"]["maximum"] == 3600
    assert "default" not in update["properties"]["agent_timeout"]
    assert new["properties"]["evolution_key"]["writeOnly"] is True
    assert "name" not in update["properties"]
