"""The webhook configuration a tenant's Evolution needs: shown in the admin, the CLI and the API,
and sent to Evolution by `instance_connect`.

With the header `jwt_key`, Evolution signs each webhook with that key (Authorization: Bearer
<JWT>) instead of sending the header itself.

Reference: https://doc.evolution-api.com/v2/api-reference/webhook/set
"""

from typing import Any

from django.conf import settings
from django.urls import reverse

from instances.models import InstanceConfig
from instances.secrets import mask_secret

EVENTS = ["MESSAGES_UPSERT"]
# Shown when OMNIHUB_PUBLIC_URL is not set, so the missing setting is named where it is needed.
PUBLIC_URL_PLACEHOLDER = "<OMNIHUB_PUBLIC_URL>"


def webhook_url(instance: InstanceConfig) -> str:
    base = settings.OMNIHUB_PUBLIC_URL.rstrip("/") or PUBLIC_URL_PLACEHOLDER
    return base + reverse("evolution_webhook", args=[instance.name])


def evolution_webhook_config(instance: InstanceConfig, *, reveal: bool = False) -> dict[str, Any]:
    """The `webhook` object of Evolution's POST /webhook/set/{instance}; the secret masked
    unless `reveal` (only for Evolution itself, or right after a rotation)."""
    secret = instance.webhook_secret if reveal else mask_secret(instance.webhook_secret)
    return {
        "enabled": True,
        "url": webhook_url(instance),
        "byEvents": False,
        "base64": True,
        "events": EVENTS,
        "headers": {"jwt_key": secret or "<webhook secret>"},
    }
