"""The worker's database steps one at a time, as tests drive them: a claim, and a chat's next
turn, each in a transaction of its own (the worker runs them inside larger ones:
turns.claim_turns and progress.advance)."""

from collections.abc import Collection

from django.db import transaction
from django.utils import timezone

from webhooks.conversations import leases
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.turns import Turn, begin_turns, read_chats
from webhooks.models import Conversation


def claim_ready(
    worker_id: str, *, limit: int, lease_seconds: float, holding: Collection[int] = ()
) -> list[int]:
    """Lease up to `limit` ready conversations to `worker_id`; their ids, the longest waiting
    first."""
    if not leases.any_claimable(holding):
        return []
    with transaction.atomic():
        claimed = leases.take_leases(
            worker_id, limit=limit, lease_seconds=lease_seconds, holding=holding
        )
        return list(claimed.order_by("ready_at").values_list("pk", flat=True))


def begin_next(conversation_id: int, worker_id: str, *, stopping: bool = False) -> Turn | None:
    """The chat's next turn, taken up (begin_turns); LeaseLostError when another worker holds
    it."""
    now = timezone.now()
    with transaction.atomic():
        if not leases.lock_held(worker_id, [conversation_id], reading={}):
            raise LeaseLostError(conversation_id)
        chats = read_chats(Conversation.objects.filter(pk=conversation_id), now=now)
        return begin_turns(worker_id, chats, now=now, stopping=stopping)[conversation_id]
