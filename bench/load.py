"""The load generator: POSTs over C concurrent keep-alive connections (asyncio), as fast as the
server answers (a closed loop: a fixed list, or until told to stop) or at a fixed rate (an open
loop). It runs on the same 2 cores as the servers, and drives the bare baseline and Omnihub
alike, which keeps their comparison fair.
"""

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from bench.setup_db import WEBHOOK_SECRET

HEADERS = {"content-type": "application/json", "x-omnihub-token": WEBHOOK_SECRET}
REQUEST_TIMEOUT = 10.0  # seconds; a webhook unanswered by then counts as a timeout
NO_ANSWER, TIMED_OUT = 0, -1  # pseudo statuses

# An Evolution v2 `messages.upsert` text message; the markers are replaced per message.
_TEMPLATE = json.dumps(
    {
        "event": "messages.upsert",
        "instance": "@INSTANCE@",
        "data": {
            "key": {
                "remoteJid": "55119@CHAT@@s.whatsapp.net",
                "remoteJidAlt": "18700@CHAT@@lid",
                "fromMe": False,
                "id": "@ID@",
                "addressingMode": "pn",
            },
            "pushName": "Maria Silva",
            "status": "DELIVERY_ACK",
            "message": {
                "conversation": "@TEXT@",
                "messageContextInfo": {"deviceListMetadataVersion": 2},
            },
            "messageType": "conversation",
            "messageTimestamp": 1_700_000_000,
            "instanceId": "7f6c1f2e-4b1a-4a51-9d7e-2f0c5e8a9b10",
            "source": "ios",
        },
        "destination": "http://127.0.0.1:8000/webhook/evolution/@INSTANCE@",
        "date_time": "2025-10-21T11:40:39.512Z",
        "sender": "5511988887777@s.whatsapp.net",
        "server_url": "http://127.0.0.1:8080",
        "apikey": "B6D711FCDE4D4FD5936544120E713976",
    }
).encode()


def text_payload(instance: str, message_id: str, chat: int, text: str) -> bytes:
    """A distinct text message from chat number `chat`, stamped now: a worker may rightly skip
    messages from long ago."""
    return (
        _TEMPLATE.replace(b"@INSTANCE@", instance.encode())
        .replace(b"@CHAT@", b"%08d" % chat)
        .replace(b"@ID@", message_id.encode())
        .replace(b"@TEXT@", text.encode())
        .replace(b"1700000000", b"%d" % time.time())
    )


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
    statuses: Counter[int] = field(default_factory=Counter)  # NO_ANSWER, TIMED_OUT or HTTP's
    wall: float = 0.0

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

    began = time.monotonic()
    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    result.wall = time.monotonic() - began
    return result


class Sustained:
    """A closed loop over `concurrency` connections that runs until `stop()`: each connection
    POSTs the next body of `bodies` as soon as its previous one was answered."""

    def __init__(self, url: str, bodies: Iterator[bytes], concurrency: int) -> None:
        self.url = url
        self.bodies = bodies
        self.concurrency = concurrency
        self.result = LoadResult()
        self._stopping = False
        self._task: asyncio.Future[list[None]] | None = None

    def start(self) -> None:
        self._task = asyncio.gather(*(self._connection() for _ in range(self.concurrency)))

    @property
    def answered(self) -> int:
        return len(self.result.latencies)

    async def stop(self) -> LoadResult:
        self._stopping = True
        if self._task is not None:
            await self._task
        return self.result

    async def _connection(self) -> None:
        connection: Connection | None = None
        while not self._stopping:
            index = len(self.result.starts)
            self.result.starts.append(0.0)
            connection = await _post(connection, self.url, next(self.bodies), index, self.result)
        if connection is not None:
            connection.close()


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
        finally:
            idle.put_nowait(connection)  # the slot is free for the next request

    await asyncio.gather(*(one_request(index) for index in range(len(bodies))))
    result.wall = time.monotonic() - began
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
    host, _, rest = url.removeprefix("http://").partition("/")
    try:
        if connection is None:
            name, _, port = host.partition(":")
            connection = await Connection.open(name, int(port or 80))
        # A closed loop's clock starts once connected, as a client's keep-alive pool's would.
        result.starts[index] = started = time.monotonic() if started is None else started
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status = await connection.post(f"/{rest}".encode(), body)
    except TimeoutError:
        result.statuses[TIMED_OUT] += 1
        if connection is not None:
            connection.close()  # it may be mid-answer
        return None
    except (OSError, asyncio.IncompleteReadError, ValueError):
        result.statuses[NO_ANSWER] += 1
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
    """One keep-alive HTTP/1.1 connection, written by hand: httpx's pool spends more CPU than a
    bare Django view at high concurrency, which would measure the generator instead."""

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
            b"X-Omnihub-Token: %s\r\nContent-Length: %d\r\n\r\n"
            % (path, self.host.encode(), WEBHOOK_SECRET.encode(), len(body))
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
