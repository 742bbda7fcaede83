"""Which conversations a worker may claim, and how it holds and lets go of them."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.factories import ConversationFactory, MessageFactory
from tests.webhooks.conversations.steps import begin_next, claim_ready
from webhooks.conversations import leases
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.turns import Turn
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def ready_chat(**fields) -> Conversation:
    return ConversationFactory.create(ready_at=timezone.now() - timedelta(seconds=1), **fields)


def test_a_ready_chat_is_claimed_once():
    chat = ready_chat()

    assert claim_ready("w1", limit=10, lease_seconds=60) == [chat.pk]
    assert claim_ready("w2", limit=10, lease_seconds=60) == []
    chat.refresh_from_db()
    assert chat.lease_owner == "w1"
    assert chat.leased_until is not None
    assert chat.leased_until > timezone.now()


def test_a_chat_whose_lease_expired_is_claimable_again_without_a_sweep():
    chat = ready_chat(lease_owner="dead", leased_until=timezone.now() - timedelta(seconds=1))

    assert claim_ready("w1", limit=10, lease_seconds=60) == [chat.pk]


def test_a_worker_does_not_claim_again_a_chat_it_is_still_answering():
    chat = ready_chat(lease_owner="w1", leased_until=timezone.now() - timedelta(seconds=1))

    assert claim_ready("w1", limit=10, lease_seconds=60, holding=[chat.pk]) == []
    assert claim_ready("w2", limit=10, lease_seconds=60) == [chat.pk]


def test_a_chat_not_ready_or_ready_later_is_not_claimed():
    ConversationFactory.create(ready_at=None)
    ConversationFactory.create(ready_at=timezone.now() + timedelta(minutes=1))

    assert claim_ready("w1", limit=10, lease_seconds=60) == []


def test_claims_take_the_longest_waiting_first_up_to_the_limit():
    now = timezone.now()
    chats = [ConversationFactory.create(ready_at=now - timedelta(seconds=s)) for s in (1, 3, 2)]

    claimed = claim_ready("w1", limit=2, lease_seconds=60)

    assert claimed == [chats[1].pk, chats[2].pk]


def test_a_new_message_keeps_a_retry_time_already_set():
    later = timezone.now() + timedelta(minutes=1)
    chat = ConversationFactory.create(ready_at=later)

    leases.mark_ready(chat.pk, now=timezone.now())

    chat.refresh_from_db()
    assert chat.ready_at == later
    assert chat.last_message_at is not None


def test_renewing_extends_the_leases_still_owned_and_names_those_taken_over():
    mine = ready_chat()
    taken = ready_chat()
    claim_ready("w1", limit=10, lease_seconds=1)
    Conversation.objects.filter(pk=taken.pk).update(lease_owner="w2")

    assert leases.renew("w1", [mine.pk, taken.pk], lease_seconds=60) == {taken.pk}
    mine.refresh_from_db()
    assert mine.leased_until is not None
    assert mine.leased_until > timezone.now() + timedelta(seconds=30)


def test_a_chat_with_nothing_pending_is_handed_back_not_ready():
    chat = ready_chat()
    claim_ready("w1", limit=10, lease_seconds=60)

    assert begin_next(chat.pk, "w1") is None

    chat.refresh_from_db()
    assert (chat.lease_owner, chat.leased_until, chat.ready_at) == ("", None, None)


def test_a_chat_whose_next_message_waits_for_a_retry_is_handed_back_until_then():
    later = timezone.now() + timedelta(seconds=30)
    message = MessageFactory.create(status=Message.Status.RETRYING, next_attempt_at=later)
    MessageFactory.create(instance=message.instance, chat_jid=message.chat_jid)  # waits behind it
    chat = message.conversation
    Conversation.objects.filter(pk=chat.pk).update(ready_at=timezone.now())
    claim_ready("w1", limit=10, lease_seconds=60)

    assert begin_next(chat.pk, "w1") is None

    chat.refresh_from_db()
    assert chat.ready_at == later
    assert chat.lease_owner == ""


def test_the_next_message_is_the_oldest_pending_one_marked_processing():
    first = MessageFactory.create()
    MessageFactory.create(instance=first.instance, chat_jid=first.chat_jid)
    Conversation.objects.update(ready_at=timezone.now())
    claim_ready("w1", limit=10, lease_seconds=60)

    turn = begin_next(first.conversation_id, "w1")

    assert turn is not None
    assert (turn.carrier.pk, turn.followers) == (first.pk, [])
    assert (turn.carrier.status, turn.carrier.attempts) == (Message.Status.PROCESSING, 1)


def test_a_worker_whose_chat_was_taken_over_cannot_go_on():
    message = MessageFactory.create()
    Conversation.objects.update(ready_at=timezone.now())
    claim_ready("w1", limit=10, lease_seconds=60)
    Conversation.objects.update(lease_owner="w2")

    with pytest.raises(LeaseLostError):
        begin_next(message.conversation_id, "w1")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one write transaction at a time"
)
def test_a_message_committed_after_its_chat_was_handed_back_makes_the_chat_ready_again():
    """The interleaving the row lock is for: the holder looks for more work before the
    webhook's transaction commits its message, and hands the chat back."""
    chat = ready_chat()
    claim_ready("w1", limit=10, lease_seconds=60)
    stored, handed_back = threading.Event(), threading.Event()

    def webhook() -> None:
        try:
            with transaction.atomic():
                MessageFactory.create(
                    instance=chat.instance, chat_jid=chat.chat_jid, conversation=chat
                )
                stored.set()
                assert handed_back.wait(10)
                leases.mark_ready(chat.pk, now=timezone.now())
        finally:
            connection.close()

    thread = threading.Thread(target=webhook)
    thread.start()
    assert stored.wait(10)
    assert begin_next(chat.pk, "w1") is None  # the message is not committed yet
    handed_back.set()
    thread.join(10)

    assert claim_ready("w2", limit=10, lease_seconds=60) == [chat.pk]
    taken_up = begin_next(chat.pk, "w2")
    assert taken_up is not None
    assert taken_up.carrier.status == Message.Status.PROCESSING


def _waiting_for_a_lock(backend_pid: int) -> bool:
    """Whether the PostgreSQL backend `backend_pid` is blocked on a lock another holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)",
                       [backend_pid])  # fmt: skip
        return bool(cursor.fetchone()[0])


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one write transaction at a time"
)
def test_a_message_committed_while_its_holder_waited_for_the_chat_is_taken_up():
    """The holder's lock waits for a webhook that holds the chat's row, with its message and
    its mark_ready; the webhook commits while the holder waits. The holder must see the
    message: on PostgreSQL a statement that waited for a lock reads other tables as they were
    when it began."""
    chat = ready_chat()
    claim_ready("w1", limit=10, lease_seconds=60)
    holder_pid: list[int] = []
    taken: list[object] = []
    webhook_holds_the_chat = threading.Event()

    def holder() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                holder_pid.append(cursor.fetchone()[0])
            assert webhook_holds_the_chat.wait(10)
            taken.append(begin_next(chat.pk, "w1"))
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    with transaction.atomic():
        leases.mark_ready(chat.pk, now=timezone.now())  # the webhook takes the chat's row
        message = MessageFactory.create(
            instance=chat.instance, chat_jid=chat.chat_jid, conversation=chat
        )
        webhook_holds_the_chat.set()
        while not (holder_pid and _waiting_for_a_lock(holder_pid[0])):
            thread.join(0.01)  # until the holder's statement waits on the chat's row
    thread.join(10)

    (turn,) = taken
    chat.refresh_from_db()
    # Taken up, or the chat left ready for it: never handed back with it waiting.
    if turn is None:
        assert chat.ready_at is not None
    else:
        assert isinstance(turn, Turn)
        assert turn.carrier.pk == message.pk


def test_work_cut_short_is_handed_back_ready_at_once():
    chat = ready_chat()
    claim_ready("w1", limit=10, lease_seconds=60)

    assert leases.release("w1", [chat.pk]) == 1

    chat.refresh_from_db()
    assert chat.lease_owner == ""
    assert chat.ready_at is not None
    assert chat.ready_at <= timezone.now()
    assert claim_ready("w2", limit=10, lease_seconds=60) == [chat.pk]
