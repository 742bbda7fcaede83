from typing import Any

from django.core.management.base import CommandParser

from instances.management.commands._instance_cli import (
    TenantCommand,
    shown_fields,
    webhook_auth_label,
    write_json,
)
from instances.models import InstanceConfig

COLUMNS = {
    "name": "NAME",
    "whatsapp_instance": "WHATSAPP INSTANCE",
    "default_agent": "AGENT",
    "is_default": "DEFAULT",
    "evolution_url": "EVOLUTION URL",
    "agent_api_url": "AGENT URL",
    "webhook_authenticated": "WEBHOOK",
}


class Command(TenantCommand):
    help = "List the tenants by name; keys are never shown."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="A JSON list, keys masked.")

    def handle(self, *args: Any, **options: Any) -> None:
        shown = [shown_fields(instance) for instance in InstanceConfig.objects.order_by("name")]
        if options["json"]:
            write_json(self.stdout, shown)
        elif not shown:
            self.stdout.write("No instances yet; add one with `omnihub instance_add`.")
        else:
            self.write_table(shown)

    def write_table(self, shown: list[dict[str, Any]]) -> None:
        rows = [list(COLUMNS.values())]
        rows += [[self.cell(field, fields[field]) for field in COLUMNS] for fields in shown]
        widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip())

    @staticmethod
    def cell(field: str, value: Any) -> str:
        if field == "is_default":
            return "*" if value else ""
        if field == "webhook_authenticated":
            return webhook_auth_label({field: value})
        return str(value) or "-"
