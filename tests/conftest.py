import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from omnihub.db_threads import close_db_connections

API_KEY = "test-api-key-0123456789"


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # a unix socket
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _db_threads_let_go_of_the_test_database(django_db_setup: None) -> Iterator[None]:
    """Torn down before the test database is dropped, which their connections would block."""
    yield
    close_db_connections()


@pytest.fixture(autouse=True)
def _no_outbound_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to fakes on this machine only; anything else fails the test loudly."""
    real_connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture
def api_client() -> Client:
    """A client that sends the REST API key."""
    return Client(headers={"X-API-Key": API_KEY})


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()
