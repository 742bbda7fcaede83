"""Which conversations need a worker, and which worker holds each: the one place that reads and
writes `Conversation.ready_at` and its lease.

- A webhook marks its chat ready in the transaction that stores the message (`mark_ready`).
- A worker claims ready chats whose lease is free (`claim_ready`); a lease that expired is free,
  so the chats of a worker that died are simply claimable again, with no separate sweep.
- The holder renews its leases while it lives (`renew`), and hands a chat back under the
  chat's row lock once it has nothing left to do now (`hand_back`).

Why the row lock: a webhook's `mark_ready` always writes the row, so it and `hand_back` take
turns on it. Either the webhook commits first, and the holder, locking the row after it, sees
the new message; or the holder hands back first, and the webhook's write, applied to the row
as the holder left it, marks the chat ready again. No message is stranded in between.
"""

from collections.abc import Collection
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from webhooks.models import Conversation

# PostgreSQL delivers a NOTIFY at commit, and not at all on rollback.
WAKE_UP_CHANNEL = "omnihub_conversations"


def lease_held(now: datetime) -> Q:
    """The one definition of a held lease: an owner whose lease has not yet expired."""
    return ~Q(lease_owner="") & Q(leased_until__gt=now)


def ready(now: datetime) -> Q:
    """Conversations a worker may claim now."""
    return Q(ready_at__lte=now) & ~lease_held(now)


def mark_ready(conversation_id: int, *, now: datetime, new_message: bool = True) -> None:
    """Make the conversation ready for a worker; call it in the transaction that stores its
    new message (or, for a person's retry, that queues an old one again).

    The row is written even when the chat is already ready (see the module's docstring), and a
    retry time already set is kept: a chat's later messages wait behind its retry. A person's
    retry (not a `new_message`) makes the chat ready now even so: they asked for a try now.
    """
    at = Value(now, output_field=DateTimeField())
    changes: dict[str, object] = {
        "ready_at": Coalesce("ready_at", at) if new_message else Least(Coalesce("ready_at", at), at)
    }
    if new_message:
        changes["last_message_at"] = now
    Conversation.objects.filter(pk=conversation_id).update(**changes)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [WAKE_UP_CHANNEL])


def note_message(conversation_id: int, *, now: datetime) -> None:
    """Record a message that needs no answer (an ignored one) on its conversation."""
    Conversation.objects.filter(pk=conversation_id).update(last_message_at=now)


def claim_ready(
    worker_id: str, *, limit: int, lease_seconds: float, holding: Collection[int] = ()
) -> list[int]:
    """Lease up to `limit` ready conversations to `worker_id`, the longest waiting first, none
    of those it is `holding` (its own lease may have run out while it is still answering).

    On PostgreSQL, SKIP LOCKED lets workers on several machines claim side by side, never the
    same chat; SQLite runs one write transaction at a time, so claims there take turns.
    """
    now = timezone.now()
    claimable = Conversation.objects.filter(ready(now)).exclude(pk__in=holding)
    # Looked at first outside a transaction: on SQLite a write transaction takes the database's
    # one write lock, which the webhooks storing messages wait for.
    if not claimable.exists():
        return []
    with transaction.atomic():
        locked = (
            claimable.order_by("ready_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        claimed = list(locked[:limit])
        if claimed:
            Conversation.objects.filter(pk__in=claimed).update(
                lease_owner=worker_id, leased_until=now + timedelta(seconds=lease_seconds)
            )
    return claimed


def renew(worker_id: str, conversation_ids: list[int], *, lease_seconds: float) -> set[int]:
    """Extend the leases `worker_id` owns among `conversation_ids`; returns those another
    worker took over meanwhile (those handed back, by their owner, are neither)."""
    now = timezone.now()
    chats = Conversation.objects.filter(pk__in=conversation_ids)
    chats.filter(lease_owner=worker_id).update(leased_until=now + timedelta(seconds=lease_seconds))
    return set(chats.exclude(lease_owner__in=[worker_id, ""]).values_list("pk", flat=True))


def lock_if_held(conversation_id: int, worker_id: str) -> bool:
    """Lock the conversation's row for this transaction if `worker_id` still owns its lease.

    The lock does not block storing the chat's messages (FOR NO KEY UPDATE), only another
    `mark_ready` or hand-back of the same chat."""
    assert connection.in_atomic_block, "the lock lasts only as long as a transaction"
    return (
        Conversation.objects.select_for_update(no_key=True)
        .filter(pk=conversation_id, lease_owner=worker_id)
        .values_list("pk", flat=True)
        .first()
        is not None
    )


def hand_back(conversation_id: int, worker_id: str, *, ready_at: datetime | None) -> None:
    """Let go of the conversation, ready again at `ready_at` (None: nothing is pending).
    Call it after `lock_if_held`, in the same transaction."""
    Conversation.objects.filter(pk=conversation_id, lease_owner=worker_id).update(
        lease_owner="", leased_until=None, ready_at=ready_at
    )


def release(worker_id: str, conversation_ids: list[int]) -> int:
    """Let go of conversations whose work was cut short (shutdown), ready for another worker
    at once; returns how many were let go."""
    now = Value(timezone.now(), output_field=DateTimeField())
    return Conversation.objects.filter(pk__in=conversation_ids, lease_owner=worker_id).update(
        lease_owner="", leased_until=None, ready_at=Coalesce("ready_at", now)
    )


def soonest_ready_at() -> datetime | None:
    """When the next conversation is (or was) ready, held or not; None when all are idle."""
    return (
        Conversation.objects.filter(ready_at__isnull=False)
        .order_by("ready_at")
        .values_list("ready_at", flat=True)
        .first()
    )


class LeaseLostError(Exception):
    """Another worker took the conversation over (this one was presumed dead): stop at once."""
