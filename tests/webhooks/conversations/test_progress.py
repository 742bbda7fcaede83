"""The steps a worker records for many chats at once: each chat gets its own outcome."""

import pytest
from django.db import IntegrityError
from django.utils import timezone

from tests.factories import MessageFactory
from webhooks.conversations import leases, progress
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.progress import Answered, Step
from webhooks.conversations.retries import retry_message
from webhooks.conversations.turns import Turn, claim_turns
from webhooks.integrations.agents.client import AgentReply
from webhooks.models import Conversation, Message, MessageAttempt

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = "w1"


def taken_up(*messages: Message) -> list[Turn]:
    """The chats of `messages` claimed by WORKER, each with its first turn taken up."""
    Conversation.objects.update(ready_at=timezone.now())
    _, taken = claim_turns(WORKER, limit=10, lease_seconds=60)
    return [taken[m.conversation_id] for m in messages]


def test_each_chat_of_a_run_gets_its_own_outcome_when_one_was_taken_over():
    mine, lost = MessageFactory.create(), MessageFactory.create()
    turns = taken_up(mine, lost)
    Conversation.objects.filter(pk=lost.conversation_id).update(lease_owner="w2")

    outcomes = progress.store_replies(
        WORKER, [(t, AgentReply(text="Oi!", latency_ms=5)) for t in turns]
    )

    assert outcomes[0] is True
    assert isinstance(outcomes[1], LeaseLostError)
    assert Message.objects.get(pk=mine.pk).reply_text == "Oi!"
    assert Message.objects.get(pk=lost.pk).reply_text is None


def test_a_reply_whose_message_was_deleted_meanwhile_fails_its_own_step_only():
    kept, deleted = MessageFactory.create(), MessageFactory.create()
    turns = taken_up(kept, deleted)
    progress.store_replies(WORKER, [(t, AgentReply(text="Oi!", latency_ms=5)) for t in turns])
    Message.objects.filter(pk=deleted.pk).delete()  # by a person, in the admin
    steps = [
        Step(turn.conversation_id, Answered(turn, (turn.parts[0], f"SENT-{n}")))
        for n, turn in enumerate(turns)
    ]

    # Batched runs a failed run's steps again one by one (tests/test_db_batches.py).
    with pytest.raises(IntegrityError):
        progress.advance(WORKER, steps)
    with pytest.raises(IntegrityError):
        progress.advance(WORKER, [steps[1]])
    assert progress.advance(WORKER, [steps[0]]) == [None]  # nothing more to do in that chat

    answered = Message.objects.get(pk=kept.pk)
    assert (answered.status, answered.reply_whatsapp_id) == (Message.Status.ANSWERED, "SENT-0")
    assert answered.parts.get().whatsapp_id == "SENT-0"
    assert not MessageAttempt.objects.filter(message_id=deleted.pk).exists()


def test_a_reply_is_stored_with_its_parts_and_its_first_send_recorded():
    message = MessageFactory.create()
    (turn,) = taken_up(message)

    (may_send,) = progress.store_replies(
        WORKER, [(turn, AgentReply(text="Oi!\n\nTudo bem?", latency_ms=42))]
    )

    stored = Message.objects.get(pk=message.pk)
    assert may_send is True
    assert (stored.reply_text, stored.agent_latency_ms) == ("Oi!\n\nTudo bem?", 42)
    assert stored.send_started_at is not None
    first, second = stored.parts.order_by("position")
    assert (first.text, first.attempts, first.send_started_at) == ("Oi!", 1, stored.send_started_at)
    assert (second.text, second.attempts, second.send_started_at) == ("Tudo bem?", 0, None)


def answered_step(turn: Turn) -> Step:
    progress.store_replies(WORKER, [(turn, AgentReply(text="Oi!", latency_ms=5))])
    return Step(turn.conversation_id, Answered(turn, (turn.parts[0], f"SENT-{turn.carrier.pk}")))


def test_a_chat_with_nothing_queued_during_its_turn_is_handed_back_not_ready():
    message = MessageFactory.create()
    (turn,) = taken_up(message)

    assert progress.advance(WORKER, [answered_step(turn)]) == [None]

    chat = Conversation.objects.get(pk=message.conversation_id)
    assert (chat.lease_owner, chat.ready_at) == ("", None)


def test_a_message_that_arrived_during_a_turn_is_taken_up_next():
    message = MessageFactory.create()
    (turn,) = taken_up(message)
    step = answered_step(turn)
    later = MessageFactory.create(instance=message.instance, chat_jid=message.chat_jid)
    leases.mark_ready(message.conversation_id, now=timezone.now())  # as its webhook does

    (taken,) = progress.advance(WORKER, [step])

    assert isinstance(taken, Turn)
    assert taken.carrier.pk == later.pk


def test_a_message_a_person_retried_during_a_turn_is_taken_up_next():
    failed = MessageFactory.create(status=Message.Status.FAILED, attempts=1)
    message = MessageFactory.create(instance=failed.instance, chat_jid=failed.chat_jid)
    (turn,) = taken_up(message)
    step = answered_step(turn)
    retry_message(failed)

    (taken,) = progress.advance(WORKER, [step])

    assert isinstance(taken, Turn)
    assert taken.carrier.pk == failed.pk


def test_messages_waiting_behind_a_turn_are_taken_up_after_it():
    first = MessageFactory.create()
    second = MessageFactory.create(instance=first.instance, chat_jid=first.chat_jid)
    (turn,) = taken_up(first)

    (taken,) = progress.advance(WORKER, [answered_step(turn)])

    assert isinstance(taken, Turn)
    assert taken.carrier.pk == second.pk


@pytest.mark.parametrize("chats", [1, progress.FEW + 2])
def test_each_answered_turn_of_a_step_records_its_reply_s_id(chats):
    messages = [MessageFactory.create() for _ in range(chats)]
    turns = taken_up(*messages)

    progress.advance(WORKER, [answered_step(turn) for turn in turns])

    for message in messages:
        stored = Message.objects.get(pk=message.pk)
        assert (stored.status, stored.reply_whatsapp_id) == (
            Message.Status.ANSWERED,
            f"SENT-{message.pk}",
        )
