"""Linking a tenant to its Evolution in one step, and checking that the link works: what the
API, the admin and the CLI share. The calls are async (the worker's clients,
instances.link_calls); these functions run them to completion for synchronous callers, on a
client of their own.

link_calls is imported when an operator asks for a link or a check, not with the admin and the
API that import this module: its outbound client (aiohttp) would add ~14 MiB to every web
process, which otherwise makes no outbound call.
"""

import asyncio

from django.conf import settings

from instances import services
from instances.evolution_webhook import evolution_webhook_config
from instances.link_status import ConnectionStatus as ConnectionStatus
from instances.models import InstanceConfig
from instances.selectors import valid_webhook_secrets


class ConnectionNotPossibleError(Exception):
    """The tenant cannot be linked as it is configured; the message says what to change."""


class EvolutionCallError(Exception):
    """Evolution refused or did not answer; the message says why in plain words."""


def connect_instance(instance: InstanceConfig) -> InstanceConfig:
    """Give the tenant's Evolution instance this tenant's webhook (URL, events, signed with its
    secret), then switch webhook authentication on: in that order, so that a failed call
    leaves the tenant taking the webhooks it took before."""
    if not settings.OMNIHUB_PUBLIC_URL:
        raise ConnectionNotPossibleError(
            "OMNIHUB_PUBLIC_URL is not set: Evolution needs the URL it can reach Omnihub at"
        )
    if not instance.evolution_url or not instance.evolution_key:
        raise ConnectionNotPossibleError(
            f"instance {instance.name!r} has no Evolution URL and key of its own: set them first"
        )
    if not instance.webhook_secret:
        instance = services.update_instance(instance, webhook_secret=services.new_webhook_secret())
    webhook = evolution_webhook_config(instance, reveal=True)
    from instances import link_calls

    refusal = asyncio.run(link_calls.set_webhook(instance, webhook))
    if refusal is not None:
        raise EvolutionCallError(refusal)
    return services.update_instance(instance, require_webhook_auth=True)


def connection_status(instance: InstanceConfig) -> ConnectionStatus:
    """Evolution's connection state, its webhook, and the Agents API, checked at once."""
    # Read here: the checks run on an event loop, where Django allows no database access.
    secrets = valid_webhook_secrets(instance.pk)
    from instances import link_calls

    return asyncio.run(link_calls.status(instance, secrets))
