from django.http import HttpRequest
from ninja import Router, Status

from instances import connection, services
from instances.models import InstanceConfig
from instances.schemas import (
    ConnectionStatusOut,
    DeletedInstanceOut,
    InstanceIn,
    InstanceOut,
    InstanceUpdate,
    WebhookSecretOut,
)

router = Router(tags=["instances"])


@router.post("", response={201: InstanceOut})
def create_instance(
    request: HttpRequest,
    payload: InstanceIn,
) -> Status[InstanceConfig]:
    """A new tenant; fields left out take their defaults, and a webhook secret is generated
    when none is given. A field that is not a tenant's, or is read-only, is refused with 422
    naming it; every invalid field is named in the one answer."""
    return Status(201, services.create_instance(**payload.model_dump()))


@router.get("", response=list[InstanceOut])
def list_instances(request: HttpRequest) -> list[InstanceConfig]:
    return list(InstanceConfig.objects.order_by("name"))


@router.get("/{name}", response=InstanceOut)
def get_instance(request: HttpRequest, name: str) -> InstanceConfig:
    return services.get_instance(name)


@router.api_operation(["PUT", "PATCH"], "/{name}", response=InstanceOut)
def update_instance(
    request: HttpRequest,
    name: str,
    payload: InstanceUpdate,
) -> InstanceConfig:
    """Only the fields sent change. A field that is not a tenant's, or is read-only, is refused
    with 422 naming it; every invalid field is named in the one answer."""
    changes = payload.model_dump(exclude_unset=True)
    return services.update_instance(services.get_instance(name), **changes)


@router.delete("/{name}", response=DeletedInstanceOut)
def delete_instance(request: HttpRequest, name: str) -> dict[str, object]:
    """Delete the tenant and, with it, its whole message log: every message and conversation
    it received. There is no undo; the answer says how many messages and conversations went."""
    deleted = services.delete_instance(services.get_instance(name))
    return {"name": name, "messages": deleted.messages, "conversations": deleted.conversations}


@router.post("/{name}/set-default", response=InstanceOut)
def set_default_instance(request: HttpRequest, name: str) -> InstanceConfig:
    return services.set_default_instance(services.get_instance(name))


@router.post("/{name}/rotate-webhook-secret", response=WebhookSecretOut)
def rotate_webhook_secret(request: HttpRequest, name: str) -> InstanceConfig:
    """A new webhook secret, shown this once; the previous one keeps working for
    WEBHOOK_SECRET_GRACE_SECONDS, while Evolution is given the new one."""
    return services.rotate_webhook_secret(services.get_instance(name))


@router.post("/{name}/connect", response=InstanceOut)
def connect_instance(request: HttpRequest, name: str) -> InstanceConfig:
    """Set the tenant's webhook on its Evolution instance (URL, MESSAGES_UPSERT, base64, signed
    with its secret), then require webhook authentication. 502 when Evolution refuses."""
    return connection.connect_instance(services.get_instance(name))


@router.get("/{name}/status", response=ConnectionStatusOut)
def instance_status(request: HttpRequest, name: str) -> connection.ConnectionStatus:
    """Evolution's connection state, whether its webhook points at this tenant, and whether
    the Agents API answers; each with a plain message."""
    return connection.connection_status(services.get_instance(name))
