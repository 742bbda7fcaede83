import asyncio
import fcntl
import os
import threading
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from instances.models import InstanceConfig
from omnihub.db_threads import close_db_connections, run_in_db_thread
from tests.factories import InstanceConfigFactory

# The work runs on other threads, with other connections: what it reads must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _threads_start_without_connections() -> Iterator[None]:
    """A connection a thread kept from another test, opened under that test's CONN_MAX_AGE,
    would change what this one counts (seen: 1 connection opened in 3 calls, not 3)."""
    close_db_connections()
    yield
    close_db_connections()


def run(function, *args):
    return async_to_sync(run_in_db_thread)(function, *args)


def _connect() -> BaseDatabaseWrapper:
    """Opens this thread's connection if need be; returns its wrapper, to look at afterwards."""
    connection.ensure_connection()
    return connections["default"]


def _reconnect() -> BaseDatabaseWrapper:
    """A connection opened now, under the CONN_MAX_AGE in force now."""
    connection.close()
    return _connect()


def _count_connections_opened(calls: int) -> int:
    opened = []

    def count(**kwargs: object) -> None:
        opened.append(1)

    connection_created.connect(count)
    try:
        for _ in range(calls):
            run(_connect)
    finally:
        connection_created.disconnect(count)
    return len(opened)


def test_it_runs_the_function_on_a_database_thread_and_returns_its_answer():
    def where(word: str) -> tuple[str, str]:
        return threading.current_thread().name, word

    thread, word = run(where, "hello")

    assert thread.startswith("db")
    assert thread != threading.current_thread().name
    assert word == "hello"


def test_it_raises_what_the_function_raised():
    def fail() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError, match="nope"):
        run(fail)


def test_a_thread_keeps_its_connection_between_calls_when_connections_persist(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)

    assert _count_connections_opened(calls=2 * settings.DB_THREADS) <= settings.DB_THREADS


def test_a_connection_is_closed_after_each_call_when_max_age_is_zero(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)

    wrapper = run(_reconnect)

    assert wrapper.connection is None
    assert _count_connections_opened(calls=3) == 3


def test_a_connection_left_outside_autocommit_is_closed(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)

    def leave_a_transaction_open() -> BaseDatabaseWrapper:
        wrapper = _reconnect()
        transaction.set_autocommit(False)
        return wrapper

    wrapper = run(leave_a_transaction_open)

    assert wrapper.connection is None


def test_it_closes_every_thread_s_connections_on_demand(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    wrappers = {run(_reconnect) for _ in range(2 * settings.DB_THREADS)}
    assert all(wrapper.connection is not None for wrapper in wrappers)

    close_db_connections()

    assert all(wrapper.connection is None for wrapper in wrappers)


sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite" or settings.DB_THREADS != 1,
    reason="SQLite's one database thread batches and takes turns",
)


@sqlite_only
def test_calls_queued_meanwhile_run_in_one_transaction_each_undoing_only_its_own_work():
    tenant = InstanceConfigFactory.create(name="acme", default_agent="before")
    release = threading.Event()

    def hold() -> None:
        assert release.wait(timeout=30)

    def rename_then_fail() -> None:
        InstanceConfig.objects.filter(pk=tenant.pk).update(default_agent="undone")
        raise LookupError("this call fails")

    def rename() -> bool:
        InstanceConfig.objects.filter(pk=tenant.pk).update(name="renamed")
        return connection.in_atomic_block

    async def scenario() -> list[object]:
        first = asyncio.create_task(run_in_db_thread(hold))
        await asyncio.sleep(0)  # it is taken; the two below queue behind it
        queued = [
            asyncio.create_task(run_in_db_thread(rename_then_fail)),
            asyncio.create_task(run_in_db_thread(rename)),
        ]
        await asyncio.sleep(0)
        release.set()
        await first
        return await asyncio.gather(*queued, return_exceptions=True)

    failed, in_transaction = async_to_sync(scenario)()

    assert isinstance(failed, LookupError)
    assert in_transaction is True
    stored = InstanceConfig.objects.get(pk=tenant.pk)
    assert (stored.name, stored.default_agent) == ("renamed", "before")


@sqlite_only
def test_a_call_holds_the_turn_that_every_process_s_database_threads_take():
    running, release = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        assert release.wait(timeout=30)

    def turn_is_free() -> bool:
        name = connection.settings_dict["NAME"]
        fd = os.open(f"{name}.turns", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing lets go of a lock taken here
        return True

    holder = threading.Thread(target=run, args=(hold,))
    holder.start()
    assert running.wait(timeout=30)
    taken_while_running = not turn_is_free()
    release.set()
    holder.join(timeout=30)

    assert taken_while_running
    assert turn_is_free()
