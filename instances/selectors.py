"""Finding the tenant a webhook is for: once per webhook, so cached.

Only what the webhook path needs is cached, never the keys: a shared cache (CACHE_URL) must not
hold secrets. The webhook secrets are kept by each process, in memory, for a few seconds.
Every write through instances.services forgets the entries it affects; another process's copy
lives at most TENANT_CACHE_SECONDS unless the cache is shared, and SECRETS_SECONDS for the
secrets.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.db import models
from django.utils import timezone

from instances.models import NAME_PATTERN, InstanceConfig, previous_secret_valid_until

# Part of every key: a shared cache may still hold entries pickled by a version whose TenantRef
# had other fields, which would unpickle into the wrong ones. Bump it when TenantRef changes.
_VERSION = 3
_DEFAULT = f"omnihub:tenant-default:v{_VERSION}"
# A tenant's webhook secrets are read and decrypted once per this many seconds per process, not
# once per webhook. Short: a secret retired in another process (a rotation without grace) is
# still accepted here until then. A new one is taken at once: a webhook is refused only on the
# secrets as stored.
SECRETS_SECONDS = 5.0
# The worker reads a message's whole tenant (its keys decrypted) once per this many seconds
# per process, not once per message: a change reaches the messages taken up after that.
CONFIG_SECONDS = 5.0
_SECRET_COLUMNS = ("webhook_secret", "previous_webhook_secret", "webhook_secret_rotated_at")
_CONFIGS = "omnihub:tenant-configs"  # a count of forget_tenant calls: part of tenant_config's keys


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
    kept = caches["process"]
    kept.delete(_secrets_key(name))
    try:
        kept.incr(_CONFIGS)  # every tenant_config this process kept is read again
    except ValueError:
        kept.set(_CONFIGS, 1, None)


def _load(tenants: models.QuerySet[InstanceConfig], name: str) -> TenantRef:
    row = tenants.values(
        "id", "name", "whatsapp_instance", "evolution_url", "require_webhook_auth",
        "pinned_evolution_origin", "allowed_numbers", "blocked_numbers", *_SETTINGS,
        *_SECRET_COLUMNS,
    ).first()  # fmt: skip
    if row is None:
        raise TenantNotFoundError(name)
    # Read with the tenant, which a webhook looks up first: kept apart, in this process.
    _keep_secrets(row["name"], row["id"], *_valid_secrets(row))
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
    return _secrets_of(tenant_id)[0]


def webhook_secrets(tenant: TenantRef, *, fresh: bool = False) -> list[str]:
    """valid_webhook_secrets, as this process read them within SECRETS_SECONDS (unless
    `fresh`): kept in its own memory, never in the cache CACHE_URL may share with others."""
    kept: tuple[int, list[str]] | None = (
        None if fresh else caches["process"].get(_secrets_key(tenant.name))
    )
    if kept is not None and kept[0] == tenant.id:
        return kept[1]
    secrets, valid_until = _secrets_of(tenant.id)
    _keep_secrets(tenant.name, tenant.id, secrets, valid_until)
    return secrets


def _secrets_of(tenant_id: int) -> tuple[list[str], datetime | None]:
    row = InstanceConfig.objects.filter(pk=tenant_id).values(*_SECRET_COLUMNS).first()
    return ([], None) if row is None else _valid_secrets(row)


def _valid_secrets(row: dict[str, Any]) -> tuple[list[str], datetime | None]:
    """The valid secrets in a row of _SECRET_COLUMNS, and until when the previous one among
    them is valid."""
    valid = [row["webhook_secret"]]
    valid_until = previous_secret_valid_until(row["webhook_secret_rotated_at"])
    if valid_until is not None and timezone.now() < valid_until:
        valid.append(row["previous_webhook_secret"])
    else:
        valid_until = None
    return [secret for secret in valid if secret], valid_until


def _keep_secrets(
    name: str, tenant_id: int, secrets: list[str], valid_until: datetime | None
) -> None:
    if not secrets:
        return  # a first secret, once set, is taken at once
    seconds = SECRETS_SECONDS
    if valid_until is not None:
        # Not a moment past the previous secret's grace period.
        seconds = min(seconds, (valid_until - timezone.now()).total_seconds())
    caches["process"].set(_secrets_key(name), (tenant_id, secrets), seconds)


def _secrets_key(name: str) -> str:
    return f"omnihub:webhook-secrets:{name}"


def tenant_config(tenant_id: int) -> InstanceConfig:
    """The tenant's row, as this process read it within CONFIG_SECONDS and since it last
    changed a tenant: kept in this process's memory only, never in the cache CACHE_URL may
    share, since it holds the keys. InstanceConfig.DoesNotExist once the tenant is gone."""
    config = kept_tenant_config(tenant_id)
    if config is None:
        config = InstanceConfig.objects.get(pk=tenant_id)
        keep_tenant_config(config)
    return config


def kept_tenant_config(tenant_id: int) -> InstanceConfig | None:
    """The tenant's row if this process keeps it (see tenant_config), else None: for a caller
    that would rather read it along with something else (keep_tenant_config)."""
    config: InstanceConfig | None = caches["process"].get(_config_key(tenant_id))
    return config


def keep_tenant_config(config: InstanceConfig) -> None:
    """Keep a tenant's row, freshly read, for tenant_config and kept_tenant_config."""
    caches["process"].set(_config_key(config.pk), config, CONFIG_SECONDS)


def _config_key(tenant_id: int) -> str:
    changes = caches["process"].get_or_set(_CONFIGS, 0, None)
    return f"omnihub:tenant-config:{changes}:{tenant_id}"


def _name_key(name: str) -> str:
    return f"omnihub:tenant:v{_VERSION}:{name}"
