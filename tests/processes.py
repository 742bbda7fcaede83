"""Worker and web processes for the tests that run them: started in their own sessions with
the test database and test settings, watched, and stopped with their whole process group."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# The children see none of the caller's settings (a developer's .env, DEBUG, AGENT_API_URL).
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def worker_started(children: "Children", worker: subprocess.Popen[bytes]) -> bool:
    return "started: up to" in children.log(worker)


def answers_health(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(
    done: Callable[[], bool],
    timeout: float,
    what: str,
    process: subprocess.Popen[bytes],
    explain: Callable[[], str] = str,
) -> None:
    """Wait for `done`, failing early if `process`, which is needed for it, has exited."""
    deadline = time.monotonic() + timeout
    while not done():
        if process.poll() is not None:
            raise AssertionError(f"waiting for {what}: {program(process)} exited. {explain()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}. {explain()}")
        time.sleep(0.02)


def program(process: subprocess.Popen[bytes]) -> str:
    """What it runs, e.g. "['-m', 'uvicorn']": Children.start is given a list."""
    command = process.args
    assert isinstance(command, list)
    return str(command[1:3])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**overrides: str) -> dict[str, str]:
    """The test database, the test settings (the encryption keys) and short timeouts."""
    return {
        **{key: value for key, value in os.environ.items() if key in PASSED_THROUGH},
        **{key: value for key, value in os.environ.items() if key.startswith("PG")},  # PGPASSWORD
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        "RETRY_BASE_DELAY": "0.05",
        "RETRY_MAX_DELAY": "0.2",
        "EVOLUTION_TIMEOUT": "2",
        "LEASE_SECONDS": "5",
        **overrides,
    }


def database_url_of_this_test() -> str:
    """A DATABASE_URL naming the test database, not the one the settings point at."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor != "postgresql":
        pytest.skip(f"no child-process setup for {connection.vendor}")
    # Host, user, password and options (sslmode) as given: only the database differs.
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{quote(name)}").geturl()


class Children:
    """Starts child processes in their own sessions, with their output in files; on exit stops
    each one's whole process group (uvicorn's workers too): SIGTERM, then SIGKILL."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.started: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def __enter__(self) -> "Children":
        return self

    def __exit__(self, error_type: type[BaseException] | None, *rest: object) -> None:
        if error_type is not None:  # shown by pytest with the failure
            for child in self.started:
                tail = "\n".join(self.log(child).splitlines()[-30:])
                print(f"--- {program(child)} pid {child.pid}, exit {child.poll()}:\n{tail}")
        for child in self.started:
            self._signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.started:
            with suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            self._signal_group(child, signal.SIGKILL)  # and anything left in its group
            child.wait()

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            child = subprocess.Popen(  # noqa: S603 - our own commands
                command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started.append(child)
        self.logs[child.pid] = log
        return child

    def log(self, child: subprocess.Popen[bytes]) -> str:
        return self.logs[child.pid].read_text(errors="replace")

    @staticmethod
    def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(child.pid, signum)
