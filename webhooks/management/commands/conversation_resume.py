from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks.conversations.pausing import resume_conversation
from webhooks.management.commands._conversation_cli import (
    add_chat_arguments,
    describe,
    find_conversation,
    one_line_errors,
)


class Command(BaseCommand):
    help = "Let the bot answer a paused chat again, from its next message on."

    def add_arguments(self, parser: CommandParser) -> None:
        add_chat_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            conversation = resume_conversation(find_conversation(options))
        self.stdout.write(self.style.SUCCESS(f"Resumed {describe(conversation)}."))
