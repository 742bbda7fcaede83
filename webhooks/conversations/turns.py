"""What a worker takes up next in each of its chats: the chat's next turn, in arrival order.

A turn is a message, or a burst of them the tenant debounces into one agent call, or the notice
sent for one that failed. Chats are taken up many at once (the worker hands over every chat
that finished its turn meanwhile, webhooks.conversations.progress.advance, and every chat it
claims, `claim_turns`): each query here serves them all.

A message waiting for its retry, or a notice waiting for its own, holds back the messages behind
it: the agent never sees a chat out of order, nor a user its answers. A chat with nothing to
take up now is handed back, ready again when its next turn is due.
"""

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from instances.selectors import keep_tenant_config, kept_tenant_config
from webhooks.conversations import debounce, leases, pausing, reply_parts
from webhooks.conversations.leases import LeaseLostError
from webhooks.models import Conversation, Message, ReplyPart

Status = Message.Status


@dataclass(slots=True)
class Turn:
    """The answer to a message, or to a burst of them (debounce), or the notice sent for one
    that failed.

    The answer (or notice) is stored on `carrier`, the first of the messages; `followers` are
    answered with it and share its status. `parts` are its reply's parts, in order, once the
    agent has answered; `notice` is the notice to send, for a notice's turn."""

    carrier: Message
    followers: list[Message] = field(default_factory=list)
    parts: list[ReplyPart] = field(default_factory=list)
    notice: ReplyPart | None = None
    # The chat as the turn found it: how often it had been queued (Conversation.times_queued),
    # and whether nothing else waited behind the turn. If both still hold when the turn ends,
    # the chat has nothing more to take up, with no need to look (progress.advance).
    chat_times_queued: int | None = None
    nothing_behind: bool = False

    @property
    def messages(self) -> list[Message]:
        return [self.carrier, *self.followers]

    @property
    def conversation_id(self) -> int:
        return self.carrier.conversation_id


# For each chat handed in: its next turn, None when it has none now (handed back), or
# LeaseLostError when another worker holds it.
type Taken = Turn | LeaseLostError | None


def claim_turns(
    worker_id: str,
    *,
    limit: int,
    lease_seconds: float,
    holding: Collection[int] = (),
    look_first: bool = True,
) -> tuple[int, dict[int, Turn]]:
    """Claim up to `limit` ready chats for `worker_id` (none it is `holding`) and take up the
    next turn of each; returns how many were claimed, and the chats that have a turn. Those
    that turned out to have nothing to do now are handed back in the same transaction.
    `look_first`: whether any chat is claimable is looked at before the transaction, which on
    SQLite takes the database's write lock (needless when a wake-up just said one is)."""
    if look_first and not leases.any_claimable(holding):
        return 0, {}
    now = timezone.now()
    with transaction.atomic():
        claimed = leases.take_leases(
            worker_id, limit=limit, lease_seconds=lease_seconds, holding=holding
        )
        chats = read_chats(claimed, now=now)
        taken = begin_turns(worker_id, chats, now=now)
    return len(chats), {chat: turn for chat, turn in taken.items() if isinstance(turn, Turn)}


@dataclass(frozen=True, slots=True)
class ChatNow:
    """A chat as begin_turns needs it: its tenant; whether it is paused; its first and last
    waiting messages and its first failed one with a notice due; how often it had been queued."""

    tenant: int
    is_paused: bool
    first: int | None
    last: int | None
    notice: int | None
    times_queued: int

    @property
    def waiting(self) -> bool:
        return bool(self.first or self.notice)


def read_chats(
    chats: QuerySet[Conversation], *, now: datetime, excluding: Collection[int] = ()
) -> dict[int, ChatNow]:
    """`chats` as they are now, leaving out the messages `excluding` (a turn that ends in the
    same transaction); each message looked for by its own index (an OR of the waiting and the
    noticed would read the chat's history).

    Read once the chats are locked, in a statement that takes no lock: on PostgreSQL a
    statement that waited for a lock still reads other tables as they were when it began, and
    would miss a message whose webhook held the chat's row meanwhile."""
    chat = Message.objects.filter(conversation=OuterRef("pk"))
    if excluding:
        chat = chat.exclude(pk__in=excluding)
    pending = chat.filter(status__in=Message.PENDING)

    def first(messages: QuerySet[Message], order: str = "pk") -> Subquery:
        return Subquery(messages.order_by(order).values("pk")[:1])

    rows = chats.annotate(
        **pausing.reading(now),
        first_pending=first(pending),
        last_pending=first(pending, "-pk"),
        first_notice=first(chat.filter(notice_due_at__isnull=False)),
    ).values_list(
        "pk", "instance_id", "is_paused", "first_pending", "last_pending", "first_notice",
        "times_queued",
    )  # fmt: skip
    return {
        pk: ChatNow(tenant, bool(paused), first_id, last_id, notice_id, queued)
        for pk, tenant, paused, first_id, last_id, notice_id, queued in rows
    }


def begin_turns(
    worker_id: str, chats: Mapping[int, ChatNow], *, now: datetime, stopping: bool = False
) -> dict[int, Turn | None]:
    """The next turn of each of `chats` (their rows locked by the caller, then read with
    read_chats), its messages marked processing, or None: the chat handed back. A worker
    `stopping` takes nothing up and hands every chat back."""
    paused = [c for c, chat in chats.items() if chat.is_paused]
    if any(chats[c].waiting for c in paused):
        # A paused chat's waiting messages are not answered, then or later, nor are the
        # notices of its failures sent into a conversation a person has taken over.
        pausing.hold_pending(paused)
        Message.objects.filter(conversation_id__in=paused, notice_due_at__isnull=False).update(
            notice_due_at=None
        )
    live = {c: chat for c, chat in chats.items() if not chat.is_paused}
    waiting = [chat for chat in live.values() if chat.waiting]
    loaded = _load(
        [pk for chat in waiting for pk in (chat.first, chat.notice) if pk],
        tenants={chat.tenant for chat in waiting},
    )
    plan = _Plan(worker_id, now=now, stopping=stopping)
    for c in chats:
        chat = live.get(c)
        if chat is None:
            plan.decide(c, None, None)
        else:
            plan.decide(c, loaded.get(chat.first or 0), loaded.get(chat.notice or 0))
    plan.carry_out()
    for c, turn in plan.turns.items():
        if turn is not None and turn.notice is None:
            chat = chats[c]
            turn.chat_times_queued = chat.times_queued
            newest = max(message.pk for message in turn.messages)
            turn.nothing_behind = chat.notice is None and (chat.last or 0) <= newest
    return plan.turns


class _Plan:
    """What begin_turns does to each chat, decided one chat at a time and written together."""

    def __init__(self, worker_id: str, *, now: datetime, stopping: bool) -> None:
        self.worker_id = worker_id
        self.now = now
        self.stopping = stopping
        self.turns: dict[int, Turn | None] = {}
        self.hand_back: dict[int, datetime | None] = {}
        self.batches: list[list[Message]] = []
        self.notices: dict[int, Message] = {}  # by chat: a failed message whose notice is due

    def decide(self, chat: int, first: Message | None, failed: Message | None) -> None:
        self.turns[chat] = None
        if failed is not None and (first is None or failed.pk < first.pk):
            due = failed.notice_due_at
            assert due is not None
            if due > self.now or self.stopping:
                self.hand_back[chat] = due
            else:
                self.notices[chat] = failed
            return
        if first is None:
            self.hand_back[chat] = None
            return
        due = first.next_attempt_at or self.now
        if due > self.now or self.stopping:
            self.hand_back[chat] = due
            return
        if first.attempts:
            # Taken up before: its batch, as it was formed, is tried again together.
            self.batches.append([first, *_deferred(Message.objects.filter(answered_with=first))])
            return
        chosen = debounce.batch_or_quiet_at(first, now=self.now)
        if isinstance(chosen, datetime):
            self.hand_back[chat] = chosen
        else:
            self.batches.append(chosen)

    def carry_out(self) -> None:
        if self.batches:
            _take_up(self.batches, now=self.now)
        parts = reply_parts.stored([batch[0] for batch in self.batches])
        for batch in self.batches:
            first = batch[0]
            self.turns[first.conversation_id] = Turn(first, batch[1:], parts.get(first.pk, []))
        for chat, turn in _notice_turns(self.notices, now=self.now).items():
            if turn is None:  # sent meanwhile: nothing is left to do for it
                self.hand_back[chat] = self.now
            self.turns[chat] = turn
        leases.hand_back(self.worker_id, self.hand_back)


def _load(ids: list[int], *, tenants: set[int]) -> dict[int, Message]:
    """The messages with these ids, each with its tenant (one of `tenants`): as this process
    keeps it (instances.selectors.tenant_config), or when it keeps none of some, joined to
    the messages: a tenant read by itself would cost a statement of its own."""
    if not ids:
        return {}
    kept = {tenant: kept_tenant_config(tenant) for tenant in tenants}
    messages = _deferred(Message.objects.filter(pk__in=ids))
    if None in kept.values():
        messages = messages.select_related("instance")
    loaded = {m.pk: m for m in messages}
    for message in loaded.values():
        config = kept.get(message.instance_id)
        if config is None:
            keep_tenant_config(message.instance)
            kept[message.instance_id] = message.instance
        else:
            message.instance = config
    return loaded


def _deferred(messages: QuerySet[Message]) -> QuerySet[Message]:
    # The raw payload is large and only the admin reads it.
    return messages.defer("raw_payload").order_by("pk")


def _take_up(batches: list[list[Message]], *, now: datetime) -> None:
    """Mark every batch's messages processing, in a new attempt; followers point at their
    batch's first message, whose answer they share."""
    Message.objects.filter(pk__in=[m.pk for batch in batches for m in batch]).update(
        status=Status.PROCESSING,
        attempts=F("attempts") + 1,
        attempt_started_at=now,
        next_attempt_at=None,
        updated_at=now,
    )
    joining: dict[int, list[int]] = defaultdict(list)
    for first, *followers in batches:
        joining[first.pk] += [m.pk for m in followers if m.answered_with_id is None]
    for first_pk, joiners in joining.items():
        if joiners:
            Message.objects.filter(pk__in=joiners).update(answered_with=first_pk)
    for first, *followers in batches:
        for message in (first, *followers):
            message.status = Status.PROCESSING
            message.attempts += 1
            message.attempt_started_at = now
            message.next_attempt_at = None
            message.updated_at = now
        for message in followers:
            message.answered_with_id = first.pk


def _notice_turns(failed: dict[int, Message], *, now: datetime) -> dict[int, Turn | None]:
    """For each chat, the turn that sends its failed message's notice, or None when the
    notice was sent meanwhile (the message's notice then cleared)."""
    if not failed:
        return {}
    unsent = ReplyPart.objects.filter(message__in=failed.values(), sent_at=None).exclude(
        kind=ReplyPart.Kind.REPLY
    )
    notices: dict[int, ReplyPart] = {}
    for part in unsent.order_by("kind", "position"):
        notices.setdefault(part.message_id, part)
    turns: dict[int, Turn | None] = {}
    for chat, message in failed.items():
        if message.pk in notices:
            turns[chat] = Turn(message, notice=notices[message.pk])
        else:
            Message.objects.filter(pk=message.pk).update(notice_due_at=None)
            turns[chat] = None
    return turns
