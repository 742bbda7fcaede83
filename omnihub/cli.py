"""`omnihub <command>` is `python manage.py <command>`, from any directory."""

import os
import sys

import django
from django.core.management import execute_from_command_line

from omnihub.database_probe import DatabaseUnavailableError, check_database

# Commands that work without the database: a missing one must not stop them.
NO_DATABASE = frozenset(
    {"help", "version", "check", "collectstatic", "findstatic", "makemigrations", "diffsettings",
     "shell"}
)  # fmt: skip


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnihub.settings")
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command not in NO_DATABASE and not command.startswith("-"):
        django.setup()
        try:
            check_database()
        except DatabaseUnavailableError as error:
            sys.exit(f"omnihub: {error}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
