"""Fake Agents API and Evolution API in one asyncio process (served by uvicorn).

A separate process, so its work does not share a GIL with the load generator, and asyncio, so
hundreds of slow agent calls cost a sleeping coroutine each rather than a thread. Each sendText
arrival is stamped with time.monotonic(): CLOCK_MONOTONIC is system-wide on Linux, so the
benchmark compares it with its own request start times.

    POST /api/v1/agent/{agent}/run    answers {"message": <message_content>} after `agent_delay`
    POST /message/sendText/{instance} records (text, arrival time), answers 201
    POST /_bench/config               {"agent_delay": seconds}
    POST /_bench/reset                forgets what was recorded
    GET  /_bench/sends?count=N&timeout=T
                                      waits until N replies arrived (or T seconds passed), then
                                      {"sends": [[text, monotonic], ...], "agent_calls": n}

Run: python -m uvicorn bench.fakes:app --host 127.0.0.1 --port PORT; the benchmark drives it
with `Fakes`.
"""

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SENT = {"key": {"id": "SENT"}, "status": "PENDING"}


class FakeGateways:
    """The ASGI app; its state lives on the instance, one per server process."""

    def __init__(self) -> None:
        self.agent_delay = 0.0
        self.agent_calls = 0
        self.sends: list[tuple[str, float]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        status, answer = await self.route(scope["method"], scope["path"], body, query)
        payload = json.dumps(answer).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def route(
        self, method: str, path: str, body: bytes, query: dict[str, str]
    ) -> tuple[int, Any]:
        if method == "POST" and path.startswith("/message/sendText/"):
            arrived = time.monotonic()
            self.sends.append((str(json.loads(body).get("text", "")), arrived))
            return 201, SENT
        if method == "POST" and path.startswith("/api/v1/agent/") and path.endswith("/run"):
            self.agent_calls += 1
            content = json.loads(body).get("message_content", "")
            if self.agent_delay:
                await asyncio.sleep(self.agent_delay)
            return 200, {"message": content}
        if method == "POST" and path == "/_bench/config":
            self.agent_delay = float(json.loads(body).get("agent_delay", 0.0))
            return 200, {"agent_delay": self.agent_delay}
        if method == "POST" and path == "/_bench/reset":
            self.sends.clear()
            self.agent_calls = 0
            return 200, {}
        if method == "GET" and path == "/_bench/sends":
            deadline = time.monotonic() + float(query.get("timeout", 0))
            while len(self.sends) < int(query.get("count", 0)) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            return 200, {"sends": self.sends, "agent_calls": self.agent_calls}
        return 404, {"detail": f"no fake for {method} {path}"}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


app = FakeGateways()


class Fakes:
    """Drives the fake Agents/Evolution process (bench/fakes.py) over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def configure(self, *, agent_delay: float) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.post(f"{self.url}/_bench/reset")
            await client.post(f"{self.url}/_bench/config", json={"agent_delay": agent_delay})

    async def sends(self, count: int, timeout: float) -> dict[str, list[float]]:
        """Arrival times by reply text, once `count` replies arrived or `timeout` passed."""
        async with httpx.AsyncClient(timeout=timeout + 10) as client:
            answer = await client.get(
                f"{self.url}/_bench/sends", params={"count": count, "timeout": timeout}
            )
        arrivals: dict[str, list[float]] = defaultdict(list)
        for text, arrived in answer.json()["sends"]:
            arrivals[text].append(arrived)
        return arrivals
