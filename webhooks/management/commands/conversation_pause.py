from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks.conversations.pausing import pause_conversation
from webhooks.management.commands._conversation_cli import (
    add_chat_arguments,
    describe,
    find_conversation,
    one_line_errors,
)


class Command(BaseCommand):
    help = "Pause the bot in a chat, for some minutes or until conversation_resume."

    def add_arguments(self, parser: CommandParser) -> None:
        add_chat_arguments(parser)
        parser.add_argument("--minutes", type=int, help="How long; until resumed when not given.")

    def handle(self, *args: Any, minutes: int | None, **options: Any) -> None:
        with one_line_errors():
            conversation = pause_conversation(find_conversation(options), minutes)
        until = conversation.paused_until
        ends = f"until {until.isoformat(timespec='seconds')}" if until else "until resumed"
        self.stdout.write(self.style.SUCCESS(f"Paused {describe(conversation)} {ends}."))
