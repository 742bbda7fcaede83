"""conversation_pause and conversation_resume: the CLI of the pausing services."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.factories import ConversationFactory, InstanceConfigFactory
from webhooks.conversations import pausing
from webhooks.models import Conversation

pytestmark = pytest.mark.django_db

MARIA = "5511912345678@s.whatsapp.net"


def run(*args: str) -> str:
    stdout = StringIO()
    call_command(*args, stdout=stdout)
    return stdout.getvalue()


@pytest.fixture
def conversation() -> Conversation:
    return ConversationFactory.create(
        instance=InstanceConfigFactory.create(name="acme"), chat_jid=MARIA
    )


def test_it_pauses_a_chat_for_some_minutes(conversation):
    output = run("conversation_pause", "acme", "5511912345678", "--minutes", "20")

    conversation.refresh_from_db()
    until = conversation.paused_until
    assert output == f"Paused {MARIA} of 'acme' until {until.isoformat(timespec='seconds')}.\n"
    assert pausing.is_paused(conversation.pk, now=timezone.now())
    assert conversation.paused_until_resumed is False


def test_it_pauses_a_chat_until_resumed_and_resumes_it(conversation):
    paused = run("conversation_pause", "acme", MARIA)
    assert paused == f"Paused {MARIA} of 'acme' until resumed.\n"
    assert Conversation.objects.get().paused_until_resumed is True

    resumed = run("conversation_resume", "acme", MARIA)

    assert resumed == f"Resumed {MARIA} of 'acme'.\n"
    assert not pausing.is_paused(conversation.pk, now=timezone.now())


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["conversation_pause", "nobody", MARIA], "instance 'nobody' not found"),
        (["conversation_resume", "acme", "5511900000000"],
         "instance 'acme' has no conversation with '5511900000000'"),
        (["conversation_pause", "acme", MARIA, "--minutes", "0"],
         f"Give 1 to {pausing.MAX_PAUSE_MINUTES} minutes, or none to pause until resumed."),
    ],
)  # fmt: skip
def test_it_says_in_one_line_what_is_wrong(conversation, args, error):
    with pytest.raises(CommandError) as failed:
        run(*args)

    assert str(failed.value) == error
    assert not pausing.is_paused(conversation.pk, now=timezone.now())
