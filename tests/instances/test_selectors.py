import pytest
from django.core.cache import cache

from instances.models import InstanceConfig
from instances.selectors import (
    TenantNotFoundError,
    find_default_tenant,
    find_tenant,
    keep_tenant_config,
    kept_tenant_config,
    tenant_config,
    webhook_secrets,
)
from instances.services import delete_instance, set_default_instance, update_instance
from tests.factories import InstanceConfigFactory
from tests.webhooks.conftest import evolution_payload, post_json

pytestmark = pytest.mark.django_db


def test_it_looks_a_tenant_up_once_and_then_from_the_cache(django_assert_num_queries):
    InstanceConfigFactory.create(name="acme")

    with django_assert_num_queries(1):
        first = find_tenant("acme")
        second = find_tenant("acme")

    assert first == second
    assert first.name == "acme"


def test_it_never_caches_a_key():
    tenant = InstanceConfigFactory.create(name="acme", evolution_key="evo-secret-9999")

    find_tenant("acme")

    cached = cache.get("omnihub:tenant:v3:acme")
    assert "evo-secret-9999" not in repr(cached)
    assert cached.id == tenant.pk


def test_a_change_through_the_services_is_seen_at_once():
    tenant = InstanceConfigFactory.create(name="acme", evolution_url="http://evolution.test")
    seeded = InstanceConfigFactory.create(name="seeded", evolution_url="", evolution_key="")
    assert find_tenant("acme").replies_through_webhook is False
    set_default_instance(tenant)
    assert find_default_tenant().name == "acme"

    update_instance(seeded, is_default=True)

    assert find_default_tenant().name == "seeded"
    assert find_default_tenant().replies_through_webhook is True


def test_a_deleted_tenant_is_not_found_any_more():
    tenant = InstanceConfigFactory.create(name="acme")
    find_tenant("acme")

    delete_instance(tenant)

    with pytest.raises(TenantNotFoundError):
        find_tenant("acme")


@pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit
def test_a_webhook_for_a_tenant_deleted_behind_the_cache_answers_404():
    tenant = InstanceConfigFactory.create(name="acme")
    find_tenant("acme")
    tenant.delete()  # behind the services' back, as another process would

    response = post_json("/webhook/evolution/acme", evolution_payload("text_pn"))

    assert response.status_code == 404
    with pytest.raises(TenantNotFoundError):
        find_tenant("acme")


SECRET = "webhook-secret-" + "s" * 40


def test_a_process_reads_a_tenants_webhook_secrets_once_for_many_webhooks(
    django_assert_num_queries,
):
    InstanceConfigFactory.create(name="acme", authenticated=True, webhook_secret=SECRET)

    with django_assert_num_queries(1):  # the secrets come with the tenant
        first = webhook_secrets(find_tenant("acme"))
        second = webhook_secrets(find_tenant("acme"))

    assert first == second == [SECRET]


def test_fresh_webhook_secrets_are_read_from_the_database():
    stored = InstanceConfigFactory.create(name="acme", authenticated=True, webhook_secret=SECRET)
    tenant = find_tenant("acme")
    webhook_secrets(tenant)
    newer = "newer-secret-" + "n" * 40
    # Behind the services' back, as another process's change looks.
    InstanceConfig.objects.filter(pk=stored.pk).update(webhook_secret=newer)

    assert webhook_secrets(tenant) == [SECRET]
    assert webhook_secrets(tenant, fresh=True) == [newer]
    assert webhook_secrets(tenant) == [newer]


def test_a_new_webhook_secret_set_through_the_services_is_seen_at_once():
    stored = InstanceConfigFactory.create(name="acme", authenticated=True, webhook_secret=SECRET)
    webhook_secrets(find_tenant("acme"))
    newer = "newer-secret-" + "n" * 40

    update_instance(stored, webhook_secret=newer)

    assert webhook_secrets(find_tenant("acme")) == [newer, SECRET]  # SECRET in its grace period


def test_the_webhook_secrets_never_reach_the_shared_cache(monkeypatch):
    InstanceConfigFactory.create(name="acme", authenticated=True, webhook_secret=SECRET)
    stored: list[object] = []
    real_set = cache.set

    def recording_set(key: str, value: object, timeout: float | None = None) -> None:
        stored.append(value)
        real_set(key, value, timeout)

    monkeypatch.setattr(cache, "set", recording_set)

    webhook_secrets(find_tenant("acme"))

    assert stored  # the tenant was cached there
    assert SECRET not in repr(stored)


def test_a_tenants_whole_config_is_read_once_for_many_messages(django_assert_num_queries):
    stored = InstanceConfigFactory.create(name="acme", agent_api_key="agent-key-0001")

    with django_assert_num_queries(1):
        first = tenant_config(stored.pk)
        second = tenant_config(stored.pk)

    assert first.agent_api_key == second.agent_api_key == "agent-key-0001"


def test_a_config_changed_through_the_services_is_read_again_at_once():
    stored = InstanceConfigFactory.create(name="acme", default_agent="first")
    tenant_config(stored.pk)

    update_instance(stored, default_agent="second")

    assert tenant_config(stored.pk).default_agent == "second"


def test_the_config_of_a_deleted_tenant_is_not_found():
    stored = InstanceConfigFactory.create(name="acme")

    delete_instance(stored)

    with pytest.raises(InstanceConfig.DoesNotExist):
        tenant_config(stored.pk)


def test_a_config_read_with_something_else_is_kept_for_the_next_message(
    django_assert_num_queries,
):
    stored = InstanceConfigFactory.create(name="acme")
    assert kept_tenant_config(stored.pk) is None

    keep_tenant_config(InstanceConfig.objects.get(pk=stored.pk))

    with django_assert_num_queries(0):
        assert tenant_config(stored.pk).name == "acme"
    update_instance(stored, default_agent="second")
    assert kept_tenant_config(stored.pk) is None  # a change is read again at once
