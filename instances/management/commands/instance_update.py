from typing import Any

from django.core.management.base import CommandError, CommandParser

from instances import services, tenant_fields
from instances.management.commands._instance_cli import (
    TenantCommand,
    add_field_arguments,
    given_fields,
    one_line_errors,
    write_instance,
)


class Command(TenantCommand):
    help = (
        "Change a tenant, e.g. `instance_update NAME --agent-timeout 10`: only the flags given "
        "change; a blank key keeps the stored one, and - reads it from standard input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The tenant to change.")
        add_field_arguments(parser, creating=False)

    def handle(self, *args: Any, **options: Any) -> None:
        changes = given_fields(options, tenant_fields.EDITABLE, self.stdin(options))
        if not changes:
            # Most likely a flag forgotten: saying "Updated" would hide it.
            raise CommandError(
                "nothing to change: give the flags to change, e.g. --agent-timeout 10 "
                "(`omnihub instance_update --help` lists them)"
            )
        with one_line_errors():
            instance = services.update_instance(services.get_instance(options["name"]), **changes)
        self.stdout.write(self.style.SUCCESS(f"Updated instance {instance.name!r}."))
        write_instance(self.stdout, instance)
