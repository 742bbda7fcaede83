"""What a check of a tenant's link to its Evolution and its agent reports (instances.connection)."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    evolution: Check  # the WhatsApp connection of the instance
    webhook: Check  # whether Evolution's webhook points at this tenant
    agent: Check  # whether the Agents API answers

    @property
    def ok(self) -> bool:
        return self.evolution.ok and self.webhook.ok and self.agent.ok
