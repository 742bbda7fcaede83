"""What intake's rules decide about a message before its chat is looked at: the value
webhooks.inbound.policy passes from the rules that need only the message and the tenant to
those that need the chat's state."""

from dataclasses import dataclass
from datetime import datetime

from webhooks.models import Message


@dataclass(frozen=True, slots=True)
class Canned:
    """A reply of the tenant's own, sent instead of asking the agent; `note` says why (kept as
    the message's ignore_reason)."""

    kind: Message.CannedReply
    text: str
    note: str


@dataclass(frozen=True, slots=True)
class Screening:
    # Not for the agent: stored ignored, with this reason.
    ignore_reason: str = ""
    # Answered with this instead of the agent.
    canned: Canned | None = None
    # Written by a person on the business's phone: the chat is paused until then.
    pause_until: datetime | None = None
    # Sent by the chat's contact in a chat Omnihub answers (not a group, not our own account):
    # the rules that read the chat's state apply to it.
    by_contact: bool = True


FOR_THE_AGENT = Screening()
