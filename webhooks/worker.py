"""The worker process: several django-tasks-db worker loops in threads, plus lease recovery.

django-tasks-db runs one task at a time per loop and polls once a second; our work is mostly
waiting on HTTP, so one process runs WORKER_CONCURRENCY loops, and idle loops sleep on a
condition that a doorbell can ring, instead of a fixed sleep.

A ring wakes one loop, not all of them: a loop that claims a task wakes the next, so a burst
fans out to as many loops as it has tasks while a single message costs one claim, not one per
loop. Idle loops take turns polling, so the database sees about one poll per interval per
process, however many loops it runs.
"""

import logging
import os
import random
import signal
import socket
import threading
import time
from datetime import timedelta
from types import FrameType

from django.conf import settings
from django.db import OperationalError, close_old_connections, connection
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from webhooks import doorbell
from webhooks.processing import recover_expired_leases
from webhooks.tasks import prune_finished_tasks

logger = logging.getLogger(__name__)

RECOVERY_INTERVAL = 5.0
PRUNE_INTERVAL = 60.0


class WorkerProcess:
    def __init__(self, *, concurrency: int, poll_interval: float, backend: str = "default") -> None:
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.backend = backend
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self._stopping = threading.Event()
        self._wakeup = threading.Condition()
        self._rings = 0  # counts wake-ups, so a loop cannot miss one between looking and waiting

    def run(self) -> None:
        """Run until SIGINT/SIGTERM; the tasks under way finish first."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.run_forever()

    def run_forever(self) -> None:
        """Run until stop() is called."""
        threads = [
            threading.Thread(target=self._loop, args=(n,), name=f"worker-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        threads.append(threading.Thread(target=self._recover, name="recovery", daemon=True))
        threads.append(threading.Thread(target=self._listen, name="doorbell", daemon=True))
        for thread in threads:
            thread.start()
        logger.info("worker %s: %d loops started", self.worker_id, self.concurrency)
        while not self._stopping.wait(timeout=1.0):
            pass
        for thread in threads:
            thread.join()
        logger.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        with self._wakeup:
            self._rings += 1
            self._wakeup.notify_all()

    def wake(self) -> None:
        """Wake one idle loop (a task may be ready)."""
        with self._wakeup:
            self._rings += 1
            self._wakeup.notify()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping.is_set():
            logger.warning("second %s: stopping now", signal.strsignal(signum))
            os._exit(1)
        logger.info("%s: finishing the tasks under way", signal.strsignal(signum))
        self.stop()

    def task_loop(self, index: int) -> Worker:
        """django-tasks-db's loop object: we use its task running, and claim and wait ourselves."""
        return Worker(
            queue_names=["*"],
            interval=self.poll_interval,
            batch=False,
            backend_name=self.backend,
            startup_delay=False,
            max_tasks=None,
            worker_id=f"{self.worker_id}-{index}"[-64:],
            excluded_queue_names=[],
        )

    def _loop(self, index: int) -> None:
        loop = self.task_loop(index)
        try:
            while not self._stopping.is_set():
                rings_seen = self._rings
                found = self.run_one_task(loop)
                # A pooled connection goes back between tasks: idle loops hold none.
                close_old_connections()
                if not found:
                    with self._wakeup:
                        # stop() may have rung before rings_seen was read: check it here too.
                        if self._rings == rings_seen and not self._stopping.is_set():
                            self._wakeup.wait(timeout=self._idle_poll_interval())
        finally:
            connection.close()

    def run_one_task(self, loop: Worker) -> bool:
        """Claim one ready task and run it; False when none is ready."""
        task_result, more = self._claim(loop.worker_id)
        if task_result is None:
            return False
        if more:
            self.wake()  # let another loop take the next while this one works
        loop.run_task(task_result)
        return True

    def _idle_poll_interval(self) -> float:
        # Spread at random over the loops: together they poll about once per poll_interval.
        return self.poll_interval * self.concurrency * random.uniform(0.5, 1.5)

    def _claim(self, worker_id: str) -> tuple[DBTaskResult | None, bool]:
        """The next ready task, claimed, and whether another is ready behind it."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend)
        try:
            with exclusive_transaction(tasks.db):
                # As django-tasks-db's get_locked(), but two: the second says if there is more.
                ready = list(tasks.select_for_update(skip_locked=True)[:2])
                if ready:
                    ready[0].claim(worker_id)
        except OperationalError as error:
            if is_locked_database_exception(error):
                return None, False  # another writer holds SQLite's lock: try again when rung
            raise
        return (ready[0] if ready else None), len(ready) > 1

    def _listen(self) -> None:
        try:
            doorbell.listen(self.wake, self._stopping)
        finally:
            connection.close()

    def _recover(self) -> None:
        """Requeue what dead workers left, and now and then delete old finished tasks."""
        next_prune = 0.0
        try:
            while not self._stopping.wait(timeout=RECOVERY_INTERVAL):
                close_old_connections()
                try:
                    if recover_expired_leases():
                        self.wake()
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_INTERVAL
                        self._prune()
                except OperationalError:
                    logger.exception("lease recovery failed; trying again shortly")
        finally:
            connection.close()

    def _prune(self) -> None:
        keep = timedelta(hours=settings.TASK_RESULTS_KEEP_HOURS)
        if deleted := prune_finished_tasks(older_than=keep):
            logger.info("deleted %d finished tasks older than %s", deleted, keep)
