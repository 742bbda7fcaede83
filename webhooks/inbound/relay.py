"""Whether a reply may go through the server a webhook names, decided once, when it arrives.

The default tenant seeded without an Evolution server replies through each webhook's
`server_url` and `apikey`, as the single-tenant service did. Trusted blindly, that makes Omnihub
an open relay: anyone who can post a webhook could have the agent's answer, and a request from
this network, sent to a server of their choosing. So a payload's server is used only when its
origin is listed in EVOLUTION_TRUSTED_SERVERS or, with that list empty, when it is the first
origin the tenant ever saw (pinned; `omnihub instance_clear_pin` forgets it).
"""

import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from instances.selectors import TenantRef
from instances.services import pin_evolution_origin
from webhooks.inbound.parsing import IncomingMessage

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ReplyServer:
    """Where this message's reply may go, when the tenant has no server of its own: `url` and
    `key` from the webhook, or `refusal` saying why not."""

    url: str = ""
    key: str = field(default="", repr=False)
    refusal: str = ""


def reply_server(tenant: TenantRef, incoming: IncomingMessage) -> ReplyServer:
    if not tenant.replies_through_webhook:
        return ReplyServer()  # the tenant's own Evolution answers; the payload's is not used
    origin = origin_of(incoming.server_url)
    if not origin:
        return _refused(tenant, "the webhook names no http(s) server_url to reply through")
    trusted = trusted_origins()
    if trusted:
        if origin in trusted:
            return ReplyServer(incoming.server_url.rstrip("/"), incoming.apikey)
        return _refused(
            tenant,
            f"the webhook's server {origin} is not listed in EVOLUTION_TRUSTED_SERVERS",
        )
    pinned = tenant.pinned_evolution_origin or pin_evolution_origin(tenant.id, tenant.name, origin)
    if origin == pinned:
        return ReplyServer(incoming.server_url.rstrip("/"), incoming.apikey)
    return _refused(
        tenant,
        f"the webhook's server {origin} is not {pinned}, the one pinned for this tenant: list "
        f"the servers in EVOLUTION_TRUSTED_SERVERS, or clear the pin "
        f"(omnihub instance_clear_pin {tenant.name})",
    )


def trusted_origins() -> frozenset[str]:
    return frozenset(filter(None, map(origin_of, settings.EVOLUTION_TRUSTED_SERVERS)))


def origin_of(url: str) -> str:
    """scheme://host:port, lowercased and with the default port spelled out, so that equal
    servers compare equal; "" for anything that is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def _refused(tenant: TenantRef, reason: str) -> ReplyServer:
    logger.warning("instance %s: no reply will be sent: %s", tenant.name, reason)
    return ReplyServer(refusal=reason)
