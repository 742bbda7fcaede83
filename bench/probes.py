"""What the benchmark watches beside the load: /health, and the peak memory of processes."""

import asyncio
import contextlib
import time
from dataclasses import dataclass

import httpx

from bench.servers import Proc


@dataclass
class HealthReport:
    answered: int = 0
    failed: int = 0
    slowest: float = 0.0

    def merge(self, other: "HealthReport") -> None:
        self.answered += other.answered
        self.failed += other.failed
        self.slowest = max(self.slowest, other.slowest)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.answered > 0


class Watch:
    """While entered: GET `health_url` every `interval` seconds (and once on leaving), and
    poll the VmRSS of `processes`: VmHWM alone would miss a process that is replaced."""

    def __init__(
        self, health_url: str, processes: list[Proc], interval: float = 0.5, timeout: float = 5.0
    ) -> None:
        self.health_url = health_url
        self.processes = processes
        self.interval = interval
        self.health = HealthReport()
        self.peak_kib: dict[int, int] = dict.fromkeys((proc.pid for proc in processes), 0)
        self._client = httpx.AsyncClient(timeout=timeout)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> "Watch":
        self._tasks = [asyncio.create_task(self._probe_forever()),
                       asyncio.create_task(self._sample_forever())]  # fmt: skip
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # The probe under way is let finish: a client hanging up mid-request can make Django log
        # an exception, which would be the benchmark's doing.
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._probe()
        self._sample()
        await self._client.aclose()

    def peak_mib(self, proc: Proc) -> float:
        """The larger of the polled peak and the kernel's VmHWM (read now, while it runs)."""
        return max(self.peak_kib.get(proc.pid, 0), proc.status_kib("VmHWM")) / 1024

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _probe_forever(self) -> None:
        while not self._stopping.is_set():
            await self._probe()
            await self._pause(self.interval)

    async def _sample_forever(self) -> None:
        while not self._stopping.is_set():
            self._sample()
            await self._pause(0.2)

    def _sample(self) -> None:
        for proc in self.processes:
            self.peak_kib[proc.pid] = max(self.peak_kib[proc.pid], proc.status_kib("VmRSS"))

    async def _probe(self) -> None:
        started = time.monotonic()
        try:
            ok = (await self._client.get(self.health_url)).status_code == 200
        except httpx.HTTPError:
            ok = False
        self.health.slowest = max(self.health.slowest, time.monotonic() - started)
        if ok:
            self.health.answered += 1
        else:
            self.health.failed += 1
