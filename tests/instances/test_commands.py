import gc
import json
from collections.abc import Mapping
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from instances import services
from instances.models import InstanceConfig
from tests.factories import InstanceConfigFactory
from tests.settings import OMNIHUB_ENCRYPTION_KEYS

pytestmark = pytest.mark.django_db

ADD_FLAGS = {
    "--name": "acme",
    "--evolution-url": "https://evolution.acme.test/",
    "--evolution-key": "evo-secret-key-8888",
    "--whatsapp-instance": "acme-wa",
    "--session-id-prefix": "acme-",
    "--agent-api-url": "https://agents.acme.test/",
    "--agent-api-key": "agent-secret-key-4444",
    "--default-agent": "sales",
    "--agent-timeout": "90",
}


class Terminal(StringIO):
    """Typed answers, from a stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run(*args: str, **options: Any) -> str:
    stdout = StringIO()
    call_command(*args, stdout=stdout, **options)
    return stdout.getvalue()


def add(**overrides: str | None) -> str:
    flags = {**ADD_FLAGS, **overrides}
    args = [part for flag, value in flags.items() if value is not None for part in (flag, value)]
    return run("instance_add", *args)


def snapshot() -> list[Mapping[str, object]]:
    return list(InstanceConfig.objects.order_by("pk").values())


def test_it_adds_an_instance():
    output = add()

    instance = InstanceConfig.objects.get(name="acme")
    assert instance.evolution_url == "https://evolution.acme.test"
    assert instance.evolution_key == "evo-secret-key-8888"
    assert instance.whatsapp_instance == "acme-wa"
    assert instance.session_id_prefix == "acme-"
    assert instance.agent_api_url == "https://agents.acme.test"
    assert instance.agent_api_key == "agent-secret-key-4444"
    assert instance.default_agent == "sales"
    assert instance.agent_timeout == 90
    assert not instance.is_default
    assert "Created instance 'acme'" in output
    assert "••••8888" in output
    assert "evo-secret-key-8888" not in output
    assert "agent-secret-key-4444" not in output


def test_it_adds_an_instance_as_the_default():
    previous = InstanceConfigFactory.create(is_default=True)

    run("instance_add", *[part for item in ADD_FLAGS.items() for part in item], "--default")

    assert InstanceConfig.objects.get(name="acme").is_default
    previous.refresh_from_db()
    assert not previous.is_default


def test_it_uses_the_model_defaults_for_optional_flags():
    add(**{"--agent-api-key": None, "--session-id-prefix": None, "--agent-timeout": None})

    instance = InstanceConfig.objects.get(name="acme")
    assert instance.agent_timeout == 60
    assert instance.agent_api_key == ""
    assert instance.session_id_prefix == ""


def test_it_refuses_a_name_that_exists():
    InstanceConfigFactory.create(name="acme")
    before = snapshot()

    with pytest.raises(CommandError, match="'acme' already exists"):
        add()

    assert snapshot() == before


def test_it_rejects_an_invalid_url_naming_the_field():
    with pytest.raises(CommandError, match=r"^invalid instance: evolution_url: ") as excinfo:
        add(**{"--evolution-url": "ftp://evolution.acme.test"})

    assert excinfo.value.returncode == 1
    assert "\n" not in str(excinfo.value)
    assert not InstanceConfig.objects.exists()


@pytest.mark.parametrize("timeout", ["0", "3601", "-5"])
def test_it_rejects_an_out_of_range_timeout_naming_the_field(timeout):
    with pytest.raises(CommandError, match="agent_timeout"):
        add(**{"--agent-timeout": timeout})

    assert not InstanceConfig.objects.exists()


def test_it_rejects_a_timeout_that_is_not_a_number():
    with pytest.raises(CommandError, match="agent-timeout"):
        add(**{"--agent-timeout": "soon"})

    assert not InstanceConfig.objects.exists()


def test_it_requires_the_evolution_key_naming_the_field():
    InstanceConfigFactory.create()
    before = snapshot()

    with pytest.raises(CommandError, match=r"evolution_key: This field is required"):
        add(**{"--evolution-key": None})

    assert snapshot() == before


def test_it_names_every_missing_field_on_one_line():
    with pytest.raises(CommandError) as excinfo:
        run("instance_add", "--name", "acme")

    message = str(excinfo.value)
    assert "\n" not in message
    for field in ("evolution_url", "evolution_key", "whatsapp_instance", "agent_api_url"):
        assert field in message
    assert not InstanceConfig.objects.exists()


def test_it_lists_instances_in_an_aligned_table_ordered_by_name():
    InstanceConfigFactory.create(name="zulu", default_agent="support")
    InstanceConfigFactory.create(name="alpha", is_default=True)
    InstanceConfigFactory.create(name="mike")

    lines = run("instance_list").splitlines()

    assert lines[0].split()[:2] == ["NAME", "WHATSAPP"]
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "mike", "zulu"]
    column = lines[0].index("AGENT ")
    assert {line[column:].split()[0] for line in lines[1:]} == {"assistant", "support"}
    default_column = lines[0].index("DEFAULT")
    assert [line[default_column] for line in lines[1:]] == ["*", " ", " "]


def test_it_never_shows_keys_in_the_table():
    instance = InstanceConfigFactory.create()

    output = run("instance_list")

    assert instance.evolution_key not in output
    assert instance.agent_api_key not in output


def test_it_says_so_when_there_are_no_instances():
    assert run("instance_list").strip() == "No instances yet; add one with `omnihub instance_add`."


def test_it_lists_instances_as_json_with_masked_keys():
    first = InstanceConfigFactory.create(name="bravo", evolution_key="evolution-plaintext-1111")
    second = InstanceConfigFactory.create(name="alpha", agent_api_key="agent-plaintext-2222")

    output = run("instance_list", "--json")

    listed = json.loads(output)
    assert [item["name"] for item in listed] == ["alpha", "bravo"]
    assert listed[1]["evolution_key"] == "••••1111"
    assert listed[0]["agent_api_key"] == "••••2222"
    for secret in (
        first.evolution_key,
        first.agent_api_key,
        second.evolution_key,
        second.agent_api_key,
    ):
        assert secret not in output


def test_it_lists_an_empty_json_list():
    assert json.loads(run("instance_list", "--json")) == []


def test_it_shows_every_field_with_keys_masked():
    instance = InstanceConfigFactory.create(
        name="acme", evolution_key="evolution-plaintext-1111", agent_api_key="short"
    )

    output = run("instance_show", "acme")

    for field in (
        "name",
        "evolution_url",
        "whatsapp_instance",
        "session_id_prefix",
        "agent_api_url",
        "default_agent",
        "agent_timeout",
        "is_default",
        "created_at",
        "updated_at",
    ):
        assert field in output
    assert instance.evolution_url in output
    assert "••••1111" in output
    assert "evolution-plaintext-1111" not in output
    assert "short" not in output


def test_it_shows_an_instance_as_json():
    InstanceConfigFactory.create(name="acme", evolution_key="evolution-plaintext-1111")

    shown = json.loads(run("instance_show", "acme", "--json"))

    assert shown["name"] == "acme"
    assert shown["evolution_key"] == "••••1111"


def test_it_refuses_to_show_an_unknown_instance():
    with pytest.raises(CommandError, match="'ghost' not found"):
        run("instance_show", "ghost")


def test_it_updates_only_the_fields_given():
    instance = InstanceConfigFactory.create(name="acme", agent_timeout=30)
    before: Mapping[str, object] = InstanceConfig.objects.values().get(pk=instance.pk)

    output = run("instance_update", "acme", "--default-agent", "sales", "--agent-timeout", "120")

    after: Mapping[str, object] = InstanceConfig.objects.values().get(pk=instance.pk)
    changed = {field for field in before if before[field] != after[field]}
    assert changed == {"default_agent", "agent_timeout", "updated_at"}
    assert after["default_agent"] == "sales"
    assert after["agent_timeout"] == 120
    assert "Updated instance 'acme'" in output


def test_it_keeps_the_stored_keys_when_none_are_given():
    instance = InstanceConfigFactory.create(name="acme")
    evolution_key, agent_api_key = instance.evolution_key, instance.agent_api_key

    run("instance_update", "acme", "--whatsapp-instance", "renamed", "--evolution-key", "")

    instance.refresh_from_db()
    assert instance.whatsapp_instance == "renamed"
    assert instance.evolution_key == evolution_key
    assert instance.agent_api_key == agent_api_key


def test_it_replaces_a_key_that_is_given_without_printing_it():
    InstanceConfigFactory.create(name="acme")

    output = run("instance_update", "acme", "--agent-api-key", "new-agent-secret-9999")

    assert InstanceConfig.objects.get(name="acme").agent_api_key == "new-agent-secret-9999"
    assert "new-agent-secret-9999" not in output
    assert "••••9999" in output


def test_it_makes_an_updated_instance_the_default():
    previous = InstanceConfigFactory.create(is_default=True)
    InstanceConfigFactory.create(name="acme")

    run("instance_update", "acme", "--default")

    assert InstanceConfig.objects.get(is_default=True).name == "acme"
    previous.refresh_from_db()
    assert not previous.is_default


def test_it_writes_nothing_when_an_update_is_invalid():
    InstanceConfigFactory.create(name="acme")
    before = snapshot()

    with pytest.raises(CommandError, match="agent_api_url"):
        run("instance_update", "acme", "--default-agent", "sales", "--agent-api-url", "nope")

    assert snapshot() == before


def test_it_refuses_to_update_an_unknown_instance():
    with pytest.raises(CommandError, match="'ghost' not found"):
        run("instance_update", "ghost", "--default-agent", "sales")


def test_it_deletes_an_instance_with_yes():
    InstanceConfigFactory.create(name="acme")
    kept = InstanceConfigFactory.create(name="other")

    output = run("instance_delete", "acme", "--yes")

    assert list(InstanceConfig.objects.all()) == [kept]
    assert "Deleted instance 'acme'" in output


@pytest.mark.parametrize("answer", ["y\n", "YES\n"])
def test_it_deletes_an_instance_when_the_user_confirms(answer):
    InstanceConfigFactory.create(name="acme")

    output = run("instance_delete", "acme", stdin=Terminal(answer))

    assert "Delete instance 'acme'? [y/N]" in output
    assert not InstanceConfig.objects.exists()


@pytest.mark.parametrize("answer", ["n\n", "\n", "sure\n", ""])
def test_it_keeps_the_instance_when_the_user_declines(answer):
    InstanceConfigFactory.create(name="acme")

    with pytest.raises(CommandError, match="aborted") as excinfo:
        run("instance_delete", "acme", stdin=Terminal(answer))

    assert excinfo.value.returncode == 1
    assert InstanceConfig.objects.filter(name="acme").exists()


def test_it_will_not_delete_without_yes_when_nobody_can_answer():
    InstanceConfigFactory.create(name="acme")

    with pytest.raises(CommandError, match="not a terminal: pass --yes"):
        run("instance_delete", "acme", stdin=StringIO("y\n"))

    assert InstanceConfig.objects.filter(name="acme").exists()


def test_it_refuses_to_delete_an_unknown_instance():
    with pytest.raises(CommandError, match="'ghost' not found"):
        run("instance_delete", "ghost", "--yes")


def test_it_sets_the_default_instance_and_undefaults_the_previous_one():
    previous = InstanceConfigFactory.create(name="old", is_default=True)
    InstanceConfigFactory.create(name="new")

    output = run("instance_set_default", "new")

    assert InstanceConfig.objects.get(is_default=True).name == "new"
    previous.refresh_from_db()
    assert not previous.is_default
    assert "'new' is now the default" in output


def test_it_refuses_to_set_an_unknown_default():
    InstanceConfigFactory.create(name="old", is_default=True)

    with pytest.raises(CommandError, match="'ghost' not found"):
        run("instance_set_default", "ghost")

    assert InstanceConfig.objects.get(is_default=True).name == "old"


def test_it_reencrypts_every_instance_with_the_first_key():
    InstanceConfigFactory.create(evolution_key="evolution-plaintext-1111")
    InstanceConfigFactory.create(evolution_key="evolution-plaintext-2222")
    new_key = Fernet.generate_key().decode()

    with override_settings(OMNIHUB_ENCRYPTION_KEYS=[new_key, *OMNIHUB_ENCRYPTION_KEYS]):
        output = run("rotate_encryption_keys")

    assert "Re-encrypted 2 instance(s)." in output
    with connection.cursor() as cursor:
        cursor.execute("SELECT evolution_key FROM instances_instanceconfig ORDER BY id")
        stored = [row[0] for row in cursor.fetchall()]
    new_fernet = Fernet(new_key)
    assert [new_fernet.decrypt(token.encode()).decode() for token in stored] == [
        "evolution-plaintext-1111",
        "evolution-plaintext-2222",
    ]


def test_it_reports_a_key_that_decrypts_nothing_in_one_line():
    InstanceConfigFactory.create()

    unrelated_key = Fernet.generate_key().decode()

    with (
        override_settings(OMNIHUB_ENCRYPTION_KEYS=[unrelated_key]),
        pytest.raises(CommandError, match=r"^[^\n]*does not decrypt[^\n]*$"),
    ):
        run("rotate_encryption_keys")

    # The failed rotation leaves its row iterator in a reference cycle; collecting it now
    # closes its cursor while the test database is still open.
    gc.collect()


WEBHOOK_SECRET = "chosen-webhook-secret-" + "c" * 20 + "WXYZ"


def test_instance_list_flags_tenants_whose_webhooks_are_not_authenticated():
    InstanceConfigFactory.create(name="legacy")
    InstanceConfigFactory.create(name="signed", authenticated=True)

    lines = run("instance_list").splitlines()

    assert "WEBHOOK" in lines[0]
    assert lines[1].startswith("legacy")
    assert "NOT AUTHENTICATED" in lines[1]
    assert lines[2].startswith("signed")
    assert "NOT AUTHENTICATED" not in lines[2]


def test_instance_show_shows_the_rejections_and_masks_the_secret():
    tenant = InstanceConfigFactory.create(
        name="acme", authenticated=True, webhook_secret=WEBHOOK_SECRET
    )
    services.record_webhook_rejection(tenant.pk, "no token")

    output = run("instance_show", "acme")

    assert "••••WXYZ" in output
    assert WEBHOOK_SECRET not in output
    assert "webhook_rejections" in output
    assert "no token" in output


def test_instance_update_switches_authentication_on():
    InstanceConfigFactory.create(name="legacy")

    run("instance_update", "legacy", "--require-webhook-auth")

    assert InstanceConfig.objects.get().require_webhook_auth is True


def test_instance_rotate_webhook_secret_prints_the_new_secret_and_configuration():
    InstanceConfigFactory.create(name="acme", authenticated=True, webhook_secret=WEBHOOK_SECRET)

    output = run("instance_rotate_webhook_secret", "acme")

    tenant = InstanceConfig.objects.get()
    assert tenant.previous_webhook_secret == WEBHOOK_SECRET
    assert f"webhook secret (shown only now): {tenant.webhook_secret}" in output
    config = json.loads(output[output.index("{") :])
    assert config["webhook"]["headers"] == {"jwt_key": tenant.webhook_secret}
    assert config["webhook"]["events"] == ["MESSAGES_UPSERT"]


def test_instance_add_gives_the_tenant_a_secret_and_requires_authentication():
    output = add()

    instance = InstanceConfig.objects.get()
    assert instance.require_webhook_auth is True
    assert len(instance.webhook_secret) >= 32
    assert instance.webhook_secret not in output


def test_instance_update_switches_authentication_off_and_the_list_flags_it():
    add()
    run("instance_update", "acme", "--no-require-webhook-auth")

    assert InstanceConfig.objects.get().require_webhook_auth is False
    assert "NOT AUTHENTICATED" in run("instance_list")
