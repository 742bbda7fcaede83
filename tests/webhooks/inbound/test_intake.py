"""Webhooks that arrive while others are being stored are stored together, in one batch, and
each gets the answer it would have had alone: the rules that read a chat see the batch's
earlier messages of that chat as if they had been stored before."""

import asyncio
import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from tests.factories import InstanceConfigFactory, MessageFactory
from tests.webhooks.chat_payloads import CHAT, from_contact, from_the_phone, jid
from tests.webhooks.conftest import evolution_payload, post_json, post_webhook
from webhooks import views
from webhooks.conversations import pausing
from webhooks.inbound import intake, rate_limit, storage
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/webhook/evolution/acme"
SLOW_DOWN = "Você enviou muitas mensagens; tente de novo mais tarde."


class HeldStorage:
    """Stores as intake does, noting the WhatsApp ids of each batch, and holds the first batch
    until released: the webhooks posted meanwhile queue behind it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def __call__(self, arrivals: Sequence[storage.Arrival], *, now: datetime) -> list[Any]:
        self.batches.append([arrival.incoming.message_id for arrival in arrivals])
        if len(self.batches) == 1:
            self.holding.set()
            assert self.release.wait(timeout=30)
        return storage.store_messages(arrivals, now=now)


class Answer(NamedTuple):
    code: int
    body: dict[str, Any]


def posted_behind_a_held_batch(
    first: dict[str, Any], behind: list[tuple[str, dict[str, Any]]]
) -> tuple[HeldStorage, list[Answer]]:
    """Post `first` to acme and, while it is being stored, each (URL, body) of `behind`; the
    batches intake stored, and every answer, `first`'s first."""
    held = HeldStorage()
    with mock.patch.object(intake, "store_messages", held):
        answers = async_to_sync(_post_behind)(held, first, behind)
    return held, answers


async def _post_behind(
    held: HeldStorage, first: dict[str, Any], behind: list[tuple[str, dict[str, Any]]]
) -> list[Answer]:
    client = AsyncClient()
    handed_over = 0
    all_handed_over = asyncio.Event()

    async def counted(webhook: intake.Webhook) -> intake.WebhookOutcome:
        nonlocal handed_over
        handed_over += 1
        if handed_over == 1 + len(behind):
            all_handed_over.set()
        # Awaited, it is in intake's queue before this coroutine first waits.
        return await intake.receive_webhook(webhook)

    async def post(url: str, body: dict[str, Any]) -> Answer:
        response = await client.post(url, json.dumps(body), content_type="application/json")
        return Answer(response.status_code, response.json())

    with mock.patch.object(views, "receive_webhook", counted):
        held_one = asyncio.create_task(post(URL, first))
        await asyncio.to_thread(held.holding.wait, 30)
        queued = [asyncio.create_task(post(url, body)) for url, body in behind]
        await asyncio.wait_for(all_handed_over.wait(), 30)
        held.release.set()
        return list(await asyncio.gather(held_one, *queued))


def statuses() -> list[str]:
    return list(Message.objects.order_by("id").values_list("status", flat=True))


def test_webhooks_that_arrive_while_a_batch_is_stored_are_stored_together_in_the_next():
    InstanceConfigFactory.create(name="acme")
    others = [(URL, from_contact(f"#{n}", f"M-{n}", chat=f"55119000000{n}")) for n in range(3)]

    held, answers = posted_behind_a_held_batch(from_contact("first", "FIRST"), others)

    assert held.batches == [["FIRST"], ["M-0", "M-1", "M-2"]]
    assert [a.body for a in answers] == [
        {"status": "queued", "message_id": message_id}
        for message_id in ["FIRST", "M-0", "M-1", "M-2"]
    ]
    assert statuses() == ["received"] * 4
    chats = Conversation.objects.order_by("chat_jid")
    assert [c.chat_jid for c in chats] == [jid(f"55119000000{n}") for n in range(3)] + [jid(CHAT)]
    assert all(c.ready_at is not None and c.last_message_at is not None for c in chats)
    assert all(m.conversation.chat_jid == m.chat_jid for m in Message.objects.all())


def test_the_same_message_twice_in_one_batch_is_stored_once():
    InstanceConfigFactory.create(name="acme")
    twice = from_contact("Oi", "M-1", chat="5511900000001")

    held, answers = posted_behind_a_held_batch(from_contact("first", "FIRST"), [(URL, twice)] * 2)

    assert held.batches == [["FIRST"], ["M-1", "M-1"]]
    assert [a.body["status"] for a in answers] == ["queued", "queued", "duplicate"]
    assert answers[2].body["message_id"] == "M-1"
    assert Message.objects.filter(whatsapp_id="M-1").count() == 1


def test_a_message_stored_before_is_a_duplicate_and_the_rest_of_its_batch_is_stored():
    acme = InstanceConfigFactory.create(name="acme")
    MessageFactory.create(instance=acme, whatsapp_id="OLD", chat_jid=jid("5511900000001"))
    behind = [
        (URL, from_contact("new", "NEW-1", chat="5511900000001")),
        (URL, from_contact("again", "OLD", chat="5511900000001")),
        (URL, from_contact("new too", "NEW-2", chat="5511900000002")),
    ]

    _, answers = posted_behind_a_held_batch(from_contact("first", "FIRST"), behind)

    assert [a.body["status"] for a in answers] == ["queued", "queued", "duplicate", "queued"]
    stored = Message.objects.values_list("whatsapp_id", flat=True)
    assert sorted(stored) == ["FIRST", "NEW-1", "NEW-2", "OLD"]
    assert Message.objects.get(whatsapp_id="OLD").text == "Oi! Vocês abrem amanhã?"


def test_a_chat_s_messages_in_one_batch_count_towards_its_limit_in_arrival_order():
    InstanceConfigFactory.create(name="acme", max_messages_per_hour=3, rate_limited_reply=SLOW_DOWN)
    behind = [(URL, from_contact(f"#{n}", f"M-{n}")) for n in range(4)]

    held, answers = posted_behind_a_held_batch(from_contact("first", "FIRST"), behind)

    assert held.batches == [["FIRST"], ["M-0", "M-1", "M-2", "M-3"]]
    assert [a.body["status"] for a in answers] == ["queued"] * 4 + ["ignored"]
    assert answers[4].body["reason"] == rate_limit.REASON
    # The first over the limit is told so, through the normal send path; the next is not.
    told = Message.objects.get(whatsapp_id="M-2")
    assert (told.canned_reply, told.reply_text) == (Message.CannedReply.RATE_LIMITED, SLOW_DOWN)
    assert statuses() == ["received"] * 4 + ["ignored"]
    assert Conversation.objects.get().rate_limited_reply_at is not None


def test_a_person_s_reply_pauses_the_chat_for_the_messages_after_it_in_the_same_batch():
    InstanceConfigFactory.create(name="acme", human_takeover_minutes=30)
    behind = [
        (URL, from_contact("before", "BEFORE")),
        (URL, from_the_phone("Aqui é a Ana.", "PERSON")),
        (URL, from_contact("after", "AFTER")),
    ]

    _, answers = posted_behind_a_held_batch(from_contact("first", "FIRST"), behind)

    assert [a.body["status"] for a in answers] == ["queued", "queued", "ignored", "ignored"]
    assert answers[3].body["reason"] == pausing.PAUSED_ON_ARRIVAL
    assert statuses() == ["received", "received", "ignored", "paused"]
    assert Conversation.objects.get().paused_until is not None


def test_a_chat_paused_before_its_batch_holds_every_message_of_the_batch():
    InstanceConfigFactory.create(name="acme", human_takeover_minutes=30)
    behind = [(URL, from_contact(f"#{n}", f"M-{n}")) for n in range(2)]

    _, answers = posted_behind_a_held_batch(from_the_phone("Aqui é a Ana.", "PERSON"), behind)

    assert [a.body["status"] for a in answers] == ["ignored"] * 3
    assert statuses() == ["ignored", "paused", "paused"]
    assert Conversation.objects.get().ready_at is None


def test_a_reset_keyword_starts_a_new_session_from_the_next_message_of_its_batch():
    InstanceConfigFactory.create(name="acme", reset_keyword="#reset")
    behind = [(URL, from_contact(text, f"M-{n}")) for n, text in enumerate(["a", "#reset", "b"])]

    posted_behind_a_held_batch(from_contact("first", "FIRST"), behind)

    generations = Message.objects.order_by("id").values_list("session_generation", flat=True)
    assert list(generations) == [0, 0, 0, 1]
    assert Message.objects.get(whatsapp_id="M-1").canned_reply == Message.CannedReply.RESET
    assert Conversation.objects.get().session_generation == 1


def test_a_chat_keeps_the_name_its_contact_s_last_message_of_the_batch_gave():
    InstanceConfigFactory.create(name="acme")
    behind = [
        (URL, from_contact("oi", "M-1", name="Maria")),
        (URL, from_contact("oi", "M-2", chat="5511900000001", name="João")),
        (URL, from_contact("sou eu", "M-3", name="Maria C.")),
    ]

    posted_behind_a_held_batch(from_contact("first", "FIRST", name="M."), behind)

    names = dict(Conversation.objects.values_list("chat_jid", "contact_name"))
    assert names == {jid(CHAT): "Maria C.", jid("5511900000001"): "João"}


def test_webhooks_refused_or_for_no_tenant_beside_good_ones_get_their_own_answers():
    InstanceConfigFactory.create(name="acme")
    InstanceConfigFactory.create(name="locked", authenticated=True)
    misrouted = evolution_payload("text_pn", instance="someone-else")
    behind = [
        (URL, from_contact("good", "GOOD-1")),
        ("/webhook/evolution/ghost", from_contact("lost", "LOST")),
        ("/webhook/evolution/locked", from_contact("unproven", "UNPROVEN")),
        (URL, misrouted),
        (URL, evolution_payload("event_connection_update")),
        (URL, from_contact("good too", "GOOD-2")),
    ]

    _, answers = posted_behind_a_held_batch(from_contact("first", "FIRST"), behind)

    codes = [a.code for a in answers]
    assert codes == [200, 200, 404, 401, 200, 200, 200]
    assert [a.body.get("status") for a in answers] == [
        "queued", "queued", None, None, "ignored", "ignored", "queued",
    ]  # fmt: skip
    assert "misrouted" in answers[4].body["reason"]
    stored = Message.objects.order_by("id").values_list("whatsapp_id", flat=True)
    assert list(stored) == ["FIRST", "GOOD-1", "GOOD-2"]


def test_a_chat_deleted_since_its_id_was_remembered_is_made_anew():
    InstanceConfigFactory.create(name="acme")
    post_webhook("acme", from_contact("first", "FIRST"))
    Conversation.objects.all().delete()  # by a person, say: its id is still remembered

    answer = post_webhook("acme", from_contact("second", "SECOND"))

    assert answer["status"] == "queued"
    assert Message.objects.get().conversation == Conversation.objects.get()


def test_a_tenant_deleted_since_its_chat_was_remembered_is_not_found():
    tenant = InstanceConfigFactory.create(name="acme")
    post_webhook("acme", from_contact("first", "FIRST"))
    tenant.delete()  # behind the services' back, as another process would

    response = post_json(URL, from_contact("second", "SECOND"))

    assert response.status_code == 404
    assert not Message.objects.exists()
