"""What the conversation_* commands share. The leading underscore keeps Django from listing
this module as a command."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from instances.services import InstanceNotFoundError
from webhooks.conversations import selectors
from webhooks.conversations.selectors import ConversationNotFoundError
from webhooks.models import Conversation


def add_chat_arguments(parser: CommandParser) -> None:
    parser.add_argument("name", help="The instance (tenant) name.")
    parser.add_argument("chat", help="The chat's JID, or its phone number's digits.")


@contextmanager
def one_line_errors() -> Iterator[None]:
    """The services' errors as CommandError: one line on stderr, exit status 1."""
    try:
        yield
    except ValidationError as error:
        raise CommandError(" ".join(error.messages)) from None
    except (InstanceNotFoundError, ConversationNotFoundError) as error:
        raise CommandError(str(error)) from None


def find_conversation(options: dict[str, Any]) -> Conversation:
    return selectors.find_conversation(options["name"], options["chat"])


def describe(conversation: Conversation) -> str:
    return f"{conversation.chat_jid} of {conversation.instance.name!r}"
