from datetime import datetime

from ninja import Field, Schema

from instances.models import NAME_PATTERN, InstanceConfig
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


class InstanceUpdate(Schema):
    """Every field optional: only the fields sent change. A blank secret keeps the stored one."""

    evolution_url: str | None = None
    evolution_key: str | None = None
    whatsapp_instance: str | None = Field(default=None, min_length=1, max_length=100)
    session_id_prefix: str | None = Field(default=None, max_length=100)
    agent_api_url: str | None = None
    agent_api_key: str | None = None
    default_agent: str | None = Field(default=None, min_length=1, max_length=100)
    agent_timeout: int | None = Field(default=None, ge=1, le=3600)
    is_default: bool | None = None


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
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_evolution_key(obj: InstanceConfig) -> str:
        return mask_secret(obj.evolution_key)

    @staticmethod
    def resolve_agent_api_key(obj: InstanceConfig) -> str:
        return mask_secret(obj.agent_api_key)
