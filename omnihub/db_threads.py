"""Database work for async code (the webhook view, the worker's conversations), on a few
long-lived threads that keep their connections.

Django runs a sync view under ASGI in a thread made for that one request, so each request
opened (or took from the pool) a connection of its own and threads piled up under load; a
worker with a thousand conversations in flight would need a thousand. Async code hands its ORM
work to these threads instead: their number (DB_THREADS) bounds the connections and threads a
process holds, and each keeps its connection between calls as far as CONN_MAX_AGE allows, just
as Django does at the end of a request.
"""

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections


async def run_in_db_thread[**P, R](
    function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    call = sync_to_async(_tidying_up(function), thread_sensitive=False, executor=_db_threads())
    return await call(*args, **kwargs)


def close_db_connections() -> None:
    """Close every database thread's connections, e.g. before their database is dropped.

    Each thread takes one closing job: the jobs wait for each other at a barrier, so no thread
    can take two."""
    count = settings.DB_THREADS
    barrier = threading.Barrier(count)

    def close() -> None:
        barrier.wait(timeout=30)
        connections.close_all()

    for job in [_db_threads().submit(close) for _ in range(count)]:
        job.result()


@functools.cache
def _db_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="db")


def _tidying_up[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            # What Django does when a request ends: a connection broken by an error, past its
            # age, or left outside autocommit is closed; a pooled one goes back to the pool.
            for connection in connections.all(initialized_only=True):
                connection.close_if_unusable_or_obsolete()

    return call
