import pytest
from django.core.cache import cache

from instances.selectors import TenantNotFoundError, find_default_tenant, find_tenant
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
