"""Wakes an idle worker as soon as a conversation becomes ready, instead of at its next poll.

PostgreSQL: the webhook's transaction sends NOTIFY (webhooks.conversations.leases.mark_ready),
which PostgreSQL delivers at commit, and not at all on rollback; each worker process LISTENs on
one connection of its own. SQLite has no signal between processes, so a thread watches
`PRAGMA data_version`, which changes whenever another connection commits: a read of the shared
header, not a query on any table. Only then does it look for a ready conversation, so the many
commits that make none ready (a worker's own) wake nothing.
"""

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

import psycopg
from django.db import connection
from django.utils import timezone

from webhooks.conversations.leases import WAKE_UP_CHANNEL, ready
from webhooks.models import Conversation

logger = logging.getLogger(__name__)

SQLITE_WATCH_INTERVAL = 0.005
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
            except (psycopg.Error, sqlite3.Error):
                # The worker still polls meanwhile; only its wake-up is slower.
                logger.exception("wake-up listener lost its connection; reconnecting")
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
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA data_version")
        seen = cursor.fetchone()[0]
        changed, looked = False, float("-inf")
        while not stopping.wait(SQLITE_WATCH_INTERVAL):
            cursor.execute("PRAGMA data_version")
            version = cursor.fetchone()[0]
            if version != seen:
                seen, changed = version, True
            # Under load every few milliseconds bring a commit: they are looked at together.
            if changed and time.monotonic() - looked >= SQLITE_LOOK_INTERVAL:
                changed, looked = False, time.monotonic()
                if Conversation.objects.filter(ready(timezone.now())).exists():
                    on_ring()
