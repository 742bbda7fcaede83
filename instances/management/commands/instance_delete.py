from typing import Any, TextIO

from django.core.management.base import CommandError, CommandParser

from instances import services
from instances.management.commands._instance_cli import TenantCommand, one_line_errors
from instances.message_log import message_log_of
from instances.models import InstanceConfig


class Command(TenantCommand):
    help = (
        "Delete a tenant and its whole message log (every message and conversation), after "
        "asking for confirmation unless --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--yes", action="store_true", help="Delete without asking.")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.get_instance(options["name"])
        log = message_log_of(InstanceConfig.objects.filter(pk=instance.pk))
        question = f"Delete instance {instance.name!r} and its message log ({log})? [y/N] "
        if not options["yes"] and not self.confirm(question, self.stdin(options)):
            raise CommandError(f"aborted: instance {instance.name!r} was not deleted")
        deleted = services.delete_instance(instance)
        self.stdout.write(self.style.SUCCESS(f"Deleted instance {instance.name!r}: {deleted}."))

    def confirm(self, question: str, stdin: TextIO | None) -> bool:
        # Nobody can answer a script's pipe, so silence there must not mean yes.
        if stdin is None or not stdin.isatty():
            raise CommandError("stdin is not a terminal: pass --yes to delete without asking")
        self.stdout.write(question, ending="")
        self.stdout.flush()
        return stdin.readline().strip().lower() in {"y", "yes"}
