"""A look at the database before a command starts: a PostgreSQL database that does not exist,
or a server that cannot be reached, is one line saying so within seconds.

Without it the connection pool (settings: DATABASES' "pool") waits its full timeout for a
connection its background workers can never open, and the cause is buried in warnings above.
"""

import shlex
from typing import Any

import psycopg
from django.db import connections

# libpq's own minimum is 2 s; this is per address of the host.
PROBE_SECONDS = 5
MAINTENANCE_DATABASE = "postgres"


class DatabaseUnavailableError(Exception):
    """The database cannot be used; the message is one line that says why and what to do."""


def check_database(alias: str = "default") -> None:
    """Connect once, outside the pool; DatabaseUnavailableError when that fails."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return  # SQLite creates its file on first use
    params = {**connection.get_connection_params(), "connect_timeout": PROBE_SECONDS}
    try:
        psycopg.connect(**params).close()
    except psycopg.OperationalError as error:
        raise DatabaseUnavailableError(_explain(params, error)) from None


def _explain(params: dict[str, Any], error: psycopg.OperationalError) -> str:
    name, host, port, user = (params.get(key) for key in ("dbname", "host", "port", "user"))
    where = f"{host or 'the local socket'}:{port or 5432}"
    if _lacks_database(params, str(name)):
        create = ["createdb"]
        for flag, value in (("-h", host), ("-p", port), ("-U", user)):
            if value:
                create += [flag, str(value)]
        return (
            f'the PostgreSQL database "{name}" does not exist on {where}: create it with '
            f'`{shlex.join([*create, str(name)])}` (or, in psql, CREATE DATABASE "{name}";)'
        )
    # libpq's reason spans lines ("Connection refused\n\tIs the server running…"); it names
    # the host and port, never the password.
    reason = " ".join(str(error).removeprefix("connection failed:").split())
    return f'cannot connect to the PostgreSQL database "{name}" at {where}: {reason}'


def _lacks_database(params: dict[str, Any], name: str) -> bool:
    """Whether the server answers, through its maintenance database, that `name` is not one
    of its databases. The server's own message says so too, but in its language (lc_messages)."""
    try:
        with psycopg.connect(**{**params, "dbname": MAINTENANCE_DATABASE}) as maintenance:
            found = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return found.fetchone() is None
    except psycopg.Error:
        return False  # unknown: the original error is reported as it is
