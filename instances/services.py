"""Every write to tenants goes through here: the REST API, the admin and the CLI share it."""

import logging
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from instances import tenant_fields
from instances.message_log import MessageLog, deleted_message_log
from instances.models import InstanceConfig
from instances.selectors import forget_tenant

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = tenant_fields.EDITABLE_NAMES
# Write-only: given blank, the stored value is kept.
SECRET_FIELDS = tenant_fields.SECRET_NAMES
# Every column stored encrypted, for rotate_encryption_keys.
ENCRYPTED_FIELDS = SECRET_FIELDS | {"previous_webhook_secret"}
# Any fixed 64-bit number, unique within Omnihub, names the advisory lock.
_DEFAULT_INSTANCE_LOCK = 0x6F6D6E6964656661


class InstanceNotFoundError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"instance {name!r} not found")
        self.name = name


class InstanceExistsError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"instance {name!r} already exists")
        self.name = name


def get_instance(name: str) -> InstanceConfig:
    try:
        return InstanceConfig.objects.get(name=name)
    except InstanceConfig.DoesNotExist:
        raise InstanceNotFoundError(name) from None


def create_instance(*, name: str, **fields: Any) -> InstanceConfig:
    """A new tenant from the fields given (tenant_fields.EDITABLE), the model's defaults for
    the rest; without a webhook secret of its own it gets a generated one."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in sorted(unknown)})
    is_default = fields.pop("is_default", False)
    instance = InstanceConfig(name=name, **fields)
    instance.webhook_secret = instance.webhook_secret or new_webhook_secret()
    _validate(instance, creating=True)
    if InstanceConfig.objects.filter(name=name).exists():
        raise InstanceExistsError(name)
    try:
        with transaction.atomic():
            instance.save()
            if is_default:
                instance = set_default_instance(instance)
    except IntegrityError:
        raise InstanceExistsError(name) from None
    _forget(instance)
    logger.info("instance created: %s", instance.name)
    return instance


def update_instance(instance: InstanceConfig, **changes: Any) -> InstanceConfig:
    """Change only the fields given; a secret given as None or "" keeps the stored one."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError({field: "This field cannot be changed." for field in unknown})
    make_default = changes.pop("is_default", None)
    for field, value in changes.items():
        if field in SECRET_FIELDS and not value:
            continue
        if field == "webhook_secret" and value != instance.webhook_secret:
            _keep_previous_webhook_secret(instance)
        setattr(instance, field, value)
    if instance.require_webhook_auth and not instance.webhook_secret:
        # Switched on without a secret: every webhook would be refused.
        instance.webhook_secret = new_webhook_secret()
    if make_default is False:
        instance.is_default = False
    _validate(instance, creating=False)
    with transaction.atomic():
        instance.save()
        if make_default:
            instance = set_default_instance(instance)
    _forget(instance)
    logger.info("instance updated: %s", instance.name)
    return instance


def rotate_webhook_secret(instance: InstanceConfig) -> InstanceConfig:
    """A new webhook secret; the previous one verifies for WEBHOOK_SECRET_GRACE_SECONDS more."""
    with transaction.atomic():
        # Locked, so two rotations at once cannot both keep the same previous secret.
        instance = InstanceConfig.objects.select_for_update().get(pk=instance.pk)
        _keep_previous_webhook_secret(instance)
        instance.webhook_secret = new_webhook_secret()
        instance.save(
            update_fields=[
                "webhook_secret", "previous_webhook_secret", "webhook_secret_rotated_at",
                "updated_at",
            ]
        )  # fmt: skip
    _forget(instance)
    logger.info("webhook secret rotated: %s", instance.name)
    return instance


def record_webhook_rejection(tenant_id: int, reason: str) -> None:
    """Count a refused webhook in one statement: concurrent rejections all count."""
    InstanceConfig.objects.filter(pk=tenant_id).update(
        webhook_rejections=F("webhook_rejections") + 1,
        webhook_last_rejected_at=timezone.now(),
        webhook_last_rejection=reason[:100],
    )


def pin_evolution_origin(tenant_id: int, tenant_name: str, origin: str) -> str:
    """Pin `origin` as the tenant's reply server unless one is pinned already; returns the
    pinned origin. One conditional UPDATE: of two first webhooks at once, one wins."""
    pinned = InstanceConfig.objects.filter(pk=tenant_id, pinned_evolution_origin="").update(
        pinned_evolution_origin=origin
    )
    if pinned:
        _forget_name(tenant_name)
        logger.warning(
            "instance %s: replies pinned to %s, the first Evolution server seen; "
            "EVOLUTION_TRUSTED_SERVERS lists servers explicitly",
            tenant_name,
            origin,
        )
        return origin
    current = InstanceConfig.objects.filter(pk=tenant_id).values_list(
        "pinned_evolution_origin", flat=True
    )
    return current.first() or ""


def clear_evolution_pin(instance: InstanceConfig) -> InstanceConfig:
    """Forget the pinned reply server: the next webhook pins its own."""
    InstanceConfig.objects.filter(pk=instance.pk).update(pinned_evolution_origin="")
    instance.refresh_from_db()
    _forget(instance)
    logger.info("instance %s: pinned Evolution server cleared", instance.name)
    return instance


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def _keep_previous_webhook_secret(instance: InstanceConfig) -> None:
    if instance.webhook_secret:
        instance.previous_webhook_secret = instance.webhook_secret
        instance.webhook_secret_rotated_at = timezone.now()


def delete_instance(instance: InstanceConfig) -> MessageLog:
    """Delete the tenant and its whole message log; returns how much of it went."""
    _, deleted = instance.delete()
    _forget(instance)
    log = deleted_message_log(deleted)
    logger.info("instance deleted: %s, with %s", instance.name, log)
    return log


def set_default_instance(instance: InstanceConfig) -> InstanceConfig:
    """Make `instance` the one default tenant, un-defaulting the previous one atomically."""
    with transaction.atomic():
        _serialize_default_changes()
        InstanceConfig.objects.filter(is_default=True).exclude(pk=instance.pk).update(
            is_default=False
        )
        if not InstanceConfig.objects.filter(pk=instance.pk).update(is_default=True):
            # Deleted since it was read: rolled back, the old default stays the default.
            raise InstanceNotFoundError(instance.name)
        # Read in the transaction, where the updated row is locked: a delete now waits.
        instance.refresh_from_db()
    _forget(instance)
    logger.info("default instance is now %s", instance.name)
    return instance


def _serialize_default_changes() -> None:
    """Row locks alone deadlock when several tenants are made default at once, so concurrent
    changes queue on one transaction-scoped lock. SQLite needs none: its IMMEDIATE transactions
    already run one writer at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DEFAULT_INSTANCE_LOCK])


def seed_default_instance(config: dict[str, Any]) -> InstanceConfig | None:
    """Create the default tenant from .env values, but only into an empty table."""
    if not config.get("agent_api_url") or InstanceConfig.objects.exists():
        return None
    # Without WEBHOOK_SECRET it keeps working as the single-tenant service did: unauthenticated.
    require_auth = bool(config.get("webhook_secret"))
    instance = InstanceConfig(**config, is_default=True, require_webhook_auth=require_auth)
    try:
        # The one tenant allowed no Evolution server: it replies through each webhook's.
        _validate(instance, creating=False)
    except ValidationError as error:
        logger.warning(
            "default instance not seeded from .env: %s", describe_validation_error(error)
        )
        return None
    instance.save()
    logger.info("default instance seeded from .env: %s", instance.name)
    return instance


def rotate_encryption_keys() -> int:
    """Re-encrypt every stored secret with the first key; returns how many rows were rewritten."""
    primary_keys = list(InstanceConfig.objects.order_by("pk").values_list("pk", flat=True))
    for pk in primary_keys:
        with transaction.atomic():
            # Locked, so a key changed meanwhile through the API is not overwritten.
            instance = InstanceConfig.objects.select_for_update().filter(pk=pk).first()
            if instance is not None:
                # Loading decrypted with any key; saving encrypts with the first.
                instance.save(update_fields=list(ENCRYPTED_FIELDS))
    return len(primary_keys)


def _forget(instance: InstanceConfig) -> None:
    _forget_name(instance.name)


def _forget_name(name: str) -> None:
    """Drop cached lookups now and again at commit: in between, a webhook may cache the old row."""
    forget_tenant(name)
    transaction.on_commit(lambda: forget_tenant(name))


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each invalid field, for logs (the CLI names flags instead)."""
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)


def missing_fields(values: dict[str, Any], *, creating: bool) -> list[str]:
    """What a tenant may not leave blank: when created through the API, admin or CLI, every
    required field (tenant_fields), its own Evolution server and key included; afterwards, the
    Evolution server and key once either is set. Only the .env tenant may have neither."""
    if creating:
        return tenant_fields.missing_required(values)
    evolution = {name: values.get(name) for name in ("evolution_url", "evolution_key")}
    if not any(evolution.values()):
        return []
    return [name for name, value in evolution.items() if not value]


def _validate(instance: InstanceConfig, *, creating: bool) -> None:
    values = {field.name: getattr(instance, field.name) for field in tenant_fields.CREATABLE}
    # First, so a field left out says "required" rather than the model's "cannot be blank".
    errors: dict[str, list[ValidationError]] = {
        name: [ValidationError("This field is required.", code="required")]
        for name in missing_fields(values, creating=creating)
    }
    try:
        instance.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        for name, field_errors in error.error_dict.items():
            errors.setdefault(name, field_errors)
    if errors:
        raise ValidationError(errors)
