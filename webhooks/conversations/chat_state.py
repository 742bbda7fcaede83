"""What intake reads of the chats of the messages it stores, under their row locks: whether each
is paused, its agent session and its contact's name, read for all of them in one query."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Q

from webhooks.conversations.pausing import paused
from webhooks.models import Conversation

# A chat as a webhook names it: its tenant's id and its JID.
type ChatKey = tuple[int, str]


@dataclass(slots=True)
class ChatState:
    """A chat as intake's rules see it. The rules update it as they admit each message, so that
    the next message of the same run sees the chat as if the earlier ones had been stored."""

    id: int
    is_paused: bool
    session_generation: int
    contact_name: str
    rate_limited_reply_at: datetime | None
    # Its messages of the last hour that count towards the per-contact limit, when the tenant
    # has one (webhooks.inbound.rate_limit).
    recent_messages: int = 0
    # The name it was stored with, told apart from `contact_name` once a message changes it.
    stored_contact_name: str = ""


def lock_chats(
    *, ids: Collection[int] = (), keys: Collection[ChatKey] = (), now: datetime
) -> dict[ChatKey, ChatState]:
    """The state of the chats with these `ids` and `keys`, their rows locked for the rest of
    the transaction: the rules that read them (the per-contact count included) see every
    message stored before and none stored meanwhile. The lock is the one any write of a row
    takes (FOR NO KEY UPDATE), taken in id order, as every transaction that locks several
    conversations does, so that two of them never wait for each other. A chat that does not
    exist is left out."""
    assert connection.in_atomic_block, "the lock lasts only as long as a transaction"
    wanted = [Q(pk__in=ids)] if ids else []
    for tenant_id, jids in _by_tenant(keys).items():
        wanted.append(Q(instance_id=tenant_id, chat_jid__in=jids))
    if not wanted:
        return {}
    which = wanted[0]
    for more in wanted[1:]:
        which |= more
    chats = Conversation.objects.select_for_update(no_key=True).filter(which)
    if len(ids) + len(keys) > 1:  # one row needs no order, and ordering costs a lone webhook
        chats = chats.order_by("pk")
    rows = chats.annotate(is_paused=paused(now)).values_list(
        "pk", "instance_id", "chat_jid", "is_paused", "session_generation", "contact_name",
        "rate_limited_reply_at",
    )  # fmt: skip
    return {
        (tenant_id, jid): ChatState(
            pk, bool(is_paused), generation, name, replied_at, stored_contact_name=name
        )
        for pk, tenant_id, jid, is_paused, generation, name, replied_at in rows
    }


def note_contact_names(chats: Collection[ChatState]) -> None:
    """Store the contact name of each chat whose name its messages changed."""
    for chat in chats:
        if chat.contact_name != chat.stored_contact_name:
            Conversation.objects.filter(pk=chat.id).update(contact_name=chat.contact_name)
            chat.stored_contact_name = chat.contact_name


def _by_tenant(keys: Collection[ChatKey]) -> Mapping[int, list[str]]:
    jids: dict[int, list[str]] = {}
    for tenant_id, jid in keys:
        jids.setdefault(tenant_id, []).append(jid)
    return jids
