import re
from collections.abc import Mapping

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from instances import services
from instances.models import InstanceConfig
from tests.factories import InstanceConfigFactory, MessageFactory
from webhooks.models import Message

pytestmark = pytest.mark.django_db

CHANGELIST_URL = reverse("admin:instances_instanceconfig_changelist")
ADD_URL = reverse("admin:instances_instanceconfig_add")

NEW_INSTANCE = {
    "name": "acme",
    "is_default": "",
    "evolution_url": "https://evolution.acme.test/",
    "evolution_key": "evo-secret-key-8888",
    "whatsapp_instance": "acme-wa",
    "agent_api_url": "https://agents.acme.test",
    "agent_api_key": "agent-secret-key-4444",
    "default_agent": "sales",
    "session_id_prefix": "acme-",
    "agent_timeout": "90",
    # As the add form renders them: a browser posts them back.
    "human_takeover_minutes": "30",
    "debounce_seconds": "0",
    "split_replies": "on",
    "typing_ms_per_char": "0",
    "show_typing": "on",
    "allowed_numbers": "",
    "blocked_numbers": "",
    "max_messages_per_hour": "0",
    "rate_limited_reply": "",
    "max_message_age_seconds": "900",
    "error_reply": "",
    "unsupported_reply": "",
    "reset_keyword": "",
    "reset_reply": "Ok, starting over.",
}
CONVERSATION_NUMBERS = [
    "human_takeover_minutes", "debounce_seconds", "typing_ms_per_char", "max_messages_per_hour",
    "max_message_age_seconds",
]  # fmt: skip
LISTS = ["allowed_numbers", "blocked_numbers"]
CONVERSATION_TEXTS = [
    "rate_limited_reply", "error_reply", "unsupported_reply", "reset_keyword", "reset_reply",
]  # fmt: skip


def change_url(instance):
    return reverse("admin:instances_instanceconfig_change", args=[instance.pk])


def change_data(instance, **overrides):
    """The change form as the browser would post it: key fields blank, as they are rendered."""
    data = {
        "evolution_url": instance.evolution_url,
        "evolution_key": "",
        "whatsapp_instance": instance.whatsapp_instance,
        "agent_api_url": instance.agent_api_url,
        "agent_api_key": "",
        "default_agent": instance.default_agent,
        "session_id_prefix": instance.session_id_prefix,
        "agent_timeout": str(instance.agent_timeout),
    }
    data.update({name: str(getattr(instance, name)) for name in CONVERSATION_NUMBERS})
    data.update({name: getattr(instance, name) for name in CONVERSATION_TEXTS})
    data.update({name: "\n".join(getattr(instance, name)) for name in LISTS})
    for flag in ("is_default", "split_replies", "show_typing"):
        if getattr(instance, flag):
            data[flag] = "on"
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def raw_keys(instance_id):
    """The key columns as stored, bypassing the field that decrypts them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT evolution_key, agent_api_key FROM instances_instanceconfig WHERE id = %s",
            [instance_id],
        )
        return " ".join(cursor.fetchone())


def input_tag(html, name):
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert match, name
    return match.group(0)


def error_messages(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_it_lists_instances_with_their_agents(admin_client):
    InstanceConfigFactory.create(name="acme", default_agent="sales")
    InstanceConfigFactory.create(name="globex", default_agent="support")

    response = admin_client.get(CHANGELIST_URL)

    assert response.status_code == 200
    text = response.content.decode()
    for expected in ("acme", "globex", "sales", "support"):
        assert expected in text


def test_it_narrows_the_list_by_search(admin_client):
    InstanceConfigFactory.create(name="acme")
    InstanceConfigFactory.create(name="globex")

    response = admin_client.get(CHANGELIST_URL, {"q": "glob"})

    assert [i.name for i in response.context["cl"].result_list] == ["globex"]


def test_it_searches_by_agent_api_url(admin_client):
    InstanceConfigFactory.create(name="acme", agent_api_url="https://agents.acme.test")
    InstanceConfigFactory.create(name="globex", agent_api_url="https://agents.globex.test")

    response = admin_client.get(CHANGELIST_URL, {"q": "agents.acme"})

    assert [i.name for i in response.context["cl"].result_list] == ["acme"]


def test_it_filters_by_the_default_flag(admin_client):
    InstanceConfigFactory.create(name="acme", is_default=True)
    InstanceConfigFactory.create(name="globex")

    response = admin_client.get(CHANGELIST_URL, {"is_default__exact": "1"})

    assert [i.name for i in response.context["cl"].result_list] == ["acme"]


def test_it_orders_the_list_by_name(admin_client):
    for name in ("zeta", "acme", "mid"):
        InstanceConfigFactory.create(name=name)

    response = admin_client.get(CHANGELIST_URL)

    assert [i.name for i in response.context["cl"].result_list] == ["acme", "mid", "zeta"]


def test_it_creates_an_instance_with_its_keys_encrypted(admin_client, caplog):
    caplog.set_level("INFO", logger="instances.services")

    response = admin_client.post(ADD_URL, NEW_INSTANCE)

    assert response.status_code == 302
    instance = InstanceConfig.objects.get(name="acme")
    assert instance.evolution_url == "https://evolution.acme.test"
    assert instance.evolution_key == "evo-secret-key-8888"
    assert instance.agent_api_key == "agent-secret-key-4444"
    assert instance.agent_timeout == 90
    stored = raw_keys(instance.pk)
    assert stored.strip()
    assert "evo-secret-key-8888" not in stored
    assert "agent-secret-key-4444" not in stored
    assert "instance created: acme" in caplog.messages
    assert response["Location"] == CHANGELIST_URL


def test_it_creates_a_new_default_in_place_of_the_old_one(admin_client):
    previous = InstanceConfigFactory.create(is_default=True)

    response = admin_client.post(ADD_URL, {**NEW_INSTANCE, "is_default": "on"})

    assert response.status_code == 302
    assert InstanceConfig.objects.get(name="acme").is_default
    previous.refresh_from_db()
    assert not previous.is_default


@pytest.mark.parametrize("field", ["evolution_url", "evolution_key"])
def test_it_requires_the_evolution_server_for_a_new_instance(admin_client, field):
    response = admin_client.post(ADD_URL, {**NEW_INSTANCE, field: ""})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == ["This field is required."]
    assert not InstanceConfig.objects.exists()


def test_it_reports_a_name_that_exists(admin_client):
    InstanceConfigFactory.create(name="acme")

    response = admin_client.post(ADD_URL, NEW_INSTANCE)

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert InstanceConfig.objects.count() == 1


def test_it_never_shows_a_stored_key(admin_client):
    instance = InstanceConfigFactory.create(
        evolution_key="evo-secret-key-8888", agent_api_key="agent-secret-key-4444"
    )

    response = admin_client.get(change_url(instance))

    assert response.status_code == 200
    html = response.content.decode()
    assert "evo-secret-key-8888" not in html
    assert "agent-secret-key-4444" not in html
    for name in ("evolution_key", "agent_api_key"):
        tag = input_tag(html, name)
        assert 'type="password"' in tag
        assert "value=" not in tag
    assert "Stored: ••••8888. Leave blank to keep it." in html
    assert "Stored: ••••4444. Leave blank to keep it." in html


def test_it_never_shows_a_key_on_the_list(admin_client):
    InstanceConfigFactory.create(
        evolution_key="evo-secret-key-8888", agent_api_key="agent-key-4444"
    )

    html = admin_client.get(CHANGELIST_URL).content.decode()

    assert "evo-secret-key-8888" not in html
    assert "agent-key-4444" not in html


def test_it_keeps_the_stored_keys_when_the_key_fields_are_blank(admin_client, caplog):
    caplog.set_level("INFO", logger="instances.services")
    instance = InstanceConfigFactory.create(
        evolution_key="evo-secret-key-8888", agent_api_key="agent-secret-key-4444"
    )

    response = admin_client.post(change_url(instance), change_data(instance, default_agent="new"))

    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.default_agent == "new"
    assert instance.evolution_key == "evo-secret-key-8888"
    assert instance.agent_api_key == "agent-secret-key-4444"
    assert f"instance updated: {instance.name}" in caplog.messages


def test_it_replaces_a_key_that_is_posted(admin_client):
    instance = InstanceConfigFactory.create(
        evolution_key="evo-secret-key-8888", agent_api_key="agent-secret-key-4444"
    )

    response = admin_client.post(
        change_url(instance), change_data(instance, agent_api_key="agent-new-key-5555")
    )

    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.agent_api_key == "agent-new-key-5555"
    assert instance.evolution_key == "evo-secret-key-8888"
    assert "agent-new-key-5555" not in raw_keys(instance.pk)


def test_it_shows_an_invalid_url_as_a_form_error(admin_client):
    instance = InstanceConfigFactory.create(agent_api_url="https://agents.acme.test")

    response = admin_client.post(
        change_url(instance), change_data(instance, agent_api_url="ftp://agents.acme.test")
    )

    assert response.status_code == 200
    assert "agent_api_url" in response.context["adminform"].form.errors
    instance.refresh_from_db()
    assert instance.agent_api_url == "https://agents.acme.test"


def test_it_requires_the_evolution_url_while_a_key_is_stored(admin_client):
    instance = InstanceConfigFactory.create()

    response = admin_client.post(change_url(instance), change_data(instance, evolution_url=""))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["evolution_url"] == ["This field is required."]


def test_it_edits_a_tenant_without_an_evolution_server(admin_client):
    # The default tenant seeded from .env may have neither; it replies via the webhook's server.
    instance = InstanceConfigFactory.create(evolution_url="", evolution_key="", is_default=True)

    response = admin_client.post(
        change_url(instance), change_data(instance, default_agent="changed")
    )

    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.default_agent == "changed"
    assert instance.is_default


def test_it_makes_an_instance_default_from_the_change_form(admin_client):
    previous = InstanceConfigFactory.create(is_default=True)
    instance = InstanceConfigFactory.create()

    response = admin_client.post(change_url(instance), change_data(instance, is_default="on"))

    assert response.status_code == 302
    instance.refresh_from_db()
    previous.refresh_from_db()
    assert instance.is_default
    assert not previous.is_default


def test_it_unsets_the_default_from_the_change_form(admin_client):
    instance = InstanceConfigFactory.create(is_default=True)

    data = change_data(instance)
    del data["is_default"]
    response = admin_client.post(change_url(instance), data)

    assert response.status_code == 302
    instance.refresh_from_db()
    assert not instance.is_default


def test_it_does_not_change_the_name(admin_client):
    instance = InstanceConfigFactory.create(name="acme")

    response = admin_client.post(change_url(instance), change_data(instance, name="renamed"))

    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.name == "acme"


def test_it_makes_the_selected_instance_default(admin_client):
    previous = InstanceConfigFactory.create(is_default=True)
    instance = InstanceConfigFactory.create()

    response = admin_client.post(
        CHANGELIST_URL, {"action": "make_default", "_selected_action": [instance.pk]}
    )

    assert response.status_code == 302
    instance.refresh_from_db()
    previous.refresh_from_db()
    assert instance.is_default
    assert not previous.is_default


def test_it_refuses_to_make_two_instances_default(admin_client):
    previous = InstanceConfigFactory.create(is_default=True)
    first = InstanceConfigFactory.create()
    second = InstanceConfigFactory.create()

    response = admin_client.post(
        CHANGELIST_URL,
        {"action": "make_default", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert "Select exactly one instance." in error_messages(response)
    assert list(InstanceConfig.objects.filter(is_default=True)) == [previous]


def test_it_deletes_an_instance(admin_client, caplog):
    caplog.set_level("INFO", logger="instances.services")
    instance = InstanceConfigFactory.create()
    MessageFactory.create(instance=instance)
    url = reverse("admin:instances_instanceconfig_delete", args=[instance.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not InstanceConfig.objects.exists()
    assert not Message.objects.exists()
    assert f"instance deleted: {instance.name}, with 1 message in 1 conversation" in caplog.messages


def test_the_delete_confirmation_says_how_much_of_the_message_log_goes(admin_client):
    instance = InstanceConfigFactory.create(name="acme")
    for chat in ("5511900000001@s.whatsapp.net", "5511900000002@s.whatsapp.net"):
        MessageFactory.create_batch(3, instance=instance, chat_jid=chat, text="Oi, tudo bem?")
    MessageFactory.create()  # another tenant's

    page = admin_client.get(
        reverse("admin:instances_instanceconfig_delete", args=[instance.pk])
    ).content.decode()

    assert "Instance acme, with its message log: 6 messages in 2 conversations" in page
    assert "<li>Messages: 6</li>" in page
    assert "<li>Conversations: 2</li>" in page
    # A summary: not a line per message, which could be millions.
    assert "Oi, tudo bem?" not in page
    assert InstanceConfig.objects.filter(name="acme").exists()


def test_the_confirmation_for_deleting_several_tenants_counts_their_logs(admin_client):
    first, second = InstanceConfigFactory.create(), InstanceConfigFactory.create()
    MessageFactory.create_batch(2, instance=first)
    MessageFactory.create(instance=second)

    response = admin_client.post(
        CHANGELIST_URL,
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk]},
    )

    page = response.content.decode()
    assert "<li>Messages: 3</li>" in page
    assert f"Instance {first.name}, with its message log: 2 messages in 2 conversations" in page
    assert InstanceConfig.objects.count() == 2


def test_a_user_who_may_not_delete_messages_may_not_delete_a_tenant_with_some(client):
    staff = User.objects.create_user("staff", password="password", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_instanceconfig", "delete_instanceconfig"])
    )
    client.force_login(staff)
    instance = InstanceConfigFactory.create()
    MessageFactory.create(instance=instance)
    url = reverse("admin:instances_instanceconfig_delete", args=[instance.pk])

    page = client.get(url).content.decode()
    client.post(url, {"post": "yes"})

    assert "doesn't have permission to delete the following types of objects" in page
    assert InstanceConfig.objects.exists()


def test_it_deletes_the_selected_instances(admin_client, caplog):
    caplog.set_level("INFO", logger="instances.services")
    kept = InstanceConfigFactory.create()
    selected = [InstanceConfigFactory.create().pk, InstanceConfigFactory.create().pk]

    response = admin_client.post(
        CHANGELIST_URL, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert response.status_code == 302
    assert list(InstanceConfig.objects.all()) == [kept]
    assert sum(message.startswith("instance deleted:") for message in caplog.messages) == 2


WEBHOOK_SECRET = "chosen-webhook-secret-" + "c" * 20 + "WXYZ"


def test_the_admin_list_flags_tenants_whose_webhooks_are_not_authenticated(admin_client):
    InstanceConfigFactory.create(name="legacy")

    response = admin_client.get(CHANGELIST_URL)

    assert "Webhook authenticated" in response.content.decode()
    assert 'alt="False"' in response.content.decode()


def test_the_admin_creates_a_tenant_with_a_generated_secret(admin_client):
    form = admin_client.get(ADD_URL).content.decode()
    response = admin_client.post(ADD_URL, {**NEW_INSTANCE, "require_webhook_auth": "on"})

    assert response.status_code == 302
    assert "checked" in input_tag(form, "require_webhook_auth")
    instance = InstanceConfig.objects.get()
    assert instance.require_webhook_auth is True
    assert len(instance.webhook_secret) >= 32


def test_the_admin_page_shows_the_evolution_configuration_with_the_secret_masked(admin_client):
    tenant = InstanceConfigFactory.create(
        name="acme", authenticated=True, webhook_secret=WEBHOOK_SECRET
    )
    services.record_webhook_rejection(tenant.pk, "bad signature")

    with override_settings(OMNIHUB_PUBLIC_URL="https://omnihub.example.com"):
        page = admin_client.get(change_url(tenant)).content.decode()

    assert "https://omnihub.example.com/webhook/evolution/acme" in page
    assert "MESSAGES_UPSERT" in page
    assert "&quot;base64&quot;: true" in page
    assert "&quot;jwt_key&quot;: &quot;••••WXYZ&quot;" in page
    assert WEBHOOK_SECRET not in page
    assert "bad signature" in page


def test_the_admin_keeps_the_secret_when_its_field_is_left_blank(admin_client):
    tenant = InstanceConfigFactory.create(
        name="acme", authenticated=True, webhook_secret=WEBHOOK_SECRET
    )

    admin_client.post(change_url(tenant), change_data(tenant, require_webhook_auth="on"))

    tenant.refresh_from_db()
    assert tenant.webhook_secret == WEBHOOK_SECRET


def test_the_admin_rotation_shows_the_new_secret_once(admin_client):
    tenant = InstanceConfigFactory.create(
        name="acme", authenticated=True, webhook_secret=WEBHOOK_SECRET
    )

    response = admin_client.post(
        CHANGELIST_URL, {"action": "rotate_webhook_secret", "_selected_action": [tenant.pk]}
    )

    tenant.refresh_from_db()
    page = response.content.decode()
    assert response.status_code == 200
    assert tenant.webhook_secret != WEBHOOK_SECRET
    assert tenant.webhook_secret in page
    assert tenant.webhook_secret not in admin_client.get(change_url(tenant)).content.decode()
    assert reverse("admin:instances_instanceconfig_change", args=[tenant.pk]) in page


def test_the_admin_page_shows_the_pinned_evolution_server(admin_client):
    tenant = InstanceConfigFactory.create(
        evolution_url="", evolution_key="", pinned_evolution_origin="http://10.0.0.5:8080"
    )

    page = admin_client.get(change_url(tenant)).content.decode()

    assert "http://10.0.0.5:8080" in page
    assert 'name="pinned_evolution_origin"' not in page


# --- the conversation settings, the list's webhook URL --------------------------------------


def fieldset_of(response, field):
    for name, options in response.context["adminform"].fieldsets:
        if field in options["fields"]:
            return name
    return None


def test_the_add_form_shows_every_conversation_setting_with_its_default(admin_client):
    response = admin_client.get(ADD_URL)

    html = response.content.decode()
    for name in CONVERSATION_NUMBERS:
        assert f'value="{NEW_INSTANCE[name]}"' in input_tag(html, name)
        assert fieldset_of(response, name) == "Conversation"
    for name in ("split_replies", "show_typing"):
        assert "checked" in input_tag(html, name)
    assert re.search(
        r'<textarea[^>]*name="reset_reply"[^>]*>\n?Ok, starting over.</textarea>', html
    )
    assert fieldset_of(response, "allowed_numbers") == "Conversation"


def test_the_admin_sets_every_conversation_setting(admin_client):
    instance = InstanceConfigFactory.create()
    settings = {
        "human_takeover_minutes": "45",
        "debounce_seconds": "5",
        "typing_ms_per_char": "30",
        "max_messages_per_hour": "20",
        "max_message_age_seconds": "60",
        "rate_limited_reply": "Slow down, please.",
        "error_reply": "Sorry, something went wrong.",
        "unsupported_reply": "I can only read text.",
        "reset_keyword": "#reset",
        "reset_reply": "Starting over!",
        "allowed_numbers": "5511*\n 5521987654321 ,5531*",
        "blocked_numbers": "5511999999999",
        "split_replies": None,
        "show_typing": None,
    }

    response = admin_client.post(change_url(instance), change_data(instance, **settings))

    assert response.status_code == 302
    stored: Mapping[str, object] = InstanceConfig.objects.values().get()
    assert {name: stored[name] for name in CONVERSATION_NUMBERS} == {
        name: int(str(settings[name])) for name in CONVERSATION_NUMBERS
    }
    assert {name: stored[name] for name in CONVERSATION_TEXTS} == {
        name: settings[name] for name in CONVERSATION_TEXTS
    }
    assert stored["allowed_numbers"] == ["5511*", "5521987654321", "5531*"]
    assert stored["blocked_numbers"] == ["5511999999999"]
    assert (stored["split_replies"], stored["show_typing"]) == (False, False)


def test_a_stored_number_list_is_shown_one_per_line(admin_client):
    instance = InstanceConfigFactory.create(allowed_numbers=["5511*", "5521987654321"])

    html = admin_client.get(change_url(instance)).content.decode()

    assert re.search(
        r'<textarea[^>]*name="allowed_numbers"[^>]*>\n?5511\*\n5521987654321</textarea>', html
    )


def test_an_unchanged_number_list_is_not_a_change(admin_client):
    instance = InstanceConfigFactory.create(allowed_numbers=["5511*"])

    response = admin_client.post(change_url(instance), change_data(instance))

    assert response.status_code == 302
    assert LogEntry.objects.get().get_change_message() == "No fields changed."
    assert InstanceConfig.objects.get().allowed_numbers == ["5511*"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("human_takeover_minutes", "43201", "less than or equal to 43200"),
        ("debounce_seconds", "61", "less than or equal to 60"),
        ("typing_ms_per_char", "-1", "greater than or equal to 0"),
        ("max_messages_per_hour", "many", "Enter a whole number."),
        ("max_message_age_seconds", "604801", "less than or equal to 604800"),
        ("allowed_numbers", "5511*\n+55 21", "Use digits"),
        ("blocked_numbers", "55*11", "Use digits"),
        ("rate_limited_reply", "x" * 4001, "at most 4000 characters"),
        ("error_reply", "x" * 4001, "at most 4000 characters"),
        ("unsupported_reply", "x" * 4001, "at most 4000 characters"),
        ("reset_keyword", "x" * 101, "at most 100 characters"),
        ("reset_reply", "x" * 4001, "at most 4000 characters"),
    ],
)
def test_an_invalid_conversation_setting_is_a_form_error(admin_client, field, value, message):
    instance = InstanceConfigFactory.create()
    before = InstanceConfig.objects.values().get()

    response = admin_client.post(change_url(instance), change_data(instance, **{field: value}))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert InstanceConfig.objects.values().get() == before


def test_an_agent_endpoint_given_for_the_base_url_is_a_form_error_with_the_base(admin_client):
    response = admin_client.post(
        ADD_URL, {**NEW_INSTANCE, "agent_api_url": "https://agents.acme.test/api/v1/agent/x/run"}
    )

    errors = response.context["adminform"].form.errors
    assert "e.g. https://agents.acme.test:" in errors["agent_api_url"][0]
    assert not InstanceConfig.objects.exists()


def test_the_list_shows_each_webhook_url_ready_to_copy(admin_client):
    InstanceConfigFactory.create(name="acme")
    InstanceConfigFactory.create(name="globex", authenticated=True)

    with override_settings(OMNIHUB_PUBLIC_URL="https://omnihub.example.com/"):
        html = admin_client.get(CHANGELIST_URL).content.decode()

    for name in ("acme", "globex"):
        url = f"https://omnihub.example.com/webhook/evolution/{name}"
        tag = re.search(rf'<input[^>]*value="{re.escape(url)}"[^>]*>', html)
        assert tag, name
        assert "readonly" in tag.group(0)
    assert "Webhook URL" in html
    assert 'alt="False"' in html
    assert 'alt="True"' in html


def test_the_list_names_the_missing_public_url_in_the_webhook_url(admin_client):
    InstanceConfigFactory.create(name="acme")

    with override_settings(OMNIHUB_PUBLIC_URL=""):
        html = admin_client.get(CHANGELIST_URL).content.decode()

    assert 'value="&lt;OMNIHUB_PUBLIC_URL&gt;/webhook/evolution/acme"' in html


def test_whatsapp_is_spelled_so_on_the_list_and_the_form(admin_client):
    instance = InstanceConfigFactory.create()

    pages = [
        admin_client.get(url).content.decode() for url in (CHANGELIST_URL, change_url(instance))
    ]

    for page in pages:
        assert "WhatsApp instance" in page
        assert "Whatsapp" not in page
