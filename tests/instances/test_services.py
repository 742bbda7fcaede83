import threading
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from instances import services
from instances.message_log import MessageLog, message_log_of
from instances.models import InstanceConfig
from instances.services import seed_default_instance, set_default_instance
from tests.factories import InstanceConfigFactory, MessageFactory
from tests.settings import OMNIHUB_ENCRYPTION_KEYS
from webhooks.models import Conversation, Message

ENV_TENANT = {
    "name": "legacy",
    "whatsapp_instance": "legacy",
    "session_id_prefix": "legacy-",
    "agent_api_url": "http://agents.legacy.test/",
    "agent_api_key": "legacy-agent-key",
    "default_agent": "assistant",
    "agent_timeout": 45,
    "evolution_url": "",
    "evolution_key": "",
}


@pytest.mark.django_db
def test_it_seeds_the_default_instance_into_an_empty_table():
    instance = seed_default_instance(ENV_TENANT)

    assert instance is not None
    assert instance.is_default
    assert instance.agent_api_url == "http://agents.legacy.test"
    assert instance.evolution_url == ""
    assert InstanceConfig.objects.get().name == "legacy"


@pytest.mark.django_db
def test_it_never_changes_or_duplicates_existing_rows_when_seeding():
    existing = InstanceConfigFactory.create(name="legacy", default_agent="custom")

    assert seed_default_instance(ENV_TENANT) is None

    existing.refresh_from_db()
    assert existing.default_agent == "custom"
    assert InstanceConfig.objects.count() == 1


@pytest.mark.django_db
def test_it_seeds_nothing_without_an_agent_url():
    assert seed_default_instance({**ENV_TENANT, "agent_api_url": ""}) is None
    assert not InstanceConfig.objects.exists()


@pytest.mark.django_db
def test_it_skips_an_invalid_env_tenant_with_a_warning(caplog):
    assert seed_default_instance({**ENV_TENANT, "agent_timeout": 0}) is None

    assert "agent_timeout" in caplog.text
    assert not InstanceConfig.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_seeds_after_migrate_and_a_second_migrate_changes_nothing():
    with override_settings(DEFAULT_INSTANCE=ENV_TENANT):
        call_command("migrate", verbosity=0)
        first = InstanceConfig.objects.get()
        call_command("migrate", verbosity=0)

    assert list(InstanceConfig.objects.all()) == [first]
    assert InstanceConfig.objects.get().updated_at == first.updated_at


@pytest.mark.django_db
def test_the_database_allows_only_one_default():
    from django.db import IntegrityError, transaction

    InstanceConfigFactory.create(is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        InstanceConfigFactory.create(is_default=True)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_default_under_concurrent_updates():
    tenants = [InstanceConfigFactory.create(name=f"t{n}") for n in range(6)]
    barrier = threading.Barrier(len(tenants))
    errors: list[BaseException] = []

    def make_default(instance: InstanceConfig) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                set_default_instance(instance)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=make_default, args=(t,)) for t in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert InstanceConfig.objects.filter(is_default=True).count() == 1


WEBHOOK_SECRET = "chosen-webhook-secret-" + "c" * 20 + "WXYZ"
NEW_TENANT: dict[str, Any] = {
    "name": "acme",
    "evolution_url": "https://evolution.acme.test",
    "evolution_key": "evo-secret-key-8888",
    "whatsapp_instance": "acme-wa",
    "agent_api_url": "https://agents.acme.test",
    "default_agent": "sales",
}


def stored_column(instance_id, column):
    """A column as stored, bypassing the field that decrypts it."""
    with connection.cursor() as cursor:
        sql = f"SELECT {column} FROM instances_instanceconfig WHERE id = %s"  # noqa: S608
        cursor.execute(sql, [instance_id])
        return str(cursor.fetchone()[0])


@pytest.mark.django_db
def test_a_new_tenant_gets_a_generated_secret_and_authentication_on():
    instance = services.create_instance(**{**NEW_TENANT, "name": "acme"})

    assert instance.require_webhook_auth is True
    assert len(instance.webhook_secret) >= 32
    other = services.create_instance(**{**NEW_TENANT, "name": "globex"})
    assert other.webhook_secret != instance.webhook_secret


@pytest.mark.django_db
def test_the_secret_is_stored_encrypted():
    instance = services.create_instance(**NEW_TENANT, webhook_secret=WEBHOOK_SECRET)

    assert WEBHOOK_SECRET not in stored_column(instance.pk, "webhook_secret")
    assert InstanceConfig.objects.get().webhook_secret == WEBHOOK_SECRET


@pytest.mark.django_db
def test_it_refuses_a_secret_too_short_to_sign_with():
    with pytest.raises(ValidationError, match="at least 32"):
        services.create_instance(**NEW_TENANT, webhook_secret="short")


@pytest.mark.django_db
def test_switching_authentication_on_gives_a_tenant_without_a_secret_one():
    legacy = InstanceConfigFactory.create(name="legacy")

    updated = services.update_instance(legacy, require_webhook_auth=True)

    assert updated.require_webhook_auth is True
    assert len(updated.webhook_secret) >= 32


@pytest.mark.django_db
def test_a_changed_secret_keeps_the_previous_one_for_the_grace_period():
    tenant = InstanceConfigFactory.create(authenticated=True)
    old = tenant.webhook_secret

    services.update_instance(tenant, webhook_secret=WEBHOOK_SECRET)

    tenant.refresh_from_db()
    assert (tenant.webhook_secret, tenant.previous_webhook_secret) == (WEBHOOK_SECRET, old)
    assert tenant.webhook_secret_rotated_at is not None


@pytest.mark.django_db
def test_it_seeds_the_default_tenant_with_webhook_secret_and_authentication_on():
    instance = services.seed_default_instance({**ENV_TENANT, "webhook_secret": WEBHOOK_SECRET})

    assert instance is not None
    assert (instance.webhook_secret, instance.require_webhook_auth) == (WEBHOOK_SECRET, True)


@pytest.mark.django_db
def test_without_webhook_secret_the_seeded_tenant_works_unauthenticated_as_before():
    instance = services.seed_default_instance({**ENV_TENANT, "webhook_secret": ""})

    assert instance is not None
    assert instance.require_webhook_auth is False


@pytest.mark.django_db
def test_rotating_encryption_keys_reencrypts_the_webhook_secrets_too():
    tenant = InstanceConfigFactory.create(authenticated=True)
    services.rotate_webhook_secret(tenant)
    tenant.refresh_from_db()
    new_key = Fernet.generate_key().decode()

    with override_settings(OMNIHUB_ENCRYPTION_KEYS=[new_key, *OMNIHUB_ENCRYPTION_KEYS]):
        services.rotate_encryption_keys()

    fernet = Fernet(new_key)
    for column, plain in [
        ("webhook_secret", tenant.webhook_secret),
        ("previous_webhook_secret", tenant.previous_webhook_secret),
    ]:
        assert fernet.decrypt(stored_column(tenant.pk, column).encode()).decode() == plain


@pytest.mark.django_db
def test_a_url_with_credentials_in_it_is_refused_so_it_is_never_shown_back():
    with pytest.raises(ValidationError) as caught:
        services.create_instance(
            name="acme", evolution_url="https://user:hunter2@evolution.test", evolution_key="k",
            whatsapp_instance="acme", agent_api_url="https://agents.test", default_agent="bot",
        )  # fmt: skip

    assert "credentials" in str(caught.value.message_dict["evolution_url"])
    assert "hunter2" not in str(caught.value)


@pytest.mark.django_db
def test_a_new_tenant_takes_any_editable_field_and_defaults_the_rest():
    instance = services.create_instance(**NEW_TENANT, debounce_seconds=4, blocked_numbers=["55*"])

    instance.refresh_from_db()
    assert (instance.debounce_seconds, instance.blocked_numbers) == (4, ["55*"])
    assert (instance.human_takeover_minutes, instance.reset_reply) == (30, "Ok, starting over.")


@pytest.mark.django_db
def test_a_new_tenant_refuses_a_field_that_cannot_be_set():
    with pytest.raises(ValidationError) as caught:
        services.create_instance(**NEW_TENANT, webhook_rejections=5)

    assert caught.value.message_dict == {"webhook_rejections": ["This field cannot be set."]}
    assert not InstanceConfig.objects.exists()


@pytest.mark.django_db
def test_a_new_tenant_names_every_required_field_left_out_as_required():
    with pytest.raises(ValidationError) as caught:
        services.create_instance(name="acme", agent_timeout=0)

    errors = caught.value.error_dict
    assert {name: [e.code for e in errors[name]] for name in errors} == {
        "evolution_url": ["required"],
        "evolution_key": ["required"],
        "whatsapp_instance": ["required"],
        "agent_api_url": ["required"],
        "default_agent": ["required"],
        "agent_timeout": ["min_value"],
    }


@pytest.mark.django_db
def test_an_update_validates_every_conversation_setting_on_the_model():
    tenant = InstanceConfigFactory.create()

    with pytest.raises(ValidationError) as caught:
        services.update_instance(
            tenant, debounce_seconds=61, allowed_numbers=["55a"], error_reply="x" * 4001
        )

    assert set(caught.value.message_dict) == {"debounce_seconds", "allowed_numbers", "error_reply"}
    tenant.refresh_from_db()
    assert (tenant.debounce_seconds, tenant.allowed_numbers, tenant.error_reply) == (0, [], "")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://agents.acme.test/api/v1/agent/sales/run",
        "https://agents.acme.test/api/v1/agent",
        "https://agents.acme.test/api/v1/",
    ],
)
def test_the_agent_url_must_be_the_base_url(url):
    with pytest.raises(ValidationError) as caught:
        services.create_instance(**{**NEW_TENANT, "agent_api_url": url})

    [message] = caught.value.message_dict["agent_api_url"]
    assert message.startswith(
        "Enter the base URL of the Agents API, e.g. https://agents.acme.test:"
    )


@pytest.mark.django_db
def test_the_base_url_hint_never_repeats_credentials():
    with pytest.raises(ValidationError) as caught:
        services.create_instance(
            **{**NEW_TENANT, "agent_api_url": "https://bot:hunter2@agents.acme.test/api/v1/agent/x"}
        )

    assert "hunter2" not in str(caught.value)
    assert "e.g. https://agents.acme.test:" in str(caught.value)


@pytest.mark.django_db
def test_deleting_a_tenant_deletes_its_message_log_and_counts_it():
    tenant = InstanceConfigFactory.create()
    other = InstanceConfigFactory.create()
    MessageFactory.create_batch(3, instance=tenant, chat_jid="5511900000001@s.whatsapp.net")
    MessageFactory.create(instance=tenant)
    kept = MessageFactory.create(instance=other)
    before = message_log_of(InstanceConfig.objects.filter(pk=tenant.pk))

    deleted = services.delete_instance(tenant)

    assert deleted == before == MessageLog(messages=4, conversations=2)
    assert str(deleted) == "4 messages in 2 conversations"
    assert list(Message.objects.all()) == [kept]
    assert Conversation.objects.get() == kept.conversation


@pytest.mark.django_db
def test_the_message_log_of_several_tenants_adds_them_up():
    tenants = InstanceConfigFactory.create_batch(2)
    for tenant in tenants:
        MessageFactory.create_batch(2, instance=tenant)

    log = message_log_of(InstanceConfig.objects.all())

    assert log == MessageLog(messages=4, conversations=4)
    assert str(MessageLog(messages=1, conversations=1)) == "1 message in 1 conversation"
