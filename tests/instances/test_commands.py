import gc
import getpass
import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Mapping
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from instances import services
from instances.models import InstanceConfig
from tests.factories import InstanceConfigFactory, MessageFactory
from tests.processes import ROOT, child_env
from tests.settings import OMNIHUB_ENCRYPTION_KEYS
from webhooks.models import Message

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


def test_it_rejects_an_invalid_url_naming_the_flag():
    with pytest.raises(CommandError) as excinfo:
        add(**{"--evolution-url": "ftp://evolution.acme.test"})

    assert str(excinfo.value) == "--evolution-url: Enter an http(s) URL."
    assert excinfo.value.returncode == 1
    assert not InstanceConfig.objects.exists()


@pytest.mark.parametrize(
    ("timeout", "bound"),
    [("0", "greater than or equal to 1"), ("3601", "less than or equal to 3600"), ("-5", "")],
)
def test_it_rejects_an_out_of_range_timeout_naming_the_flag(timeout, bound):
    with pytest.raises(CommandError, match=rf"^--agent-timeout: Ensure this value is {bound}"):
        add(**{"--agent-timeout": timeout})

    assert not InstanceConfig.objects.exists()


def test_it_rejects_a_timeout_that_is_not_a_number():
    with pytest.raises(CommandError, match="agent-timeout"):
        add(**{"--agent-timeout": "soon"})

    assert not InstanceConfig.objects.exists()


def test_it_requires_the_evolution_key_naming_the_flag():
    InstanceConfigFactory.create()
    before = snapshot()

    with pytest.raises(CommandError, match=r"^--evolution-key is required$"):
        add(**{"--evolution-key": None})

    assert snapshot() == before


def test_it_names_every_missing_flag_on_one_line():
    with pytest.raises(CommandError) as excinfo:
        run("instance_add", "--name", "acme", "--agent-timeout", "0")

    assert str(excinfo.value) == (
        "--evolution-url is required; --evolution-key is required; "
        "--whatsapp-instance is required; --agent-api-url is required; "
        "--default-agent is required; --agent-timeout: Ensure this value is greater than or "
        "equal to 1."
    )
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

    with pytest.raises(CommandError, match=r"^--agent-api-url: Enter an http"):
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

    assert "Delete instance 'acme' and its message log (0 messages in 0 conversations)?" in output
    assert not InstanceConfig.objects.exists()


def test_the_delete_question_says_how_many_messages_go_with_the_tenant():
    acme = InstanceConfigFactory.create(name="acme")
    for chat in ("5511900000001@s.whatsapp.net", "5511900000002@s.whatsapp.net"):
        MessageFactory.create_batch(2, instance=acme, chat_jid=chat)
    MessageFactory.create()  # another tenant's

    with pytest.raises(CommandError, match="aborted"):
        run("instance_delete", "acme", stdin=Terminal("n\n"))
    output = run("instance_delete", "acme", stdin=Terminal("y\n"))

    assert output.startswith(
        "Delete instance 'acme' and its message log (4 messages in 2 conversations)? [y/N] "
    )
    assert "Deleted instance 'acme': 4 messages in 2 conversations." in output
    assert Message.objects.count() == 1


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


# --- the conversation settings as flags --------------------------------------------------------

CONVERSATION_FLAGS = [
    ("--human-takeover-minutes", "45", "human_takeover_minutes", 45),
    ("--debounce-seconds", "5", "debounce_seconds", 5),
    ("--no-split-replies", None, "split_replies", False),
    ("--typing-ms-per-char", "30", "typing_ms_per_char", 30),
    ("--no-show-typing", None, "show_typing", False),
    ("--allowed-numbers", "5511*, 5521987654321", "allowed_numbers", ["5511*", "5521987654321"]),
    ("--blocked-numbers", "5511999999999", "blocked_numbers", ["5511999999999"]),
    ("--max-messages-per-hour", "20", "max_messages_per_hour", 20),
    ("--rate-limited-reply", "Slow down, please.", "rate_limited_reply", "Slow down, please."),
    ("--max-message-age-seconds", "60", "max_message_age_seconds", 60),
    ("--error-reply", "Sorry!", "error_reply", "Sorry!"),
    ("--unsupported-reply", "Text only.", "unsupported_reply", "Text only."),
    ("--reset-keyword", "#reset", "reset_keyword", "#reset"),
    ("--reset-reply", "Starting over!", "reset_reply", "Starting over!"),
]
INVALID_FLAGS = [
    ("--human-takeover-minutes", "43201", "Ensure this value is less than or equal to 43200."),
    ("--debounce-seconds", "61", "Ensure this value is less than or equal to 60."),
    ("--typing-ms-per-char", "-1", "Ensure this value is greater than or equal to 0."),
    ("--max-messages-per-hour", "100001", "Ensure this value is less than or equal to 100000."),
    ("--max-message-age-seconds", "604801", "Ensure this value is less than or equal to 604800."),
    ("--allowed-numbers", "5511*,55-21", "Use digits, optionally ending in * for a prefix"),
    ("--blocked-numbers", "*", "Use digits, optionally ending in * for a prefix"),
    ("--rate-limited-reply", "x" * 4001, "Ensure this value has at most 4000 characters"),
    ("--error-reply", "x" * 4001, "Ensure this value has at most 4000 characters"),
    ("--unsupported-reply", "x" * 4001, "Ensure this value has at most 4000 characters"),
    ("--reset-keyword", "x" * 101, "Ensure this value has at most 100 characters"),
    ("--reset-reply", "x" * 4001, "Ensure this value has at most 4000 characters"),
]


def flag_args(flag, value):
    return [flag] if value is None else [flag, value]


@pytest.mark.parametrize(("flag", "value", "field", "stored"), CONVERSATION_FLAGS)
def test_instance_add_takes_each_conversation_setting(flag, value, field, stored):
    run(
        "instance_add",
        *[part for item in ADD_FLAGS.items() for part in item],
        *flag_args(flag, value),
    )

    assert getattr(InstanceConfig.objects.get(), field) == stored


FIELDS_SET = sorted({field for _, _, field, _ in CONVERSATION_FLAGS})


@pytest.mark.parametrize(("flag", "value", "field", "stored"), CONVERSATION_FLAGS)
def test_instance_update_changes_each_conversation_setting_alone(flag, value, field, stored):
    # From the model's defaults (the factory changes some), so each flag makes a change.
    defaults = {name: InstanceConfig().__dict__[name] for name in FIELDS_SET}
    instance = InstanceConfigFactory.create(name="acme", **defaults)
    before: Mapping[str, object] = InstanceConfig.objects.values().get(pk=instance.pk)

    run("instance_update", "acme", *flag_args(flag, value))

    after: Mapping[str, object] = InstanceConfig.objects.values().get(pk=instance.pk)
    assert after[field] == stored
    assert {name for name in after if after[name] != before[name]} == {field, "updated_at"}


@pytest.mark.parametrize(("flag", "value", "message"), INVALID_FLAGS)
def test_an_invalid_conversation_setting_is_refused_naming_its_flag(flag, value, message):
    InstanceConfigFactory.create(name="acme")
    before = snapshot()

    with pytest.raises(CommandError) as excinfo:
        run("instance_update", "acme", flag, value)

    assert str(excinfo.value).startswith(f"{flag}: {message}")
    assert excinfo.value.returncode == 1
    assert snapshot() == before


def test_a_setting_that_is_not_a_number_is_refused_naming_its_flag():
    InstanceConfigFactory.create(name="acme")

    with pytest.raises(CommandError, match="--debounce-seconds: invalid int value: 'soon'"):
        run("instance_update", "acme", "--debounce-seconds", "soon")


def test_an_empty_list_flag_empties_the_list():
    InstanceConfigFactory.create(name="acme", blocked_numbers=["5511*"])

    run("instance_update", "acme", "--blocked-numbers", "")

    assert InstanceConfig.objects.get().blocked_numbers == []


def test_instance_show_gives_lists_as_the_flags_take_them():
    InstanceConfigFactory.create(name="acme", allowed_numbers=["5511*", "5521987654321"])

    lines = [line.split() for line in run("instance_show", "acme").splitlines()]

    assert ["allowed_numbers", "5511*,5521987654321"] in lines


def test_instance_update_without_a_flag_changes_nothing_and_says_so():
    InstanceConfigFactory.create(name="acme")
    before = snapshot()

    with pytest.raises(CommandError, match=r"^nothing to change: give the flags") as excinfo:
        run("instance_update", "acme")

    assert excinfo.value.returncode == 1
    assert snapshot() == before


def test_the_help_documents_the_flags_there_are():
    parser = load_command_class("instances", "instance_update").create_parser(
        "omnihub", "instance_update"
    )

    text = parser.format_help()

    assert "instance_update NAME --agent-timeout 10" in text
    for expected in (
        "--agent-timeout SECONDS",
        "Conversation settings:",
        "--human-takeover-minutes",
    ):
        assert expected in text
    assert "--field" not in text
    run("instance_update", InstanceConfigFactory.create().name, "--agent-timeout", "10")


# --- secrets from standard input or a prompt -------------------------------------------------


def test_a_secret_given_as_dash_is_read_from_standard_input():
    InstanceConfigFactory.create(name="acme")

    output = run(
        "instance_update", "acme", "--agent-api-key", "-", stdin=StringIO("piped-agent-key-5555\n")
    )

    assert InstanceConfig.objects.get().agent_api_key == "piped-agent-key-5555"
    assert "piped-agent-key-5555" not in output
    assert "••••5555" in output


def test_instance_add_reads_a_secret_from_standard_input():
    run(
        "instance_add",
        *[part for item in {**ADD_FLAGS, "--evolution-key": "-"}.items() for part in item],
        stdin=StringIO("piped-evolution-key-6666"),
    )

    assert InstanceConfig.objects.get().evolution_key == "piped-evolution-key-6666"


def test_only_one_secret_can_come_from_standard_input():
    InstanceConfigFactory.create(name="acme")
    before = snapshot()

    with pytest.raises(CommandError, match=r"only one flag can read standard input \(-\): "):
        run(
            "instance_update", "acme", "--agent-api-key", "-", "--evolution-key", "-",
            stdin=StringIO("key\n"),
        )  # fmt: skip

    assert snapshot() == before


def test_an_empty_standard_input_is_refused_rather_than_kept():
    InstanceConfigFactory.create(name="acme")
    before = snapshot()

    with pytest.raises(CommandError, match=r"^--agent-api-key -: standard input held no value"):
        run("instance_update", "acme", "--agent-api-key", "-", stdin=StringIO(""))

    assert snapshot() == before


def test_a_missing_evolution_key_is_asked_for_at_a_terminal(monkeypatch):
    asked = []

    def typed(prompt):
        asked.append(prompt)
        return "typed-evolution-key-7777"

    monkeypatch.setattr(getpass, "getpass", typed)

    output = run(
        "instance_add",
        *[part for item in ADD_FLAGS.items() if item[0] != "--evolution-key" for part in item],
        stdin=Terminal(""),
    )

    assert asked == ["Evolution API key: "]
    assert InstanceConfig.objects.get().evolution_key == "typed-evolution-key-7777"
    assert "typed-evolution-key-7777" not in output


def test_nothing_is_asked_while_other_flags_are_missing(monkeypatch):
    monkeypatch.setattr(getpass, "getpass", lambda prompt: pytest.fail("asked"))

    with pytest.raises(
        CommandError, match=r"^--evolution-url is required; --evolution-key is required;"
    ):
        run("instance_add", "--name", "acme", stdin=Terminal(""))


def test_a_missing_evolution_key_is_not_asked_for_without_a_terminal(monkeypatch):
    monkeypatch.setattr(getpass, "getpass", lambda prompt: pytest.fail("asked"))

    with pytest.raises(CommandError, match=r"^--evolution-key is required$"):
        run(
            "instance_add",
            *[part for item in ADD_FLAGS.items() if item[0] != "--evolution-key" for part in item],
            stdin=StringIO(""),
        )


# --- ensure_admin ------------------------------------------------------------------------------


@override_settings(OMNIHUB_ADMIN_USER="boss", OMNIHUB_ADMIN_PASSWORD="first-password-1")
def test_ensure_admin_creates_the_admin_user():
    output = run("ensure_admin")

    user = User.objects.get(username="boss")
    assert user.is_superuser
    assert user.check_password("first-password-1")
    assert output == "created admin user 'boss'\n"


def test_ensure_admin_sets_a_changed_password_and_says_so():
    User.objects.create_superuser("boss", "", "first-password-1")

    with override_settings(OMNIHUB_ADMIN_USER="boss", OMNIHUB_ADMIN_PASSWORD="second-password-2"):
        output = run("ensure_admin")

    assert User.objects.get(username="boss").check_password("second-password-2")
    assert output == ("set the password of admin user 'boss' from OMNIHUB_ADMIN_PASSWORD\n")
    assert "second-password-2" not in output


@override_settings(OMNIHUB_ADMIN_USER="boss", OMNIHUB_ADMIN_PASSWORD="first-password-1")
def test_ensure_admin_leaves_an_unchanged_password_alone_and_quiet():
    User.objects.create_superuser("boss", "", "first-password-1")
    stored = User.objects.get().password

    assert run("ensure_admin") == ""
    assert User.objects.get().password == stored


# --- as a person runs them: a process of their own, a terminal ---------------------------------


def omnihub(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "omnihub.cli", *args],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
        **kwargs,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_command_prints_its_own_output_and_no_log_line_at_the_default_verbosity():
    added = omnihub("instance_add", *[part for item in ADD_FLAGS.items() for part in item])
    updated = omnihub("instance_update", "acme", "--debounce-seconds", "3", "-v", "2")

    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout.startswith("Created instance 'acme'.\nname ")
    assert "INFO" not in added.stdout
    # Asked for, the services' log lines come, on stderr only.
    assert updated.returncode == 0
    assert "INFO instances.services instance updated: acme" in updated.stderr
    assert "INFO" not in updated.stdout
    assert InstanceConfig.objects.get().debounce_seconds == 3


@pytest.mark.django_db(transaction=True)
def test_a_secret_piped_to_a_command_is_stored_and_never_printed():
    InstanceConfigFactory.create(name="acme")

    result = omnihub(
        "instance_update", "acme", "--webhook-secret", "-", input=f"{WEBHOOK_SECRET}\n"
    )

    assert result.returncode == 0, result.stderr
    assert InstanceConfig.objects.get().webhook_secret == WEBHOOK_SECRET
    assert WEBHOOK_SECRET not in result.stdout + result.stderr


@pytest.mark.django_db(transaction=True)
def test_instance_add_asks_for_the_evolution_key_at_a_terminal_without_echoing_it():
    typed = "typed-evolution-key-7777"
    flags = [part for item in ADD_FLAGS.items() if item[0] != "--evolution-key" for part in item]
    terminal, side = pty.openpty()
    child = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "omnihub.cli", "instance_add", *flags],
        cwd=ROOT, env=child_env(), stdin=side, stdout=side, stderr=side, start_new_session=True,
    )  # fmt: skip
    os.close(side)
    try:
        shown = read_terminal(terminal, until=b"Evolution API key: ")
        os.write(terminal, typed.encode() + b"\n")
        shown += read_terminal(terminal, until=None)
    finally:
        os.close(terminal)
        child.wait(timeout=30)

    assert child.returncode == 0, shown
    assert typed.encode() not in shown
    assert b"Created instance 'acme'." in shown
    assert InstanceConfig.objects.get().evolution_key == typed


def read_terminal(terminal: int, until: bytes | None) -> bytes:
    """What the command shows on its terminal, up to `until` or, for None, to its end."""
    shown = b""
    while until is None or until not in shown:
        ready, _, _ = select.select([terminal], [], [], 30)
        assert ready, f"the command showed nothing more: {shown!r}"
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the command has closed its end
            chunk = b""
        if not chunk:
            assert until is None, f"the command ended before {until!r}: {shown!r}"
            return shown
        shown += chunk
    return shown
