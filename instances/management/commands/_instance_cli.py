"""What the instance_* commands share: the tenant flags, made from instances.tenant_fields;
secrets read from standard input or asked for; errors that name flags; masked printing.

The leading underscore keeps Django from listing this module as a command.
"""

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from instances import services, tenant_fields
from instances.models import InstanceConfig
from instances.schemas import InstanceOut
from instances.secrets import DecryptionError
from instances.tenant_fields import Group, TenantField

# Flags give a list as one argument: "5511*,5521*"; an empty one clears the list.
_PARSERS: dict[type, Callable[[str], Any]] = {
    str: str,
    int: int,
    list: lambda text: [entry.strip() for entry in text.split(",") if entry.strip()],
}
STDIN = "-"


class TenantCommand(BaseCommand):
    """A command whose output is its own: log lines still go to stderr, but at the default
    verbosity only warnings and errors do (-v 2 adds what the services log, -v 3 debugging)."""

    # Tests hand in their own standard input through call_command(..., stdin=...).
    stealth_options = ("stdin",)

    def execute(self, *args: Any, **options: Any) -> str | None:
        with _console_logs_at(options.get("verbosity", 1)):
            return super().execute(*args, **options)

    def stdin(self, options: dict[str, Any]) -> TextIO | None:
        # sys.stdin is None when the process was started without one.
        return options.get("stdin", sys.stdin)


@contextmanager
def _console_logs_at(verbosity: int) -> Iterator[None]:
    level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    configured: dict[str, Any] = settings.LOGGING
    handlers = [
        handler
        for name in configured.get("root", {}).get("handlers", [])
        if (handler := logging.getHandlerByName(name)) is not None
    ]
    levels = [handler.level for handler in handlers]
    for handler in handlers:
        handler.setLevel(max(handler.level, level))
    try:
        yield
    finally:
        for handler, previous in zip(handlers, levels, strict=True):
            handler.setLevel(previous)


def add_field_arguments(parser: CommandParser, *, creating: bool) -> None:
    """A flag per tenant field a person may write, grouped as in the admin; each defaults to
    None, meaning "not given"."""
    fields = tenant_fields.CREATABLE if creating else tenant_fields.EDITABLE
    for group in Group:
        in_group = [field for field in fields if field.group is group]
        if in_group:
            arguments = parser.add_argument_group(f"{group.value} settings")
            for field in in_group:
                _add_flag(arguments, field, creating=creating)


def _add_flag(arguments: argparse._ArgumentGroup, field: TenantField, *, creating: bool) -> None:
    # argparse formats help with %: a literal one must be doubled.
    help_text = _flag_help(field, creating=creating).replace("%", "%%")
    if field.kind is bool:
        arguments.add_argument(
            field.cli_flag,
            dest=field.name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=help_text,
        )
        return
    arguments.add_argument(
        field.cli_flag,
        dest=field.name,
        type=_PARSERS[field.kind],
        metavar=field.metavar or None,
        help=help_text,
    )


def _flag_help(field: TenantField, *, creating: bool) -> str:
    notes = [field.help_text.rstrip(".") + "."]
    low, high = field.bounds
    if field.kind is int and low is not None and high is not None:
        notes.append(f"{low} to {high}.")
    if creating and field.required:
        notes.append("Required.")
    elif creating and field.default not in ("", [], None) and field.kind is not bool:
        notes.append(f"Default: {field.default}.")
    if field.kind is list:
        notes.append("Comma-separated; '' empties the list.")
    if field.secret:
        notes.append(f"Stored encrypted; {STDIN} reads it from standard input.")
    return " ".join(notes)


def given_fields(
    options: dict[str, Any], fields: Iterable[TenantField], stdin: TextIO | None
) -> dict[str, Any]:
    """The fields whose flags were given, by field name; a secret given as - is read from
    standard input (asked for without echo when that is a terminal)."""
    given = {
        field.name: options[field.name] for field in fields if options.get(field.name) is not None
    }
    from_stdin = [
        name for name, value in given.items() if value == STDIN and name in services.SECRET_FIELDS
    ]
    if len(from_stdin) > 1:
        flags = ", ".join(tenant_fields.BY_NAME[name].cli_flag for name in from_stdin)
        raise CommandError(f"only one flag can read standard input ({STDIN}): {flags}")
    for name in from_stdin:
        given[name] = _read_secret(tenant_fields.BY_NAME[name], stdin)
    return given


def ask_missing_secrets(given: dict[str, Any], stdin: TextIO | None) -> None:
    """A required secret not given as a flag is asked for, without echo, when someone is at a
    terminal to answer; otherwise the services' validation names its flag as missing."""
    missing = [tenant_fields.BY_NAME[name] for name in tenant_fields.missing_required(given)]
    # Asked only when nothing else is missing: else the error comes first, not a question.
    if stdin is None or not stdin.isatty() or not all(field.secret for field in missing):
        return
    for field in missing:
        given[field.name] = _ask(field)


def _read_secret(field: TenantField, stdin: TextIO | None) -> str:
    if stdin is None:
        raise CommandError(f"{field.cli_flag} {STDIN}: there is no standard input to read")
    secret = _ask(field) if stdin.isatty() else stdin.read().strip()
    if not secret:
        raise CommandError(f"{field.cli_flag} {STDIN}: standard input held no value")
    return secret


def _ask(field: TenantField) -> str:
    try:
        # getpass asks on the terminal itself and turns echo off: the secret is never shown.
        return getpass.getpass(f"{field.label}: ")
    except EOFError:
        return ""


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn the services' errors into CommandError: one line on stderr, exit status 1."""
    try:
        yield
    except ValidationError as error:
        raise CommandError(describe_flag_errors(error)) from None
    except (services.InstanceNotFoundError, services.InstanceExistsError, DecryptionError) as error:
        raise CommandError(str(error)) from None


def describe_flag_errors(error: ValidationError) -> str:
    """Each invalid field's error, named by its flag: "--agent-timeout: Ensure …"."""
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    described = []
    for name, errors in error.error_dict.items():
        flag = tenant_fields.BY_NAME[name].cli_flag if name in tenant_fields.BY_NAME else name
        for each in errors:
            if each.code in ("required", "blank"):
                described.append(f"{flag} is required")
            else:
                described.extend(f"{flag}: {message}" for message in each.messages)
    return "; ".join(described)


def shown_fields(instance: InstanceConfig) -> dict[str, Any]:
    # The API's output schema already decides what a tenant shows, secrets masked; reuse it.
    shown: dict[str, Any] = InstanceOut.model_validate(instance).model_dump(mode="json")
    return shown


def write_instance(stdout: OutputWrapper, instance: InstanceConfig) -> None:
    shown = shown_fields(instance)
    width = max(map(len, shown))
    for field, value in shown.items():
        # Lists as the flags take them.
        text = ",".join(value) if isinstance(value, list) else value
        stdout.write(f"{field:<{width}}  {text}")


def webhook_auth_label(instance_fields: dict[str, Any]) -> str:
    """How instance_list flags a tenant whose webhooks need to prove nothing."""
    return "authenticated" if instance_fields["webhook_authenticated"] else "NOT AUTHENTICATED"


def write_json(stdout: OutputWrapper, data: object) -> None:
    stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
