from typing import Any

from django.core.management.base import CommandParser

from instances import services
from instances.management.commands._instance_cli import TenantCommand, one_line_errors


class Command(TenantCommand):
    help = (
        "Forget the Evolution server a tenant without an Evolution URL replies through; the "
        "next webhook pins its own (EVOLUTION_TRUSTED_SERVERS, when set, decides instead)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.get_instance(options["name"])
        previous = instance.pinned_evolution_origin
        services.clear_evolution_pin(instance)
        if previous:
            self.stdout.write(self.style.SUCCESS(f"Cleared {previous} from {instance.name!r}."))
        else:
            self.stdout.write(f"Instance {instance.name!r} had no pinned Evolution server.")
