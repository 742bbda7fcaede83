"""Wakes an idle worker as soon as a conversation becomes ready, instead of at its next poll.

PostgreSQL: the webhook's transaction sends NOTIFY (webhooks.conversations.leases.mark_ready),
which PostgreSQL delivers at commit, and not at all on rollback; each worker process LISTENs on
one connection of its own. SQLite has no signal between processes: the same transaction rings
the doorbells of this machine's workers once it commits (webhooks.conversations.doorbell). A
commit that rings none, such as a chat a stopping worker hands back, is seen by watching
`PRAGMA data_version`, which changes whenever another connection commits: a read of the shared
header, not a query on any table. After a ring or such a commit, and only then, the thread
looks for a conversation ready to claim, so that commits that make none claimable (a worker's
own, a message behind a retry) wake nothing.
"""

import contextlib
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable

import psycopg
from django.db import connection
from django.db.backends.utils import CursorWrapper

from webhooks.conversations import doorbell
from webhooks.conversations.leases import WAKE_UP_CHANNEL, any_claimable

logger = logging.getLogger(__name__)

# Commits that ring no doorbell (webhooks.conversations.doorbell) are seen within this many
# seconds; every commit is, where this process has no doorbell.
SQLITE_WATCH_INTERVAL = 0.02
SQLITE_WATCH_INTERVAL_WITHOUT_DOORBELL = 0.005
# A look for a ready chat is a query: at most one per this many seconds, however many commits.
SQLITE_LOOK_INTERVAL = 0.02


def listen(on_ring: Callable[[], None], stopping: threading.Event) -> None:
    """Call `on_ring` whenever a conversation may have become ready, until `stopping` is set.
    Runs in a thread of its own, with a database connection of its own."""
    try:
        while not stopping.is_set():
            try:
                if connection.vendor == "postgresql":
                    _listen_postgres(on_ring, stopping)
                else:
                    _watch_sqlite(on_ring, stopping)
            except (psycopg.Error, sqlite3.Error, OSError):
                # The worker still polls meanwhile; only its wake-up is slower.
                logger.exception("wake-up listener failed; starting it again")
                stopping.wait(1.0)
    finally:
        connection.close()


def _listen_postgres(on_ring: Callable[[], None], stopping: threading.Event) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {WAKE_UP_CHANNEL}")
        while not stopping.is_set():
            if any(True for _ in listener.notifies(timeout=0.5, stop_after=1)):
                on_ring()


def _watch_sqlite(on_ring: Callable[[], None], stopping: threading.Event) -> None:
    with doorbell.doorbell() as bell, connection.cursor() as cursor:
        seen = _data_version(cursor)
        changed, looked = False, float("-inf")
        interval = SQLITE_WATCH_INTERVAL if bell else SQLITE_WATCH_INTERVAL_WITHOUT_DOORBELL
        while not stopping.is_set():
            rung = _rung(bell, interval, stopping)
            version = _data_version(cursor)
            if rung or version != seen:
                seen, changed = version, True
            # A ring is looked into too: its chat may be held by a worker, or its message wait
            # behind a retry, and a claim would take SQLite's one write lock for nothing. Under
            # load every few milliseconds bring a commit: they are looked at together.
            if changed and time.monotonic() - looked >= SQLITE_LOOK_INTERVAL:
                changed, looked = False, time.monotonic()
                if any_claimable():
                    on_ring()


def _rung(bell: socket.socket | None, timeout: float, stopping: threading.Event) -> bool:
    """Whether the doorbell rang within `timeout` (every ring waiting is taken)."""
    if bell is None:
        stopping.wait(timeout)
        return False
    bell.settimeout(timeout)
    try:
        bell.recv(16)
    except TimeoutError:
        return False
    bell.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            bell.recv(16)
    return True


def _data_version(cursor: CursorWrapper) -> int:
    cursor.execute("PRAGMA data_version")
    version: int = cursor.fetchone()[0]
    return version
