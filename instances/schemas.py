"""The REST API's schemas. The tenant's In / Update / Out are made from instances.tenant_fields,
so a field added there is taken, validated and shown by the API without another list."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self

import pydantic
from django.core.exceptions import ValidationError
from ninja import Field, Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, create_model, model_validator
from pydantic_core import PydanticCustomError

from instances import tenant_fields
from instances.evolution_webhook import evolution_webhook_config
from instances.models import InstanceConfig, previous_secret_valid_until
from instances.secrets import mask_secret
from instances.tenant_fields import TenantField

_TYPES: dict[type, Any] = {str: str, int: int, bool: bool, list: list[str], datetime: datetime}


class TenantInput(Schema):
    """A tenant's fields as the API takes them: any other field is refused by name, and every
    invalid field is reported in one answer, at ["body", "<field>"] as the services' errors are."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _errors_by_field(cls, data: Any, handler: pydantic.ModelWrapValidatorHandler[Self]) -> Self:
        try:
            return handler(data)
        except pydantic.ValidationError as error:
            # The services' own error, which omnihub.api answers with 422 in one format.
            raise errors_by_field(error) from None


def errors_by_field(error: pydantic.ValidationError) -> ValidationError:
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for item in error.errors(include_url=False):
        if not item["loc"]:
            general.append(item["msg"])
            continue
        name, *within = item["loc"]
        message = _message(str(name), item)
        if within:
            message = f"item {within[0]}: {message}"
        by_field.setdefault(str(name), []).append(message)
    return ValidationError(by_field) if by_field else ValidationError(general)


def _message(name: str, item: Any) -> str:
    if item["type"] == "missing":
        return "This field is required."
    if item["type"] == "extra_forbidden":
        return "This field is read-only." if name in tenant_fields.BY_NAME else "Unknown field."
    return str(item["msg"])


def _model_check(field: TenantField, *, creating: bool) -> Callable[[Any], Any]:
    """The model field's own validation, run in the schema's pass so that a type error in one
    field and a bad value in another are reported together."""

    def check(value: Any) -> Any:
        if creating and field.missing(value):
            raise PydanticCustomError("missing", "This field is required.")
        if field.secret and not value:
            return value  # on a change: keep the stored secret
        try:
            field.clean(value)
        except ValidationError as error:
            raise PydanticCustomError(
                "invalid", "{message}", {"message": " ".join(error.messages)}
            ) from None
        return value

    return check


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null", "May be left out, but not null.")
    return value


def _documented_bounds(field: TenantField, *, creating: bool) -> Callable[[dict[str, Any]], None]:
    """The model's bounds in the OpenAPI schema. Documented, not enforced here: the model's
    validators enforce them, with the messages the admin and the CLI give."""

    def document(schema: dict[str, Any]) -> None:
        low, high = field.bounds
        documented = {
            "minimum": low,
            "maximum": high,
            "maxLength": field.max_length,
            "pattern": field.pattern,
            "minLength": 1 if creating and field.required and field.kind is str else None,
        }
        schema.update({key: value for key, value in documented.items() if value is not None})
        if field.secret:
            schema["writeOnly"] = True
        if not creating:
            schema.pop("default", None)  # left out means unchanged

    return document


def _description(field: TenantField, *, creating: bool) -> str:
    if not field.secret:
        return field.help_text
    keeps = "" if creating else " Blank or null keeps the stored one."
    return f"{field.help_text} Write-only; shown masked.{keeps}"


def _input_field(field: TenantField, *, creating: bool) -> tuple[Any, Any]:
    kind = _TYPES[field.kind]
    checked: Any = Annotated[
        Annotated[kind, AfterValidator(_model_check(field, creating=creating))],
        BeforeValidator(_not_null),
    ]
    if field.secret and not creating:
        checked = Annotated[kind | None, AfterValidator(_model_check(field, creating=False))]
    info: dict[str, Any] = {
        "title": field.label,
        "description": _description(field, creating=creating),
        "json_schema_extra": _documented_bounds(field, creating=creating),
    }
    if field.example is not None:
        info["examples"] = [field.example]
    if not creating:
        return checked, Field(None, **info)
    if field.required:
        return checked, Field(..., **info)
    if field.kind is list:
        return checked, Field(default_factory=list, **info)
    return checked, Field(field.default, **info)


def _output_field(field: TenantField) -> tuple[Any, Any]:
    kind = _TYPES[field.kind]
    if field.secret:
        return Annotated[str, BeforeValidator(mask_secret)], Field(
            title=field.label, description=f"{field.help_text} Shown masked."
        )
    return (kind | None if field.nullable else kind), Field(
        title=field.label, description=field.help_text or None
    )


class TenantOutput(Schema):
    @staticmethod
    def resolve_webhook_authenticated(obj: InstanceConfig) -> bool:
        return obj.require_webhook_auth


def _fields(made: Iterable[tuple[str, tuple[Any, Any]]]) -> dict[str, Any]:
    return dict(made)


if TYPE_CHECKING:
    # Made at import from instances.tenant_fields, which mypy cannot follow: to it, they are
    # their base schemas.
    InstanceIn = TenantInput
    InstanceUpdate = TenantInput
    InstanceOut = TenantOutput
else:
    InstanceIn = create_model(
        "InstanceIn",
        __base__=TenantInput,
        __doc__="A new tenant. Fields left out take their defaults; a webhook secret is generated.",
        **_fields((f.name, _input_field(f, creating=True)) for f in tenant_fields.CREATABLE),
    )
    InstanceUpdate = create_model(
        "InstanceUpdate",
        __base__=TenantInput,
        __doc__="Only the fields sent change; any may be left out, none sent as null but the "
        "secrets (null or blank keeps the stored one).",
        **_fields((f.name, _input_field(f, creating=False)) for f in tenant_fields.EDITABLE),
    )
    InstanceOut = create_model(
        "InstanceOut",
        __base__=TenantOutput,
        __doc__="A tenant, its secrets masked.",
        **_fields((f.name, _output_field(f)) for f in tenant_fields.FIELDS),
    )


class DeletedInstanceOut(Schema):
    name: str
    messages: int = Field(description="Messages deleted with the tenant.")
    conversations: int = Field(description="Conversations deleted with the tenant.")


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
