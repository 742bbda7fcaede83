from typing import Any

from django.core.management.base import CommandError, CommandParser

from instances import connection, services
from instances.evolution_webhook import webhook_url
from instances.management.commands._instance_cli import TenantCommand, one_line_errors


class Command(TenantCommand):
    help = (
        "Give a tenant's Evolution instance its webhook (OMNIHUB_PUBLIC_URL/webhook/evolution/"
        "NAME, MESSAGES_UPSERT, base64, signed with the tenant's secret) and switch webhook "
        "authentication on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.get_instance(options["name"])
        try:
            instance = connection.connect_instance(instance)
        except (connection.ConnectionNotPossibleError, connection.EvolutionCallError) as error:
            raise CommandError(f"not connected: {error}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Connected {instance.name!r}: Evolution instance {instance.whatsapp_instance!r} "
                f"sends its webhooks to {webhook_url(instance)}, signed; unsigned ones are refused."
            )
        )
