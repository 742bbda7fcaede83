"""Wakes idle workers as soon as a task is queued, instead of waiting for their next poll.

PostgreSQL: a trigger on the task table (migration 0003) sends NOTIFY for each task queued to
run now, which Postgres delivers at commit (and not at all on rollback); each worker process
LISTENs on one connection. SQLite: there is no cross-process signal, so one thread per worker
watches `PRAGMA data_version`, which changes whenever another connection commits: a read of the
shared header, not a query on any table. Only when it changes does the watcher look for a ready
task, so the many commits that queue nothing (a worker's own included) wake no loop.
"""

import logging
import sqlite3
import threading
from collections.abc import Callable

import psycopg
from django.db import connection
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)

CHANNEL = "omnihub_tasks"  # as the trigger of migrations/0003 sends it
SQLITE_WATCH_INTERVAL = 0.01


def listen(on_ring: Callable[[], None], stopping: threading.Event) -> None:
    """Call `on_ring` whenever the bell may have rung, until `stopping` is set."""
    while not stopping.is_set():
        try:
            if connection.vendor == "postgresql":
                _listen_postgres(on_ring, stopping)
            else:
                _watch_sqlite(on_ring, stopping)
        except (psycopg.Error, sqlite3.Error):
            # The workers still poll meanwhile; only their wake-up is slower.
            logger.exception("doorbell lost its connection; reconnecting")
            stopping.wait(1.0)


def _listen_postgres(on_ring: Callable[[], None], stopping: threading.Event) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        while not stopping.is_set():
            if any(True for _ in listener.notifies(timeout=0.5, stop_after=1)):
                on_ring()


def _watch_sqlite(on_ring: Callable[[], None], stopping: threading.Event) -> None:
    database = connection.settings_dict["NAME"]
    watcher = sqlite3.connect(f"file:{database}?mode=ro", uri=True, check_same_thread=False)
    table = DBTaskResult._meta.db_table  # a model's table name, not input
    any_ready = f'SELECT 1 FROM "{table}" WHERE status = ? LIMIT 1'  # noqa: S608
    try:
        seen = watcher.execute("PRAGMA data_version").fetchone()[0]
        while not stopping.wait(SQLITE_WATCH_INTERVAL):
            version = watcher.execute("PRAGMA data_version").fetchone()[0]
            if version != seen:
                seen = version
                if watcher.execute(any_ready, [TaskResultStatus.READY]).fetchone():
                    on_ring()
    finally:
        watcher.close()
