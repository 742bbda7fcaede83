"""Which tenant a webhook URL names, and which event Evolution appended to it."""

from instances.selectors import TenantNotFoundError, TenantRef, find_default_tenant, find_tenant

# With "webhook by events" on, Evolution appends the event to the URL, e.g. /messages-upsert.
EVOLUTION_EVENTS = frozenset(
    {
        "application-startup", "qrcode-updated", "messages-set", "messages-upsert",
        "messages-edited", "messages-update", "messages-delete", "send-message",
        "send-message-update", "contacts-set", "contacts-upsert", "contacts-update",
        "presence-update", "chats-set", "chats-upsert", "chats-update", "chats-delete",
        "groups-upsert", "group-update", "group-participants-update", "connection-update",
        "labels-edit", "labels-association", "call", "typebot-start", "typebot-change-status",
        "logout-instance", "remove-instance",
    }
)  # fmt: skip


def tenant_and_event(name: str, event: str) -> tuple[TenantRef, str]:
    """`/webhook/evolution/messages-upsert` is the default tenant's event, unless a tenant
    is really named so: a tenant's own name always wins."""
    if not name:
        return find_default_tenant(), event
    try:
        return find_tenant(name), event
    except TenantNotFoundError:
        if event or name not in EVOLUTION_EVENTS:
            raise
        return find_default_tenant(), name
