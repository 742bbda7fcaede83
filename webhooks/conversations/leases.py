"""Which conversations need a worker, and which worker holds each: the one place that reads and
writes `Conversation.ready_at` and its lease.

- A webhook marks its chat ready in the transaction that stores the message (`mark_ready`).
- A worker claims ready chats whose lease is free (`take_leases`, in the transaction that takes
  up their turns: webhooks.conversations.turns.claim_turns); a lease that expired is free, so
  the chats of a worker that died are simply claimable again, with no separate sweep.
- The holder renews its leases while it lives (`renew`), and hands a chat back under the
  chat's row lock (`lock_held`) once it has nothing left to do now (`hand_back`).

Why the row lock: a webhook's `mark_ready` always writes the row, so it and `hand_back` take
turns on it. Either the webhook commits first, and the holder, locking the row after it, sees
the new message; or the holder hands back first, and the webhook's write, applied to the row
as the holder left it, marks the chat ready again. No message is stranded in between.
"""

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, F, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from webhooks.conversations import doorbell
from webhooks.models import Conversation

# PostgreSQL delivers a NOTIFY at commit, and not at all on rollback.
WAKE_UP_CHANNEL = "omnihub_conversations"

# What a caller reads of each chat it locks, by name: expressions annotated on its row.
type Reading = Mapping[str, Any]


def lease_held(now: datetime) -> Q:
    """The one definition of a held lease: an owner whose lease has not yet expired."""
    return ~Q(lease_owner="") & Q(leased_until__gt=now)


def ready(now: datetime) -> Q:
    """Conversations a worker may claim now."""
    return Q(ready_at__lte=now) & ~lease_held(now)


def mark_ready(*conversation_ids: int, now: datetime, new_message: bool = True) -> None:
    """Make the conversations ready for a worker; call it in the transaction that stores their
    new messages (or, for a person's retry, that queues an old one again). For several, lock
    their rows first, in id order (webhooks.conversations.chat_state.lock_chats): this UPDATE
    alone would take them in whatever order the database meets them.

    A row is written even when the chat is already ready (see the module's docstring), and a
    retry time already set is kept: a chat's later messages wait behind its retry. A person's
    retry (not a `new_message`) makes the chat ready now even so: they asked for a try now.
    """
    if not conversation_ids:
        return
    at = Value(now, output_field=DateTimeField())
    changes: dict[str, object] = {
        "ready_at": Coalesce("ready_at", at)
        if new_message
        else Least(Coalesce("ready_at", at), at),
        "times_queued": F("times_queued") + 1,
    }
    if new_message:
        changes["last_message_at"] = now
    Conversation.objects.filter(pk__in=conversation_ids).update(**changes)
    # One wake-up for all of them: a worker that wakes claims every ready chat.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [WAKE_UP_CHANNEL])
    else:
        transaction.on_commit(doorbell.ring, robust=True)


def note_message(*conversation_ids: int, now: datetime) -> None:
    """Record a message that needs no answer (an ignored one) on each conversation."""
    if conversation_ids:
        Conversation.objects.filter(pk__in=conversation_ids).update(last_message_at=now)


def any_claimable(holding: Collection[int] = ()) -> bool:
    """Whether a chat is ready to be claimed. Looked at before a claim's transaction: on SQLite
    a write transaction takes the database's one write lock, which webhooks wait for."""
    return _claimable(timezone.now(), holding).exists()


def take_leases(
    worker_id: str, *, limit: int, lease_seconds: float, holding: Collection[int] = ()
) -> QuerySet[Conversation]:
    """Lease up to `limit` ready conversations to `worker_id`, the longest waiting first, none
    of those it is `holding` (its own lease may have run out while it is still answering), in
    the caller's transaction: the chats claimed, as a queryset the caller reads what it needs
    of, in a statement after the claim.

    On PostgreSQL, SKIP LOCKED lets workers on several machines claim side by side, never the
    same chat; SQLite runs one write transaction at a time, so claims there take turns. The
    claim is one UPDATE of the rows its subquery locks; the same conditions in its own WHERE
    are checked again on a row another claim changed meanwhile.
    """
    assert connection.in_atomic_block, "the claim is made under the rows' locks"
    now = timezone.now()
    claimable = _claimable(now, holding)
    locked = claimable.order_by("ready_at").select_for_update(skip_locked=True).values("pk")
    until = now + timedelta(seconds=lease_seconds)
    claimable.filter(pk__in=Subquery(locked[:limit])).update(
        lease_owner=worker_id, leased_until=until
    )
    # Its ready_at, untouched by the claim, keeps the read on the index of ready chats: the
    # lease's columns have none, and the table holds every chat ever seen.
    return Conversation.objects.filter(ready_at__lte=now, lease_owner=worker_id, leased_until=until)


def _claimable(now: datetime, holding: Collection[int]) -> QuerySet[Conversation]:
    return Conversation.objects.filter(ready(now)).exclude(pk__in=holding)


def renew(worker_id: str, conversation_ids: list[int], *, lease_seconds: float) -> set[int]:
    """Extend the leases `worker_id` owns among `conversation_ids`; returns those another
    worker took over meanwhile (those handed back, by their owner, are neither)."""
    now = timezone.now()
    chats = Conversation.objects.filter(pk__in=conversation_ids)
    with transaction.atomic():
        mine = _lock_in_order(chats.filter(lease_owner=worker_id))
        Conversation.objects.filter(pk__in=mine).update(
            leased_until=now + timedelta(seconds=lease_seconds)
        )
    return set(chats.exclude(lease_owner__in=[worker_id, ""]).values_list("pk", flat=True))


def lock_held(
    worker_id: str, conversation_ids: Collection[int], *, reading: Reading
) -> dict[int, dict[str, Any]]:
    """Lock, for this transaction and in id order, the rows of those of `conversation_ids`
    whose lease `worker_id` still owns; returns them, each with what `reading` names (e.g.
    {"is_paused": pausing.paused(now)}), read under the same lock.

    The lock (FOR NO KEY UPDATE) is the one intake takes on a chat whose message it stores,
    and any other write of the row: webhooks of these chats wait for this transaction, which
    is why a worker's steps are short ones."""
    assert connection.in_atomic_block, "the lock lasts only as long as a transaction"
    chats = Conversation.objects.select_for_update(no_key=True).filter(
        pk__in=conversation_ids, lease_owner=worker_id
    )
    return _read(chats.order_by("pk"), reading)


def _read(chats: QuerySet[Conversation], reading: Reading) -> dict[int, dict[str, Any]]:
    rows = chats.annotate(**reading).values("pk", *reading)
    return {row.pop("pk"): row for row in rows}


def hand_back(worker_id: str, ready_at: Mapping[int, datetime | None]) -> None:
    """Let go of each conversation, ready again at its `ready_at` (None: nothing is pending).
    Call it after `lock_held`, in the same transaction."""
    by_time: dict[datetime | None, list[int]] = defaultdict(list)
    for conversation_id, at in ready_at.items():
        by_time[at].append(conversation_id)
    for at, conversation_ids in by_time.items():
        Conversation.objects.filter(pk__in=conversation_ids, lease_owner=worker_id).update(
            lease_owner="", leased_until=None, ready_at=at
        )


def release(worker_id: str, conversation_ids: list[int]) -> int:
    """Let go of conversations whose work was cut short (shutdown), ready for another worker
    at once; returns how many were let go."""
    now = Value(timezone.now(), output_field=DateTimeField())
    with transaction.atomic():
        mine = _lock_in_order(
            Conversation.objects.filter(pk__in=conversation_ids, lease_owner=worker_id)
        )
        return Conversation.objects.filter(pk__in=mine).update(
            lease_owner="", leased_until=None, ready_at=Coalesce("ready_at", now)
        )


def _lock_in_order(chats: QuerySet[Conversation]) -> list[int]:
    """Lock `chats`' rows in id order, as every transaction that locks several does: two that
    took the same rows in different orders could each wait for the other."""
    return list(chats.order_by("pk").select_for_update(no_key=True).values_list("pk", flat=True))


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
