import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from instances.models import InstanceConfig
from instances.services import seed_default_instance, set_default_instance
from tests.factories import InstanceConfigFactory

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
