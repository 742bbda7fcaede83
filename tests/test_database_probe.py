"""A database that cannot be used stops a command at once, with one line that says why."""

import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.db import connection

from omnihub.database_probe import check_database
from tests.fakes import closed_port
from tests.processes import PASSED_THROUGH, ROOT

# Far below the pool's 30 s wait that the probe replaces.
COMMAND_SECONDS = 15


def omnihub(*arguments: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{key: value for key, value in os.environ.items() if key in PASSED_THROUGH},
        **{key: value for key, value in os.environ.items() if key.startswith("PG")},
        "OMNIHUB_ENV_FILE": os.devnull,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": database_url,
    }
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "omnihub.cli", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_SECONDS,
    )  # fmt: skip


def test_a_missing_postgresql_database_is_named_with_how_to_create_it():
    if connection.vendor != "postgresql":
        pytest.skip("needs the PostgreSQL server of the test run")
    server = urlsplit(os.environ["DATABASE_URL"])
    missing = f"{connection.settings_dict['NAME']}_missing"
    url = server._replace(path=f"/{missing}").geturl()

    ran = omnihub("migrate", "--noinput", database_url=url)

    assert ran.returncode == 1
    assert ran.stdout == ""
    [line] = ran.stderr.splitlines()
    assert line.startswith(f'omnihub: the PostgreSQL database "{missing}" does not exist on ')
    assert f" {missing}` " in line  # the createdb command
    assert f'CREATE DATABASE "{missing}";' in line
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize("command", ["migrate", "serve", "worker"])
def test_a_server_that_cannot_be_reached_is_one_line_naming_it(command):
    port = closed_port()

    ran = omnihub(command, database_url=f"postgres://omnihub:pw-9f8e@127.0.0.1:{port}/omnihub")

    assert ran.returncode == 1
    [line] = ran.stderr.splitlines()
    assert line.startswith(
        f'omnihub: cannot connect to the PostgreSQL database "omnihub" at 127.0.0.1:{port}: '
    )
    assert "Connection refused" in line
    assert "pw-9f8e" not in line


def test_a_command_that_needs_no_database_runs_without_one():
    ran = omnihub("help", database_url=f"postgres://postgres@127.0.0.1:{closed_port()}/omnihub")

    assert ran.returncode == 0
    assert "migrate" in ran.stdout


@pytest.mark.django_db
def test_the_database_of_this_test_run_passes():
    check_database()
