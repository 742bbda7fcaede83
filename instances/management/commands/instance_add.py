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
    help = (
        "Add a tenant. Required: --name --evolution-url --evolution-key --whatsapp-instance "
        "--agent-api-url --default-agent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", metavar="NAME", help="1-64 letters, digits, '_' or '-'.")
        add_field_arguments(parser)
        # Missing flags reach the service blank, so its validation names every missing field on
        # one line with exit status 1, instead of argparse's usage dump with exit status 2.
        parser.set_defaults(
            name="",
            evolution_url="",
            evolution_key="",
            whatsapp_instance="",
            agent_api_url="",
            default_agent="",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.create_instance(name=options["name"], **given_fields(options))
        self.stdout.write(self.style.SUCCESS(f"Created instance {instance.name!r}."))
        write_instance(self.stdout, instance)
