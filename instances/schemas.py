from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import field_validator
from pydantic.json_schema import SkipJsonSchema

from instances.evolution_webhook import evolution_webhook_config
from instances.models import (
    NAME_PATTERN,
    WEBHOOK_SECRET_MIN_LENGTH,
    InstanceConfig,
    previous_secret_valid_until,
)
from instances.secrets import mask_secret


class InstanceIn(Schema):
    name: str = Field(pattern=NAME_PATTERN, examples=["acme"])
    evolution_url: str = Field(examples=["https://evolution.example.com"])
    evolution_key: str = Field(min_length=1, description="Write-only; shown masked.")
    whatsapp_instance: str = Field(min_length=1, max_length=100)
    session_id_prefix: str = Field(default="", max_length=100)
    agent_api_url: str = Field(examples=["https://agents.example.com"])
    agent_api_key: str = Field(default="", description="Write-only; shown masked.")
    default_agent: str = Field(min_length=1, max_length=100)
    agent_timeout: int = Field(default=60, ge=1, le=3600)
    is_default: bool = False
    require_webhook_auth: bool = True
    webhook_secret: str = Field(
        default="", max_length=500, description="Write-only; shown masked. Generated if not given."
    )


class InstanceUpdate(Schema):
    """Every field optional: only the fields sent change. A blank or null secret keeps the
    stored one; any other field may be left out, but not sent as null (SkipJsonSchema: the
    None that stands for "not sent" stays out of the schema)."""

    evolution_url: str | SkipJsonSchema[None] = None
    evolution_key: str | None = None
    whatsapp_instance: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=100
    )
    session_id_prefix: str | SkipJsonSchema[None] = Field(default=None, max_length=100)
    agent_api_url: str | SkipJsonSchema[None] = None
    agent_api_key: str | None = None
    default_agent: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=100)
    # On the int itself: on the union, the schema would show "ge"/"le", not minimum/maximum.
    agent_timeout: Annotated[int, Field(ge=1, le=3600)] | SkipJsonSchema[None] = None
    is_default: bool | SkipJsonSchema[None] = None
    require_webhook_auth: bool | SkipJsonSchema[None] = None
    webhook_secret: str | None = Field(
        default=None,
        description=f"Write-only; at least {WEBHOOK_SECRET_MIN_LENGTH} characters. The previous "
        "secret keeps working for WEBHOOK_SECRET_GRACE_SECONDS.",
    )

    @field_validator(
        "evolution_url", "whatsapp_instance", "session_id_prefix", "agent_api_url",
        "default_agent", "agent_timeout", "is_default", "require_webhook_auth", mode="before",
    )  # fmt: skip
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class InstanceOut(Schema):
    name: str
    evolution_url: str
    evolution_key: str
    whatsapp_instance: str
    session_id_prefix: str
    agent_api_url: str
    agent_api_key: str
    default_agent: str
    agent_timeout: int
    is_default: bool
    pinned_evolution_origin: str = Field(
        description="Without an Evolution URL: the only server replies go to, unless "
        "EVOLUTION_TRUSTED_SERVERS lists others."
    )
    require_webhook_auth: bool
    webhook_authenticated: bool = Field(
        description="False: this tenant takes webhooks that prove nothing."
    )
    webhook_secret: str
    webhook_rejections: int
    webhook_last_rejected_at: datetime | None
    webhook_last_rejection: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_evolution_key(obj: InstanceConfig) -> str:
        return mask_secret(obj.evolution_key)

    @staticmethod
    def resolve_agent_api_key(obj: InstanceConfig) -> str:
        return mask_secret(obj.agent_api_key)

    @staticmethod
    def resolve_webhook_secret(obj: InstanceConfig) -> str:
        return mask_secret(obj.webhook_secret)

    @staticmethod
    def resolve_webhook_authenticated(obj: InstanceConfig) -> bool:
        return obj.require_webhook_auth


class WebhookSecretOut(Schema):
    """The answer to a rotation: the only time the new secret is shown."""

    name: str
    webhook_secret: str = Field(description="The new secret, shown this once.")
    previous_secret_valid_until: datetime | None
    evolution_webhook: dict[str, Any] = Field(
        description="The `webhook` object for Evolution's POST /webhook/set/{instance}."
    )

    @staticmethod
    def resolve_previous_secret_valid_until(obj: InstanceConfig) -> datetime | None:
        return previous_secret_valid_until(obj.webhook_secret_rotated_at)

    @staticmethod
    def resolve_evolution_webhook(obj: InstanceConfig) -> dict[str, Any]:
        return evolution_webhook_config(obj, reveal=True)


class CheckOut(Schema):
    ok: bool
    message: str


class ConnectionStatusOut(Schema):
    ok: bool
    evolution: CheckOut = Field(description="The instance's WhatsApp connection in Evolution.")
    webhook: CheckOut = Field(description="Whether Evolution's webhook points at this tenant.")
    agent: CheckOut = Field(description="Whether the Agents API answers, with this key.")
