from typing import Any

from django.core.management.base import CommandParser

from instances import services
from instances.management.commands._instance_cli import (
    TenantCommand,
    one_line_errors,
    shown_fields,
    write_instance,
    write_json,
)


class Command(TenantCommand):
    help = "Show every field of one tenant, keys masked."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="A JSON object, keys masked.")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.get_instance(options["name"])
        if options["json"]:
            write_json(self.stdout, shown_fields(instance))
        else:
            write_instance(self.stdout, instance)
