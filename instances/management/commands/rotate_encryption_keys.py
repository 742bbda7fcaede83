from typing import Any

from instances import services
from instances.management.commands._instance_cli import TenantCommand, one_line_errors


class Command(TenantCommand):
    help = (
        "Re-encrypt every stored key with the first of OMNIHUB_ENCRYPTION_KEYS; afterwards the "
        "older keys can be dropped."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with one_line_errors():
            count = services.rotate_encryption_keys()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} instance(s)."))
