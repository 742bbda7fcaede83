"""What the instance_* commands share: the tenant flags, one-line errors and masked printing.

The leading underscore keeps Django from listing this module as a command.
"""

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser, OutputWrapper

from instances import services
from instances.models import InstanceConfig
from instances.schemas import InstanceOut
from instances.secrets import DecryptionError


def add_field_arguments(parser: CommandParser) -> None:
    """The editable tenant fields as flags; each defaults to None, meaning "not given"."""
    parser.add_argument("--evolution-url", metavar="URL", help="Evolution API server, http(s).")
    parser.add_argument(
        "--evolution-key", metavar="KEY", help="Evolution API key (stored encrypted)."
    )
    parser.add_argument(
        "--whatsapp-instance", metavar="NAME", help="The instance name on the Evolution server."
    )
    parser.add_argument(
        "--session-id-prefix", metavar="PREFIX", help="Prefix for agent session ids."
    )
    parser.add_argument("--agent-api-url", metavar="URL", help="Agents API server, http(s).")
    parser.add_argument("--agent-api-key", metavar="KEY", help="Agents API key (stored encrypted).")
    parser.add_argument("--default-agent", metavar="AGENT", help="The agent that answers.")
    parser.add_argument(
        "--agent-timeout", type=int, metavar="SECONDS", help="1-3600 seconds to wait for the agent."
    )
    parser.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help="Secret Evolution signs webhooks with (stored encrypted; generated when not given).",
    )
    # default=None rather than False, so instance_update can tell "not given" from "given".
    parser.add_argument(
        "--require-webhook-auth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Refuse webhooks that do not prove they know the webhook secret (on for new ones).",
    )
    parser.add_argument(
        "--default",
        dest="is_default",
        action="store_true",
        default=None,
        help="Make this the default tenant (serves POST /webhook/evolution).",
    )


def given_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The editable fields whose flags were given, named as the services name them."""
    return {
        field: options[field]
        for field in sorted(services.EDITABLE_FIELDS)
        if options.get(field) is not None
    }


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn the services' errors into CommandError: one line on stderr, exit status 1."""
    try:
        yield
    except ValidationError as error:
        raise CommandError(
            f"invalid instance: {services.describe_validation_error(error)}"
        ) from None
    except (services.InstanceNotFoundError, services.InstanceExistsError, DecryptionError) as error:
        raise CommandError(str(error)) from None


def shown_fields(instance: InstanceConfig) -> dict[str, Any]:
    # The API's output schema already decides what a tenant shows, secrets masked; reuse it.
    return InstanceOut.model_validate(instance).model_dump(mode="json")


def write_instance(stdout: OutputWrapper, instance: InstanceConfig) -> None:
    shown = shown_fields(instance)
    width = max(map(len, shown))
    for field, value in shown.items():
        stdout.write(f"{field:<{width}}  {value}")


def webhook_auth_label(instance_fields: dict[str, Any]) -> str:
    """How instance_list flags a tenant whose webhooks need to prove nothing."""
    return "authenticated" if instance_fields["webhook_authenticated"] else "NOT AUTHENTICATED"


def write_json(stdout: OutputWrapper, data: object) -> None:
    stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
