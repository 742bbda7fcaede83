from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from instances import services
from instances.management.commands._instance_cli import (
    add_field_arguments,
    given_fields,
    one_line_errors,
    write_instance,
)


class Command(BaseCommand):
    help = "Change a tenant: only the flags given change; a blank key keeps the stored one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        add_field_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.update_instance(
                services.get_instance(options["name"]), **given_fields(options)
            )
        self.stdout.write(self.style.SUCCESS(f"Updated instance {instance.name!r}."))
        write_instance(self.stdout, instance)
