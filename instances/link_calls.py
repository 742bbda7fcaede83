"""The outbound calls behind instances.connection: setting a tenant's webhook in its Evolution,
and checking its link to Evolution and to its agent."""

import asyncio

from django.conf import settings
from django.utils.crypto import constant_time_compare

from instances.evolution_webhook import EVENTS, webhook_url
from instances.link_status import Check, ConnectionStatus
from instances.models import InstanceConfig
from webhooks.integrations import transport
from webhooks.integrations.agents import client as agents
from webhooks.integrations.evolution import client as evolution

# Answers of the agent's run endpoint to an empty request that show the server and key work.
_AGENT_ANSWERS = frozenset({200, 400, 422})


async def set_webhook(instance: InstanceConfig, webhook: dict[str, object]) -> str | None:
    """Give the tenant's Evolution instance `webhook`; None once it took it, else why not, in
    plain words."""
    async with transport.new_client() as client:
        try:
            await evolution.set_webhook(
                client,
                webhook=webhook,
                deadline=settings.EVOLUTION_TIMEOUT,
                **_evolution_args(instance),
            )
        except transport.OutboundError as error:
            return _plain_evolution_error(error)
    return None


async def status(instance: InstanceConfig, secrets: list[str]) -> ConnectionStatus:
    """Evolution's connection state, its webhook, and the Agents API, checked at once."""
    async with transport.new_client() as client:
        if instance.evolution_url and instance.evolution_key:
            state, webhook = await asyncio.gather(
                _connection_check(client, instance), _webhook_check(client, instance, secrets)
            )
        else:
            state = webhook = Check(
                False, "no Evolution URL and key of its own: replies go through each webhook's"
            )
        agent = await _agent_check(client, instance)
    return ConnectionStatus(evolution=state, webhook=webhook, agent=agent)


async def _connection_check(client: transport.HttpClient, tenant: InstanceConfig) -> Check:
    try:
        state = await evolution.connection_state(
            client, deadline=settings.EVOLUTION_TIMEOUT, **_evolution_args(tenant)
        )
    except transport.OutboundError as error:
        return Check(False, _plain_evolution_error(error))
    if state == "open":
        return Check(True, "open: WhatsApp is connected")
    if state == "connecting":
        return Check(False, "connecting: WhatsApp is not connected yet (scan the QR code?)")
    return Check(False, f"{state or 'unknown'}: WhatsApp is not connected")


async def _webhook_check(
    client: transport.HttpClient, tenant: InstanceConfig, secrets: list[str]
) -> Check:
    try:
        on_file = await evolution.find_webhook(
            client, deadline=settings.EVOLUTION_TIMEOUT, **_evolution_args(tenant)
        )
    except transport.OutboundError as error:
        return Check(False, _plain_evolution_error(error))
    expected = webhook_url(tenant)
    if on_file is None or not on_file.url:
        return Check(False, f"Evolution has no webhook for this instance; expected {expected}")
    if not _same_webhook_url(on_file.url, tenant):
        return Check(False, f"Evolution's webhook points at {on_file.url}, not at {expected}")
    if not on_file.enabled:
        return Check(False, "Evolution's webhook for this tenant is disabled")
    if not set(EVENTS) <= set(on_file.events):
        return Check(False, "Evolution's webhook does not send MESSAGES_UPSERT")
    if tenant.require_webhook_auth and not _signs_with_one_of(on_file.jwt_key, secrets):
        return Check(
            False,
            "Evolution's webhook is not signed with this tenant's secret (headers.jwt_key): "
            "its webhooks are refused; run instance_connect",
        )
    return Check(True, f"points at this tenant ({on_file.url})")


async def _agent_check(client: transport.HttpClient, tenant: InstanceConfig) -> Check:
    try:
        status = await agents.probe_agent(
            client,
            base_url=tenant.agent_api_url,
            api_key=tenant.agent_api_key,
            agent=tenant.default_agent,
            deadline=min(settings.EVOLUTION_TIMEOUT, tenant.agent_timeout),
        )
    except transport.OutboundError as error:
        return Check(False, f"unreachable: {error}")
    if status in _AGENT_ANSWERS:
        return Check(True, f"the Agents API answers (agent {tenant.default_agent!r})")
    if status in (401, 403):
        return Check(False, f"wrong key: the Agents API answered {status}")
    if status == 404:
        return Check(False, f"unknown agent {tenant.default_agent!r} or wrong URL (404)")
    return Check(False, f"the Agents API answered {status}")


def _evolution_args(tenant: InstanceConfig) -> dict[str, str]:
    return {
        "base_url": tenant.evolution_url,
        "api_key": tenant.evolution_key,
        "instance": tenant.whatsapp_instance,
    }


def _same_webhook_url(url: str, tenant: InstanceConfig) -> bool:
    expected = webhook_url(tenant)
    if settings.OMNIHUB_PUBLIC_URL:
        return url.rstrip("/") == expected
    # Without the public URL only the path can be compared.
    return url.rstrip("/").endswith(expected.partition(">")[2])


def _signs_with_one_of(jwt_key: str, secrets: list[str]) -> bool:
    return bool(jwt_key) and any(constant_time_compare(jwt_key, secret) for secret in secrets)


def _plain_evolution_error(error: transport.OutboundError) -> str:
    if error.status_code in (401, 403):
        return f"wrong key: Evolution answered {error.status_code}"
    if error.status_code == 404:
        return "unknown instance: Evolution has no instance of this tenant's WhatsApp name"
    if error.status_code is None and error.retryable:
        return f"unreachable: {error}"
    return str(error)
