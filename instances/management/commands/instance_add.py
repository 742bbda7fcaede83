from typing import Any

from django.core.management.base import CommandParser

from instances import services, tenant_fields
from instances.management.commands._instance_cli import (
    TenantCommand,
    add_field_arguments,
    ask_missing_secrets,
    given_fields,
    one_line_errors,
    write_instance,
)

REQUIRED_FLAGS = " ".join(
    tenant_fields.BY_NAME[name].cli_flag for name in tenant_fields.REQUIRED_NAMES
)


class Command(TenantCommand):
    help = (
        f"Add a tenant. Required: {REQUIRED_FLAGS}. A secret given as - is read from standard "
        "input; the Evolution API key, when not given, is asked for at a terminal."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        # Missing flags are not argparse's to report: the services' validation names every
        # missing one on one line, with exit status 1, instead of a usage dump with status 2.
        add_field_arguments(parser, creating=True)

    def handle(self, *args: Any, **options: Any) -> None:
        stdin = self.stdin(options)
        fields = given_fields(options, tenant_fields.CREATABLE, stdin)
        ask_missing_secrets(fields, stdin)
        with one_line_errors():
            instance = services.create_instance(name=fields.pop("name", ""), **fields)
        self.stdout.write(self.style.SUCCESS(f"Created instance {instance.name!r}."))
        write_instance(self.stdout, instance)
