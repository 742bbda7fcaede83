from typing import Any

from django.core.management.base import CommandError, CommandParser

from instances import connection, services
from instances.management.commands._instance_cli import TenantCommand, one_line_errors


class Command(TenantCommand):
    help = (
        "Check a tenant's link: Evolution's WhatsApp connection, whether Evolution's webhook "
        "points at this tenant, and whether the Agents API answers. Exit status 1 unless all do."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.get_instance(options["name"])
        status = connection.connection_status(instance)
        for label, check in [
            ("evolution", status.evolution),
            ("webhook", status.webhook),
            ("agent", status.agent),
        ]:
            mark = self.style.SUCCESS("ok  ") if check.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark}  {label:<9}  {check.message}")
        if not status.ok:
            raise CommandError(f"instance {instance.name!r} is not fully connected")
