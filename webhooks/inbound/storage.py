"""Storing incoming messages: each once per tenant and WhatsApp id, with the chats of those to
answer marked ready in the same transaction, both or neither.

The messages that arrive together are stored together, in one transaction of a few statements
whatever their number: compiling a statement costs the ORM far more than the database takes to
run it. In that transaction, every row is taken in the same order as in every other that
stores messages or answers them: the chats' rows first, locked in id order, then the messages'
unique keys; two transactions taking them in opposite orders would wait for each other.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction

from instances.models import InstanceConfig
from instances.selectors import TenantNotFoundError, TenantRef, forget_tenant
from webhooks.conversations import leases
from webhooks.conversations.chat_state import ChatKey, ChatState, lock_chats, note_contact_names
from webhooks.inbound import policy, rate_limit
from webhooks.inbound.parsing import IncomingMessage
from webhooks.inbound.relay import ReplyServer
from webhooks.inbound.screening import Screening
from webhooks.models import Conversation, Message

CONVERSATION_CACHE_SECONDS = 3600


class Duplicate:
    """What storing a message the tenant already has gives: it is not stored again."""


DUPLICATE = Duplicate()
type Stored = Message | Duplicate | Exception


@dataclass(frozen=True, slots=True)
class Arrival:
    """An incoming message to store, with what intake decided before looking at its chat."""

    tenant: TenantRef
    incoming: IncomingMessage
    screening: Screening
    server: ReplyServer
    raw_payload: dict[str, Any] = field(repr=False)  # as kept: see intake

    @property
    def chat(self) -> ChatKey:
        return (self.tenant.id, self.incoming.chat_jid)

    @property
    def key(self) -> tuple[int, str]:
        """What a message is unique by: its tenant and its WhatsApp id."""
        return (self.tenant.id, self.incoming.message_id)


class _ForgottenChatsError(IntegrityError):
    """Chats whose cached ids are gone (deleted with their tenant, or by a person): their
    messages cannot be stored, as if their foreign key had failed."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"{len(keys)} chats no longer stored")
        self.keys = keys


def store_messages(arrivals: Sequence[Arrival], *, now: datetime) -> list[Stored]:
    """Store what arrived, in arrival order; for each, its message as stored, DUPLICATE, or
    the error that kept it from being stored (that message's alone: the others are stored)."""
    firsts: dict[tuple[int, str], int] = {}
    for index, arrival in enumerate(arrivals):
        firsts.setdefault(arrival.key, index)
    unique = [arrivals[index] for index in firsts.values()]
    try:
        stored: list[Stored] = list(_store_together(unique, now=now))
    except IntegrityError:
        # One of them is stored already, or its tenant is gone: each on its own, to tell
        # which, and to store the others.
        stored = [_store_alone(arrival, now=now) for arrival in unique]
    by_first = dict(zip(firsts.values(), stored, strict=True))
    return [
        by_first[index] if index in by_first else _again(by_first[firsts[arrival.key]])
        for index, arrival in enumerate(arrivals)
    ]


def _again(first: Stored) -> Stored:
    """What the same message arriving twice in one batch gets the second time."""
    return DUPLICATE if isinstance(first, Message) else first


def _store_alone(arrival: Arrival, *, now: datetime) -> Stored:
    try:
        (message,) = _store_together([arrival], now=now)
    except IntegrityError as error:
        tenant, incoming = arrival.tenant, arrival.incoming
        stored = Message.objects.filter(instance_id=tenant.id, whatsapp_id=incoming.message_id)
        if stored.exists():
            # The same message delivered twice: the other delivery stored it.
            return DUPLICATE
        if not InstanceConfig.objects.filter(pk=tenant.id).exists():
            # The tenant was deleted after it was looked up.
            forget_tenant(tenant.name)
            return TenantNotFoundError(tenant.name)
        # Neither: the message could not be stored, which no "not found" may hide (Evolution
        # drops a 404 and the message would be lost).
        return error
    except DatabaseError as error:  # this one's: those stored before it stay stored
        return error
    return message


def _store_together(arrivals: Sequence[Arrival], *, now: datetime) -> list[Message]:
    """Store them in one transaction; IntegrityError, with nothing stored, when one of them
    cannot be."""
    try:
        return _store_in_one_transaction(arrivals, now=now)
    except _ForgottenChatsError as error:
        # Their chats are looked for, or made, anew.
        cache.delete_many(error.keys)
        return _store_in_one_transaction(arrivals, now=now)


def _store_in_one_transaction(arrivals: Sequence[Arrival], *, now: datetime) -> list[Message]:
    messages = [_message(arrival) for arrival in arrivals]
    with transaction.atomic():
        chats, learned = _lock_chats(arrivals, messages, now=now)
        _count_recent(arrivals, chats, now=now)
        for arrival, message in zip(arrivals, messages, strict=True):
            chat = chats[arrival.chat]
            message.conversation_id = chat.id
            policy.admit(message, arrival.screening, arrival.tenant, chat, now=now)
        Message.objects.bulk_create(messages)
        ready = {m.conversation_id for m in messages if m.status == Message.Status.RECEIVED}
        leases.mark_ready(*sorted(ready), now=now)
        leases.note_message(*sorted({m.conversation_id for m in messages} - ready), now=now)
        note_contact_names(chats.values())
        if learned:
            # Only once committed: a rolled-back conversation must not be remembered. Robust: a
            # cache that fails then costs a lookup later, never the stored messages' answers.
            transaction.on_commit(
                lambda: cache.set_many(learned, CONVERSATION_CACHE_SECONDS), robust=True
            )
    return messages


def _lock_chats(
    arrivals: Sequence[Arrival], messages: Sequence[Message], *, now: datetime
) -> tuple[dict[ChatKey, ChatState], dict[str, int]]:
    """The arrivals' chats, locked, each made on its first message; and the cache entries of
    those whose ids were not cached."""
    keys = {arrival.chat: _cache_key(arrival.chat) for arrival in arrivals}
    # The ids are cached: conversations are deleted only with their tenant, which is then no
    # longer found.
    cached: dict[str, int] = cache.get_many(list(keys.values()))
    unknown = sorted(key for key, cache_key in keys.items() if cache_key not in cached)
    if unknown:
        _make_chats(unknown, arrivals, messages)
    chats = lock_chats(ids=list(cached.values()), keys=unknown, now=now)
    if len(chats) < len(keys):
        raise _ForgottenChatsError([keys[key] for key in keys if key not in chats])
    return chats, {keys[key]: chats[key].id for key in unknown}


def _make_chats(
    keys: list[ChatKey], arrivals: Sequence[Arrival], messages: Sequence[Message]
) -> None:
    """Make the chats that are not stored yet, named as their contact's messages name them.
    Those stored already are left as they are, unlocked: the lock comes next, in id order.
    Made in the order of their unique key, so that two transactions making the same chats
    wait for each other at the first, never each at one the other made."""
    names = {
        arrival.chat: name
        for arrival, message in zip(arrivals, messages, strict=True)
        if (name := policy.contact_name(message, arrival.screening))
    }
    Conversation.objects.bulk_create(
        [
            Conversation(instance_id=key[0], chat_jid=key[1], contact_name=names.get(key, ""))
            for key in keys
        ],
        ignore_conflicts=True,
    )


def _count_recent(
    arrivals: Sequence[Arrival], chats: dict[ChatKey, ChatState], *, now: datetime
) -> None:
    """What the per-contact limit counts, for the chats of tenants that have one."""
    limited = {chats[a.chat].id: chats[a.chat] for a in arrivals if a.tenant.max_messages_per_hour}
    if limited:
        for chat_id, count in rate_limit.recent_counts(list(limited), now=now).items():
            limited[chat_id].recent_messages = count


def _cache_key(chat: ChatKey) -> str:
    # A chat JID comes from the body, and memcached refuses keys with spaces, control
    # characters or over 250 bytes: its digest has none of those.
    tenant_id, chat_jid = chat
    digest = hashlib.blake2b(chat_jid.encode(), digest_size=16).hexdigest()
    return f"omnihub:conversation:{tenant_id}:{digest}"


def _message(arrival: Arrival) -> Message:
    """The message as stored, before the rules that read its chat. A message whose reply has
    nowhere trusted to go is stored failed, with the reason."""
    tenant, incoming, server = arrival.tenant, arrival.incoming, arrival.server
    reason = arrival.screening.ignore_reason
    media = incoming.media
    if reason:
        status = Message.Status.IGNORED
    elif server.refusal:
        status = Message.Status.FAILED
    else:
        status = Message.Status.RECEIVED
    return Message(
        instance_id=tenant.id,
        whatsapp_id=incoming.message_id,
        status=status,
        ignore_reason=reason,
        last_error=server.refusal,
        chat_jid=incoming.chat_jid,
        phone=incoming.phone,
        reply_to=incoming.reply_to,
        whatsapp_user_id=incoming.whatsapp_id,
        push_name=incoming.push_name,
        kind=incoming.kind,
        text=incoming.text,
        quoted_text=incoming.quoted_text,
        sent_at=incoming.timestamp,
        media_mimetype=media.mimetype if media else "",
        media_file_name=media.file_name if media else "",
        media_size=media.size if media else None,
        media_url=(media.url or "") if media else "",
        media_base64=(media.base64 or "") if media and not reason else "",
        raw_payload=arrival.raw_payload,
        reply_evolution_url=server.url,
        reply_evolution_key=server.key,
    )
