from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webhooks.conversations.retries import MessageNotRetryableError, retry_message
from webhooks.selectors import MessageNotFoundError, get_message


class Command(BaseCommand):
    help = "Queue failed (or retrying) messages again now, by id."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("message_ids", nargs="+", type=int, metavar="ID")

    def handle(self, *args: Any, message_ids: list[int], **options: Any) -> None:
        for message_id in message_ids:
            try:
                retry_message(get_message(message_id))
            except (MessageNotFoundError, MessageNotRetryableError) as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"message {message_id} queued again")
