"""`omnihub serve`'s children: the web server, and a worker that is restarted when it dies.

A worker that crashes (a bug, the OOM killer, kill -9) must not take the web server with it:
webhooks keep being stored while the worker is down, and the restarted worker answers them.
The web server is the process users reach, so when it stops everything stops.
"""

import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

logger = logging.getLogger("omnihub.serve")

# A worker that dies again soon after its start waits longer each time, up to this.
MAX_RESTART_DELAY = 30.0
# A worker that ran this long before dying is restarted at once, as if for the first time.
HEALTHY_AFTER = 60.0
CHECK_INTERVAL = 0.5


class Supervisor:
    def __init__(self, web: Sequence[str], worker: Sequence[str] | None) -> None:
        self.web_command = list(web)
        self.worker_command = list(worker) if worker else None
        self.stopping = False

    def run(self) -> int:
        """Serve until the web server stops or a signal asks to; returns an exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        web = subprocess.Popen(self.web_command)  # noqa: S603
        worker = self._start_worker()
        delay, started = 0.0, time.monotonic()
        try:
            while not self.stopping and web.poll() is None:
                time.sleep(CHECK_INTERVAL)
                if worker is None or worker.poll() is None or self.stopping:
                    continue
                ran = time.monotonic() - started
                delay = 0.0 if ran >= HEALTHY_AFTER else min(max(delay * 2, 1.0), MAX_RESTART_DELAY)
                logger.error(
                    "the worker stopped (exit status %s) after %.0f s; restarting it in %.0f s",
                    worker.returncode, ran, delay,
                )  # fmt: skip
                self._sleep(delay)
                if not self.stopping:
                    worker, started = self._start_worker(), time.monotonic()
        finally:
            for child in (web, worker):
                if child is not None and child.poll() is None:
                    child.terminate()
            for child in (web, worker):
                if child is not None:
                    child.wait()
        return 0 if self.stopping else (web.returncode or 1)

    def _start_worker(self) -> subprocess.Popen[bytes] | None:
        if self.worker_command is None:
            return None
        return subprocess.Popen(self.worker_command)  # noqa: S603

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(CHECK_INTERVAL, seconds))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Ctrl-C reaches the children through the terminal too; SIGTERM is passed on by hand
        # (in the finally above), and each child finishes what it was doing.
        self.stopping = True
