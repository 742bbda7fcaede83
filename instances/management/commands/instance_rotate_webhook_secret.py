from typing import Any

from django.core.management.base import CommandParser

from instances import services
from instances.management.commands._instance_cli import TenantCommand, one_line_errors, write_json
from instances.schemas import WebhookSecretOut


class Command(TenantCommand):
    help = (
        "Give a tenant a new webhook secret and print it, this once, with the configuration "
        "Evolution needs; the previous secret keeps working for WEBHOOK_SECRET_GRACE_SECONDS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            instance = services.rotate_webhook_secret(services.get_instance(options["name"]))
        rotated = WebhookSecretOut.model_validate(instance).model_dump(mode="json")
        self.stdout.write(self.style.SUCCESS(f"Rotated the webhook secret of {instance.name!r}."))
        self.stdout.write(f"webhook secret (shown only now): {rotated['webhook_secret']}")
        if valid_until := rotated["previous_secret_valid_until"]:
            self.stdout.write(f"previous secret valid until: {valid_until}")
        self.stdout.write("Evolution webhook configuration:")
        write_json(self.stdout, {"webhook": rotated["evolution_webhook"]})
