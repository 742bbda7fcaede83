"""The worker process: one asyncio loop that answers up to WORKER_CONCURRENCY conversations at
once, each a coroutine (webhooks.conversations.answering) waiting on HTTP.

It claims ready conversations in batches when it has room, as soon as the wake-up listener
rings or, failing that, every poll interval (for retries that came due and leases that
expired). While it lives it renews the leases of the chats it holds; a chat another worker took
over (this one was presumed dead) is dropped at once. SIGTERM stops the claiming, lets the
conversations under way finish within a grace period, and hands the rest back.
"""

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
import threading
import time
from datetime import timedelta

import uvloop
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from omnihub.db_threads import run_in_db_thread
from webhooks.conversations import leases
from webhooks.conversations.answering import Answerer
from webhooks.conversations.leases import LeaseLostError
from webhooks.conversations.turns import claim_turns
from webhooks.integrations import transport
from webhooks.worker import wakeup

logger = logging.getLogger(__name__)

CLAIM_BATCH = 100
# A claim is a transaction of several statements, whatever it takes: seconds between two.
CLAIM_INTERVAL = 0.02


class Worker:
    def __init__(
        self,
        *,
        concurrency: int,
        poll_interval: float,
        lease_seconds: float,
        grace_seconds: float,
    ) -> None:
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.grace_seconds = grace_seconds
        # Unique even when a process id is reused on another machine or after a restart.
        self.id = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
        self.in_flight: dict[int, asyncio.Task[int]] = {}
        # For whoever watches from a thread: serving, and holding no conversation.
        self.started = threading.Event()
        self.idle = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._rung = False  # the wake-up listener rang since the last claim

    def run(self) -> None:
        """Run until SIGINT or SIGTERM; a second signal cuts the grace period short."""
        # uvloop, as uvicorn serves the web: the loop's own work is a large part of what a
        # thousand conversations waiting on HTTP cost.
        asyncio.run(self.serve(handle_signals=True), loop_factory=uvloop.new_event_loop)

    def stop(self) -> None:
        """Stop claiming and finish what is under way; safe to call from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping)

    def _stopping(self) -> None:
        self._stop.set()
        self._wake.set()

    def _ring(self) -> None:
        self._rung = True
        self._wake.set()

    async def serve(self, *, handle_signals: bool = False) -> None:
        """Answer conversations until stop() is called."""
        self._loop = loop = asyncio.get_running_loop()
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self._on_signal, signum)
        stop_listening = threading.Event()
        listener = threading.Thread(
            target=wakeup.listen,
            args=(lambda: loop.call_soon_threadsafe(self._ring), stop_listening),
            name="wake-up",
            daemon=True,
        )
        listener.start()
        async with transport.new_client() as client:
            answerer = Answerer(self.id, client, lambda: not self._stop.is_set())
            heartbeat = asyncio.create_task(self._renew_leases())
            logger.info("worker %s started: up to %d conversations", self.id, self.concurrency)
            self.started.set()
            try:
                await self._claim_until_stopped(answerer)
                await self._finish_in_flight()
            finally:
                heartbeat.cancel()
                stop_listening.set()
        await asyncio.to_thread(listener.join)
        logger.info("worker %s stopped", self.id)

    async def drain(self) -> None:
        """Answer every conversation ready now or soon (retries), then return: for tests and
        one-off runs."""
        async with transport.new_client() as client:
            answerer = Answerer(self.id, client)
            while await self._claim(answerer) or self.in_flight or await self._retry_due_soon():
                if self.in_flight:
                    await asyncio.wait(
                        self.in_flight.values(),
                        timeout=self.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                else:
                    await asyncio.sleep(min(self.poll_interval, 0.05))

    def _on_signal(self, signum: int) -> None:
        if self._stop.is_set():
            logger.warning("second %s: handing back what is under way", signal.strsignal(signum))
            self.grace_seconds = 0
            for task in self.in_flight.values():
                task.cancel()
            return
        logger.info("%s: finishing the conversations under way", signal.strsignal(signum))
        self._stopping()

    async def _claim_until_stopped(self, answerer: Answerer) -> None:
        loop = asyncio.get_running_loop()
        last_claim = -CLAIM_INTERVAL
        while not self._stop.is_set():
            # While chats keep becoming ready, claims come at most this often, each taking
            # every chat that became ready meanwhile; the first after a quiet spell is at once.
            await asyncio.sleep(max(0.0, last_claim + CLAIM_INTERVAL - loop.time()))
            last_claim = loop.time()
            self._wake.clear()
            # A ring says a chat became ready: no need to look before the claim's transaction.
            rung, self._rung = self._rung, False
            try:
                claimed = await self._claim(answerer, look_first=not rung)
            except DatabaseError:
                logger.exception("claiming conversations failed; trying again shortly")
                claimed = 0
            if claimed == CLAIM_BATCH:
                continue  # more may be ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def _claim(self, answerer: Answerer, *, look_first: bool = True) -> int:
        room = self.concurrency - len(self.in_flight)
        if room <= 0:
            return 0
        claimed, turns = await run_in_db_thread(
            claim_turns, self.id, limit=min(room, CLAIM_BATCH), lease_seconds=self.lease_seconds,
            holding=list(self.in_flight), look_first=look_first,
        )  # fmt: skip
        for conversation_id, turn in turns.items():
            task = asyncio.create_task(answerer.answer_conversation(conversation_id, turn))
            self.in_flight[conversation_id] = task
            self.idle.clear()
            task.add_done_callback(functools.partial(self._done, conversation_id))
        return claimed

    def _done(self, conversation_id: int, task: asyncio.Task[int]) -> None:
        # The chat may have been handed back, made ready and claimed again by a new task
        # before this one's callback runs: only forget this task.
        if self.in_flight.get(conversation_id) is task:
            del self.in_flight[conversation_id]
        if len(self.in_flight) == self.concurrency - 1:
            self._wake.set()  # it was full: room for another now
        if not self.in_flight:
            self.idle.set()
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, LeaseLostError):
            logger.warning("conversation %s was taken over by another worker", conversation_id)
        elif error is not None:
            # Its lease runs out and another worker (or this one) takes the chat up again.
            logger.error("conversation %s: %r", conversation_id, error, exc_info=error)

    async def _retry_due_soon(self) -> bool:
        due = await run_in_db_thread(leases.soonest_ready_at)
        return due is not None and due < timezone.now() + timedelta(seconds=5)

    async def _renew_leases(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_seconds / 4)
            held = list(self.in_flight)
            if not held:
                renewed = time.monotonic()
                continue
            try:
                # A thread of its own, not the database threads: their queue may be long
                # under load, and the leases must not run out while it drains.
                lost = await asyncio.to_thread(
                    _renew, self.id, held, lease_seconds=self.lease_seconds
                )
                renewed = time.monotonic()
            except DatabaseError:
                logger.exception("renewing leases failed")
                if time.monotonic() - renewed < self.lease_seconds * 0.75:
                    continue
                # Other workers will soon see these leases expire and take the chats.
                lost = set(held)
            for conversation_id in lost:
                if task := self.in_flight.get(conversation_id):
                    logger.warning("conversation %s: lease lost, dropping it", conversation_id)
                    task.cancel()

    async def _finish_in_flight(self) -> None:
        if self.in_flight:
            logger.info("waiting for %d conversations under way", len(self.in_flight))
            await asyncio.wait(list(self.in_flight.values()), timeout=self.grace_seconds)
        cut_short = list(self.in_flight)
        for task in list(self.in_flight.values()):
            task.cancel()
        await asyncio.gather(*self.in_flight.values(), return_exceptions=True)
        if cut_short:
            released = await run_in_db_thread(leases.release, self.id, cut_short)
            logger.warning("handed back %d conversations cut short", released)


def _renew(worker_id: str, conversation_ids: list[int], *, lease_seconds: float) -> set[int]:
    try:
        return leases.renew(worker_id, conversation_ids, lease_seconds=lease_seconds)
    finally:
        close_old_connections()
