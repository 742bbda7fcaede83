"""The load generator: N POSTs over C concurrent keep-alive connections (asyncio), either as
fast as the server answers (a closed loop) or at a fixed rate (an open loop).

It runs on the same 2 cores as the server, so the benchmark reports the CPU it used: one
generator measures both the bare baseline and the webhook, which keeps their ratio fair.
"""

import asyncio
import contextlib
import json
import resource
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FIXTURE = Path(__file__).resolve().parent.parent / "tests/webhooks/fixtures/text_pn.json"
HEADERS = {"content-type": "application/json"}


def text_payload(instance: str, message_id: str, chat: int, text: str) -> bytes:
    """A real Evolution v2 text message (tests/webhooks/fixtures/text_pn.json), made distinct."""
    payload: dict[str, Any] = json.loads(FIXTURE.read_text())
    payload["instance"] = instance
    data = payload["data"]
    data["key"] = {
        **data["key"],
        "id": message_id,
        "remoteJid": f"55119{chat:08d}@s.whatsapp.net",
        "remoteJidAlt": f"{187000000000000 + chat}@lid",
    }
    data["message"] = {**data["message"], "conversation": text}
    return json.dumps(payload).encode()


def quantile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1-99); the value itself when there is one."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, per answered request
    starts: list[float] = field(default_factory=list)  # time.monotonic() at each request's start
    statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer (connection error)
    wall: float = 0.0
    cpu: float = 0.0  # the generator's CPU seconds

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    @property
    def p50(self) -> float:
        return quantile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return quantile(self.latencies, 99)

    @property
    def failures(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def post_all(
    url: str | Sequence[str], bodies: Sequence[bytes], concurrency: int
) -> LoadResult:
    """POST each body once (to url[i] when given a list), `concurrency` at a time."""
    urls = [url] * len(bodies) if isinstance(url, str) else list(url)
    result = LoadResult(starts=[0.0] * len(bodies))
    next_index = iter(range(len(bodies)))

    async def one_connection() -> None:
        connection: Connection | None = None
        for index in next_index:
            connection = await _post(connection, urls[index], bodies[index], index, result)
        if connection is not None:
            connection.close()

    cpu_before, wall_before = _cpu_seconds(), time.monotonic()
    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    result.wall = time.monotonic() - wall_before
    result.cpu = _cpu_seconds() - cpu_before
    return result


async def post_at_rate(
    url: str, bodies: Sequence[bytes], rate: float, *, connections: int = 32
) -> LoadResult:
    """POST the i-th body at i/rate seconds, whether or not the earlier ones were answered (an
    open loop, as independent senders behave), over at most `connections` connections.

    Each start is the scheduled time: a request that waited for a free connection counts that
    wait, so a server that falls behind cannot hide it by slowing the generator down.
    """
    result = LoadResult(starts=[0.0] * len(bodies))
    idle: asyncio.Queue[Connection | None] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(None)  # a connection not opened yet
    began = time.monotonic()

    async def one_request(index: int) -> None:
        scheduled = began + index / rate
        await asyncio.sleep(scheduled - time.monotonic())
        connection = await idle.get()
        try:
            connection = await _post(connection, url, bodies[index], index, result, scheduled)
        except BaseException:
            if connection is not None:
                connection.close()  # it may be mid-answer
            connection = None
            raise
        finally:
            idle.put_nowait(connection)  # the slot is free for the next request

    cpu_before = _cpu_seconds()
    await asyncio.gather(*(one_request(index) for index in range(len(bodies))))
    result.wall = time.monotonic() - began
    result.cpu = _cpu_seconds() - cpu_before
    while not idle.empty():
        if (connection := idle.get_nowait()) is not None:
            connection.close()
    return result


async def _post(
    connection: "Connection | None",
    url: str,
    body: bytes,
    index: int,
    result: LoadResult,
    started: float | None = None,
) -> "Connection | None":
    """One request, recorded in `result` as started at `started` (default: once connected);
    returns the connection if it may be used again."""
    target = httpx.URL(url)
    try:
        if connection is None:
            connection = await Connection.open(target.host, target.port or 80)
        # A closed loop's clock starts once connected, as a client's keep-alive pool's would.
        result.starts[index] = started = time.monotonic() if started is None else started
        status = await connection.post(target.raw_path, body)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.statuses[0] += 1
        if connection is not None:
            connection.close()
        return None
    result.latencies.append(time.monotonic() - started)
    result.statuses[status] += 1
    if connection.closing:
        connection.close()
        return None
    return connection


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: httpx's pool spends more CPU than
    the server under test at 256 connections, which would measure the generator instead."""

    def __init__(
        self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.host = host
        self.reader = reader
        self.writer = writer
        self.closing = False

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(f"{host}:{port}", reader, writer)

    async def post(self, path: bytes, body: bytes) -> int:
        """Send one request and read the whole answer; returns its status."""
        head = (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path, self.host.encode(), len(body))
        )
        self.writer.write(head + body)
        answer = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        status = int(answer[9:12])
        self.closing = b"\r\nconnection: close" in answer
        if b"\r\ntransfer-encoding: chunked" in answer:
            await self._read_chunks()
        else:
            marker = answer.find(b"\r\ncontent-length:")
            if marker < 0:
                raise ValueError("an answer without a length")
            length = int(answer[marker + 17 : answer.index(b"\r\n", marker + 2)])
            await self.reader.readexactly(length)
        return status

    async def _read_chunks(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        self.writer.close()


@dataclass
class HealthReport:
    answered: int = 0
    failed: int = 0
    slowest: float = 0.0
    after_ok: bool = False

    def merge(self, other: "HealthReport") -> None:
        self.answered += other.answered
        self.failed += other.failed
        self.slowest = max(self.slowest, other.slowest)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.answered > 0


class HealthProbe:
    """GET /health every `interval` seconds while a load runs, and once right after it."""

    def __init__(self, url: str, interval: float = 0.25, timeout: float = 5.0) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.report = HealthReport()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> "HealthProbe":
        self._task = asyncio.create_task(self._probe_forever())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # The probe under way is let finish: a client hanging up mid-request can make Django log
        # "Exception in ASGI application", which would be the benchmark's doing.
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.report.after_ok = await self._probe()
        await self._client.aclose()

    async def _probe_forever(self) -> None:
        while not self._stopping.is_set():
            await self._probe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def _probe(self) -> bool:
        started = time.monotonic()
        try:
            ok = (await self._client.get(self.url)).status_code == 200
        except httpx.HTTPError:
            ok = False
        self.report.slowest = max(self.report.slowest, time.monotonic() - started)
        if ok:
            self.report.answered += 1
        else:
            self.report.failed += 1
        return ok
