from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import MessageFactory
from webhooks.models import Conversation, Message

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    stdout = StringIO()
    call_command("message_retry", *args, stdout=stdout)
    return stdout.getvalue()


def test_it_retries_a_failed_message():
    message = MessageFactory.create(status=Message.Status.FAILED, attempts=6)

    output = run(str(message.pk))

    assert output == f"message {message.pk} queued again\n"
    message.refresh_from_db()
    assert message.status == Message.Status.RECEIVED
    assert message.attempts == 6  # kept: the history shows every try
    [ready] = Conversation.objects.filter(ready_at__isnull=False)
    assert ready.pk == message.conversation_id


def test_it_retries_several_messages():
    first, second = (MessageFactory.create(status=Message.Status.FAILED) for _ in range(2))

    output = run(str(first.pk), str(second.pk))

    assert output.splitlines() == [
        f"message {first.pk} queued again",
        f"message {second.pk} queued again",
    ]
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.RECEIVED}
    assert Conversation.objects.filter(ready_at__isnull=False).count() == 2


def test_it_names_an_unknown_id():
    with pytest.raises(CommandError, match=r"^message 999999 not found$"):
        run("999999")

    assert not Conversation.objects.filter(ready_at__isnull=False).exists()


@pytest.mark.parametrize("status", [Message.Status.ANSWERED, Message.Status.RECEIVED])
def test_it_refuses_a_message_that_has_not_failed(status):
    message = MessageFactory.create(status=status)

    refusal = rf"^message {message.pk} is {status}, not failed or retrying$"
    with pytest.raises(CommandError, match=refusal):
        run(str(message.pk))

    message.refresh_from_db()
    assert message.status == status
    assert not Conversation.objects.filter(ready_at__isnull=False).exists()


def test_it_needs_at_least_one_id():
    with pytest.raises(CommandError, match="arguments are required"):
        run()


def test_it_rejects_an_id_that_is_not_a_number():
    with pytest.raises(CommandError, match="invalid int value"):
        run("abc")
