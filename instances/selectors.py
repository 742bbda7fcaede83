"""Finding the tenant a webhook is for: once per webhook, so cached.

Only what the webhook path needs is cached, never the keys: a shared cache (CACHE_URL) must not
hold secrets, so the webhook secrets are read from the database each time a webhook is verified.
Every write through instances.services forgets the entries it affects; another process's copy
lives at most TENANT_CACHE_SECONDS unless the cache is shared.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import models
from django.utils import timezone

from instances.models import NAME_PATTERN, InstanceConfig, previous_secret_valid_until

# Part of every key: a shared cache may still hold entries pickled by a version whose TenantRef
# had other fields, which would unpickle into the wrong ones. Bump it when TenantRef changes.
_VERSION = 3
_DEFAULT = f"omnihub:tenant-default:v{_VERSION}"


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: int
    name: str
    # The default tenant seeded without an Evolution server answers through the webhook's own.
    whatsapp_instance: str
    replies_through_webhook: bool
    require_webhook_auth: bool
    pinned_evolution_origin: str
    # What intake's rules read (webhooks.inbound.policy); see InstanceConfig for each.
    human_takeover_minutes: int
    allowed_numbers: tuple[str, ...]
    blocked_numbers: tuple[str, ...]
    max_messages_per_hour: int
    rate_limited_reply: str
    max_message_age_seconds: int
    unsupported_reply: str
    reset_keyword: str
    reset_reply: str


# The InstanceConfig fields a TenantRef copies as they are.
_SETTINGS = (
    "human_takeover_minutes", "max_messages_per_hour", "rate_limited_reply",
    "max_message_age_seconds", "unsupported_reply", "reset_keyword", "reset_reply",
)  # fmt: skip


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
    row = tenants.values(
        "id", "name", "whatsapp_instance", "evolution_url", "require_webhook_auth",
        "pinned_evolution_origin", "allowed_numbers", "blocked_numbers", *_SETTINGS,
    ).first()  # fmt: skip
    if row is None:
        raise TenantNotFoundError(name)
    return TenantRef(
        row["id"],
        row["name"],
        whatsapp_instance=row["whatsapp_instance"],
        replies_through_webhook=not row["evolution_url"],
        require_webhook_auth=row["require_webhook_auth"],
        pinned_evolution_origin=row["pinned_evolution_origin"],
        allowed_numbers=tuple(row["allowed_numbers"]),
        blocked_numbers=tuple(row["blocked_numbers"]),
        **{field: row[field] for field in _SETTINGS},
    )


def valid_webhook_secrets(tenant_id: int) -> list[str]:
    """The secrets a webhook for this tenant may prove: the current one, and the previous one
    until its grace period after a rotation is over. Empty when none is set."""
    row = (
        InstanceConfig.objects.filter(pk=tenant_id)
        .values("webhook_secret", "previous_webhook_secret", "webhook_secret_rotated_at")
        .first()
    )
    if row is None:
        return []
    valid = [row["webhook_secret"]]
    valid_until = previous_secret_valid_until(row["webhook_secret_rotated_at"])
    if valid_until is not None and timezone.now() < valid_until:
        valid.append(row["previous_webhook_secret"])
    return [secret for secret in valid if secret]


def _name_key(name: str) -> str:
    return f"omnihub:tenant:v{_VERSION}:{name}"
