import sys
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from instances import services
from instances.management.commands._instance_cli import one_line_errors


class Command(BaseCommand):
    help = "Delete a tenant, after asking for confirmation unless --yes."
    # Tests hand in their own terminal through call_command(..., stdin=...).
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--yes", action="store_true", help="Delete without asking.")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.get_instance(options["name"])
        question = f"Delete instance {instance.name!r}? [y/N] "
        if not options["yes"] and not self.confirm(question, options.get("stdin", sys.stdin)):
            raise CommandError(f"aborted: instance {instance.name!r} was not deleted")
        services.delete_instance(instance)
        self.stdout.write(self.style.SUCCESS(f"Deleted instance {instance.name!r}."))

    def confirm(self, question: str, stdin: TextIO | None) -> bool:
        # Nobody can answer a script's pipe, so silence there must not mean yes.
        # sys.stdin is None when the process was started without one.
        if stdin is None or not stdin.isatty():
            raise CommandError("stdin is not a terminal: pass --yes to delete without asking")
        self.stdout.write(question, ending="")
        self.stdout.flush()
        return stdin.readline().strip().lower() in {"y", "yes"}
