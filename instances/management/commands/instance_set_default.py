from typing import Any

from django.core.management.base import CommandParser

from instances import services
from instances.management.commands._instance_cli import TenantCommand, one_line_errors


class Command(TenantCommand):
    help = "Make a tenant the default one, which serves POST /webhook/evolution."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.set_default_instance(services.get_instance(options["name"]))
        self.stdout.write(self.style.SUCCESS(f"Instance {instance.name!r} is now the default."))
