"""Finding the tenant a webhook is for: once per webhook, so cached.

Only what the webhook path needs is cached, never the keys: a shared cache (CACHE_URL) must not
hold secrets. Every write through instances.services forgets the entries it affects; another
process's copy lives at most TENANT_CACHE_SECONDS unless the cache is shared.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import models

from instances.models import NAME_PATTERN, InstanceConfig

_DEFAULT = "omnihub:tenant-default"


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: int
    name: str
    # The default tenant seeded without an Evolution server answers through the webhook's own.
    replies_through_webhook: bool


class TenantNotFoundError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"instance {name!r} not found")


def find_tenant(name: str) -> TenantRef:
    # A name from a URL that no tenant can have is not looked up: nor cached under a key it
    # chose, nor sent to a database that refuses some characters (PostgreSQL: NUL).
    if not re.fullmatch(NAME_PATTERN, name):
        raise TenantNotFoundError(name)
    key = _name_key(name)
    tenant: TenantRef | None = cache.get(key)
    if tenant is None:
        tenant = _load(InstanceConfig.objects.filter(name=name), name)
        cache.set(key, tenant, settings.TENANT_CACHE_SECONDS)
    return tenant


def find_default_tenant() -> TenantRef:
    tenant: TenantRef | None = cache.get(_DEFAULT)
    if tenant is None:
        tenant = _load(InstanceConfig.objects.filter(is_default=True), "(default)")
        cache.set(_DEFAULT, tenant, settings.TENANT_CACHE_SECONDS)
    return tenant


def forget_tenant(name: str) -> None:
    cache.delete_many([_name_key(name), _DEFAULT])


def _load(tenants: models.QuerySet[InstanceConfig], name: str) -> TenantRef:
    row = tenants.values("id", "name", "evolution_url").first()
    if row is None:
        raise TenantNotFoundError(name)
    return TenantRef(row["id"], row["name"], replies_through_webhook=not row["evolution_url"])


def _name_key(name: str) -> str:
    return f"omnihub:tenant:{name}"
