"""Database work for async code (the webhook view, the worker's conversations), on a few
long-lived threads that keep their connections.

Django runs a sync view under ASGI in a thread made for that one request, so each request
opened (or took from the pool) a connection of its own and threads piled up under load; a
worker with a thousand conversations in flight would need a thousand. Async code hands its ORM
work to these threads instead: their number (DB_THREADS) bounds the connections and threads a
process holds, and each keeps its connection between calls as far as CONN_MAX_AGE allows, just
as Django does at the end of a request.

SQLite has one write lock per database, shared by the web and the worker processes, and a
connection that finds it taken sleeps, longer each time, and tries again: a process that
always has work ready, and retakes the lock as soon as it let go, kept the other one out for
seconds. So there:
- the database threads of every process take turns, through a lock file beside the database:
  the kernel wakes a waiting thread as soon as the lock is let go;
- in its turn, a thread runs the calls that queued up meanwhile in one transaction, each in a
  savepoint of its own (a call that raises undoes only its own work), so one turn and one
  commit serve many calls. A call's result is handed back once the whole batch has committed:
  whoever waits for it knows its work is stored, as with a call of its own.
"""

import asyncio
import contextlib
import contextvars
import fcntl
import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections, transaction

# A batch stops taking more queued calls after this many, or after this many seconds of work:
# every call in it waits for the last one.
BATCH_CALLS = 64
BATCH_SECONDS = 0.02


async def run_in_db_thread[**P, R](
    function: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> R:
    call = _Call(contextvars.copy_context(), functools.partial(function, *args, **kwargs))
    _db_threads().put(call)
    result: R = await asyncio.wrap_future(call.future)
    return result


def close_db_connections() -> None:
    """Close every database thread's connections, e.g. before their database is dropped.

    Each thread takes one closing job: the jobs wait for each other at a barrier, so no thread
    can take two."""
    threads = _db_threads()
    barrier = threading.Barrier(threads.count)

    def close() -> None:
        barrier.wait(timeout=30)
        connections.close_all()

    calls = [_Call(contextvars.copy_context(), close, alone=True) for _ in range(threads.count)]
    for call in calls:
        threads.put(call)
    for call in calls:
        call.future.result()


@dataclass(slots=True)
class _Call:
    context: contextvars.Context
    function: Callable[[], Any]
    alone: bool = False  # never batched with others
    future: "Future[Any]" = field(default_factory=Future)

    def run(self) -> None:
        """Run it by itself, as Django runs a request's work, and hand back its outcome once
        its connection is tidied up."""
        try:
            outcome = (True, self.context.run(self.function))
        except BaseException as error:  # it belongs to the caller
            outcome = (False, error)
        _tidy_up_then_settle([(self, outcome)])


class _DbThreads:
    def __init__(self, count: int, *, batching: bool) -> None:
        self.count = count
        self.batching = batching
        self.calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        for number in range(count):
            name = f"db_{number}"
            threading.Thread(target=self._serve, name=name, daemon=True).start()

    def put(self, call: _Call) -> None:
        self.calls.put(call)

    def _serve(self) -> None:
        turns = _SqliteTurns() if self.batching else None
        while True:
            call = self.calls.get()
            if not call.future.set_running_or_notify_cancel():
                continue  # its caller stopped waiting before it started
            if turns is None or call.alone:
                call.run()
                continue
            with turns.turn():
                if self.calls.empty():
                    call.run()
                else:
                    self._run_batch(call)

    def _run_batch(self, first: _Call) -> None:
        """`first` and the calls queued behind it, in one transaction, each in a savepoint."""
        taken = [first]
        outcomes: list[tuple[bool, Any]] = []
        started = time.monotonic()
        try:
            with transaction.atomic():
                call: _Call | None = first
                while call is not None:
                    try:
                        with transaction.atomic():
                            outcomes.append((True, call.context.run(call.function)))
                    except Exception as error:  # it belongs to the caller
                        outcomes.append((False, error))
                    call = self._next(started, len(taken))
                    if call is not None:
                        taken.append(call)
        except BaseException as error:  # the transaction failed: nothing was stored
            outcomes = [(False, outcome if not ok else error) for ok, outcome in outcomes]
            outcomes += [(False, error)] * (len(taken) - len(outcomes))
        _tidy_up_then_settle(list(zip(taken, outcomes, strict=True)))

    def _next(self, started: float, count: int) -> "_Call | None":
        """The next queued call for this batch, if it has room and time for one."""
        while count < BATCH_CALLS and time.monotonic() - started < BATCH_SECONDS:
            try:
                call = self.calls.get_nowait()
            except queue.Empty:
                return None
            if call.alone:
                self.calls.put(call)
                return None
            if call.future.set_running_or_notify_cancel():
                return call
        return None


class _SqliteTurns:
    """One database thread's place in the turns every process's threads take at writing to
    the SQLite file: an exclusive lock (flock) on `<database file>.turns`, opened by each
    thread for itself. None for a database in memory, which no other process shares."""

    def __init__(self) -> None:
        self.name = ""
        self.fd: int | None = None

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        fd = self._file()
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int | None:
        # Read each time: the tests switch the connection to their own database.
        name = str(connections["default"].settings_dict["NAME"])
        if name != self.name:
            if self.fd is not None:
                os.close(self.fd)
            self.name, self.fd = name, None
            if name and ":memory:" not in name and "mode=memory" not in name:
                self.fd = os.open(f"{name}.turns", os.O_RDWR | os.O_CREAT, 0o600)
        return self.fd


@functools.cache
def _db_threads() -> _DbThreads:
    engine = settings.DATABASES["default"]["ENGINE"]
    return _DbThreads(settings.DB_THREADS, batching=engine.endswith("sqlite3"))


def _tidy_up_then_settle(outcomes: list[tuple[_Call, tuple[bool, Any]]]) -> None:
    """Tidy the thread's connections up, as Django does when a request ends (a connection
    broken by an error, past its age, or left outside autocommit is closed; a pooled one goes
    back to the pool), then hand each call's outcome to its caller."""
    trouble: Exception | None = None
    try:
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
    except Exception as error:  # the callers' to know, not this thread's to die of
        trouble = error
    for call, (ok, outcome) in outcomes:
        if ok and trouble is None:
            call.future.set_result(outcome)
        else:
            call.future.set_exception(outcome if not ok else trouble)
