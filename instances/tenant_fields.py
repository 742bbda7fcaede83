"""The tenant's fields, listed once: the REST API's schemas, the admin's form and fieldsets, the
CLI's flags and the services' field sets are all made from this list.

A field's label, help text, default and bounds stay on the model field (InstanceConfig), which is
also where every value is validated, whichever way it came in. This list says how each surface
treats the field: its group, whether it is a secret (write-only, shown masked), whether it must
be given when a tenant is created, whether it can be written at all, and its CLI flag.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.text import capfirst

from instances.models import InstanceConfig


class Group(StrEnum):
    TENANT = "Tenant"
    EVOLUTION = "Evolution API"
    AGENT = "Agent"
    WEBHOOK = "Webhook security"
    CONVERSATION = "Conversation"
    HISTORY = "History"


class Access(Enum):
    EDITABLE = "editable"
    # Given once, when the tenant is created: the name is part of its webhook URL.
    CREATE_ONLY = "create only"
    # Shown, never written by a person: counters, timestamps, what a webhook pinned.
    READ_ONLY = "read only"


@dataclass(frozen=True, slots=True)
class TenantField:
    name: str
    group: Group
    access: Access = Access.EDITABLE
    # Write-only: shown masked; given blank on a change, the stored value is kept.
    secret: bool = False
    # Must be given, not blank, when a tenant is created through the API, the admin or the CLI.
    required: bool = False
    flag: str = ""  # the CLI flag, when not --<name with dashes>
    metavar: str = ""
    example: Any = None
    # For a value computed when shown, not stored: its type and what it means.
    computed: type | None = None
    description: str = ""

    @property
    def model_field(self) -> models.Field[Any, Any]:
        field = InstanceConfig._meta.get_field(self.name)
        assert isinstance(field, models.Field), self.name
        return field

    @property
    def is_column(self) -> bool:
        return self.computed is None

    @property
    def kind(self) -> type:
        """The value's Python type: str, int, bool, list (of str) or datetime."""
        if self.computed is not None:
            return self.computed
        field = self.model_field
        kinds: list[tuple[type[models.Field[Any, Any]], type]] = [
            (models.BooleanField, bool),
            (models.IntegerField, int),
            (models.JSONField, list),
            (models.DateTimeField, datetime),
        ]
        return next((kind for base, kind in kinds if isinstance(field, base)), str)

    @property
    def nullable(self) -> bool:
        return self.is_column and self.model_field.null

    @property
    def label(self) -> str:
        name = self.model_field.verbose_name if self.is_column else self.name.replace("_", " ")
        return capfirst(str(name))

    @property
    def help_text(self) -> str:
        return self.description or (str(self.model_field.help_text) if self.is_column else "")

    @property
    def default(self) -> Any:
        return self.model_field.get_default()

    @property
    def bounds(self) -> tuple[int | None, int | None]:
        """The smallest and largest value the model's validators take, for ints."""
        low = high = None
        for validator in self.model_field.validators:
            if isinstance(validator, MinValueValidator):
                low = validator.limit_value
            elif isinstance(validator, MaxValueValidator):
                high = validator.limit_value
        return low, high

    @property
    def max_length(self) -> int | None:
        return self.model_field.max_length if self.kind is str else None

    @property
    def pattern(self) -> str | None:
        for validator in self.model_field.validators:
            if isinstance(validator, RegexValidator) and not validator.inverse_match:
                regex = validator.regex
                return regex if isinstance(regex, str) else regex.pattern
        return None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def clean(self, value: Any) -> Any:
        """The value as the model field takes it; raises the model's ValidationError."""
        return self.model_field.clean(value, None)

    def missing(self, value: Any) -> bool:
        return self.required and value in ("", None, [])


_T, _E, _A, _W, _C, _H = (
    Group.TENANT, Group.EVOLUTION, Group.AGENT, Group.WEBHOOK, Group.CONVERSATION, Group.HISTORY,
)  # fmt: skip
_RO = Access.READ_ONLY

FIELDS: tuple[TenantField, ...] = (
    TenantField("name", _T, Access.CREATE_ONLY, required=True, metavar="NAME", example="acme"),
    TenantField("is_default", _T, flag="--default"),
    TenantField(
        "evolution_url", _E, required=True, metavar="URL", example="https://evolution.example.com"
    ),
    TenantField("evolution_key", _E, secret=True, required=True, metavar="KEY"),
    TenantField("whatsapp_instance", _E, required=True, metavar="NAME", example="acme-sales"),
    TenantField("pinned_evolution_origin", _E, _RO),
    TenantField(
        "agent_api_url", _A, required=True, metavar="URL", example="https://agents.example.com"
    ),
    TenantField("agent_api_key", _A, secret=True, metavar="KEY"),
    TenantField("default_agent", _A, required=True, metavar="AGENT", example="assistant"),
    TenantField("session_id_prefix", _A, metavar="PREFIX"),
    TenantField("agent_timeout", _A, metavar="SECONDS"),
    TenantField("require_webhook_auth", _W),
    TenantField(
        "webhook_authenticated",
        _W,
        _RO,
        computed=bool,
        description="False: this tenant takes webhooks that prove nothing.",
    ),
    TenantField("webhook_secret", _W, secret=True, metavar="SECRET"),
    TenantField("webhook_rejections", _W, _RO),
    TenantField("webhook_last_rejected_at", _W, _RO),
    TenantField("webhook_last_rejection", _W, _RO),
    TenantField("webhook_secret_rotated_at", _W, _RO),
    TenantField("human_takeover_minutes", _C, metavar="MINUTES"),
    TenantField("debounce_seconds", _C, metavar="SECONDS"),
    TenantField("split_replies", _C),
    TenantField("typing_ms_per_char", _C, metavar="MS"),
    TenantField("show_typing", _C),
    TenantField("allowed_numbers", _C, metavar="NUMBERS", example=["5511*", "5521987654321"]),
    TenantField("blocked_numbers", _C, metavar="NUMBERS", example=["5511999999999"]),
    TenantField("max_messages_per_hour", _C, metavar="N"),
    TenantField("rate_limited_reply", _C, metavar="TEXT"),
    TenantField("max_message_age_seconds", _C, metavar="SECONDS"),
    TenantField("error_reply", _C, metavar="TEXT"),
    TenantField("unsupported_reply", _C, metavar="TEXT"),
    TenantField("reset_keyword", _C, metavar="WORD", example="#reset"),
    TenantField("reset_reply", _C, metavar="TEXT"),
    TenantField("created_at", _H, _RO),
    TenantField("updated_at", _H, _RO),
)
BY_NAME = {field.name: field for field in FIELDS}
# What a person may write: when creating a tenant, and when changing one.
CREATABLE = tuple(field for field in FIELDS if field.access is not Access.READ_ONLY)
EDITABLE = tuple(field for field in FIELDS if field.access is Access.EDITABLE)
EDITABLE_NAMES = frozenset(field.name for field in EDITABLE)
SECRET_NAMES = frozenset(field.name for field in FIELDS if field.secret)
REQUIRED_NAMES = tuple(field.name for field in CREATABLE if field.required)


def missing_required(values: dict[str, Any]) -> list[str]:
    """The fields a new tenant must have that `values` leaves out or blank."""
    return [name for name in REQUIRED_NAMES if BY_NAME[name].missing(values.get(name))]
